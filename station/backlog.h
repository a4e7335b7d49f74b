// Backlog: watches a subscription the station serves (its intake of events, its
// operator requests) so that falling behind is never silent. nats.c buffers what the
// serving threads have not taken yet, up to the subscription's pending limits, and
// drops beyond them (a "slow consumer"): the sender then waits for its own resend.
// Check() compares the subscription's dropped count and backlog with the last look:
// new drops are logged as an error and counted in /metrics
// (steward_intake_dropped_total{subscription}); a backlog past half the limit is
// logged as a warning, once per crossing, and its depth is a gauge
// (steward_intake_backlog{subscription}).
//
// Thread-safe: every serving thread of a subscription calls Check(); at most one look
// per 100 ms does any work.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "station/metrics.h"

namespace steward::station {

// Pending limits of the station's subscriptions, sized for a fleet of 10,000 nodes that
// all answer one fan-out at once: each sends its result (and resends it after 2 s
// without an answer) and its hello every heartbeat, so a burst is a few messages per
// node. 32 messages per node of headroom is 320k messages; results and hellos are a
// few hundred bytes (at most the broker's max_payload), and 256 MiB bounds the memory
// a flood of large ones may take before the station sheds it.
inline constexpr int kIntakePendingMsgs = 320000;
inline constexpr int kIntakePendingBytes = 256 << 20;

class Backlog {
 public:
  // `name` labels the subscription in logs and metrics ("events", "requests").
  Backlog(natsSubscription* sub, std::string name, Metrics& metrics);

  const std::string& name() const { return name_; }
  // Looks at the subscription (at most every 100 ms; `force` looks now).
  void Check(bool force = false) ABSL_LOCKS_EXCLUDED(mu_);
  // A serving thread finished a message it took.
  void Served() { served_.fetch_add(1, std::memory_order_release); }
  // Messages served so far, and messages taken off the wire so far (handed to a serving
  // thread, or waiting in the subscription's queue; 0 once it is closed). When served()
  // reaches an earlier taken(), as many messages were served as were queued by then: all
  // of them but at most one a serving thread still holds (a later one may have finished
  // first), which a node's several heartbeats in a judged silence make up for
  // (station/hearing.h).
  uint64_t served() const { return served_.load(std::memory_order_acquire); }
  uint64_t taken() const;

 private:
  natsSubscription* const sub_;
  const std::string name_;
  Metrics& metrics_;
  absl::Mutex mu_;
  absl::Time last_look_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;   // drops already reported
  bool behind_ ABSL_GUARDED_BY(mu_) = false;  // past half the limit at the last look
  std::atomic<uint64_t> served_{0};
};

}  // namespace steward::station
