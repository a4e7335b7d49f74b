// End-to-end tests of the defects of issue 16, each through the real programs: batches
// larger than the broker's max_payload, truncation marks, framing decided once per TCP
// connection (also through an rsyslogd relay), RFC 3164 times in the input's zone,
// `stewardctl logs` answers of any size, errors per minute across a station restart,
// and tailed lines that are not syslog.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
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
    const agent::EventWriter events("ship1", "station", "installation-0", std::nullopt);
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
  Process& agent = c.StartAgent("ship1", {"--syslog-udp", "127.0.0.1:0"}, "", {{"TZ", "America/New_York"}});
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

namespace steward::testing::syslog {
namespace {

// The number after "; " and before " dropped by the agent" in `stewardctl node NAME`.
int64_t DroppedLines(Cluster& c, const std::string& node) {
  const std::string out = c.Ctl({"node", node}).out;
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("; ([0-9]+) dropped by the agent"))) return -1;
  return std::stoll(m[1].str());
}

int Lines(const std::string& out) { return static_cast<int>(std::count(out.begin(), out.end(), '\n')); }

TEST_CASE("UDP lines the kernel dropped are reported with the agent's own", "[integration][syslog][logs]") {
  Cluster c;
  c.StartStation();
  // A small receive buffer, and a flood faster than the agent reads.
  Process& agent = c.StartAgent("ship1", {"--syslog-udp", "127.0.0.1:0", "--syslog-udp-buffer", "8K"});
  const int port = InputPort(agent, "udp");
  constexpr int kSent = 20000;
  const int fd = ConnectLoopback(SOCK_DGRAM, port);
  for (int i = 0; i < kSent; ++i) {
    const std::string datagram = Line3164(absl::StrCat("flood ", i), 200);
    REQUIRE(::send(fd, datagram.data(), datagram.size(), 0) > 0);
  }
  ::close(fd);
  // Every datagram is either stored or counted as dropped.
  const bool all = WaitUntil([&] {
    const int64_t dropped = DroppedLines(c, "ship1");
    return dropped > 0 && StoredLines(c, "ship1") + dropped == kSent;
  }, absl::Seconds(30), absl::Milliseconds(200));
  INFO("stored " << StoredLines(c, "ship1") << ", dropped " << DroppedLines(c, "ship1"));
  CHECK(all);
  CHECK_THAT(agent.Stderr(), Catch::Contains("lines dropped"));
}

TEST_CASE("Each input reads RFC 3164 times in its own zone, and a tail's lines get its severity",
          "[integration][syslog][logs]") {
  Cluster c;
  c.StartStation();
  const auto file = c.dir().path() / "app.log";
  { std::ofstream(file) << ""; }
  Process& agent = c.StartAgent("ship1", {"--syslog-udp", "127.0.0.1:0", "--syslog-tcp", "127.0.0.1:0",
                                          "--syslog-tz", "Asia/Tokyo,tcp:127.0.0.1:0=UTC", "--tail",
                                          file.string() + ":myapp:warning"});
  SendUdp(InputPort(agent, "udp"), "<13>Jan  5 10:11:12 host app: in tokyo");
  SendTcp(InputPort(agent, "tcp"), "<13>Jan  5 10:11:12 host app: in utc\n");
  REQUIRE(agent.WaitForOutput("syslog input tail:", absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(300));  // the tail starts at the end of the file
  { std::ofstream(file, std::ios::app) << "plain text line\nJan  5 10:11:12 host app: bsd line without a PRI\n"; }
  const std::vector<std::string> lines =
      WaitForLogs(c, {"--node", "ship1", "--utc", "--output", "short"}, 4, absl::Seconds(10));
  REQUIRE(lines.size() == 4);
  std::string all;
  for (const std::string& l : lines) absl::StrAppend(&all, l, "\n");
  INFO(all);
  CHECK_THAT(all, Catch::Contains("-01-05 01:11:12.000 ship1 host app notice: in tokyo"));
  CHECK_THAT(all, Catch::Contains("-01-05 10:11:12.000 ship1 host app notice: in utc"));
  CHECK_THAT(all, Catch::Contains("ship1 - myapp warning: plain text line"));
  CHECK_THAT(all, Catch::Contains("ship1 host myapp/app warning: bsd line without a PRI"));
  CHECK(WaitForLogs(c, {"--domain", "myapp", "--severity", "warning"}, 2, absl::Seconds(1)).size() == 2);
  // A zone that does not exist is a usage error.
  RunResult bad = RunProgram({BinPath("agent/steward-agent"), "--node", "x", "--syslog-tz", "Mars/Olympus"});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("unknown time zone \"Mars/Olympus\""));
}

