// Core: what the station's rooms share. The model (the command, node, waiter and
// access tables under one mutex), the ledger, the NATS connection, and the glue that
// turns table changes into ledger writes, node rows, waiter answers and NodeState
// events.
//
// The rule every room follows: lock model.mu, change the tables, queue the ledger
// writes (ApplyLocked; queueing is not I/O, and doing it under the lock keeps each
// command's writes in order), unlock, then do the I/O: replies, publications, ledger
// reads. Nothing is said to an agent or an operator before the write it depends on
// has committed: a write's follow-up (CommandWrite::then) runs after the commit, with
// its status.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/nats.h"
#include "common/request_pump.h"
#include "proto/steward.pb.h"
#include "station/access.h"
#include "station/active_members.h"
#include "station/commands.h"
#include "station/jobs.h"
#include "station/runbooks.h"
#include "station/feed.h"
#include "station/output_relay.h"
#include "station/ledger/store.h"
#include "station/metrics.h"
#include "station/nodes.h"
#include "station/options.h"
#include "station/schedules.h"
#include "station/tags.h"
#include "station/waiters.h"

namespace steward::station {

// What a room must still do once it has released model.mu.
struct Effects {
  std::vector<Transition> transitions;  // NodeState events to publish
  std::vector<Waiter> ready;            // waiters to answer
  std::vector<std::pair<std::string, proto::Ack>> replies;  // (reply subject, ACK)
};

// The ledger setting that holds the dispatch switch (a serialized DispatchSwitch).
inline constexpr char kDispatchSetting[] = "dispatch";

// The station's memory.
struct Model {
  explicit Model(const StationOptions& o);

  absl::Mutex mu;
  CommandTable commands ABSL_GUARDED_BY(mu);
  NodeTable nodes ABSL_GUARDED_BY(mu);
  WaiterTable waiters ABSL_GUARDED_BY(mu);
  AccessRules access ABSL_GUARDED_BY(mu);
  // Groups' active members (station/active_members.h).
  ActiveMembers active ABSL_GUARDED_BY(mu);
  // Targeting (station/targeting_api.h): operators' tags, the jobs followed after
  // submit (rollouts, continuous jobs, splayed runs: their holds gate dispatch), and
  // the schedules.
  TagTable tags ABSL_GUARDED_BY(mu);
  JobTable jobs ABSL_GUARDED_BY(mu);
  // Runbook jobs (station/runbooks.h): steps made one after another on each target.
  RunbookTable runbooks ABSL_GUARDED_BY(mu);
  ScheduleTable schedules ABSL_GUARDED_BY(mu);
  // Paused: the dispatcher sends nothing (station/operations.h).
  proto::DispatchSwitch dispatch ABSL_GUARDED_BY(mu);
  // Central station: nodes whose site station is in control (station/site.h), and why
  // their commands are held ("site ship-a is in control since ..."): nothing is
  // dispatched to them until the site hands control back.
  std::map<std::string, std::string> site_held ABSL_GUARDED_BY(mu);
  // The dispatcher sleeps until the next due command; this wakes it sooner.
  bool wake ABSL_GUARDED_BY(mu) = false;
  // Set by a ledger write's completion: wake once the writer's whole group completed
  // (ledger::Store::AfterGroup).
  bool wake_after_group ABSL_GUARDED_BY(mu) = false;
  // Serving ends (a stop, a site's hand-back): every waiter was answered with the states
  // as they are, and one that comes now is answered at once the same way. An HTTP submit
  // that waits holds a server thread, which the server's shutdown joins.
  bool closing ABSL_GUARDED_BY(mu) = false;
};

// Things the station refused or dropped, counted (for logs, `nodes`, and metrics).
struct Counters {
  // Requests and events whose reply subject was not the sender's own inbox: dropped
  // unanswered (the station never publishes where a sender points it).
  std::atomic<uint64_t> misdirected_replies{0};
  // Hellos that did not verify against the node's pinned key (someone else's creds).
  std::atomic<uint64_t> refused_hellos{0};
  // Answers to commands the station did not believe (wrong id, another installation,
  // no valid signature in secure mode): the command is sent again.
  std::atomic<uint64_t> refused_answers{0};
  // Answers to a dispatch that the station could not read (malformed, another protocol
  // version) in development mode: the command ends lost.
  std::atomic<uint64_t> bad_acks{0};
  // Batches sent (one message carrying several commands to one node), and the commands
  // they carried.
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> batched_commands{0};
  // How long ago the station last proved it heard its broker (station/hearing.h), at the
  // dispatcher's last housekeeping: 0 on a healthy link, growing while a link of its own
  // is half-open or down (nobody's silence after that counts).
  std::atomic<int64_t> unheard_ms{0};
};

class Core {
 public:
  Core(const StationOptions& options, ledger::Store& store, natsConnection* conn,
       RequestPump& pump);
  // Takes the core's follow-up off the ledger writer (waiting for one running now): a
  // site station that hands control back ends its core while the ledger stays open.
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  // Load fills the model from the ledger (at start, before anything is served).
  absl::Status Load();

