// Station: the steward-station daemon as a library. It takes operators' commands from
// stewardctl (station.command.<method>.cli), keeps a record of every command,
// dispatches each to its node and retries until the node ACKs it (parking the commands
// of a node that has no responders until it is heard from again), collects results and
// events (station.event.*.*), answers waiters when commands end, and tracks each node's
// live state from its heartbeats.
//
// Thread-safe. One mutex guards the ledger; NATS replies are published outside it.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/nats.h"
#include "common/request_pump.h"
#include "common/signing.h"
#include "proto/steward.pb.h"
#include "station/store.h"

namespace steward::station {

struct StationOptions {
  std::string name = "station";
  std::string data_dir;  // the ledger: <data_dir>/station.db (required)
  nats::ConnectOptions nats;
  absl::Duration ack_timeout = absl::Seconds(2);       // wait for a node's received ACK
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(30);
  absl::Duration default_ttl = absl::Hours(24);
  absl::Duration default_timeout = absl::Minutes(10);  // execution timeout when none given
  // After a command's execution timeout, how long to wait for its result before asking
  // the node again (it answers with what it recorded).
  absl::Duration result_grace = absl::Seconds(10);
  int missed_heartbeats = 3;                           // offline after this many
  absl::Duration default_heartbeat = absl::Seconds(5);
  // Terminal commands stay in memory this long (for waiters), then only in the ledger.
  absl::Duration keep_finished = absl::Seconds(30);
  // Syslog retention: lines older than this, and beyond the newest max lines, go.
  absl::Duration log_retention = absl::Hours(24 * 7);
  int64_t log_max_lines = 10'000'000;
  absl::Duration log_prune_every = absl::Minutes(1);
  // Security. With a key the station signs every command, and nodes must be accepted
  // (their announced key pinned) before their results and events are stored.
  std::optional<signing::KeyPair> key;
  // Operators whose signed requests are accepted; empty: any request (development).
  std::shared_ptr<signing::TrustedKeys> operators;
};

class Station {
 public:
  static absl::StatusOr<std::unique_ptr<Station>> Start(StationOptions options);
  ~Station();
  Station(const Station&) = delete;
  Station& operator=(const Station&) = delete;
  void Shutdown();

 private:
  struct Command {
    proto::CommandState s;  // what the ledger holds
    absl::Time next_attempt;
    bool in_flight = false;
    absl::Time finished = absl::InfiniteFuture();  // when it became terminal
    // Its key in schedule_: when the dispatcher must look at it next (a send or
    // its expiry); InfiniteFuture while in flight, parked for good, or terminal.
    absl::Time due = absl::InfiniteFuture();
    // Finished, and its large output dropped from memory once committed: lookups read
    // the ledger (a fan-out of large outputs must not sit in memory for keep_finished).
    bool output_in_ledger_only = false;
    size_t ledger_output_bytes = 0;  // the size of that output, to plan replies by
    uint64_t writes = 0;             // ledger writes queued: a commit knows if it is the last
  };
  struct Node {
    proto::NodeInfo info;
    absl::Time last_heard = absl::InfinitePast();
    absl::Duration heartbeat;
    std::deque<std::pair<int64_t, int64_t>> error_minutes;  // (unix minute, error lines)
    absl::flat_hash_set<std::string> active;  // its commands not yet terminal
  };
  struct Waiter {
    std::vector<std::string> ids;
    bool any = false;
    std::string reply;
    absl::Time deadline;
    size_t open = 0;  // ids not yet terminal
    std::vector<std::string> open_ids;  // which: to unregister it when its time is up
    // A Submit with wait_ms: answered as a SubmitReply to request `request_id`.
    std::optional<proto::SubmitReply> submit;
    std::string request_id;
  };
  struct Outgoing {  // a message to publish once the lock is released
    std::string subject;
    std::string data;
  };
  struct Dispatch {  // a command to send to its node once the lock is released
    std::string id;
    std::string subject;
    std::string data;
  };

  explicit Station(StationOptions options);
  absl::Status Init();

  absl::Status Load() ABSL_LOCKS_EXCLUDED(mu_);
  void IntakeLoop();
  void EventLoop();
  void DispatchLoop();
  void Serve(nats::MsgPtr msg, bool events);
  void PublishAck(const std::string& reply, const proto::Ack& ack);

