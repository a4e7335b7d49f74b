// Lease: which station instance is the active one, kept in a JetStream key-value bucket
// (replicated on a broker cluster), so that no consensus of our own is needed.
//
// The lease is one key (the station's name) whose value names the holder. The bucket's
// TTL is the lease's length: the broker removes a value that nobody renewed for that
// long. Every change is a compare-and-set on the key's revision:
//   - acquire: create the key (it is absent: never held, or expired), or replace a value
//     its holder marked released, expecting that value's revision;
//   - renew: replace our own value expecting the revision we wrote last; any other
//     revision means someone else took it, and we lost it;
//   - release (a clean shutdown): mark our value released, so a standby takes over at
//     once instead of after the TTL.
//
// Safety does not rest on the broker's timer alone. A holder believes it holds the lease
// only until `ttl - margin` after it *started* its last successful renewal, by its own
// steady clock. The broker stored that renewal later than it was started and keeps it
// for `ttl`, so a standby can create the key only after the old holder has stopped
// acting, even when the holder is cut off and hears nothing. (This assumes the two
// clocks run at about the same rate; the margin covers drift and scheduling delay.)
//
// The term (the revision at which this holder acquired the lease) only grows: it is the
// fencing token that the replicated ledger's writes will carry, so that writes of an
// old holder are refused.
//
//   STEWARD_ASSIGN_OR_RETURN(auto lease, Lease::Open(nc, {.key = "station", .holder = id}));
//   while (...) { (void)lease->Step(); if (lease->Held()) Dispatch(); sleep(lease->renew_every()); }
//
// Thread-safe.
#pragma once

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace steward::station::ha {

struct LeaseOptions {
  // The bucket (a JetStream stream "KV_<bucket>") and the key: the station's name.
  std::string bucket = "steward_lease";
  std::string key;
  // This instance, unique per process (a restarted process is a new holder, which
  // waits for the old value to expire: it cannot know what its previous life did).
  std::string holder;
  absl::Duration ttl = absl::Seconds(5);
  // Replicas of the bucket: 3 on a three-broker cluster, 1 on a single broker.
  int replicas = 1;
  // One JetStream request's timeout.
  absl::Duration timeout = absl::Seconds(1);
};

// What the bucket says about the lease.
struct LeaseRecord {
  std::string holder;
  int64_t since_unix_ms = 0;    // when this holder acquired it
  int64_t renewed_unix_ms = 0;  // its last renewal (the holder's clock)
  bool released = false;
  uint64_t revision = 0;        // the key's revision
  uint64_t term = 0;            // the revision at which the holder acquired it
};

class Lease {
 public:
  // Binds to the bucket, creating it (with `ttl` and `replicas`) when missing. An
  // existing bucket with another TTL is refused: two instances must agree on it.
  static absl::StatusOr<std::unique_ptr<Lease>> Open(natsConnection* nc, LeaseOptions options);
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // One step: renew the lease when this instance holds it, try to acquire it when it
  // is free. Returns whether this instance holds it now; an error when the bucket could
  // not be reached (then Held() turns false by itself when the last renewal is too old).
  absl::StatusOr<bool> Step();

  // Whether acting as the active instance is safe now.
  bool Held() const;
  // The term of the current holding (0 when not held).
  uint64_t term() const;
  // Until when the last renewal (or the acquisition) made acting safe: in the past once
  // the lease is lost. The wall clock's reading of a steady-clock instant.
  absl::Time ValidUntil() const;
  // How often Step should run: a third of the time a renewal stays valid.
  absl::Duration renew_every() const;

  // What the bucket holds now (nullopt: nobody holds the lease).
  absl::StatusOr<std::optional<LeaseRecord>> Current() const;

  // Gives the lease up at once (a clean shutdown). Not held: nothing to do.
  absl::Status Release();

  const LeaseOptions& options() const { return options_; }

 private:
  using Clock = std::chrono::steady_clock;
  Lease(LeaseOptions options, jsCtx* js, kvStore* kv);
  absl::Duration valid_for() const;
  // Writes our value expecting revision `last` (0: the key must be absent).
  absl::StatusOr<uint64_t> Write(uint64_t last, int64_t since_unix_ms, bool released, uint64_t term);

  const LeaseOptions options_;
  jsCtx* const js_;
  kvStore* const kv_;

  absl::Mutex step_mu_;  // one Step or Release at a time (held across broker calls)
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(step_mu_);
  struct Holding {
    uint64_t revision = 0;  // our last write (0: not held)
    uint64_t term = 0;
    int64_t since_unix_ms = 0;
  };
  Holding Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);
  Holding held_ ABSL_GUARDED_BY(mu_);
  Clock::time_point valid_until_ ABSL_GUARDED_BY(mu_);
};

}  // namespace steward::station::ha
