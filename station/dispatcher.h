// Dispatcher: the station's one thread that sends commands to their nodes and keeps
// time. It sleeps until the next command is due (or something became due sooner),
// sends what is due as requests (many in flight at once, through the request pump),
// and feeds each answer back into the command table: "received" (running), a recorded
// result (a redelivery), no responders (the node is offline: its commands are parked),
// or no answer (retry with backoff).
//
// Every 50 ms it also keeps house: waiters whose time is up are answered, "running"
// states and node rows go to the ledger, nodes whose heartbeats stopped go offline,
// finished commands are forgotten; and every log_prune_every the log retention runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "station/core.h"

namespace steward::station {

class Dispatcher {
 public:
  explicit Dispatcher(Core& core) : core_(core) {}

  // Run is the dispatcher thread's body; it returns once `stop` is notified.
  void Run(const absl::Notification& stop) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // Flush queues what the ledger gets lazily (running states, node rows), at shutdown.
  void Flush() ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // When the loop last went round (the service watchdog's proof of life).
  absl::Time last_turn() const { return absl::FromUnixNanos(last_turn_.load(std::memory_order_relaxed)); }

 private:
  // Whether a due command may go out now.
  Gate GateOf(proto::CommandState& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);
  void Send(Dispatch d) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  void OnAnswer(const std::string& id, uint64_t gen, const std::string& node, RequestPump::Result r,
                nats::MsgPtr msg) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // Whether the answer `ack` from `node` to command `id` may be believed: it names the
  // command, comes from the node's current installation and, in secure mode, carries
  // the node's signature.
  absl::Status CheckAnswer(const std::string& id, const std::string& node, const proto::Ack& ack)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);
  void HousekeepLocked(absl::Time now, Effects& effects) ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);

  Core& core_;
  std::atomic<int64_t> last_turn_{absl::ToUnixNanos(absl::Now())};
  std::atomic<uint64_t> not_sent_{0};  // dispatches whose publish failed
};

}  // namespace steward::station
