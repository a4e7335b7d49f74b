// High availability with real processes: two steward-station instances of one station
// name on a nats-server with JetStream. The active one is killed with -9 while
// commands are in flight; the standby takes over, every command ends once (a
// side-effect file counts the runs), operators reach the new active station without
// doing anything, and the old instance comes back as a standby, not as a second active.
#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/testing/files.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/process.h"
#include "tests/testing/wait.h"

namespace {

using steward::testing::BinPath;
using steward::testing::NatsServer;
using steward::testing::Process;
using steward::testing::RunResult;
using steward::testing::TempDir;
using steward::testing::WaitUntil;

struct HaCluster {
  TempDir dir;
  NatsServer nats{steward::testing::JetStreamConfig(dir)};

  std::unique_ptr<Process> Station(const std::string& instance) {
    return std::make_unique<Process>(std::vector<std::string>{
        BinPath("station/steward-station"), "--nats", nats.url(), "--data-dir", dir.str() + "/" + instance,
        "--http", "off", "--ha", "--ha-lease", "2s", "--ha-instance", instance});
  }
  std::unique_ptr<Process> Agent(const std::string& node) {
    return std::make_unique<Process>(std::vector<std::string>{BinPath("agent/steward-agent"), "--node", node,
                                                              "--nats", nats.url(), "--data-dir",
                                                              dir.str() + "/" + node, "--heartbeat", "1s"});
  }
  RunResult Ctl(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(60)) {
    std::vector<std::string> argv = {BinPath("ctl/stewardctl"), "--nats", nats.url()};
    argv.insert(argv.end(), args.begin(), args.end());
    return steward::testing::RunProgram(argv, timeout);
  }
};

TEST_CASE("HA: the standby takes over from a killed active station and every command runs once",
          "[integration][e2e][ha]") {
  HaCluster c;
  std::unique_ptr<Process> a = c.Station("a");
  REQUIRE(a->WaitForOutput("ACTIVE", absl::Seconds(15)));
  std::unique_ptr<Process> b = c.Station("b");
  REQUIRE(b->WaitForOutput("is a standby", absl::Seconds(15)));
  std::unique_ptr<Process> ship1 = c.Agent("ship1");
  std::unique_ptr<Process> ship2 = c.Agent("ship2");
  REQUIRE(WaitUntil([&] { return c.Ctl({"ping", "ship1", "--timeout", "1s"}).exit_code == 0; }, absl::Seconds(15)));
  REQUIRE(WaitUntil([&] { return c.Ctl({"ping", "ship2", "--timeout", "1s"}).exit_code == 0; }, absl::Seconds(15)));

  // Commands that take a while, accepted by a; each appends its tag to a file once it ran.
  const std::string runs = c.dir.str() + "/runs";
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    const std::string node = i % 2 == 0 ? "ship1" : "ship2";
    RunResult r = c.Ctl({"send", "--no-wait", node, "--", "sh", "-c",
                         absl::StrCat("sleep 0.", i % 5, "; echo run", i, " >> ", runs)});
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> words = absl::StrSplit(r.out, absl::ByAnyChar(" \n"), absl::SkipEmpty());
    REQUIRE(words.size() == 2);
    ids.push_back(words[1]);
  }

  const absl::Time killed = absl::Now();
  a->Signal(SIGKILL);
  REQUIRE(b->WaitForOutput("ACTIVE", absl::Seconds(15)));
  const absl::Duration takeover = absl::Now() - killed;
  CHECK(takeover < absl::Seconds(2) + absl::Seconds(5));  // the lease, then at most 5 s

  // Every command reaches its end through b, and ran exactly once.
  for (const std::string& id : ids) {
    RunResult r;
    REQUIRE(WaitUntil(
        [&] {
          r = c.Ctl({"show", id, "--timeout", "2s"});
          return r.exit_code == 0 && r.out.find("succeeded") != std::string::npos;
        },
        absl::Seconds(30)));
  }
  const std::map<std::string, int> counts = steward::testing::LineCounts(runs);
  CHECK(counts.size() == 10);
  for (const auto& [line, n] : counts) {
    INFO(line);
    CHECK(n == 1);
  }

  // Operators just go on: a new command through the new active station.
  RunResult r = c.Ctl({"send", "ship1", "--", "echo", "after"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "after\n");

  // a comes back: as a standby, never a second active one.
  a = c.Station("a");
  REQUIRE(a->WaitForOutput("is a standby", absl::Seconds(15)));
  absl::SleepFor(absl::Seconds(5));  // more than two leases
  CHECK(a->Stderr().find("ACTIVE") == std::string::npos);
  r = c.Ctl({"send", "ship2", "--", "echo", "still b"});
  CHECK(r.exit_code == 0);

  // A clean stop of b hands over at once (no wait for the lease to run out).
  b->Signal(SIGTERM);
  REQUIRE(b->Wait(absl::Seconds(15)).has_value());
  REQUIRE(a->WaitForOutput("ACTIVE", absl::Seconds(5)));
  r = c.Ctl({"send", "ship1", "--", "echo", "on a again"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "on a again\n");
}

}  // namespace
