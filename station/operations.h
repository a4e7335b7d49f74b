// Operations: the station's switches. pause / resume (the dispatch switch: while
// paused nothing is sent to any node; queued commands stay queued, running ones finish,
// new submits are stored and queued) and maintenance on / off per node (its commands
// wait, and its absence raises no alarm). Both are kept in the ledger (the dispatch
// switch as a setting, maintenance on the node's row), so they survive a restart, and
// every change is an operator action in the audit and an event on the feed. The
// dispatcher's gate reads them (Parked); ending either sends what waited at once.
#pragma once

#include <string>

#include "station/core.h"
#include "station/rpc.h"

namespace steward::station {

class Operations {
 public:
  Operations(Core& core, Rpc& rpc);

  // Whether the dispatch switch or `c`'s node keeps command `c` back now.
  static bool Parked(const Model& model, const proto::CommandState& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);

 private:
  void Pause(const Call& call, proto::PauseRequest req);
  void Maintenance(const Call& call, proto::MaintenanceRequest req);

  Core& core_;
  Rpc& rpc_;
};

// RecordAction queues `action` of `call`'s operator for the audit (operator_actions).
void RecordAction(Core& core, const Call& call, const std::string& action, const std::string& target,
                  const std::string& detail, const std::string& outcome = "ok");

}  // namespace steward::station
