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
// one connection in order: when a probe comes back, whatever the broker took for the
// station before the probe reached it has been delivered too. Heard() is the send time of
// the newest probe back; on a half-open link it stays where it was, and no silence after
// it is counted (NodeTable::Monitor). Everything runs on the dispatcher's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/nats.h"

namespace steward::station {

class Hearing {
 public:
  // Subscribes on `conn` (which must outlive it) for the probes of station `station`.
  static absl::StatusOr<Hearing> Start(natsConnection* conn, const std::string& station);

  // Takes the probes that came back (without waiting); returns the send time of the
  // newest one, InfinitePast before the first.
  absl::Time Heard();
  // Sends a probe stamped `now`. A failed publish is returned; the next turn sends another.
  absl::Status Probe(absl::Time now);

 private:
  Hearing(natsConnection* conn, nats::SubscriptionPtr sub, std::string subject)
      : conn_(conn), sub_(std::move(sub)), subject_(std::move(subject)) {}

  // Probes kept waiting for their return: at one per 50 ms housekeeping turn, 51 s. An
  // older one that comes back is not believed (its send time is forgotten).
  static constexpr size_t kMaxOut = 1024;

  natsConnection* conn_;
  nats::SubscriptionPtr sub_;
  std::string subject_;
  uint64_t next_ = 0;
  std::deque<std::pair<uint64_t, absl::Time>> out_;  // sequence, send time; oldest first
  absl::Time heard_ = absl::InfinitePast();
};

}  // namespace steward::station
