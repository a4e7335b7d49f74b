// The agent's own log, live, through the station's HTTP API (issue 14 part 4, the
// dashboard's side): real nats-server, station and agent. A stream started over HTTP
// relays the agent's lines as Server-Sent Events and ends on time; it ends when its
// last reader goes away and when its operator stops it; an operator without the right
// is refused with a clear error, in the audit, and nothing reaches the node.
#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/http/http_util.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::Http;
using steward::testing::MakeToken;
using steward::testing::Reply;
using steward::testing::RunResult;
using steward::testing::SseEvent;
using steward::testing::TakeFrames;
using steward::testing::WaitUntil;

namespace {

// Reads stream `id`'s events as `token` until `stop` says so or the station ends the
// response; the HTTP status of the answer.
int ReadStream(int port, const std::string& token, const std::string& id, std::vector<SseEvent>& events,
               const std::function<bool(const std::vector<SseEvent>&)>& stop) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(60);
  httplib::Headers headers = {{"Authorization", "Bearer " + token}};
  std::string buffer;
  int status = 0;
  cli.Get(
      ("/api/v1/debug/" + id + "/events").c_str(), headers,
      [&](const httplib::Response& res) {
        status = res.status;
        return true;
      },
      [&](const char* data, size_t n) {
        buffer.append(data, n);
        for (SseEvent& e : TakeFrames(buffer)) events.push_back(std::move(e));
        return !stop(events);
      });
  return status;
}

bool Has(const std::vector<SseEvent>& events, const std::string& type, const std::string& text = "") {
  for (const SseEvent& e : events) {
    if (e.event == type && absl::StrContains(e.data, text)) return true;
  }
  return false;
}

Reply StartDebug(int port, const std::string& token, const std::string& body) {
  return Http(port, "POST", "/api/v1/nodes/ship1/debug", token, body);
}

// How many times the agent said a debug session ended.
int Ended(Cluster& c) {
  const std::string err = c.agent("ship1").Stderr();
  int n = 0;
  for (size_t at = err.find("debug stream"); at != std::string::npos; at = err.find("debug stream", at + 1)) {
    const size_t eol = err.find('\n', at);
    n += err.substr(at, eol - at).find("ended") != std::string::npos;
  }
  return n;
}

