// Dispatcher: the station's one thread that sends commands to their nodes and keeps
// time. It sleeps until the next command is due (or something became due sooner),
// sends what is due as requests (many in flight at once, through the request pump),
// and feeds each answer back into the command table: "received" (running), a recorded
// result (a redelivery), no responders (the node is offline: its commands are parked),
// or no answer (retry with backoff).
//
// First sends due at once to one node whose hello says it takes batches go out in one
// message (CommandBatch on <node>.command.batch.<station>), answered by one AckBatch:
// each command's ACK is taken as if it came alone; a command the answer leaves out is
// sent again alone, as after a lost answer.
//
// Every 50 ms it also keeps house: waiters whose time is up are answered, "running"
// states and node rows go to the ledger, nodes whose heartbeats stopped go offline,
// finished commands are forgotten; and every log_prune_every the log retention runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "station/core.h"
#include "station/hearing.h"

namespace steward::station {

class Dispatcher {
 public:
  explicit Dispatcher(Core& core) : core_(core) {}

  // Run is the dispatcher thread's body; it returns once `stop` is notified. `events`,
  // when given, is the intake of nodes' events: a silence is judged only once it has
  // served what came before the station's latest probe of its link (station/hearing.h).
  void Run(const absl::Notification& stop, const Backlog* events = nullptr) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // Flush queues what the ledger gets lazily (running states, node rows), at shutdown.
  void Flush() ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // When the loop last went round (the service watchdog's proof of life).
  absl::Time last_turn() const { return absl::FromUnixNanos(last_turn_.load(std::memory_order_relaxed)); }

 private:
  // Whether a due command may go out now.
  Gate GateOf(proto::CommandState& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);
  // Sends `sends`: first sends to a node in `batching` (its hello said it takes batches)
  // in batches, the others one a message.
  void SendAll(std::vector<Dispatch> sends, const absl::flat_hash_set<std::string>& batching)
      ABSL_LOCKS_EXCLUDED(core_.model.mu);
  void Send(Dispatch d) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // Several commands to `node` in one message (at least two).
  void SendBatch(const std::string& node, std::vector<Dispatch> batch) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // What a request whose reply may not come (publish failed) does to the commands it
  // carried: tried again later, or left as they are when the station stops.
  void NotSent(const std::vector<std::pair<std::string, uint64_t>>& commands, const std::string& node,
               const absl::Status& st) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  void OnAnswer(const std::string& id, uint64_t gen, const std::string& node, RequestPump::Result r,
                nats::MsgPtr msg) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // The answer to a batch: each command's ACK in it is taken as OnAnswer takes one.
  void OnBatchAnswer(const std::string& carrier, const std::string& node,
                     const std::vector<std::pair<std::string, uint64_t>>& commands, RequestPump::Result r,
                     nats::MsgPtr msg) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // The node answered command `id` (send `gen`) with `ack` (or an ACK it could not read).
  // `covered`: `ack` came in a batch answer whose one signature was verified.
  void TakeAnswerLocked(const std::string& id, uint64_t gen, const std::string& node,
                        const absl::StatusOr<proto::Ack>& ack, absl::Time now, Changes& changes, Effects& effects,
                        bool covered = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);
  // What no answer, no responders or a shutdown does to command `id` (send `gen`).
  void NoAnswerLocked(const std::string& id, uint64_t gen, RequestPump::Result r, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);
  // Whether the answer `ack` from `node` to command `id` may be believed: it names the
  // command, comes from the node's current installation and, in secure mode, carries
  // the node's signature, or is `covered` by the verified signature of the batch answer
  // it came in.
  absl::Status CheckAnswer(const std::string& id, const std::string& node, const proto::Ack& ack, bool covered = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);
  void HousekeepLocked(absl::Time now, Effects& effects) ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);
  // Logs when the station's probes stop coming back (`heard`, and so `proven_`, falls
  // behind), when they come back, and when Hearing's bound applies (they do not come
  // back on a link that is up). After proven_ is set for this turn.
  void NoteHearingLocked(absl::Time now, absl::Time heard) ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);

  Core& core_;
  std::atomic<int64_t> last_turn_{absl::ToUnixNanos(absl::Now())};
  std::atomic<uint64_t> not_sent_{0};  // dispatches whose publish failed
  // The station heard nothing before (the dispatcher's thread): at first, as it starts
  // or takes over, and after a housekeeping that found the broker connection down.
  bool deaf_ = true;
  absl::Time listening_since_ = absl::InfinitePast();  // when it last stopped being deaf
  absl::Time proven_ = absl::InfinitePast();           // the last moment it proved it heard
  std::optional<Hearing> hearing_;                     // none if its subscription failed
  bool unheard_warned_ = false;
  bool capped_logged_ = false;
  std::atomic<uint64_t> bad_batches_{0};  // batch answers not taken
};

}  // namespace steward::station
