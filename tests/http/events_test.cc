// The live event stream (SSE) of a real station: a client that drops its connection
// and comes back with Last-Event-ID gets every event it missed, once; one that comes
// back too late (or from another run of the station) gets a reset.
#include <catch2/catch.hpp>
#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tests/http/http_util.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::Http;
using steward::testing::RunResult;
using steward::testing::SseEvent;
using steward::testing::TakeFrames;
using steward::testing::WaitUntil;

namespace {

// Reads /api/v1/events from `resume` until `stop` says so (the connection is then
// dropped by this client), collecting the frames.
std::vector<SseEvent> Follow(int port, const std::string& query, const std::string& resume,
                             const std::function<bool(const std::vector<SseEvent>&)>& stop,
                             const std::string& token = "") {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(30);
  httplib::Headers headers;
  if (!resume.empty()) headers.emplace("Last-Event-ID", resume);
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  std::string buffer;
  std::vector<SseEvent> events;
  cli.Get(("/api/v1/events" + query).c_str(), headers, [&](const char* data, size_t n) {
    buffer.append(data, n);
    for (SseEvent& e : TakeFrames(buffer)) events.push_back(std::move(e));
    return !stop(events);
  });
  return events;
}

std::string LastId(const std::vector<SseEvent>& events) {
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    if (!it->id.empty()) return it->id;
  }
  return "";
}

TEST_CASE("an event stream resumed after a dropped connection has no gap and no duplicate", "[integration][http]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const int port = c.HttpPort();
  REQUIRE(port > 0);

  // Commands run in the background while the client connects, drops and resumes.
  constexpr int kCommands = 12;
  std::thread sender([&c] {
    for (int i = 0; i < kCommands; ++i) {
      c.Ctl({"send", "ship1", "--", "echo", absl::StrCat(i)});
    }
  });
  auto command_events = [](const std::vector<SseEvent>& events) {
    int n = 0;
    for (const SseEvent& e : events) n += e.event == "command";
    return n;
  };
  // First connection: dropped after a few events.
  std::vector<SseEvent> first =
      Follow(port, "?types=command", "", [&](const std::vector<SseEvent>& e) { return command_events(e) >= 5; });
  REQUIRE(command_events(first) >= 5);
  // Away while more happens.
  REQUIRE(WaitUntil([&] { return Http(port, "GET", "/api/v1/commands?state=succeeded&limit=1000")
                                     .json["commands"].size() >= kCommands / 2; },
                    absl::Seconds(30)));
  // Second connection: from the last id seen, until every command's end arrived.
  std::vector<SseEvent> all = first;
  std::vector<SseEvent> second = Follow(port, "?types=command", LastId(first), [&](const std::vector<SseEvent>& e) {
    int ended = 0;
    for (const SseEvent& ev : first) ended += ev.data.find("\"succeeded\"") != std::string::npos;
    for (const SseEvent& ev : e) ended += ev.data.find("\"succeeded\"") != std::string::npos;
    return ended >= kCommands;
  });
  sender.join();
  all.insert(all.end(), second.begin(), second.end());
  for (const SseEvent& e : all) CHECK(e.event != "reset");

  // Nothing but these commands happened meanwhile, so the feed's ids of what arrived
  // are consecutive across the drop: no gap, no duplicate.
  std::map<std::string, std::vector<std::string>> states;
  uint64_t last = 0;
  for (const SseEvent& e : all) {
    if (e.event != "command") continue;
    const nlohmann::json j = nlohmann::json::parse(e.data);
    const uint64_t id = std::stoull(e.id);
    if (last != 0) CHECK(id == last + 1);
    last = id;
    states[j["command"]].push_back(j["state"]);
  }
  // Every command went queued, sent, (running: unless its result overtook the node's
  // "received"), succeeded: each state once, in order.
  CHECK(states.size() == kCommands);
  for (const auto& [command, seen] : states) {
    INFO(command);
    const bool full = seen == std::vector<std::string>{"queued", "sent", "running", "succeeded"};
    const bool quick = seen == std::vector<std::string>{"queued", "sent", "succeeded"};
    CHECK((full || quick));
  }
}

TEST_CASE("an event stream resumed from an id the station no longer holds gets a reset", "[integration][http]") {
  Cluster c;
  c.StartStation();
  const int port = c.HttpPort();
  REQUIRE(port > 0);
  std::vector<SseEvent> events =
      Follow(port, "", "12345", [](const std::vector<SseEvent>& e) { return !e.empty() && e.back().event == "reset"; });
  REQUIRE(!events.empty());
  CHECK(events.back().event == "reset");
  CHECK(Http(port, "GET", "/api/v1/events?after=abc").status == 400);
  CHECK(Http(port, "GET", "/api/v1/events?types=bogus").status == 400);

  // A snapshot's event_id, then the stream from it: what happened in between arrives.
  const uint64_t at = Http(port, "GET", "/api/v1/fleet").json["event_id"];
  REQUIRE(c.Ctl({"pause", "--reason", "drill"}).exit_code == 0);
  events = Follow(port, absl::StrCat("?after=", at), "",
                  [](const std::vector<SseEvent>& e) { return !e.empty() && e.back().event == "dispatch"; });
  REQUIRE(!events.empty());
  CHECK(events.back().data.find("\"paused\":true") != std::string::npos);
  CHECK(events.back().data.find("drill") != std::string::npos);
}

TEST_CASE("an event stream opened with a token ends when the token is revoked", "[integration][http]") {
  Cluster c;
  c.StartStation();
  const int port = c.HttpPort();
  REQUIRE(port > 0);
  const std::string token = steward::testing::MakeToken(c, "erin");
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  std::vector<SseEvent> events;
  std::atomic<bool> open{false};  // its first frame came: the stream was let in
  std::thread follower([&] {
    events = Follow(
        port, "?types=command,node,output", "",
        [&](const std::vector<SseEvent>& e) {
          open = true;
          return (!e.empty() && e.back().event == "end") || absl::Now() > deadline;
        },
        token);
  });
  const bool opened = WaitUntil([&] { return open.load(); }, absl::Seconds(10));
  CHECK(c.Ctl({"token", "revoke", "erin"}).exit_code == 0);
  follower.join();
  REQUIRE(opened);
  REQUIRE(!events.empty());
  CHECK(events.back().event == "end");
  CHECK(events.back().data.find("revoked or expired") != std::string::npos);
  // And it opens no new one.
  CHECK(Http(port, "GET", "/api/v1/events", token).status == 401);
}

}  // namespace
