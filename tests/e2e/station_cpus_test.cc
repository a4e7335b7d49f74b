// steward-station --cpus: every thread of the running station (nats.c's too) is kept on
// the listed CPUs; a wrong list stops it at once, with the reason, before it opens or
// creates anything.
#include <sched.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/process.h"

namespace steward::testing {
namespace {

int LastAllowedCpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof(set), &set) == 0);
  int last = -1;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) last = c;
  }
  REQUIRE(last >= 0);
  return last;
}

bool OneCpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof(set), &set) == 0);
  return CPU_COUNT(&set) < 2;
}

// Cpus_allowed_list of each thread of `pid`, by thread id.
std::map<std::string, std::string> ThreadCpus(pid_t pid) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (absl::StartsWith(line, "Cpus_allowed_list:")) {
        out[task.path().filename().string()] = std::string(absl::StripAsciiWhitespace(line.substr(18)));
      }
    }
  }
  return out;
}

TEST_CASE("station --cpus keeps every thread on the list", "[integration][cpus]") {
  if (OneCpu()) {
    WARN("one CPU only: the station would be on it with or without --cpus");
    return;
  }
  TempDir dir;
  NatsServer nats;
  const std::string cpu = std::to_string(LastAllowedCpu());
  REQUIRE(ThreadCpus(getpid()).begin()->second != cpu);  // this test's own threads may use more
  Process station({BinPath("station/steward-station"), "--nats", nats.url(), "--data-dir",
                   (dir.path() / "station").string(), "--http", "127.0.0.1:0", "--cpus", cpu});
  REQUIRE(station.WaitForOutput("takes requests", absl::Seconds(20)));
  CHECK(station.WaitForOutput(absl::StrCat("kept on CPU ", cpu), absl::Seconds(1)));
  const std::map<std::string, std::string> threads = ThreadCpus(station.pid());
  CHECK(threads.size() > 5);  // its own, the ledger's, nats.c's and the HTTP server's
  for (const auto& [tid, cpus] : threads) {
    INFO("thread " << tid);
    CHECK(cpus == cpu);
  }
}

TEST_CASE("station --cpus with a CPU it may not use exits 2 and creates nothing", "[integration][cpus]") {
  TempDir dir;
  const std::string data = (dir.path() / "station").string();
  const std::string past = std::to_string(LastAllowedCpu() + 1);
  // From the configuration file, so the message names the file and line.
  const std::string config = (dir.path() / "station.toml").string();
  std::ofstream(config) << "cpus = \"" << past << "\"\n";
  Process station(
      {BinPath("station/steward-station"), "--config", config, "--nats", "nats://127.0.0.1:1", "--data-dir", data});
  std::optional<RunResult> r = station.Wait(absl::Seconds(10));
  REQUIRE(r.has_value());
  CHECK(r->exit_code == 2);
  INFO(r->err);
  CHECK(absl::StrContains(r->err, config));
  CHECK(absl::StrContains(r->err, absl::StrCat("CPU ", past, " is not available to this process")));
  CHECK(!std::filesystem::exists(data));

  Process flag(
      {BinPath("station/steward-station"), "--nats", "nats://127.0.0.1:1", "--data-dir", data, "--cpus", "2-1"});
  r = flag.Wait(absl::Seconds(10));
  REQUIRE(r.has_value());
  CHECK(r->exit_code == 2);
  INFO(r->err);
  CHECK(absl::StrContains(r->err, "\"2-1\": the range is reversed"));
  CHECK(!std::filesystem::exists(data));
}

}  // namespace
}  // namespace steward::testing
