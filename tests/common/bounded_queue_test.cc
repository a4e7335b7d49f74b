// Tests for common/bounded_queue.h: capacity and refusal counting, FIFO order, Pop
// timeouts, Close semantics, and totals under several producers and consumers.
#include "common/bounded_queue.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace steward {
namespace {

TEST_CASE("BoundedQueue respects its capacity and counts refusals", "[bounded_queue]") {
  BoundedQueue<int> q(3);
  CHECK(q.size() == 0);
  CHECK(q.dropped() == 0);
  CHECK(q.TryPush(1));
  CHECK(q.TryPush(2));
  CHECK(q.TryPush(3));
  CHECK(q.size() == 3);
  CHECK_FALSE(q.TryPush(4));
  CHECK_FALSE(q.TryPush(5));
  CHECK(q.size() == 3);
  CHECK(q.dropped() == 2);

  // Room again after a Pop.
  REQUIRE(q.Pop(absl::ZeroDuration()) == std::optional<int>(1));
  CHECK(q.TryPush(6));
  CHECK_FALSE(q.TryPush(7));
  CHECK(q.dropped() == 3);
  CHECK(q.size() == 3);
}

TEST_CASE("BoundedQueue with capacity zero refuses everything", "[bounded_queue]") {
  BoundedQueue<int> q(0);
  CHECK_FALSE(q.TryPush(1));
  CHECK(q.dropped() == 1);
  CHECK_FALSE(q.Pop(absl::Milliseconds(1)).has_value());
}

TEST_CASE("BoundedQueue pops in FIFO order", "[bounded_queue]") {
  BoundedQueue<std::string> q(100);
  for (int i = 0; i < 100; ++i) REQUIRE(q.TryPush("item" + std::to_string(i)));
  for (int i = 0; i < 100; ++i) {
    std::optional<std::string> got = q.Pop(absl::Seconds(1));
    REQUIRE(got.has_value());
    CHECK(*got == "item" + std::to_string(i));
  }
  CHECK(q.size() == 0);
}

TEST_CASE("BoundedQueue holds move-only items", "[bounded_queue]") {
  BoundedQueue<std::unique_ptr<int>> q(2);
  REQUIRE(q.TryPush(std::make_unique<int>(7)));
  std::optional<std::unique_ptr<int>> got = q.Pop(absl::Seconds(1));
  REQUIRE(got.has_value());
  REQUIRE(*got != nullptr);
  CHECK(**got == 7);
}

TEST_CASE("BoundedQueue Pop times out after about the timeout", "[bounded_queue]") {
  BoundedQueue<int> q(4);
  const absl::Time start = absl::Now();
  std::optional<int> got = q.Pop(absl::Milliseconds(100));
  const absl::Duration took = absl::Now() - start;
  CHECK_FALSE(got.has_value());
  CHECK(took >= absl::Milliseconds(95));
  CHECK(took < absl::Milliseconds(600));

  // A zero timeout does not wait.
  const absl::Time start0 = absl::Now();
  CHECK_FALSE(q.Pop(absl::ZeroDuration()).has_value());
  CHECK(absl::Now() - start0 < absl::Milliseconds(50));
}

TEST_CASE("BoundedQueue Pop wakes when an item arrives", "[bounded_queue]") {
  BoundedQueue<int> q(4);
  std::optional<int> got;
  absl::Duration took;
  std::thread consumer([&] {
    const absl::Time start = absl::Now();
    got = q.Pop(absl::Seconds(10));
    took = absl::Now() - start;
  });
  absl::SleepFor(absl::Milliseconds(30));  // Let the consumer block (not a wait for state).
  REQUIRE(q.TryPush(42));
  consumer.join();
  REQUIRE(got.has_value());
  CHECK(*got == 42);
  CHECK(took < absl::Seconds(5));
}

TEST_CASE("BoundedQueue Close wakes a blocked Pop and refuses pushes", "[bounded_queue]") {
  BoundedQueue<int> q(4);
  absl::Notification popped;
  std::optional<int> got = 5;
  absl::Duration took;
  std::thread consumer([&] {
    const absl::Time start = absl::Now();
    got = q.Pop(absl::Seconds(10));
    took = absl::Now() - start;
    popped.Notify();
  });
  absl::SleepFor(absl::Milliseconds(30));  // Let the consumer block.
  CHECK_FALSE(popped.HasBeenNotified());
  q.Close();
  REQUIRE(popped.WaitForNotificationWithTimeout(absl::Seconds(5)));
  consumer.join();
  CHECK_FALSE(got.has_value());
  CHECK(took < absl::Seconds(5));

  CHECK_FALSE(q.TryPush(1));
  CHECK(q.dropped() == 1);
  CHECK(q.size() == 0);
  // Pop on a closed, empty queue returns at once.
  const absl::Time start = absl::Now();
  CHECK_FALSE(q.Pop(absl::Seconds(10)).has_value());
  CHECK(absl::Now() - start < absl::Seconds(1));
}

TEST_CASE("BoundedQueue Pop without a timeout waits for an item, then for Close",
          "[bounded_queue]") {
  BoundedQueue<int> q(4);
  std::vector<std::optional<int>> got;
  absl::Notification done;
  std::thread consumer([&] {
    while (true) {
      std::optional<int> item = q.Pop();
      got.push_back(item);
      if (!item.has_value()) break;
    }
    done.Notify();
  });
  absl::SleepFor(absl::Milliseconds(30));  // Let the consumer block.
  REQUIRE(q.TryPush(7));
  REQUIRE(q.TryPush(8));
  absl::SleepFor(absl::Milliseconds(30));
  CHECK_FALSE(done.HasBeenNotified());  // Still waiting: an empty queue is not the end.
  q.Close();
  REQUIRE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  consumer.join();
  CHECK(got == std::vector<std::optional<int>>{7, 8, std::nullopt});
}

TEST_CASE("BoundedQueue Close keeps queued items poppable", "[bounded_queue]") {
  BoundedQueue<int> q(4);
  REQUIRE(q.TryPush(1));
  REQUIRE(q.TryPush(2));
  q.Close();
  CHECK_FALSE(q.TryPush(3));
  CHECK(q.Pop(absl::Seconds(1)) == std::optional<int>(1));
  CHECK(q.Pop(absl::Seconds(1)) == std::optional<int>(2));
  CHECK_FALSE(q.Pop(absl::Seconds(1)).has_value());
}

TEST_CASE("BoundedQueue totals match with several producers and consumers",
          "[bounded_queue]") {
  constexpr int kProducers = 4;
  constexpr int kConsumers = 3;
  constexpr int kPerProducer = 20000;
  BoundedQueue<int64_t> q(64);
  std::atomic<int64_t> pushed_sum{0};
  std::atomic<int64_t> pushed_count{0};
  std::atomic<int64_t> refused{0};
  std::atomic<int64_t> popped_sum{0};
  std::atomic<int64_t> popped_count{0};
  std::atomic<int> producers_left{kProducers};

  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        const int64_t v = int64_t{p} * kPerProducer + i + 1;
        if (q.TryPush(v)) {
          pushed_sum += v;
          ++pushed_count;
        } else {
          ++refused;
          std::this_thread::yield();
        }
      }
      if (--producers_left == 0) q.Close();
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&] {
      // Ends when the queue is closed and drained (or, as a safety net, after 10 s idle).
      while (std::optional<int64_t> v = q.Pop(absl::Seconds(10))) {
        popped_sum += *v;
        ++popped_count;
      }
    });
  }
  for (std::thread& t : threads) t.join();

  CHECK(pushed_count + refused == int64_t{kProducers} * kPerProducer);
  CHECK(static_cast<int64_t>(q.dropped()) == refused.load());
  CHECK(popped_count.load() == pushed_count.load());
  CHECK(popped_sum.load() == pushed_sum.load());
  CHECK(q.size() == 0);
  CHECK(pushed_count > 0);
}

}  // namespace
}  // namespace steward