  // Intake methods. They answer `reply` themselves, now or later (after a commit or
  // when the commands end).
  void HandleSubmit(const proto::Envelope& req, const std::string& reply) ABSL_LOCKS_EXCLUDED(mu_);
  void HandleWait(const proto::Envelope& req, const std::string& reply) ABSL_LOCKS_EXCLUDED(mu_);
  void HandlePing(const proto::Envelope& req, const std::string& reply);
  void HandleNodes(const proto::Envelope& req, const std::string& reply) ABSL_LOCKS_EXCLUDED(mu_);
  void HandleShow(const proto::Envelope& req, const std::string& reply) ABSL_LOCKS_EXCLUDED(mu_);
  void HandleHistory(const proto::Envelope& req, const std::string& reply);
  void HandleCancel(const proto::Envelope& req, const std::string& reply) ABSL_LOCKS_EXCLUDED(mu_);
  // Events from nodes; the node is told "stored" only after the ledger committed.
  void HandleEvent(const proto::Envelope& ev, const std::string& reply) ABSL_LOCKS_EXCLUDED(mu_);
  void HandleResult(const proto::Envelope& ev, const std::string& reply) ABSL_LOCKS_EXCLUDED(mu_);
  void HandleSyslog(const proto::Envelope& ev, const std::string& reply) ABSL_LOCKS_EXCLUDED(mu_);
  void HandleLogs(const proto::Envelope& req, const std::string& reply);
  void HandleAccept(const proto::Envelope& req, const std::string& reply) ABSL_LOCKS_EXCLUDED(mu_);
  void HandleAcl(const proto::Envelope& req, const std::string& reply) ABSL_LOCKS_EXCLUDED(mu_);
  void HandleAudit(const proto::Envelope& req, const std::string& reply);
  // Checks a node's event against its pinned key; OK in development mode. Unpinned
  // nodes get Unavailable (the node keeps the event and retries until accepted).
  absl::Status CheckNodeSignatureLocked(const proto::Envelope& ev) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records `states` in the ledger, then makes them dispatchable and calls `done`.
  void SubmitCommands(std::vector<proto::CommandState> states, std::function<void(absl::Status)> done);
  proto::CommandState NewCommand(const std::string& target, const proto::Envelope& tmpl,
                                 const std::string& request_id, const std::string& op);
  // The rules a node enforces: its own and its groups'.
  std::vector<std::string> EffectiveAclLocked(const std::string& node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues a command sending `node` its effective ACL (after an operator changed it).
  void PushAclLocked(const std::string& node, std::vector<proto::CommandState>& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void OnNodeAck(const std::string& id, RequestPump::Result r, nats::MsgPtr msg)
      ABSL_LOCKS_EXCLUDED(mu_);
  // ApplyAckLocked updates a command from a node's ACK and queues its ledger write;
  // `after_commit` (may be empty) runs once that write committed.
  void ApplyAckLocked(Command& c, const proto::Ack& ack, std::function<void()> after_commit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetStateLocked(Command& c, proto::State state, std::function<void()> after_commit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HeardFromLocked(const std::string& node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TransitionLocked(Node& node, bool online, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Node& NodeLocked(const std::string& node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleRetryLocked(Command& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The state of a command from memory, else from the ledger.
  std::optional<proto::CommandState> LookupLocked(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Recomputes when the dispatcher must look at `c` next and files it in schedule_.
  // Called after every change of its state, next_attempt or in_flight.
  void RescheduleLocked(const std::string& id, Command& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes a node's parked commands due now (it was heard from, or accepted).
  void UnparkLocked(Node& node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddCommandLocked(proto::CommandState s, absl::Time next_attempt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers the waiters that were waiting for `id` to end, once they are complete.
  void CommandEndedLocked(const std::string& id, std::vector<Outgoing>& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers waiter `n` and forgets it (and its registrations).
  void AnswerWaiterLocked(uint64_t n, std::vector<Outgoing>& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers the waiters whose time is up, and forgets commands finished long ago.
  void ExpireWaitersLocked(absl::Time now, std::vector<Outgoing>& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The reply for `w`, within the broker's max payload: an "any" waiter gets as many
  // terminal states as fit (the rest come with its next wait), else outputs are cut.
  Outgoing WaiterAnswerLocked(const Waiter& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Largest reply the station publishes.
  size_t ReplyLimit() const;
  // Answers `w` at once if it is complete (or its time is up), else files it.
  void AddWaiterLocked(Waiter w, std::vector<Outgoing>& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Looks at each command whose time has come: expires, holds or sends it.
  void DispatchDueLocked(absl::Time now, std::vector<Dispatch>& sends)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Offline after missed heartbeats; forgets commands finished long ago.
  void HousekeepLocked(absl::Time now, std::vector<Outgoing>& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A node's row changed in a way nobody waits for (heartbeat, last command, log
  // counts): it is written with the next housekeeping, once however often it changed.
  void NodeChangedLocked(const Node& node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FlushNodesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A node's "received": the command is running. Nobody waits on that write, and a
  // quick command's result usually replaces it, so the ledger gets it with the next
  // housekeeping unless the command ended first (after a crash the ledger says
  // "queued" and the node, asked again, answers with what it recorded).
  void MarkRunningLocked(Command& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FlushRunningLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish(std::vector<Outgoing>& out);

  const StationOptions options_;
  absl::Notification stop_;
  std::unique_ptr<Store> store_;
  nats::ConnectionPtr conn_;
  std::unique_ptr<RequestPump> pump_;
  nats::SubscriptionPtr intake_sub_;
  nats::SubscriptionPtr event_sub_;

  absl::Mutex mu_;
  // Commands in memory: every unfinished one, and finished ones for keep_finished.
  absl::flat_hash_map<std::string, Command> commands_ ABSL_GUARDED_BY(mu_);
  // (due, id) of the commands the dispatcher must look at, soonest first: it never
  // scans the whole table, so parked and finished commands cost nothing per message.
  std::set<std::pair<absl::Time, std::string>> schedule_ ABSL_GUARDED_BY(mu_);
  // (finished, id), oldest first: when to drop finished commands from memory.
  std::deque<std::pair<absl::Time, std::string>> finished_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Node> nodes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> dirty_nodes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> unsaved_running_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  // Command id -> the waiters waiting for it to end.
  absl::flat_hash_map<std::string, std::vector<uint64_t>> waiting_on_ ABSL_GUARDED_BY(mu_);
  uint64_t next_waiter_ ABSL_GUARDED_BY(mu_) = 0;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  // ACLs: rules per node and per group ("@web"), and group members.
  std::map<std::string, std::vector<std::string>> acl_rules_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::string>> groups_ ABSL_GUARDED_BY(mu_);

  std::vector<std::thread> threads_;
};

// Makes `states` fit `limit` bytes (a reply within the broker's max payload): caps
// stdout and stderr at the largest size that fits, flagging what it cut as truncated
// (small outputs stay whole), then, with `may_drop`, removes trailing states. Returns
// whether it removed any.
bool FitStates(google::protobuf::RepeatedPtrField<proto::CommandState>* states, size_t limit,
               bool may_drop);

}  // namespace steward::station
