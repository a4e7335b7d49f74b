// BoundedQueue: a multi-producer multi-consumer FIFO that refuses (and counts) items
// beyond its capacity instead of growing or blocking the producer. Thread-safe.
//
//   BoundedQueue<Job> q(256);
//   if (!q.TryPush(job)) { /* full or closed: answer "busy" */ }
//   while (auto job = q.Pop()) { ... }   // until Close() and drained
//   q.Close();                            // (from another thread) wakes the consumer
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace steward {

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}
  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  // TryPush adds `item` unless the queue is full or closed; returns whether it did.
  bool TryPush(T item) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (closed_ || items_.size() >= capacity_) {
      ++dropped_;
      return false;
    }
    items_.push_back(std::move(item));
    return true;
  }

  // Pop waits up to `timeout` for an item; nullopt on timeout or when closed and empty.
  std::optional<T> Pop(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(this, &BoundedQueue::ReadyLocked), timeout);
    return TakeLocked();
  }

  // Pop waits for an item as long as it takes; nullopt once the queue is closed and
  // empty. An idle consumer costs nothing: it sleeps until a push or Close().
  std::optional<T> Pop() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &BoundedQueue::ReadyLocked));
    return TakeLocked();
  }

  // Close refuses further pushes and wakes waiting consumers; queued items stay poppable.
  void Close() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

  size_t size() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return items_.size();
  }
  size_t dropped() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return dropped_;
  }

 private:
  bool ReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || !items_.empty(); }
  std::optional<T> TakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<T> items_ ABSL_GUARDED_BY(mu_);
  size_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace steward
