// Defects of issue 16 with util-linux `logger` as the sender, the way an operator sends
// lines: batches over the broker's max_payload, truncation marks over TCP and UDP, and
// RFC 3164 times written by senders in other zones. (logs_test.cc has the same defects
// with hand-made frames, and the rsyslog relay.)
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/e2e/syslog_helpers.h"
#include "tests/testing/cluster.h"
#include "tests/testing/wait.h"

namespace steward::testing::syslog {
namespace {

constexpr char kLogger[] = "/usr/bin/logger";

// Whether logger is missing (a warning says the test is skipped).
bool LoggerMissing() {
  if (HasProgram(kLogger)) return false;
  WARN("util-linux logger not installed; skipping");
  return true;
}

// Runs logger with `args` (and `env`), requiring success.
void Logger(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), kLogger);
  RunResult r = RunProgram(args, absl::Seconds(60), std::move(env));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
}

TEST_CASE("logger over TCP: 60 KiB and 2.5 KiB lines, batches beyond max_payload, all arrive",
          "[integration][syslog][logs][logger]") {
  if (LoggerMissing()) return;
  Cluster c;
  c.StartStation();
  Process& agent = c.StartAgent("ship1", {"--syslog-tcp", "127.0.0.1:0"});
  const std::string port = std::to_string(InputPort(agent, "tcp"));
  // 20 lines of 60 KiB (a 1.2 MB batch) and 1,000 of 2.5 KiB (a 1.25 MB one), each a
  // message of its own (logger -f sends a file line by line, on one connection).
  const auto file = c.dir().path() / "lines.txt";
  {
    std::ofstream out(file);
    for (int i = 0; i < 20; ++i) out << "big " << i << " " << std::string(60 * 1024, 'b') << "\n";
    for (int i = 0; i < 1000; ++i) out << "wide " << i << " " << std::string(2560, 'w') << "\n";
  }
  Logger({"--server", "127.0.0.1", "--port", port, "--tcp", "--octet-count", "--rfc5424", "--size", "70000", "-t",
          "bulk", "-f", file.string()});
  CHECK(WaitUntil([&] { return StoredLines(c, "ship1") >= 1020; }, absl::Seconds(30)));
  CHECK(StoredLines(c, "ship1") == 1020);
  CHECK_THAT(c.Ctl({"node", "ship1"}).out, Catch::Contains("; 0 dropped by the agent"));
  // Whole: none was cut.
  RunResult big = c.Ctl({"logs", "--node", "ship1", "--grep", "big 1", "-n", "0", "--json"}, absl::Seconds(30));
  CHECK(big.exit_code == 0);
  CHECK(std::count(big.out.begin(), big.out.end(), '\n') == 11);  // big 1, big 10 .. big 19
  CHECK_THAT(big.out, !Catch::Contains("\"truncated\":true"));
}

TEST_CASE("logger over TCP and UDP: a message over the size limit is stored cut and marked truncated",
          "[integration][syslog][logs][logger]") {
  if (LoggerMissing()) return;
  Cluster c;
  c.StartStation();
  Process& agent = c.StartAgent("ship1", {"--syslog-max-message", "4096", "--syslog-udp", "127.0.0.1:0",
                                          "--syslog-tcp", "127.0.0.1:0"});
  const std::string udp = std::to_string(InputPort(agent, "udp"));
  const std::string tcp = std::to_string(InputPort(agent, "tcp"));
  const std::string message(10000, 'x');
  Logger({"--server", "127.0.0.1", "--port", tcp, "--tcp", "--rfc3164", "--size", "20000", "-t", "viatcp", message});
  Logger({"--server", "127.0.0.1", "--port", tcp, "--tcp", "--octet-count", "--rfc5424", "--size", "20000", "-t",
          "viacounted", message});
  Logger({"--server", "127.0.0.1", "--port", udp, "--udp", "--rfc5424", "--size", "20000", "-t", "viaudp", message});
  const std::vector<std::string> lines = WaitForLogs(c, {"--node", "ship1", "--json"}, 3, absl::Seconds(15));
  REQUIRE(lines.size() == 3);
  for (const std::string& l : lines) {
    INFO(l.substr(0, 300));
    CHECK_THAT(l, Catch::Contains("\"truncated\":true"));
    CHECK(l.size() < 4096 * 2);  // the message cut near 4 KiB (JSON adds the fields)
    CHECK(l.size() > 2048);
  }
}

TEST_CASE("logger in Tokyo and in New York: RFC 3164 times land at the real time",
          "[integration][syslog][logs][logger]") {
  if (LoggerMissing()) return;
  Cluster c;
  c.StartStation();
  // The agent's own zone (the default for every input) is Tokyo's; its TCP input is
  // told New York's.
  Process& agent = c.StartAgent("ship1",
                                {"--syslog-udp", "127.0.0.1:0", "--syslog-tcp", "127.0.0.1:0", "--syslog-tz",
                                 "tcp:127.0.0.1:0=America/New_York"},
                                "", {{"TZ", "Asia/Tokyo"}});
  const std::string udp = std::to_string(InputPort(agent, "udp"));
  const std::string tcp = std::to_string(InputPort(agent, "tcp"));
  // logger writes RFC 3164's local time, without a zone, in its own TZ.
  Logger({"--server", "127.0.0.1", "--port", udp, "--udp", "--rfc3164", "-t", "tokyo", "sent from tokyo"},
         {{"TZ", "Asia/Tokyo"}});
  Logger({"--server", "127.0.0.1", "--port", tcp, "--tcp", "--rfc3164", "-t", "newyork", "sent from new york"},
         {{"TZ", "America/New_York"}});
  const absl::Time sent = absl::Now();
  const std::vector<std::string> lines = WaitForLogs(c, {"--node", "ship1", "--json"}, 2, absl::Seconds(15));
  REQUIRE(lines.size() == 2);
  for (const std::string& l : lines) {
    INFO(l);
    const int64_t us = JsonInt(l, "timestamp_unix_us");
    REQUIRE(us > 0);
    // Read in the wrong zone it would be hours off; RFC 3164 has whole seconds.
    CHECK(absl::AbsDuration(absl::FromUnixMicros(us) - sent) < absl::Minutes(2));
  }
}

}  // namespace
}  // namespace steward::testing::syslog
