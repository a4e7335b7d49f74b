// Hearing: how far the station can vouch that it heard what its broker had for it.
//
// A node's silence counts only while the station could have heard it. A closed broker
// connection says so at once, but a half-open one (a NAT box or a modem that lost its
// state, a frozen path) looks connected until nats.c's pings run out: about 3 pings, and
// the station's ping interval is its default heartbeat, 5 s. Until then the station would
// count every node's heartbeats as missed and take its whole fleet offline for its own
// deafness.
//
// So the station sends itself a probe at every housekeeping turn, on a subject only its
// own connection subscribes to (`_STEWARD.hear.<station>.<nuid>`). The broker delivers to
// one connection in order, and nats.c queues each message for its subscription in that
// order: when a probe comes back, every event the broker took for the station before the
// probe reached it is in the events subscription's queue or was taken from it. Once the
// intake has served all of those (Backlog::served), the probe's send time is vouched
// for: Heard() returns the newest such time, and no node's silence after it is counted
// (NodeTable::Monitor). On a half-open link no probe comes back, and the time stays.
//
// A probe that never comes back on a link that works (a broker that refuses the station
// the subject: hand-written permissions) must not blind the station for good: Heard()
// never lags `now` by more than `longest_deafness` once a probe has not come back for that
// long: past it, nats.c has seen a half-open link for itself (its pings) and the
// connection is no longer up. capped() says the bound applied. Everything runs on the
// dispatcher's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/nats.h"
#include "station/backlog.h"

namespace steward::station {

class Hearing {
 public:
  // Subscribes on `conn` (which must outlive it) for the probes of station `station`.
  // `events`, when given, is the intake whose served events a probe waits for.
  static absl::StatusOr<Hearing> Start(natsConnection* conn, const std::string& station,
                                       absl::Duration longest_deafness, const Backlog* events);

  // Takes the probes that came back (without waiting); returns the send time of the
  // newest one vouched for, or `now - longest_deafness` when that is later.
  absl::Time Heard(absl::Time now);
  // Whether the last Heard() returned the bound rather than a probe's time.
  bool capped() const { return capped_; }
  // Forgets the probes out: the connection was lost and is back (they are lost with it,
  // and NodeTable::Listening covers the time before).
  void Restart();
  // Sends a probe stamped `now` (taken before the call). A failed publish is returned;
  // the next turn sends another.
  absl::Status Probe(absl::Time now);

 private:
  Hearing(natsConnection* conn, nats::SubscriptionPtr sub, std::string subject, absl::Duration longest_deafness,
          const Backlog* events)
      : conn_(conn),
        sub_(std::move(sub)),
        subject_(std::move(subject)),
        longest_deafness_(longest_deafness),
        events_(events) {}

  // Probes kept waiting for their return: at one per 50 ms housekeeping turn, 51 s. An
  // older one that comes back is not believed (its send time is forgotten).
  static constexpr size_t kMaxOut = 1024;

  natsConnection* conn_;
  nats::SubscriptionPtr sub_;
  std::string subject_;
  absl::Duration longest_deafness_;
  const Backlog* events_;
  uint64_t next_ = 0;
  std::deque<std::pair<uint64_t, absl::Time>> out_;  // sequence, send time; oldest first
  // Probes back, waiting for the intake to serve the events taken before them: send
  // time, events taken (Backlog::taken) when the probe was.
  std::deque<std::pair<absl::Time, uint64_t>> back_;
  // Since when the oldest probe out has waited (not moved by trimming out_): the bound's
  // clock.
  absl::Time waiting_since_ = absl::InfiniteFuture();
  absl::Time heard_ = absl::InfinitePast();
  bool capped_ = false;
};

}  // namespace steward::station
