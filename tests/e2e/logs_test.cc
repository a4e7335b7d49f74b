// End-to-end tests of the defects of issue 16, each through the real programs: batches
// larger than the broker's max_payload, truncation marks, framing decided once per TCP
// connection (also through an rsyslogd relay), RFC 3164 times in the input's zone,
// `stewardctl logs` answers of any size, errors per minute across a station restart,
// and tailed lines that are not syslog.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/agent_store.h"
#include "agent/events.h"
#include "common/protocol.h"
#include "proto/steward.pb.h"
#include "tests/e2e/syslog_helpers.h"
#include "tests/testing/cluster.h"
#include "tests/testing/wait.h"

namespace steward::testing::syslog {
namespace {

// An RFC 3164 line "<14>Jan  5 10:11:12 host app[1]: <text>" padded with '.' to
// `bytes` (when longer than the text), without a newline.
std::string Line3164(const std::string& text, size_t bytes = 0) {
  std::string line = absl::StrCat("<14>Jan  5 10:11:12 host app[1]: ", text);
  if (line.size() < bytes) line.resize(bytes, '.');
  return line;
}

// Waits until the station counts `n` stored lines for `node` (or the timeout).
bool WaitStored(Cluster& c, const std::string& node, int64_t n, absl::Duration timeout) {
  return WaitUntil([&] { return StoredLines(c, node) >= n; }, timeout);
}

// The value of "field":NUMBER (or "field":"NUMBER") in a JSON line; -1 when absent.
int64_t JsonInt(const std::string& json, const std::string& field) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + field + "\":\"?(-?[0-9]+)"))) return -1;
  int64_t v = -1;
  return absl::SimpleAtoi(m[1].str(), &v) ? v : -1;
}

TEST_CASE("lines whose batch would exceed the broker's max_payload all arrive",
          "[integration][syslog][logs]") {
  Cluster c;
  c.StartStation();
  Process& agent = c.StartAgent("ship1", {"--syslog-tcp", "127.0.0.1:0"});
  const int port = InputPort(agent, "tcp");
  // 20 lines of 60 KiB (a 1.2 MB batch) and 1,000 of 2.5 KiB (a 1.25 MB one).
  std::string all;
  for (int i = 0; i < 20; ++i) absl::StrAppend(&all, Line3164(absl::StrCat("big ", i), 60 * 1024), "\n");
  for (int i = 0; i < 1000; ++i) absl::StrAppend(&all, Line3164(absl::StrCat("wide ", i), 2560), "\n");
  SendTcp(port, all);
  CHECK(WaitStored(c, "ship1", 1020, absl::Seconds(30)));
  CHECK(StoredLines(c, "ship1") == 1020);
  CHECK_THAT(c.Ctl({"node", "ship1"}).out, Catch::Contains("; 0 dropped by the agent"));
}

TEST_CASE("a batch too large to send, left in the spool by an older agent, is split and delivered",
          "[integration][syslog][logs]") {
  Cluster c;
  c.StartStation();
  const std::string data_dir = c.dir().str() + "/ship1";
  {
    auto store = agent::AgentStore::Open(data_dir);
    REQUIRE(store.ok());
    proto::LogBatch batch;  // 30 lines of 60 KiB: 1.8 MB, over the 1 MiB max_payload
    for (int i = 0; i < 30; ++i) {
      proto::LogRecord* r = batch.add_records();
      r->set_format("rfc3164");
      r->set_facility(1);
      r->set_severity(6);
      r->set_app_name("app");
      r->set_domain("app");
      r->set_source("tcp:127.0.0.1:5514");
      r->set_received_unix_us(absl::ToUnixMicros(absl::Now()));
      r->set_message(absl::StrCat("spooled ", i, " ", std::string(60 * 1024, 'x')));
    }
    const agent::EventWriter events("ship1", "station", std::nullopt);
    absl::StatusOr<OutboxItem> item = events.Make(kEventSyslog, "app", batch.SerializeAsString());
    REQUIRE(item.ok());
    item->weight = 30;
    REQUIRE((*store)->NewSpool("logs")->Put(*item).ok());
  }
  c.StartAgent("ship1", {"--syslog-udp", "127.0.0.1:0"});
  CHECK(WaitStored(c, "ship1", 30, absl::Seconds(30)));
  CHECK(StoredLines(c, "ship1") == 30);
}

