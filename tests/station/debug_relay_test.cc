// DebugRelay against a real nats-server, playing the agent's side by hand: the ring
// is bounded (a reader that fell behind is told how many lines it missed), probes are
// answered only while somebody reads (or within the grace), and an unread stream ends
// and lets go of its subject.
#include "station/http/debug_relay.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/nats.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/wait.h"

namespace steward::station::http {
namespace {

using steward::testing::NatsServer;
using steward::testing::WaitUntil;

// A broker with two clients: the station's (the relay's) and the agent's (this test).
struct Broker {
  nats::Library lib;
  NatsServer server;
  nats::ConnectionPtr station = steward::testing::MustConnect(server.url(), "relay");
  nats::ConnectionPtr agent = steward::testing::MustConnect(server.url(), "agent");
};

TEST_CASE("DebugRelay keeps a bounded ring and answers probes only while it is read", "[debug][integration]") {
  Broker broker;
  natsConnection* agent = broker.agent.get();
  DebugRelay::Limits limits;
  limits.ring_lines = 5;
  limits.first_reader = absl::Seconds(30);
  limits.grace = absl::Milliseconds(500);
  DebugRelay relay(broker.station.get(), limits);
  const std::string id = DebugRelay::NewId();
  const std::string subject = "_DEBUG.station.ship1." + id;
  absl::StatusOr<DebugRelay::Info> info =
      relay.Open(id, subject, "ship1", "debug", absl::Minutes(5), "alice", "alice (http token t1)");
  REQUIRE(info.ok());

  // 12 lines in two messages: the ring keeps the last 5; a reader from 0 missed 7.
  std::string first, second;
  for (int i = 1; i <= 6; ++i) absl::StrAppend(&first, "line ", i, "\n");
  for (int i = 7; i <= 12; ++i) absl::StrAppend(&second, "line ", i, "\n");
  REQUIRE(nats::Publish(agent, subject + ".line", first).ok());
  REQUIRE(nats::Publish(agent, subject + ".line", second).ok());
  REQUIRE(WaitUntil([&] { return relay.Get(id)->lines == 12; }, absl::Seconds(5)));
  DebugRelay::Batch b = relay.Wait(id, 0, absl::Seconds(1));
  REQUIRE(b.lines.size() == 5);
  CHECK(b.lines.front().seq == 8);
  CHECK(b.lines.front().text == "line 8");
  CHECK(b.lines.back().seq == 12);
  CHECK(b.missed == 7);
  CHECK_FALSE(b.ended);
  // A reader that kept up misses nothing.
  b = relay.Wait(id, 10, absl::Seconds(1));
  CHECK(b.lines.size() == 2);
  CHECK(b.missed == 0);

  // Before the first reader (within first_reader) and with one: probes are answered.
  CHECK(nats::Request(agent, subject + ".ping", "", absl::Seconds(2)).ok());
  relay.AddReader(id);
  CHECK(nats::Request(agent, subject + ".ping", "", absl::Seconds(2)).ok());
  // The reader leaves: past the grace the stream ends and unsubscribes, so the
  // agent's next probe finds nobody at all.
  relay.RemoveReader(id);
  REQUIRE(WaitUntil([&] { return relay.Get(id)->ended; }, absl::Seconds(5)));
  CHECK(relay.Get(id)->reason == "every reader went away");
  absl::StatusOr<nats::MsgPtr> probe;
  CHECK(WaitUntil(
      [&] {
        probe = nats::Request(agent, subject + ".ping", "", absl::Milliseconds(500));
        return !probe.ok() && absl::IsUnavailable(probe.status());  // "no responders"
      },
      absl::Seconds(5)));
  b = relay.Wait(id, 12, absl::Seconds(1));
  CHECK(b.ended);
  CHECK(b.lines.empty());
  // Stopping it again says it had ended; an unknown stream is NotFound.
  CHECK_FALSE(relay.Stop(id, "again"));
  CHECK(absl::IsNotFound(relay.Get("nope").status()));
}

TEST_CASE("DebugRelay ends a stream on the agent's end message and refuses past its stream limit",
          "[debug][integration]") {
  Broker broker;
  natsConnection* agent = broker.agent.get();
  DebugRelay::Limits limits;
  limits.max_streams = 1;
  DebugRelay relay(broker.station.get(), limits);
  const std::string a = DebugRelay::NewId(), b = DebugRelay::NewId();
  REQUIRE(relay.Open(a, "_DEBUG.station.ship1." + a, "ship1", "info", absl::Minutes(1), "alice", "alice").ok());
  absl::StatusOr<DebugRelay::Info> full =
      relay.Open(b, "_DEBUG.station.ship1." + b, "ship1", "info", absl::Minutes(1), "alice", "alice");
  CHECK(absl::IsResourceExhausted(full.status()));
  REQUIRE(nats::Publish(agent, "_DEBUG.station.ship1." + a + ".end", "its time is up").ok());
  DebugRelay::Batch got = relay.Wait(a, 0, absl::Seconds(5));
  CHECK(got.ended);
  CHECK(got.reason == "its time is up");
  // An ended stream frees its place.
  CHECK(relay.Open(b, "_DEBUG.station.ship1." + b, "ship1", "info", absl::Minutes(1), "alice", "alice").ok());
}

}  // namespace
}  // namespace steward::station::http
