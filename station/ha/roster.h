// Roster: what each instance of an HA station says about itself, for `stewardctl
// station status`. Every instance (active or standby) puts a small JSON record under
// the key "<station>.<instance>" of the JetStream key-value bucket steward_stations
// every second: its role, since when, its lease term, the last journal entry its
// ledger holds and when it said so. The bucket forgets a value after a minute (its
// max age), so an instance that died drops out of the roster by itself. The active
// instance answers station.command.stations.cli from it (station/station.cc).
//
// Nothing depends on the roster for safety: the lease (lease.h) decides who is active;
// the roster only shows it.
//
// Thread-safe.
#pragma once

#include <nats/nats.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/ha.pb.h"

namespace steward::station::ha {

struct RosterOptions {
  std::string bucket = "steward_stations";
  std::string station;
  int replicas = 1;
  // How long the bucket keeps a record nobody rewrote.
  absl::Duration max_age = absl::Minutes(1);
  absl::Duration timeout = absl::Seconds(1);
};

class Roster {
 public:
  // Binds to the bucket, creating it when missing.
  static absl::StatusOr<std::unique_ptr<Roster>> Open(natsConnection* nc, RosterOptions options);
  ~Roster();
  Roster(const Roster&) = delete;
  Roster& operator=(const Roster&) = delete;

  // Put writes `self` (its instance names the key).
  absl::Status Put(const proto::StationInstance& self);
  // List: the records of this station's instances, as they were last put.
  absl::StatusOr<std::vector<proto::StationInstance>> List();

 private:
  Roster(RosterOptions options, jsCtx* js, kvStore* kv) : options_(std::move(options)), js_(js), kv_(kv) {}
  const RosterOptions options_;
  jsCtx* const js_;
  kvStore* const kv_;
};

}  // namespace steward::station::ha
