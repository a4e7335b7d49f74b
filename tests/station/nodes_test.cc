// NodeTable (station/nodes.h): presence from heartbeats, unknown names, dirty rows.
#include "station/nodes.h"

#include <catch2/catch.hpp>

namespace steward::station {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

TEST_CASE("a name never heard from is unknown and no target of --all", "[station][nodes]") {
  NodeTable t(absl::Seconds(5));
  t.Get("typo");
  CHECK(t.Find("typo")->info.status() == proto::NODE_UNKNOWN);
  CHECK(t.HeardFrom("ship1", kT0).has_value());
  CHECK(t.Names() == std::vector<std::string>{"ship1", "typo"});
  CHECK(t.Names(/*heard_only=*/true) == std::vector<std::string>{"ship1"});
  // No responders on a name never heard from: it stays unknown, no transition.
  CHECK_FALSE(t.NoResponders("typo", kT0).has_value());
  CHECK(t.Find("typo")->info.status() == proto::NODE_UNKNOWN);
  CHECK(t.Forget("typo"));
  CHECK(t.Find("typo") == nullptr);
  CHECK_FALSE(t.Forget("typo"));
}

TEST_CASE("online at the first sign of life, offline after missed heartbeats, once each", "[station][nodes]") {
  NodeTable t(absl::Seconds(5));
  std::optional<Transition> up = t.HeardFrom("ship1", kT0);
  REQUIRE(up.has_value());
  CHECK(up->online);
  CHECK(up->reason == "heard from");
  CHECK_FALSE(t.HeardFrom("ship1", kT0 + absl::Seconds(1)).has_value());
  CHECK(t.Monitor(kT0 + absl::Seconds(16), 3).empty());  // 15 s since the last sign of life
  std::vector<Transition> down = t.Monitor(kT0 + absl::Seconds(17), 3);
  REQUIRE(down.size() == 1);
  CHECK_FALSE(down[0].online);
  CHECK(down[0].reason == "missed heartbeats");
  CHECK(t.Find("ship1")->info.status() == proto::NODE_OFFLINE);
  CHECK(t.Monitor(kT0 + absl::Seconds(60), 3).empty());
  CHECK(t.HeardFrom("ship1", kT0 + absl::Seconds(61)).has_value());
}

TEST_CASE("a node online in the ledger is judged by its heartbeats after the station began to listen",
          "[station][nodes]") {
  // The rows a station stopped for a minute left: ship1 online, last heard just before.
  proto::NodeInfo row;
  row.set_name("ship1");
  row.set_status(proto::NODE_ONLINE);
  row.set_online(true);
  row.set_heartbeat_ms(1000);
  row.set_last_heard_unix_ms(absl::ToUnixMillis(kT0));
  row.set_since_unix_ms(absl::ToUnixMillis(kT0 - absl::Hours(1)));
  NodeTable t(absl::Seconds(5));
  t.Load({row});
  const absl::Time start = kT0 + absl::Minutes(1);
  t.Listening(start);
  // Its silence while the station was down is not the node's: 3 heartbeats from `start`.
  CHECK(t.Monitor(start, 3).empty());
  CHECK(t.Monitor(start + absl::Milliseconds(2900), 3).empty());
  CHECK(t.Find("ship1")->info.since_unix_ms() == absl::ToUnixMillis(kT0 - absl::Hours(1)));
  // Heard from: judged from then on; silent again: offline 3 heartbeats later.
  CHECK_FALSE(t.HeardFrom("ship1", start + absl::Seconds(2)).has_value());
  CHECK(t.Monitor(start + absl::Milliseconds(4900), 3).empty());
  const std::vector<Transition> down = t.Monitor(start + absl::Milliseconds(5100), 3);
  REQUIRE(down.size() == 1);
  CHECK(down[0].reason == "missed heartbeats");

  // Never heard from after the start: offline once 3 heartbeats passed.
  NodeTable quiet(absl::Seconds(5));
  quiet.Load({row});
  quiet.Listening(start);
  CHECK(quiet.Monitor(start + absl::Milliseconds(2900), 3).empty());
  CHECK(quiet.Monitor(start + absl::Milliseconds(3100), 3).size() == 1);
  // Without Listening (tests, tools) the ledger's last-heard time alone counts.
  NodeTable plain(absl::Seconds(5));
  plain.Load({row});
  CHECK(plain.Monitor(start, 3).size() == 1);
}

TEST_CASE("a silence is counted only up to the moment the station can vouch it heard", "[station][nodes]") {
  NodeTable t(absl::Seconds(1));
  REQUIRE(t.HeardFrom("ship1", kT0).has_value());
  REQUIRE(t.HeardFrom("ship2", kT0 + absl::Seconds(2)).has_value());
  // The station's link went half-open at kT0 + 2.5 s: its probes stopped coming back. Long
  // after, ship1's 3 heartbeats of silence before that moment still count; ship2's do not.
  const absl::Time heard = kT0 + absl::Milliseconds(3500);
  const std::vector<Transition> down = t.Monitor(kT0 + absl::Seconds(30), 3, heard);
  REQUIRE(down.size() == 1);
  CHECK(down[0].node == "ship1");
  CHECK(down[0].at_ms == absl::ToUnixMillis(kT0 + absl::Seconds(30)));  // offline when judged
  CHECK(t.Find("ship2")->info.status() == proto::NODE_ONLINE);
  // The link heals and the probes come back: ship2's silence counts again, and it was
  // not heard from all along, so it goes offline.
  CHECK(t.Monitor(kT0 + absl::Seconds(31), 3, kT0 + absl::Milliseconds(4900)).empty());
  CHECK(t.Monitor(kT0 + absl::Seconds(31), 3, kT0 + absl::Milliseconds(5100)).size() == 1);
}

TEST_CASE("a hello sets the heartbeat the monitor uses", "[station][nodes]") {
  NodeTable t(absl::Seconds(5));
  proto::Hello h;
  h.set_version("1.2");
  h.set_heartbeat_ms(1000);
  CHECK_FALSE(t.Hello("ship1", h, kT0).changed);
  t.HeardFrom("ship1", kT0);
  CHECK(t.Find("ship1")->info.version() == "1.2");
  CHECK(t.Monitor(kT0 + absl::Milliseconds(3500), 3).size() == 1);
}

TEST_CASE("a hello from another installation says which one it replaces", "[station][nodes]") {
  NodeTable t;
  proto::Hello h;
  CHECK_FALSE(t.Hello("ship1", h, kT0).changed);  // no instance id (0.1.0 agent)
  h.set_instance_id("A");
  NodeTable::InstanceChange first = t.Hello("ship1", h, kT0);  // the first one known
  CHECK(first.changed);
  CHECK(first.previous.empty());
  CHECK(t.Instance("ship1") == "A");
  CHECK_FALSE(t.Hello("ship1", h, kT0 + absl::Seconds(1)).changed);
  h.set_instance_id("B");
  NodeTable::InstanceChange again = t.Hello("ship1", h, kT0 + absl::Seconds(2));
  CHECK(again.changed);
  CHECK(again.previous == "A");
  CHECK(t.Find("ship1")->info.instance_id() == "B");
  CHECK(t.Find("ship1")->info.instance_since_unix_ms() == absl::ToUnixMillis(kT0 + absl::Seconds(2)));
}

TEST_CASE("rows of 0.1.0 get a status from what they knew", "[station][nodes]") {
  proto::NodeInfo online, offline, never;
  online.set_name("a");
  online.set_online(true);
  online.set_last_heard_unix_ms(1);
  offline.set_name("b");
  offline.set_last_heard_unix_ms(1);
  never.set_name("c");
  NodeTable t;
  t.Load({online, offline, never});
  CHECK(t.Find("a")->info.status() == proto::NODE_ONLINE);
  CHECK(t.Find("b")->info.status() == proto::NODE_OFFLINE);
  CHECK(t.Find("c")->info.status() == proto::NODE_UNKNOWN);
}

TEST_CASE("log counts and errors per minute over ten minutes", "[station][nodes]") {
  NodeTable t;
  t.LogsStored("ship1", 100, 20, 3, kT0);
  t.LogsStored("ship1", 10, 10, 0, kT0 + absl::Minutes(5));
  proto::NodeInfo i = t.Info("ship1", kT0 + absl::Minutes(5));
  CHECK(i.log_lines() == 110);
  CHECK(i.log_errors() == 30);
  CHECK(i.log_dropped() == 3);
  CHECK(i.log_errors_per_min() == Approx(3.0));
  CHECK(t.Info("ship1", kT0 + absl::Minutes(12)).log_errors_per_min() == Approx(1.0));
}

TEST_CASE("a changed row is handed out once", "[station][nodes]") {
  NodeTable t;
  t.HeardFrom("ship1", kT0);
  t.HeardFrom("ship1", kT0 + absl::Seconds(1));
  std::vector<std::pair<std::string, std::string>> dirty = t.TakeDirty();
  REQUIRE(dirty.size() == 1);
  CHECK(dirty[0].first == "ship1");
  proto::NodeInfo row;
  REQUIRE(row.ParseFromString(dirty[0].second));
  CHECK(row.name() == "ship1");
  CHECK(row.last_heard_unix_ms() == absl::ToUnixMillis(kT0 + absl::Seconds(1)));
  CHECK(t.TakeDirty().empty());
}

}  // namespace
}  // namespace steward::station