  const StationOptions& options() const { return options_; }
  ledger::Store& store() { return store_; }
  RequestPump& pump() { return pump_; }
  natsConnection* conn() { return conn_; }
  // Largest reply the station publishes.
  size_t ReplyLimit() const;
  // Whether commands made from `tmpl` fit every answer about them (a state carries its
  // command): one the broker could carry to the node but no answer could carry back
  // would leave `send` waiting for an answer that never comes, and `history` unable to
  // list it. InvalidArgument, saying the limit, when not.
  absl::Status CheckFits(const proto::Envelope& tmpl) const;

  Model model;
  Counters counters;
  Metrics metrics;
  // Live events for the HTTP event stream: command states, node transitions, the
  // dispatch switch, maintenance.
  Feed feed;
  // Running commands' live output, between agents and followers (output_api.h).
  OutputRelay output;

  // ---- I/O: never under model.mu ----
  // Reply answers a request; an empty reply subject (a publish, not a request) is fine.
  void Reply(const std::string& reply, const proto::Ack& ack);
  void Publish(const std::string& subject, const std::string& data);

  // ---- commands ----
  // NewCommand builds a queued command for `target` from an operator's template, with
  // the station's defaults, bound to the target's installation when it is known
  // (`instance`; else the dispatcher binds it), signed when the station has a key (a
  // signing failure is an error, never an unsigned dispatch).
  // `tmpl` by value: a caller done with it moves it in (its payload is not copied).
  absl::StatusOr<proto::CommandState> NewCommand(const std::string& target,
                                                 proto::Envelope tmpl,
                                                 const std::string& request_id,
                                                 const std::string& op,
                                                 const std::string& instance = "") const;
  // BindLocked binds a command about to go out to its node's current installation
  // (signing it again); false when it cannot go out yet (secure mode: the node's key
  // is not accepted or its installation not known).
  bool BindLocked(proto::CommandState& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);
  // Submit commits `states` (new commands, from NewCommand) to the ledger (with `also`, in
  // the same transaction), then
  // makes them dispatchable and runs `done` with the commit's status (nothing is
  // dispatched when it failed).
  void Submit(std::vector<proto::CommandState> states, std::function<void(absl::Status)> done,
              std::vector<ledger::Store::Op> also = {}) ABSL_LOCKS_EXCLUDED(model.mu);
  // States returns the commands `ids` as they are now: from memory where they are held
  // whole, else from the ledger (read outside the lock). NotFound names an unknown id.
  absl::StatusOr<std::vector<proto::CommandState>> States(const std::vector<std::string>& ids)
      ABSL_LOCKS_EXCLUDED(model.mu);