bool AuditHas(int port, const std::string& action, const std::string& op, const std::string& outcome) {
  Reply audit = Http(port, "GET", "/api/v1/audit?limit=100");
  for (const auto& a : audit.json["actions"]) {
    if (a.value("action", "") == action && absl::StrContains(a.value("operator", ""), op) &&
        absl::StrContains(a.value("outcome", ""), outcome)) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("a debug stream started over HTTP relays the agent's lines as events and ends on time",
          "[integration][http][debug]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");  // logs at info: its debug lines reach only the stream
  const int port = c.HttpPort();
  REQUIRE(port > 0);
  const std::string alice = MakeToken(c, "alice");

  const absl::Time asked = absl::Now();
  Reply started = StartDebug(port, alice, R"({"level":"debug","for_ms":3000})");
  INFO(started.body);
  REQUIRE(started.status == 201);
  const std::string id = started.json["id"];
  CHECK(started.json["node"] == "ship1");
  CHECK(started.json["level"] == "debug");
  const std::string command = started.json["command"];
  REQUIRE(command.size() == 26);

  // Once the stream is read, a command makes the agent log at debug level.
  std::atomic<bool> reading{false};
  std::string echo;
  std::thread sender([&] {
    if (!WaitUntil([&] { return reading.load(); }, absl::Seconds(20))) return;
    RunResult sent = c.Ctl({"send", "--no-wait", "--method", "echo", "ship1", "--", "hello"});
    if (sent.exit_code == 0) echo = sent.out.substr(sent.out.find(' ') + 1, 26);
  });
  std::vector<SseEvent> events;
  const int status = ReadStream(port, alice, id, events, [&](const std::vector<SseEvent>& e) {
    if (Has(e, "stream")) reading = true;
    return Has(e, "end");
  });
  sender.join();
  const absl::Duration took = absl::Now() - asked;
  CHECK(status == 200);
  REQUIRE(echo.size() == 26);
  CHECK(Has(events, "line", "DEBUG command " + echo + " echo/"));
  // Line events carry their numbers as ids, in order (a reconnect resumes from one).
  uint64_t last = 0;
  for (const SseEvent& e : events) {
    if (e.event != "line") continue;
    CHECK(std::stoull(e.id) == last + 1);
    last = std::stoull(e.id);
  }
  // It ended on time: after its 3 s, by the agent's own clock, not much later.
  CHECK(Has(events, "end", "its time is up"));
  CHECK(took >= absl::Milliseconds(2500));
  CHECK(took < absl::Seconds(15));
  Reply info = Http(port, "GET", "/api/v1/debug/" + id, alice);
  CHECK(info.json["ended"] == true);
  CHECK(info.json["lines"].get<int>() >= 1);

  // It went through the ledger as alice's command, and the audit says who asked.
  Reply cmd = Http(port, "GET", "/api/v1/commands/" + command);
  CHECK(cmd.json["state"] == "succeeded");
  CHECK(cmd.json["command"]["method"] == "debug");
  CHECK_THAT(cmd.json["command"]["operator"].get<std::string>(), Catch::Contains("alice (http token"));
  CHECK(WaitUntil([&] { return AuditHas(port, "debug", "alice (http token", "ok"); }, absl::Seconds(5)));
  // The agent's own stderr did not get its debug lines.
  CHECK_THAT(c.agent("ship1").Stderr(), !Catch::Contains("DEBUG command " + echo));
}

TEST_CASE("a debug stream ends when its last reader goes away and when its operator stops it",
          "[integration][http][debug]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const int port = c.HttpPort();
  REQUIRE(port > 0);
  const std::string alice = MakeToken(c, "alice");
  const std::string bob = MakeToken(c, "bob");

  Reply started = StartDebug(port, alice, R"({"level":"info","for_ms":300000})");
  INFO(started.body);
  REQUIRE(started.status == 201);
  const std::string id = started.json["id"];
  // Another operator may neither read nor stop it.
  std::vector<SseEvent> none;
  CHECK(ReadStream(port, bob, id, none, [](const std::vector<SseEvent>&) { return true; }) == 403);
  CHECK(Http(port, "POST", "/api/v1/debug/" + id + "/stop", bob).status == 403);
  // Alice reads a moment, then goes away (the browser closed).
  std::vector<SseEvent> events;
  ReadStream(port, alice, id, events, [](const std::vector<SseEvent>& e) { return Has(e, "stream"); });
  const absl::Time left = absl::Now();
  // The station stops answering the agent's probes after its grace; the agent stops.
  CHECK(WaitUntil([&] { return Ended(c) == 1; }, absl::Seconds(20)));
  CHECK(absl::Now() - left < absl::Seconds(15));
  CHECK_THAT(c.agent("ship1").Stderr(), Catch::Contains("the operator went away"));
  Reply info = Http(port, "GET", "/api/v1/debug/" + id, alice);
  CHECK(info.json["ended"] == true);
  CHECK(info.json["reason"] == "every reader went away");

  // Stop: the stream ends at once for its reader, and the agent at its next probe.
  started = StartDebug(port, alice, R"({"level":"info","for_ms":300000})");
  REQUIRE(started.status == 201);
  const std::string second = started.json["id"];
  std::thread stopper([&] {
    absl::SleepFor(absl::Seconds(1));
    Http(port, "POST", "/api/v1/debug/" + second + "/stop", alice);
  });
  events.clear();
  const absl::Time asked = absl::Now();
  ReadStream(port, alice, second, events, [](const std::vector<SseEvent>& e) { return Has(e, "end"); });
  stopper.join();
  CHECK(Has(events, "end", "stopped by alice (http token"));
  CHECK(absl::Now() - asked < absl::Seconds(10));
  CHECK(WaitUntil([&] { return Ended(c) == 2; }, absl::Seconds(15)));
  CHECK(WaitUntil([&] { return AuditHas(port, "debug stop", "alice (http token", "ok"); }, absl::Seconds(5)));
}

TEST_CASE("a debug request without the right is refused, audited, and sends nothing", "[integration][http][debug]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const int port = c.HttpPort();
  REQUIRE(port > 0);
  const std::string carol = MakeToken(c, "carol", {"--read-only"});
  const std::string alice = MakeToken(c, "alice");

  // No token; a read-only token.
  CHECK(StartDebug(port, "", "{}").status == 401);
  Reply ro = StartDebug(port, carol, "{}");
  CHECK(ro.status == 403);
  CHECK_THAT(ro.json["error"].get<std::string>(), Catch::Contains("read-only"));
  CHECK(WaitUntil([&] { return AuditHas(port, "POST /api/v1/nodes/ship1/debug", "carol", "read-only"); },
                  absl::Seconds(5)));
  // Bad input.
  Reply bad = StartDebug(port, alice, R"({"level":"loud"})");
  CHECK(bad.status == 400);
  CHECK_THAT(bad.json["error"].get<std::string>(), Catch::Contains("unknown log level \"loud\""));
  CHECK(StartDebug(port, alice, R"({"for_ms":0})").status == 400);
  CHECK(Http(port, "POST", "/api/v1/nodes/ship9/debug", alice, "{}").status == 404);
  // The node's access rules do not allow debug: refused by the station before sending.
  RunResult acl = c.Ctl({"acl", "set", "ship1", "--allow", "echo,ping"});
  INFO(acl.out << acl.err);
  REQUIRE(acl.exit_code == 0);
  Reply denied = StartDebug(port, alice, "{}");
  CHECK(denied.status == 403);
  CHECK_THAT(denied.json["error"].get<std::string>(), Catch::Contains("ship1's access rules do not allow debug"));
  // (The audit is written behind the answer, as every refusal's.)
  CHECK(WaitUntil([&] { return AuditHas(port, "debug", "alice (http token", "do not allow debug"); },
                  absl::Seconds(5)));

  // Nothing reached the ledger's commands, nor the agent.
  RunResult history = c.Ctl({"history", "--node", "ship1"});
  CHECK_THAT(history.out, !Catch::Contains("debug"));
  CHECK_THAT(c.agent("ship1").Stderr(), !Catch::Contains("debug stream"));
}

TEST_CASE("a debug stream over HTTP works under the broker's permissions", "[integration][http][debug][security]") {
  Cluster c(Cluster::Secure{});
  c.StartStation();
  c.StartAgent("ship1");
  const int port = c.HttpPort();
  REQUIRE(port > 0);
  const std::string alice = MakeToken(c, "alice");
  Reply started = StartDebug(port, alice, R"({"level":"debug","for_ms":3000})");
  INFO(started.body);
  REQUIRE(started.status == 201);
  std::vector<SseEvent> events;
  ReadStream(port, alice, started.json["id"], events, [](const std::vector<SseEvent>& e) { return Has(e, "end"); });
  // Lines came (the agent logs its probes' and commands' work at debug level), and it
  // ended on time: the station answered every probe.
  CHECK(Has(events, "end", "its time is up"));
}
