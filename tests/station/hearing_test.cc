// Hearing against a real nats-server: a probe vouches for its send time once it came
// back and the intake served what was queued before it; a link that returns nothing
// vouches for nothing, up to the bound.
#include "station/hearing.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/nats.h"
#include "station/backlog.h"
#include "station/metrics.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/wait.h"

namespace steward::station {
namespace {

using steward::testing::NatsServer;
using steward::testing::WaitUntil;

const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

TEST_CASE("a probe back vouches for its send time once the intake served what came before it",
          "[station][hearing][integration]") {
  nats::Library lib;
  NatsServer server;
  nats::ConnectionPtr nc = steward::testing::MustConnect(server.url(), "hearing test");
  absl::StatusOr<nats::SubscriptionPtr> events = nats::SubscribeSync(nc.get(), "station.event.>", 1000);
  REQUIRE(events.ok());
  Metrics metrics;
  Backlog intake(events->get(), "events", metrics);
  absl::StatusOr<Hearing> hearing = Hearing::Start(nc.get(), "station", absl::Minutes(1), &intake);
  REQUIRE(hearing.ok());
  const absl::Time now = kT0 + absl::Seconds(3);       // the turns' clock
  CHECK(hearing->Heard(now) == absl::InfinitePast());  // nothing sent, nothing vouched for
  CHECK_FALSE(hearing->capped());

  // A node's hello, then a probe: the probe is back before the hello is served.
  REQUIRE(nats::Publish(nc.get(), "station.event.hello.agent", "hello").ok());
  REQUIRE(hearing->Probe(kT0).ok());
  REQUIRE(nats::Flush(nc.get(), absl::Seconds(5)).ok());  // both are back in their queues
  CHECK(hearing->Heard(now) == absl::InfinitePast());
  absl::StatusOr<nats::MsgPtr> hello = nats::NextMsg(events->get(), absl::Seconds(1));
  REQUIRE(hello.ok());
  CHECK(hearing->Heard(now) == absl::InfinitePast());  // taken, not yet served
  intake.Served();
  CHECK(hearing->Heard(now) == kT0);

  // A hello already taken by a serving thread but not served yet holds a probe back too.
  REQUIRE(nats::Publish(nc.get(), "station.event.hello.agent", "hello").ok());
  REQUIRE(nats::NextMsg(events->get(), absl::Seconds(1)).ok());
  REQUIRE(hearing->Probe(kT0 + absl::Milliseconds(500)).ok());
  REQUIRE(nats::Flush(nc.get(), absl::Seconds(5)).ok());
  CHECK(hearing->Heard(now) == kT0);
  intake.Served();
  CHECK(hearing->Heard(now) == kT0 + absl::Milliseconds(500));

  // The next probes advance it.
  REQUIRE(hearing->Probe(kT0 + absl::Seconds(1)).ok());
  REQUIRE(hearing->Probe(kT0 + absl::Seconds(2)).ok());
  REQUIRE(WaitUntil([&] { return hearing->Heard(now) == kT0 + absl::Seconds(2); }));
}

TEST_CASE("a broker that refuses the station its probes leaves it judging nodes late by the bound and not never",
          "[station][hearing][integration]") {
  nats::Library lib;
  steward::testing::TempDir dir;
  const std::string config = (dir.path() / "broker.conf").string();
  {
    std::ofstream out(config);
    out << "authorization { users = [ { user: st, password: pw, permissions: {\n"
           "  publish: { allow: [\">\"] }, subscribe: { allow: [\">\"], deny: [\"_STEWARD.hear.>\"] } } } ] }\n";
  }
  NatsServer server(config);
  nats::ConnectOptions opts;
  opts.url = absl::StrCat("nats://127.0.0.1:", server.port());
  opts.user = "st";
  opts.password = "pw";
  absl::StatusOr<nats::ConnectionPtr> nc = nats::Connect(opts);
  REQUIRE(nc.ok());
  // The subscribe is refused by the broker later (an -ERR), not by the call.
  absl::StatusOr<Hearing> hearing = Hearing::Start(nc->get(), "station", absl::Seconds(20), nullptr);
  REQUIRE(hearing.ok());
  REQUIRE(hearing->Probe(kT0).ok());
  REQUIRE(nats::Flush(nc->get(), absl::Seconds(5)).ok());
  CHECK(hearing->Heard(kT0 + absl::Seconds(19)) == absl::InfinitePast());  // not back: nothing vouched for
  CHECK_FALSE(hearing->capped());
  CHECK(hearing->Heard(kT0 + absl::Seconds(21)) == kT0 + absl::Seconds(1));  // the bound, 20 s behind
  CHECK(hearing->capped());
  // After a reconnect (Restart) the old probe no longer counts: no bound until a new one waited.
  hearing->Restart();
  CHECK(hearing->Heard(kT0 + absl::Seconds(60)) == absl::InfinitePast());
  CHECK_FALSE(hearing->capped());

  // A bound longer than the probes kept (1024, one a turn): the first one's wait still counts.
  absl::StatusOr<Hearing> patient = Hearing::Start(nc->get(), "station", absl::Seconds(60), nullptr);
  REQUIRE(patient.ok());
  for (int i = 0; i < 1100; ++i) REQUIRE(patient->Probe(kT0 + i * absl::Milliseconds(50)).ok());
  CHECK(patient->Heard(kT0 + absl::Seconds(59)) == absl::InfinitePast());
  CHECK(patient->Heard(kT0 + absl::Seconds(61)) == kT0 + absl::Seconds(1));
  CHECK(patient->capped());
}

}  // namespace
}  // namespace steward::station