TEST_CASE("stewardctl logs filters by node glob, app, host, severity, time and text, in three formats",
          "[integration][syslog][logs]") {
  Cluster c;
  c.StartStation();
  std::map<std::string, int> ports;
  for (const char* node : {"ship1", "ship2", "edge1"}) {
    ports[node] = InputPort(c.StartAgent(node, {"--syslog-udp", "127.0.0.1:0"}), "udp");
  }
  // RFC 5424 lines with their own times (2030-01-01 10:0N:00Z) and hosts.
  auto send = [&](const std::string& node, int minute, const std::string& host, const std::string& app, int pri,
                  const std::string& text) {
    SendUdp(ports[node], absl::StrCat("<", pri, ">1 2030-01-01T10:0", minute, ":00Z ", host, " ", app, " 77 - - ",
                                      text));
  };
  send("ship1", 1, "relay-7", "nginx", 11, "Upstream Timed Out");  // user.err
  send("ship1", 2, "ship1", "sshd", 14, "accepted key");          // user.info
  send("ship2", 3, "ship2", "nginx", 12, "slow upstream");        // user.warning
  send("edge1", 4, "edge1", "nginx", 11, "upstream timed out at the edge");
  REQUIRE(WaitForLogs(c, {}, 4, absl::Seconds(10)).size() == 4);
  auto count = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "logs");
    RunResult r = c.Ctl(args);
    INFO(absl::StrJoin(args, " ") << "\n" << r.out << r.err);
    CHECK(r.exit_code == 0);
    return Lines(r.out);
  };
  CHECK(count({"--node", "ship*"}) == 3);
  CHECK(count({"--node", "ship1,edge1"}) == 3);
  CHECK(count({"--node", "ship[2-9]"}) == 1);
  CHECK(count({"--app", "nginx"}) == 3);
  CHECK(count({"--host", "relay-*"}) == 1);
  CHECK(count({"--severity", "warning"}) == 3);
  CHECK(count({"--severity", "err", "--node", "ship*"}) == 1);
  CHECK(count({"--grep", "timed out"}) == 1);
  CHECK(count({"--grep", "TIMED OUT", "-i"}) == 2);
  CHECK(count({"--since", "2030-01-01T10:02:00Z", "--until", "2030-01-01T10:04:00Z"}) == 2);
  CHECK(count({"--since", "2030-01-01 11:02", "--utc"}) == 0);
  CHECK(count({"--since", "10m", "--received"}) == 4);  // received just now, dated 2030
  CHECK(count({"--since", "10m"}) == 4);                 // 2030 is after ten minutes ago
  CHECK(count({"--until", "10m"}) == 0);
  CHECK(count({"-n", "2"}) == 2);
  CHECK(count({"--limit", "0"}) == 4);

  // Newest first by the lines' own time.
  RunResult newest = c.Ctl({"logs", "--utc"});
  const std::vector<std::string> order = absl::StrSplit(newest.out, '\n', absl::SkipEmpty());
  REQUIRE(order.size() == 4);
  CHECK(order[0] == "2030-01-01 10:04:00.000 edge1 edge1 nginx[77] err: upstream timed out at the edge");
  CHECK(order[3] == "2030-01-01 10:01:00.000 ship1 relay-7 nginx[77] err: Upstream Timed Out");
  RunResult verbose = c.Ctl({"logs", "--host", "relay-7", "-o", "verbose", "--utc"});
  CHECK_THAT(verbose.out, Catch::Contains("ship1 2030-01-01 10:01:00.000000 +00:00 (cursor "));
  CHECK_THAT(verbose.out, Catch::Contains("    host: relay-7\n"));
  CHECK_THAT(verbose.out, Catch::Contains("    severity: err (3)\n"));
  CHECK_THAT(verbose.out, Catch::Contains("    format: rfc5424\n"));
  RunResult json = c.Ctl({"logs", "--host", "relay-7", "--output", "json"});
  CHECK_THAT(json.out, Catch::Contains("\"hostname\":\"relay-7\""));
  CHECK(json.out == c.Ctl({"--json", "logs", "--host", "relay-7"}).out);
  // Usage errors.
  CHECK(c.Ctl({"logs", "--since", "soon"}).exit_code == 2);
  CHECK(c.Ctl({"logs", "--output", "xml"}).exit_code == 2);
}

TEST_CASE("stewardctl logs -f prints the last lines, then new ones as they arrive",
          "[integration][syslog][logs]") {
  Cluster c;
  c.StartStation();
  const int port = InputPort(c.StartAgent("ship1", {"--syslog-udp", "127.0.0.1:0"}), "udp");
  for (int i = 0; i < 5; ++i) SendUdp(port, absl::StrCat("<14>1 - host app - - - before ", i));
  REQUIRE(WaitForLogs(c, {}, 5, absl::Seconds(10)).size() == 5);
  Process follow({BinPath("ctl/stewardctl"), "--nats", c.url(), "logs", "-f", "-n", "3", "--grep", "fore"});
  REQUIRE(follow.WaitForOutput("before 4", absl::Seconds(10)));
  for (int i = 0; i < 3; ++i) SendUdp(port, absl::StrCat("<14>1 - host app - - - after ", i));
  SendUdp(port, "<14>1 - host app - - - not for the grep");
  for (int i = 3; i < 6; ++i) SendUdp(port, absl::StrCat("<14>1 - host app - - - before ", i + 10));
  REQUIRE(follow.WaitForOutput("before 15", absl::Seconds(10)));
  const std::vector<std::string> lines = absl::StrSplit(follow.Stdout(), '\n', absl::SkipEmpty());
  std::vector<std::string> texts;
  for (const std::string& l : lines) texts.push_back(l.substr(l.find(": ") + 2));
  // The last three, oldest first, then the new matching ones in the order stored.
  CHECK(texts == std::vector<std::string>{"before 2", "before 3", "before 4", "before 13", "before 14",
                                          "before 15"});
}

}  // namespace
}  // namespace steward::testing::syslog
