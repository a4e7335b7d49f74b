// Backlog against a real nats-server: a subscription that falls behind its pending
// limits says so in the metrics (dropped counter, backlog gauge), never silently.
#include "station/backlog.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/nats.h"
#include "station/metrics.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/wait.h"

namespace steward::station {
namespace {

using steward::testing::NatsServer;

TEST_CASE("Backlog counts what a subscription dropped and how far behind it is", "[backlog][integration]") {
  nats::Library lib;
  NatsServer server;
  nats::ConnectionPtr nc = steward::testing::MustConnect(server.url(), "backlog test");
  // Room for 10 messages: the 25 published while nobody reads overflow it.
  absl::StatusOr<nats::SubscriptionPtr> sub = nats::SubscribeSync(nc.get(), "station.event.>", 10, 1 << 20);
  REQUIRE(sub.ok());
  Metrics metrics;
  Backlog backlog(sub->get(), "events", metrics);
  backlog.Check(/*force=*/true);
  CHECK(metrics.intake_dropped.Read().empty());  // nothing dropped, nothing counted
  CHECK(metrics.intake_backlog.Read().at({"events"}) == 0);

  for (int i = 0; i < 25; ++i) REQUIRE(nats::Publish(nc.get(), "station.event.result.x", "r").ok());
  REQUIRE(nats::Flush(nc.get(), absl::Seconds(5)).ok());  // the server has sent them all back
  backlog.Check(/*force=*/true);
  CHECK(metrics.intake_dropped.Read().at({"events"}) == 15);
  CHECK(metrics.intake_backlog.Read().at({"events"}) == 10);

  // Read them: the backlog empties, and the drops are counted once.
  // (The first NextMsg after a drop reports the slow consumer and takes nothing.)
  int read = 0;
  for (int i = 0; i < 20 && read < 10; ++i) read += nats::NextMsg(sub->get(), absl::Milliseconds(100)).ok() ? 1 : 0;
  CHECK(read == 10);
  backlog.Check(/*force=*/true);
  CHECK(metrics.intake_dropped.Read().at({"events"}) == 15);
  CHECK(metrics.intake_backlog.Read().at({"events"}) == 0);
}

}  // namespace
}  // namespace steward::station
