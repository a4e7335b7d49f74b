// Lease against a real nats-server with JetStream: one holder at a time, takeover after
// the TTL when the holder goes silent, a release handed over at once, an old holder
// that finds itself replaced, and a holder cut off from the broker that stops believing
// it holds the lease before anybody else can take it.
#include "station/ha/lease.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/nats.h"
#include "tests/station/ha_testing.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/wait.h"

namespace steward::station::ha {
namespace {

using steward::testing::NatsServer;
using steward::testing::TempDir;
using steward::testing::WaitUntil;
using testing::Broker;

LeaseOptions Options(const std::string& holder, absl::Duration ttl = absl::Seconds(2)) {
  return LeaseOptions{.key = "station", .holder = holder, .ttl = ttl};
}

std::unique_ptr<Lease> MustOpen(natsConnection* nc, LeaseOptions options) {
  absl::StatusOr<std::unique_ptr<Lease>> lease = Lease::Open(nc, std::move(options));
  INFO(lease.status().ToString());
  REQUIRE(lease.ok());
  return std::move(*lease);
}

bool StepHeld(Lease& lease) {
  absl::StatusOr<bool> held = lease.Step();
  INFO(held.status().ToString());
  REQUIRE(held.ok());
  return *held;
}

TEST_CASE("Lease: one holder at a time, renewed, and taken over only after it expires", "[ha][integration]") {
  Broker broker;
  std::unique_ptr<Lease> a = MustOpen(broker.a.get(), Options("a"));
  std::unique_ptr<Lease> b = MustOpen(broker.b.get(), Options("b"));

  CHECK_FALSE(a->Held());
  REQUIRE(StepHeld(*a));
  CHECK(a->Held());
  const uint64_t first_term = a->term();
  CHECK(first_term > 0);
  CHECK_FALSE(StepHeld(*b));
  CHECK_FALSE(b->Held());
  CHECK(b->term() == 0);

  absl::StatusOr<std::optional<LeaseRecord>> now = b->Current();
  REQUIRE(now.ok());
  REQUIRE(now->has_value());
  CHECK((*now)->holder == "a");
  CHECK((*now)->term == first_term);

  // Renewed past several TTLs: still a's, same term; b never gets it.
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (absl::Now() < until) {
    REQUIRE(StepHeld(*a));
    CHECK_FALSE(StepHeld(*b));
    absl::SleepFor(a->renew_every());
  }
  CHECK(a->term() == first_term);

  // a goes silent (killed: no release). b takes over once the broker dropped a's
  // value, and by then a no longer believes it holds the lease.
  const absl::Time silent = absl::Now();
  bool a_stopped_first = true;
  REQUIRE(WaitUntil(
      [&] {
        const bool b_has = StepHeld(*b);
        if (b_has && a->Held()) a_stopped_first = false;
        return b_has;
      },
      absl::Seconds(10)));
  const absl::Duration took = absl::Now() - silent;
  CHECK(a_stopped_first);
  CHECK(took >= absl::Seconds(1));  // not before a's renewal could have lapsed
  CHECK(took < absl::Seconds(2) + absl::Seconds(5));
  CHECK(b->term() > first_term);  // terms only grow: the fencing token

  // a wakes up and tries to renew: it finds the lease taken and says so.
  CHECK_FALSE(StepHeld(*a));
  CHECK_FALSE(a->Held());
  CHECK(a->term() == 0);
  now = a->Current();
  REQUIRE(now.ok());
  REQUIRE(now->has_value());
  CHECK((*now)->holder == "b");
}

TEST_CASE("Lease: a release hands over at once", "[ha][integration]") {
  Broker broker;
  std::unique_ptr<Lease> a = MustOpen(broker.a.get(), Options("a", absl::Seconds(30)));
  std::unique_ptr<Lease> b = MustOpen(broker.b.get(), Options("b", absl::Seconds(30)));
  REQUIRE(StepHeld(*a));
  CHECK_FALSE(StepHeld(*b));
  REQUIRE(a->Release().ok());
  CHECK_FALSE(a->Held());
  absl::StatusOr<std::optional<LeaseRecord>> now = b->Current();
  REQUIRE(now.ok());
  CHECK_FALSE(now->has_value());  // released: nobody holds it
  REQUIRE(StepHeld(*b));          // long before the 30 s TTL
  CHECK_FALSE(StepHeld(*a));
  CHECK(a->Release().ok());  // not held: nothing to do, b keeps it
  CHECK(StepHeld(*b));
}

TEST_CASE("Lease: a holder cut off from the broker stops holding before the lease can move",
          "[ha][integration]") {
  Broker broker;
  std::unique_ptr<Lease> a = MustOpen(broker.a.get(), Options("a"));
  REQUIRE(StepHeld(*a));
  broker.server.Stop(/*hard=*/true);
  const absl::Time cut = absl::Now();
  // Nobody renews: the holder keeps the lease only until its last renewal is too old,
  // which is before the broker could have expired it (the TTL, 2 s).
  REQUIRE(WaitUntil([&] { return !a->Held(); }, absl::Seconds(5)));
  CHECK(absl::Now() - cut < absl::Seconds(2));
  // And a renewal now fails, saying why.
  absl::StatusOr<bool> held = a->Step();
  CHECK_FALSE(held.ok());
  CHECK_FALSE(a->Held());
}

TEST_CASE("Lease refuses bad options and a bucket with another TTL", "[ha][integration]") {
  Broker broker;
  LeaseOptions bad = Options("a");
  bad.key = "station.a";
  absl::StatusOr<std::unique_ptr<Lease>> lease = Lease::Open(broker.a.get(), bad);
  REQUIRE_FALSE(lease.ok());
  CHECK_THAT(std::string(lease.status().message()), Catch::Contains("may hold only letters"));
  bad = Options("");
  CHECK(Lease::Open(broker.a.get(), bad).status().code() == absl::StatusCode::kInvalidArgument);
  bad = Options("a", absl::Milliseconds(200));
  CHECK(Lease::Open(broker.a.get(), bad).status().code() == absl::StatusCode::kInvalidArgument);

  std::unique_ptr<Lease> a = MustOpen(broker.a.get(), Options("a", absl::Seconds(2)));
  lease = Lease::Open(broker.b.get(), Options("b", absl::Seconds(3)));
  REQUIRE_FALSE(lease.ok());
  CHECK_THAT(std::string(lease.status().message()), Catch::Contains("same lease length"));
}

}  // namespace
}  // namespace steward::station::ha