TEST_CASE("a message cut at the size limit is marked truncated on TCP, UDP and files",
          "[integration][syslog][logs]") {
  Cluster c;
  c.StartStation();
  const auto file = c.dir().path() / "big.log";
  { std::ofstream(file) << ""; }
  Process& agent = c.StartAgent("ship1", {"--syslog-max-message", "4096", "--syslog-udp", "127.0.0.1:0",
                                          "--syslog-tcp", "127.0.0.1:0", "--tail", file.string() + ":filed"});
  const int udp = InputPort(agent, "udp");
  const int tcp = InputPort(agent, "tcp");
  REQUIRE(agent.WaitForOutput("syslog input tail:", absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(300));  // the tail starts at the end of the file
  SendTcp(tcp, Line3164("over tcp", 10000) + "\n");
  SendUdp(udp, Line3164("over udp", 10000));
  { std::ofstream(file, std::ios::app) << Line3164("from file", 10000) << "\n"; }
  const std::vector<std::string> lines = WaitForLogs(c, {"--node", "ship1", "--json"}, 3, absl::Seconds(15));
  REQUIRE(lines.size() == 3);
  for (const std::string& l : lines) {
    INFO(l.substr(0, 300));
    CHECK_THAT(l, Catch::Contains("\"truncated\":true"));
  }
}

TEST_CASE("TCP framing is decided once per connection: digits after a newline are text",
          "[integration][syslog][logs]") {
  Cluster c;
  c.StartStation();
  Process& agent = c.StartAgent("ship1", {"--syslog-tcp", "127.0.0.1:0"});
  const int port = InputPort(agent, "tcp");
  // A multi-line message as a relay forwards it, newline framed: its second line
  // starts with digits and a space, which is not an octet count here.
  SendTcp(port, absl::StrCat(Line3164("first"), "\n300 apples and pears\n", Line3164("second"), "\n",
                             Line3164("third"), "\n"));
  const std::vector<std::string> lines = WaitForLogs(c, {"--node", "ship1"}, 4, absl::Seconds(10));
  REQUIRE(lines.size() == 4);
  std::string all;
  for (const std::string& l : lines) absl::StrAppend(&all, l, "\n");
  CHECK_THAT(all, Catch::Contains("300 apples and pears"));
  CHECK_THAT(all, Catch::Contains(": second"));
  CHECK_THAT(all, Catch::Contains(": third"));
}

TEST_CASE("a multi-line message relayed by rsyslog keeps the messages after it apart",
          "[integration][syslog][logs]") {
  if (!HasProgram(RsyslogRelay::kPath) || !HasProgram("/usr/bin/logger")) {
    WARN("rsyslog or logger not installed; skipping");
    return;
  }
  Cluster c;
  c.StartStation();
  Process& agent = c.StartAgent("ship1", {"--syslog-tcp", "127.0.0.1:0"});
  const int port = InputPort(agent, "tcp");
  RsyslogRelay relay(c.dir(), port, "traditional", "RSYSLOG_ForwardFormat");
  auto logger = [&](const std::string& message) {
    RunResult r = RunProgram({"/usr/bin/logger", "--server", "127.0.0.1", "--port", std::to_string(relay.port()),
                              "--tcp", "--octet-count", "--rfc5424", "-t", "relayed", message},
                             absl::Seconds(10));
    REQUIRE(r.exit_code == 0);
  };
  logger("first part\n300 apples and pears");
  logger("the second message");
  logger("the third message");
  const std::vector<std::string> lines = WaitForLogs(c, {"--node", "ship1"}, 4, absl::Seconds(15));
  std::string all;
  for (const std::string& l : lines) absl::StrAppend(&all, l, "\n");
  INFO(all);
  REQUIRE(lines.size() == 4);
  CHECK_THAT(all, Catch::Contains("300 apples and pears"));
  CHECK_THAT(all, Catch::Contains("relayed the second message"));
  CHECK_THAT(all, Catch::Contains("relayed the third message"));
}

TEST_CASE("RFC 3164 times are read in the agent's local zone", "[integration][syslog][logs]") {
  Cluster c;
  c.StartStation();
  Process& agent = c.StartAgent("ship1", {"--syslog-udp", "127.0.0.1:0"}, {{"TZ", "America/New_York"}});
  SendUdp(InputPort(agent, "udp"), Line3164("zoned"));
  const std::vector<std::string> lines = WaitForLogs(c, {"--node", "ship1", "--json"}, 1, absl::Seconds(10));
  REQUIRE(lines.size() == 1);
  const int64_t us = JsonInt(lines[0], "timestamp_unix_us");
  REQUIRE(us > 0);
  // 10:11:12 in New York is 15:11:12 UTC (EST in January).
  const absl::CivilSecond utc = absl::ToCivilSecond(absl::FromUnixMicros(us), absl::UTCTimeZone());
  CHECK(utc.month() == 1);
  CHECK(utc.day() == 5);
  CHECK(utc.hour() == 15);
  CHECK(utc.minute() == 11);
  CHECK(utc.second() == 12);
}

TEST_CASE("stewardctl logs answers of any size", "[integration][syslog][logs]") {
  Cluster c;
  c.StartStation();
  Process& agent = c.StartAgent("ship1", {"--syslog-tcp", "127.0.0.1:0"});
  const int port = InputPort(agent, "tcp");
  // 3,000 lines of 600 bytes: 1.8 MB.
  std::string all;
  for (int i = 0; i < 3000; ++i) absl::StrAppend(&all, Line3164(absl::StrCat("small ", i), 600), "\n");
  SendTcp(port, all);
  REQUIRE(WaitStored(c, "ship1", 3000, absl::Seconds(30)));
  // 20 lines of 60 KiB, one batch each: 1.2 MB.
  for (int i = 0; i < 20; ++i) {
    SendTcp(port, Line3164(absl::StrCat("big ", i), 60 * 1024) + "\n");
    REQUIRE(WaitStored(c, "ship1", 3001 + i, absl::Seconds(10)));
  }
  RunResult all_lines = c.Ctl({"logs", "--node", "ship1", "--limit", "10000"}, absl::Seconds(60));
  CHECK(all_lines.exit_code == 0);
  CHECK(std::count(all_lines.out.begin(), all_lines.out.end(), '\n') == 3020);
  RunResult big = c.Ctl({"logs", "--node", "ship1", "--grep", "big ", "--limit", "100"}, absl::Seconds(60));
  CHECK(big.exit_code == 0);
  CHECK(std::count(big.out.begin(), big.out.end(), '\n') == 20);
}

TEST_CASE("errors per minute survive a station restart", "[integration][syslog][logs]") {
  Cluster c;
  c.StartStation();
  Process& agent = c.StartAgent("ship1", {"--syslog-udp", "127.0.0.1:0"});
  const int port = InputPort(agent, "udp");
  for (int i = 0; i < 10; ++i) SendUdp(port, absl::StrCat("<11>Jan  5 10:11:12 host app: failure ", i));
  REQUIRE(WaitStored(c, "ship1", 10, absl::Seconds(10)));
  CHECK_THAT(c.Ctl({"node", "ship1"}).out, Catch::Contains("(10 error or worse, 1.0/min"));
  c.StopStation();
  c.StartStation();
  CHECK_THAT(c.Ctl({"node", "ship1"}).out, Catch::Contains("(10 error or worse, 1.0/min"));
}

TEST_CASE("a tailed application log that is not syslog is kept with the input's severity",
          "[integration][syslog][logs]") {
  Cluster c;
  c.StartStation();
  const auto file = c.dir().path() / "app.log";
  { std::ofstream(file) << ""; }
  Process& agent = c.StartAgent("ship1", {"--tail", file.string() + ":myapp"});
  REQUIRE(agent.WaitForOutput("syslog input tail:", absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(300));  // the tail starts at the end of the file
  {
    std::ofstream out(file, std::ios::app);
    for (int i = 0; i < 3; ++i) out << "2026-11-30 10:00:0" << i << " worker " << i << " started\n";
  }
  const std::vector<std::string> lines =
      WaitForLogs(c, {"--domain", "myapp", "--severity", "notice", "--json"}, 3, absl::Seconds(10));
  REQUIRE(lines.size() == 3);
  for (const std::string& l : lines) {
    INFO(l);
    CHECK(JsonInt(l, "severity") == 5);
    CHECK_THAT(l, Catch::Contains("\"parse_error\":false"));
  }
}

}  // namespace
}  // namespace steward::testing::syslog
