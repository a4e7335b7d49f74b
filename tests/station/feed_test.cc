// Feed: the ring of live events; resume after an id, reset when it is not held.
#include "station/feed.h"

#include <catch2/catch.hpp>
#include <thread>

#include "absl/time/clock.h"

namespace steward::station {
namespace {

FeedEvent Cmd(const std::string& id) { return FeedEvent::Command("ship1", id, "r", proto::STATE_QUEUED, 1); }

TEST_CASE("a feed hands out what came after an id, once, in order", "[station][feed]") {
  Feed feed(8);
  const uint64_t start = feed.Position();
  for (int i = 0; i < 5; ++i) feed.Publish(Cmd(std::to_string(i)));
  Feed::Batch b = feed.Wait(start, absl::ZeroDuration());
  REQUIRE(b.events.size() == 5);
  CHECK_FALSE(b.reset);
  CHECK(b.events[0]->id == start + 1);
  CHECK(b.events[4]->command == "4");
  CHECK(b.position == start + 5);
  b = feed.Wait(start + 3, absl::ZeroDuration());
  REQUIRE(b.events.size() == 2);
  CHECK(b.events[0]->command == "3");
  CHECK(feed.Wait(b.position, absl::ZeroDuration()).events.empty());
  CHECK(feed.Wait(start, absl::ZeroDuration(), 2).events.size() == 2);  // at most max
}

TEST_CASE("a feed resets a client whose id it no longer holds", "[station][feed]") {
  Feed feed(4);
  const uint64_t start = feed.Position();
  for (int i = 0; i < 10; ++i) feed.Publish(Cmd(std::to_string(i)));
  CHECK(feed.Wait(start, absl::ZeroDuration()).reset);       // evicted
  CHECK(feed.Wait(start + 5, absl::ZeroDuration()).reset);   // 6 left the ring too
  CHECK_FALSE(feed.Wait(start + 6, absl::ZeroDuration()).reset);
  CHECK(feed.Wait(1, absl::ZeroDuration()).reset);            // another run's id
  Feed::Batch future = feed.Wait(start + 1000, absl::ZeroDuration());
  CHECK(future.reset);
  CHECK(future.position == feed.Position());
  CHECK(feed.published() == 10);
}

TEST_CASE("a waiting reader wakes for a new event and at close", "[station][feed]") {
  Feed feed;
  const uint64_t start = feed.Position();
  std::thread publisher([&] {
    absl::SleepFor(absl::Milliseconds(50));
    feed.Publish(FeedEvent::Node("ship1", false, "missed heartbeats", true));
  });
  Feed::Batch b = feed.Wait(start, absl::Seconds(10));
  publisher.join();
  REQUIRE(b.events.size() == 1);
  CHECK(b.events[0]->Json().find(R"("status":"offline")") != std::string::npos);
  CHECK(b.events[0]->Json().find(R"("maintenance":true)") != std::string::npos);
  std::thread closer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    feed.Close();
  });
  CHECK(feed.Wait(b.position, absl::Seconds(10)).closed);
  closer.join();
}

}  // namespace
}  // namespace steward::station
