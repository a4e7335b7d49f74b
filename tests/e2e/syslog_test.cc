// End-to-end syslog forwarding: real `logger` clients, file tailing, and a broker
// outage, into the station's ledger and out through `stewardctl logs`.
#include <catch2/catch.hpp>
#include <algorithm>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/e2e/syslog_helpers.h"
#include "tests/testing/cluster.h"

using steward::testing::Cluster;
using steward::testing::RunResult;

using steward::testing::syslog::InputPort;
using steward::testing::syslog::WaitForLogs;

namespace {

bool HasLogger() { return steward::testing::syslog::HasProgram("/usr/bin/logger"); }

}  // namespace

TEST_CASE("logger over UDP and TCP, RFC 5424 and 3164, reaches the station parsed",
          "[integration][syslog]") {
  if (!HasLogger()) {
    WARN("util-linux logger not installed; skipping");
    return;
  }
  Cluster c;
  c.StartStation();
  auto& agent = c.StartAgent("ship1", {"--syslog-udp", "127.0.0.1:0", "--syslog-tcp", "127.0.0.1:0"});
  const std::string udp = std::to_string(InputPort(agent, "udp"));
  const std::string tcp = std::to_string(InputPort(agent, "tcp"));

  auto logger = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/logger");
    RunResult r = steward::testing::RunProgram(args, absl::Seconds(10));
    REQUIRE(r.exit_code == 0);
  };
  logger({"--server", "127.0.0.1", "--port", udp, "--udp", "--rfc5424", "-p", "user.err", "-t", "nginx",
          "upstream timed out"});
  logger({"--server", "127.0.0.1", "--port", tcp, "--tcp", "--rfc3164", "-p", "auth.info", "-t", "sshd",
          "Accepted publickey for root"});
  logger({"--server", "127.0.0.1", "--port", tcp, "--tcp", "--octet-count", "--rfc5424", "-t", "app",
          "counted frame"});

  std::vector<std::string> lines = WaitForLogs(c, {"--node", "ship1", "--json"}, 3, absl::Seconds(10));
  REQUIRE(lines.size() == 3);
  std::string nginx, sshd, app;
  for (const std::string& l : lines) {
    if (l.find("upstream timed out") != std::string::npos) nginx = l;
    if (l.find("Accepted publickey") != std::string::npos) sshd = l;
    if (l.find("counted frame") != std::string::npos) app = l;
  }
  CHECK_THAT(nginx, Catch::Contains("\"format\":\"rfc5424\""));
  CHECK_THAT(nginx, Catch::Contains("\"app_name\":\"nginx\""));
  CHECK_THAT(nginx, Catch::Contains("\"domain\":\"nginx\""));
  CHECK_THAT(nginx, Catch::Contains("\"severity\":3"));
  CHECK_THAT(nginx, Catch::Contains("\"facility\":1"));
  CHECK_THAT(nginx, Catch::Contains("\"source\":\"udp:127.0.0.1:"));
  CHECK_THAT(nginx, Catch::Contains("\"message\":\"upstream timed out\""));
  CHECK_THAT(sshd, Catch::Contains("\"format\":\"rfc3164\""));
  CHECK_THAT(sshd, Catch::Contains("\"app_name\":\"sshd\""));
  CHECK_THAT(sshd, Catch::Contains("\"severity\":6"));
  CHECK_THAT(sshd, Catch::Contains("\"facility\":4"));
  CHECK_THAT(sshd, Catch::Contains("\"source\":\"tcp:127.0.0.1:"));
  CHECK_THAT(app, Catch::Contains("\"message\":\"counted frame\""));

  // Queries: by domain, severity and text.
  CHECK(WaitForLogs(c, {"--domain", "nginx"}, 1, absl::Seconds(1)).size() == 1);
  std::vector<std::string> errs = WaitForLogs(c, {"--severity", "warning"}, 1, absl::Seconds(1));
  REQUIRE(errs.size() == 1);
  CHECK_THAT(errs[0], Catch::Contains("upstream timed out"));
  CHECK(WaitForLogs(c, {"--grep", "publickey"}, 1, absl::Seconds(1)).size() == 1);
  CHECK(c.Ctl({"logs", "--grep", "no such text"}).out.empty());
  CHECK(c.Ctl({"logs", "--severity", "loud"}).exit_code == 2);  // a usage error

  // The node table knows about its logs.
  RunResult node = c.Ctl({"node", "ship1"});
  CHECK_THAT(node.out, Catch::Contains("log lines: 3 (1 error or worse"));
}

TEST_CASE("a tailed file's lines arrive once, through rotation", "[integration][syslog]") {
  Cluster c;
  c.StartStation();
  const auto log = c.dir().path() / "app.log";
  { std::ofstream(log) << ""; }
  c.StartAgent("ship1", {"--tail", log.string() + ":myapp"});
  REQUIRE(c.agent("ship1").WaitForOutput("syslog input tail:", absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(300));  // the tail starts at the end of the file
  {
    std::ofstream out(log, std::ios::app);
    for (int i = 0; i < 50; ++i) out << "before rotation " << i << "\n";
  }
  std::filesystem::rename(log, log.string() + ".1");
  {
    std::ofstream out(log);
    for (int i = 0; i < 50; ++i) out << "after rotation " << i << "\n";
  }
  std::vector<std::string> lines = WaitForLogs(c, {"--domain", "myapp", "--limit", "1000"}, 100, absl::Seconds(15));
  CHECK(lines.size() == 100);
  // Newest first.
  CHECK_THAT(lines.back(), Catch::Contains("before rotation 0"));
  CHECK_THAT(lines.front(), Catch::Contains("after rotation 49"));
}

TEST_CASE("10,000 lines sent while the broker is down for 5 s all arrive, each once",
          "[integration][syslog]") {
  Cluster c;
  c.StartStation();
  auto& agent = c.StartAgent("ship1", {"--syslog-tcp", "127.0.0.1:0"});
  const int port = InputPort(agent, "tcp");

  c.nats().Stop();
  std::string all;
  for (int i = 0; i < 10000; ++i) {
    absl::StrAppend(&all, "<14>Jan  5 10:11:12 host app[1]: line ", 100000 + i, "\n");
  }
  steward::testing::syslog::SendTcp(port, all);
  absl::SleepFor(absl::Seconds(5));
  c.nats().Start();

  std::vector<std::string> lines =
      WaitForLogs(c, {"--node", "ship1", "--limit", "20000"}, 10000, absl::Seconds(60));
  REQUIRE(lines.size() == 10000);
  // Each line once. Not in the order sent: the lines share their timestamp, so the
  // order the station stored their batches decides, and batches retried after the
  // outage may be stored in another order (the outbox's contract: first attempts in
  // order, retries may reorder).
  std::vector<int> numbers;
  for (const std::string& line : lines) {
    const size_t at = line.rfind("line ");
    REQUIRE(at != std::string::npos);
    numbers.push_back(std::stoi(line.substr(at + 5)));
  }
  std::sort(numbers.begin(), numbers.end());
  for (int i = 0; i < 10000; ++i) {
    INFO("line " << i);
    REQUIRE(numbers[static_cast<size_t>(i)] == 100000 + i);
  }
}