  // ApplyLocked records `changes`: each state change on its node's row, each write
  // queued to the ledger. Once a write committed its `then` runs, the table learns it is
  // durable, and the waiters of a command that ended are answered.
  void ApplyLocked(Changes& changes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);
  // SendCancelLocked submits a "cancel" command to `k.node` naming `k.id` (a kill the
  // command table asked for); its own result ends that command.
  void SendCancelLocked(const KillRequest& k) ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);
  // AfterWrites runs `fn` once every write queued so far committed or failed (the
  // ledger's writes complete in order).
  void AfterWrites(std::function<void(absl::Status)> fn);

  // ---- waiters ----
  // Answer builds and sends the answers of waiters that are ready.
  void Answer(std::vector<Waiter> ready) ABSL_LOCKS_EXCLUDED(model.mu);
  // AnswerOnCommit is Answer on the ledger's writer thread, in a commit's completions:
  // the answers of waiters that take them gathered (Waiter::gathered) are held until the
  // group's completions have all run, then sent together, one ReplyBundle per requester
  // inbox (SendGathered); one message through the broker for a commit's answers to one
  // client instead of one each.
  void AnswerOnCommit(std::vector<Waiter> ready) ABSL_LOCKS_EXCLUDED(model.mu, gathered_mu_);
  // AddWaiter files `w`, or answers it at once when it is ready.
  void AddWaiter(Waiter w) ABSL_LOCKS_EXCLUDED(model.mu);

  // ---- nodes ----
  // HeardFromLocked records a sign of life of `node`: when it comes online that is
  // recorded (and published by Run), and its parked commands go out.
  void HeardFromLocked(const std::string& node, absl::Time now, Effects& effects)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);
  // RecordLocked queues a transition and the node's row for the ledger; Run publishes it.
  // (It also moves the active member of the node's groups when it must.)
  void RecordLocked(const Transition& t, Effects& effects) ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);
  // Whether a node is online now, for ActiveMembers (call it under model.mu).
  ActiveMembers::IsOnline OnlineLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);
  // ActiveChangedLocked keeps a group's new active member in the ledger and says so once:
  // the log, the live feed ("active" events) and the audit (by `by`).
  void ActiveChangedLocked(const ActiveMembers::Change& c, const std::string& by)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);

  // Run does what `effects` holds: replies, NodeState events, waiter answers.
  void Run(Effects& effects) ABSL_LOCKS_EXCLUDED(model.mu);

 private:
  // The reply to waiter `w`, within the broker's max payload: an "any" waiter gets as
  // many terminal states as fit (the rest come with its next wait), else outputs are cut.
  std::string AnswerOf(const Waiter& w) ABSL_LOCKS_EXCLUDED(model.mu);
  // AnswerOne builds and sends the answer of waiter `w`.
  void AnswerOne(const Waiter& w) ABSL_LOCKS_EXCLUDED(model.mu);
  // Gather holds answer `data()` to `reply` for SendGathered when AnswerOnCommit is
  // answering a waiter that takes it gathered (on this thread); false otherwise, and
  // then the caller sends it.
  bool Gather(const std::string& reply, const std::function<std::string()>& data) ABSL_LOCKS_EXCLUDED(gathered_mu_);
  // Sends the answers AnswerOnCommit held (the writer thread, after a group).
  void SendGathered() ABSL_LOCKS_EXCLUDED(gathered_mu_);

  const StationOptions& options_;
  ledger::Store& store_;
  // Command writes that failed in a row (a full disk fails each): the log says the
  // first, every 100th, and when one works again, not each.
  std::atomic<uint64_t> failed_command_writes_{0};
  natsConnection* const conn_;
  RequestPump& pump_;
  // An answer held for SendGathered: where its bundle goes (RequestPump::BundleSubject
  // of its reply subject), its reply subject and the serialized ACK.
  struct Held {
    std::string bundle;
    std::string reply;
    std::string data;
  };
  // In the order the commit ended their commands.
  absl::Mutex gathered_mu_;
  std::vector<Held> gathered_ ABSL_GUARDED_BY(gathered_mu_);
};

// An OK answer to request `id` carrying `body`.
proto::Ack OkAck(absl::string_view id, const std::string& station, const google::protobuf::Message& body);

}  // namespace steward::station
