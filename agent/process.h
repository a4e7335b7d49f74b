// The per-subject processes. The dispatcher starts one per subject, on first use: a
// thread under the supervisor and a bounded queue of work. CommandProcessor is what
// they share; its Run is each process's body. It takes commands from the queue one at
// a time: an immediate method (ping) answers in the reply; any other command is looked
// up in the command log (a redelivery is answered with what was recorded and never
// runs twice), acknowledged `received`, executed, and its result recorded and queued
// for the station as a result event (SendResult). A quick method's command (echo,
// Method::quick) is executed at once instead, its result recorded, and the result is
// the reply: its receipt implied, no result event and no "stored" (HandleQuick).
//
// Thread-safe: the processes of many subjects run at once.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/command_log.h"
#include "agent/command_runner.h"
#include "agent/events.h"
#include "agent/leftovers.h"
#include "agent/method.h"
#include "agent/supervisor.h"
#include "common/bounded_queue.h"
#include "common/nats.h"
#include "common/outbox.h"
#include "proto/steward.pb.h"

namespace steward::agent {

class BatchAnswer;

// Where a command's ACKs go: the reply subject of the request it came in, or its place
// in the answer to the batch it came in (BatchAnswer). Empty: nowhere (a bare publish,
// or a batch's command queued behind another command of its subject).
struct Reply {
  // One command's place in a batch's answer (BatchAnswer::NewSlot).
  class Slot;
  Reply() = default;
  Reply(std::string reply_subject) : subject(std::move(reply_subject)) {}  // NOLINT: a subject
  Reply(const char* reply_subject) : subject(reply_subject) {}             // NOLINT: a subject
  explicit Reply(std::shared_ptr<Slot> in_batch) : slot(std::move(in_batch)) {}
  bool empty() const { return subject.empty() && slot == nullptr; }
  friend bool operator==(const Reply& r, absl::string_view s) { return r.slot == nullptr && r.subject == s; }

  std::string subject;
  std::shared_ptr<Slot> slot;
};

// The answer to one batch of commands (proto::CommandBatch, agent/dispatcher.h): the
// ACKs of its commands in one message to the batch's reply subject, an Ack for the
// carrier whose payload is an AckBatch. It goes once the batch is routed and every slot
// has answered. A slot dropped unanswered (its work dropped at shutdown) sends nothing:
// the station hears no answer and sends the batch's commands again, one by one. The
// dispatcher gives a slot only to a command that is taken at once: nothing is ahead of
// it in its process but the batch's own quick or immediate commands, and the process is
// not waiting for a restart (Dispatcher::RouteCommand); it answers at once ("received",
// or a quick command's result). One queued behind anything else gets no reply and is
// left out, and so is an ACK that would not fit the broker's payload limit: the station
// sends those again alone.
// Thread-safe.
class BatchAnswer : public std::enable_shared_from_this<BatchAnswer> {
 public:
  // `limit`: the broker's payload limit. `conn` and `events` must outlive the routing
  // and the answers of the batch's commands (the agent's, as for any reply).
  // `signed_once`: the batch asked for one signature on its answer
  // (CommandBatch.answer_signed_once): the carrier's Ack is signed and the ACKs in it
  // are not; else each ACK is signed and the carrier is not (as for a station from
  // before that field).
  static std::shared_ptr<BatchAnswer> Create(natsConnection* conn, const EventWriter& events, std::string reply,
                                             std::string carrier_id, size_t limit, bool signed_once = false);
  bool signed_once() const { return signed_once_; }
  // A place in the answer for one command.
  std::shared_ptr<Reply::Slot> NewSlot() ABSL_LOCKS_EXCLUDED(mu_);
  // Every command of the batch has its slot: the answer goes once they have answered.
  void Routed() ABSL_LOCKS_EXCLUDED(mu_);
  // ACKs left out because they would not fit.
  size_t left_out() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class Reply::Slot;
  BatchAnswer(natsConnection* conn, const EventWriter& events, std::string reply, std::string carrier_id, size_t limit,
              bool signed_once);
  // One slot (or the routing) is done; `ack` (sealed) is its answer, if any. With
  // `may_send` false (a slot dropped unanswered) the answer is not sent.
  void Done(proto::Ack* ack, bool may_send) ABSL_LOCKS_EXCLUDED(mu_);

  natsConnection* const conn_;
  const EventWriter& events_;
  const std::string reply_;
  const std::string carrier_id_;
  const size_t limit_;
  const bool signed_once_;
  mutable absl::Mutex mu_;
  proto::AckBatch acks_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t left_out_ ABSL_GUARDED_BY(mu_) = 0;
  int outstanding_ ABSL_GUARDED_BY(mu_) = 1;  // the routing, and each slot not done
  bool dropped_ ABSL_GUARDED_BY(mu_) = false;  // a slot was dropped unanswered
};

class Reply::Slot {
 public:
  explicit Slot(std::shared_ptr<BatchAnswer> answer) : answer_(std::move(answer)) {}
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  ~Slot() {
    if (!done_.exchange(true)) answer_->Done(nullptr, /*may_send=*/false);
  }
  // The command's ACK, sealed; only the first counts.
  void Answer(proto::Ack sealed) {
    if (!done_.exchange(true)) answer_->Done(&sealed, /*may_send=*/true);
  }
  // The answer's one signature covers this command's ACK: it goes in unsigned.
  bool signed_with_batch() const { return answer_->signed_once(); }
  // The command is left out of the answer on purpose (it waits behind another one).
  void Skip() {
    if (!done_.exchange(true)) answer_->Done(nullptr, /*may_send=*/true);
  }

 private:
  const std::shared_ptr<BatchAnswer> answer_;
  std::atomic<bool> done_{false};
};

// One command for a process, and where its ACKs go (empty: nowhere).
struct Work {
  proto::Envelope command;
  Reply reply;
};
using WorkQueue = BoundedQueue<Work>;

// The commands waiting in a work queue, by id, with the reply subject of their latest
// delivery. A station that hears nothing within its ACK timeout sends the command
// again; while the first copy still waits behind a long command (or a backlog, after a
// broker restart), the copy is not queued a second time (each copy would cost a turn,
// and the resends of a slow node would grow its queue without end). The copy queued
// answers, when its turn comes, on the reply subject the station listens on now.
// Thread-safe.
class WaitingCommands {
 public:
  // Whether command `id` must be queued: true for the first delivery; false while a
  // delivery of it waits in the queue, which now answers on `reply` (unless empty), or
  // is in hand (taken, not yet Released: the next copy is answered from the record).
  bool Add(const std::string& id, const Reply& reply) ABSL_LOCKS_EXCLUDED(mu_);
  // A command taken from the queue: the reply subject of its latest delivery (`reply`
  // when none came since). It is in hand until Release.
  Reply Take(const std::string& id, Reply reply) ABSL_LOCKS_EXCLUDED(mu_);
  // The command in hand is decided (recorded, refused or answered): a copy from now on
  // is queued, and answered from the record in its turn. A copy queued since is kept.
  void Release(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  // Whether command `id` waits in the queue or is in hand; if it waits it now answers
  // on `reply` (unless empty), as for Add. Nothing is added.
  bool Move(const std::string& id, const Reply& reply) ABSL_LOCKS_EXCLUDED(mu_);
  // One Add took but the queue did not (full, closed): no longer known here.
  void Forget(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Delivery {
    Reply reply;  // of the latest copy
    bool in_hand = false;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Delivery> latest_ ABSL_GUARDED_BY(mu_);
};

// One command handler (the process of one subject): its queue, the switch an operator
// stops it with, and its counters for `status`. Shared by the dispatcher (which routes
// to it and stops it) and the process thread (which runs it).
struct Handler {
  explicit Handler(size_t capacity) : queue(capacity) {}
  WorkQueue queue;
  WaitingCommands waiting;  // what `queue` holds, by command id
  // An operator stopped it: nothing more is taken from the queue.
  std::atomic<bool> stopped{false};
  std::atomic<uint64_t> handled{0};  // finished commands
  std::atomic<uint64_t> failed{0};   // of which did not succeed
  // Commands routed to it and not yet finished (queued, in hand or running): 0 when the
  // next command routed is taken at once. Raised by the dispatcher, the only one that
  // routes; lowered by the process.
  std::atomic<int64_t> load{0};
  // Its process ended with an error and waits for the error kernel to start it again:
  // nothing routed to it is taken until then.
  std::atomic<bool> broken{false};
  // Its quick commands may be taken on the dispatcher's thread while it is idle
  // (Dispatcher::TakeHere); cleared for good once its method failed there, so that its
  // failures reach the error kernel as this process's, through its queue.
  std::atomic<bool> take_here{true};
  // Commands of it being taken on the dispatcher's thread now (a batch's quick commands
  // until they are recorded and answered): an operator's stop waits for them.
  std::atomic<int> taking_here{0};
  mutable absl::Mutex mu;
  std::string current ABSL_GUARDED_BY(mu);  // the command being run, "" when idle
  absl::Time current_since ABSL_GUARDED_BY(mu);
};

// Publishes `ack`, sealed by `events` (this installation, the node's signature), on a
// request's reply subject, or puts it in its place in a batch's answer (signed there
// only when the batch's answer is not signed once as a whole); nothing when `reply` is
// empty.
absl::Status ReplyAck(natsConnection* conn, const EventWriter& events, const Reply& reply, proto::Ack ack);

class CommandProcessor final : public CommandControl {
 public:
  // What the processor borrows; everything must outlive it.
  struct Parts {
    const MethodRegistry* methods = nullptr;
    const MethodLimits* limits = nullptr;
    CommandRunner* runner = nullptr;
    CommandLog* log = nullptr;
    const absl::Notification* cancel = nullptr;  // the agent is shutting down
    natsConnection* conn = nullptr;               // replies; the broker's payload limit
    Outbox* outbox = nullptr;                     // result events
    const EventWriter* events = nullptr;
    AgentControl* agent = nullptr;                // status, process, ... (may be null)
    RunningMarks* marks = nullptr;                // marks of running commands (may be null)
  };
  explicit CommandProcessor(Parts parts) : parts_(parts) {}

  // The body of the process serving one subject, whose commands are for `method`.
  // Sleeps until work comes; returns when `queue` is closed (work still queued then is
  // dropped unacknowledged: the station sends it again later), at shutdown, or with the
  // error of a broken method (for the error kernel).
  absl::Status Run(ProcessContext& ctx, const std::string& method, Handler& handler);

  // Records `ack` (a result) and queues it for the station as a result event for
  // `domain` answering `request_id`, in one transaction when the log and the spool
  // share a store. Output is cut to fit the broker's payload limit. When the outbox
  // refuses it, the result is still recorded (a redelivered command gets it).
  absl::Status SendResult(const std::string& domain, const std::string& request_id,
                          proto::Ack ack);

  // CommandControl: a command running here gets its stop notified (its process group
  // is killed, TERM then KILL after the cancel grace; its result says "canceled by
  // `by`" with the output so far); one never received is recorded as canceled, so it
  // never runs, and that result goes to the station; a finished one is left alone.
  absl::StatusOr<std::string> CancelCommand(const std::string& id, const std::string& domain,
                                            const std::string& by) override ABSL_LOCKS_EXCLUDED(running_mu_);
  // The agent shuts down: every running command is stopped (Parts::cancel is notified
  // first, so a command starting afterwards stops at once). `why` ends their results'
  // error ("canceled: WHY").
  void StopAll(absl::string_view why = kShuttingDown) ABSL_LOCKS_EXCLUDED(running_mu_);
  static constexpr char kShuttingDown[] = "the agent is shutting down";

  // What the command log holds for command `id` (nullopt: never received here).
  std::optional<proto::Ack> Recorded(const std::string& id) const;
  // Records the results a full disk kept from the command log, while there is room (at
  // each command's start, and at shutdown). Returns how many are still kept.
  size_t RecordLater() ABSL_LOCKS_EXCLUDED(unrecorded_mu_);

  // Handles one command for `method` (Run's step; bench/node_simulator's workers call
  // it directly): received ACK, execution, result. An error is a broken method's.
  // `handler` (optional) is the process's: its counters and running command are kept.
  absl::Status Handle(ProcessContext& ctx, Method& method, const Work& work,
                      Handler* handler = nullptr);

  // A quick command (Method::quick) with a reply, run and not yet recorded: FinishQuick
  // records it and answers it. Until then it counts as running (a cancel finds it so);
  // dropped unfinished (an exception), it is neither recorded nor answered, and no
  // longer counts as running.
  class QuickRun {
   public:
    QuickRun(QuickRun&& other) noexcept { *this = std::move(other); }
    QuickRun& operator=(QuickRun&& other) noexcept;
    ~QuickRun();
    // The method's failure (its result says so): the error kernel's to hear.
    const absl::Status& broken() const { return broken_; }

   private:
    friend class CommandProcessor;
    QuickRun() = default;
    CommandProcessor* processor_ = nullptr;  // null once moved from or finished
    Work work_;
    Handler* handler_ = nullptr;
    proto::Ack result_;
    absl::Status broken_;
  };
  // A quick command with a reply, taken up to its record: looked up (a redelivery is
  // answered from the record here, and nothing is returned; so is a copy running
  // elsewhere, unanswered), registered as running and run. Its result is recorded and
  // answered by FinishQuick, which may take several at once (one write).
  std::optional<QuickRun> TakeQuick(ProcessContext& ctx, Method& method, Work work, Handler* handler);
  // Records the results of `runs` in one write, then answers each, in order. If that
  // write fails (a full disk) each goes the long way: `received` in its reply, then its
  // result as an event from memory. Returns the first error of a result's spooling, else
  // the first method failure (QuickRun::broken).
  absl::Status FinishQuick(ProcessContext& ctx, std::vector<QuickRun> runs);
  absl::Status FinishQuick(ProcessContext& ctx, QuickRun run);  // one alone

  // The broker's payload limit (0 without a connection; the broker default before the
  // first connect), read from the connection at most once a second: reading it takes
  // the connection's lock, which every reply's publish holds while it writes. It
  // changes only when a reconnect finds a broker configured otherwise.
  size_t PayloadLimit() const;

 private:
  // A quick method's command (Method::quick) with a reply subject: run, recorded with
  // its result, answered with the result (TakeQuick, then FinishQuick).
  absl::Status HandleQuick(ProcessContext& ctx, Method& method, const Work& work, Handler* handler);
  // No longer counts as running (QuickRun's end).
  void Unregister(const std::string& id) ABSL_LOCKS_EXCLUDED(running_mu_);
  // Answers the command's request (a failed answer is reported, not an error: the
  // station asks again), releasing it in `handler`'s waiting commands (may be null).
  void ReplyTo(ProcessContext& ctx, const Work& work, const proto::Ack& ack, Handler* handler);
  // Cuts a result's output to fit the broker's payload limit and names this installation
  // in it, unsigned (a quick result is recorded so: ReplyAck signs what it sends).
  void FitResult(proto::Ack& ack) const;
  // FitResult, and signs it.
  void SealResult(proto::Ack& ack) const;
  // SendResult of a result SealResult made ready.
  absl::Status SpoolResult(const std::string& domain, const std::string& request_id, proto::Ack ack);

  // A command between its registration (before it is recorded) and its result.
  struct Running {
    absl::Notification stop;
    std::string canceled_by;  // set before stop is notified by an operator's cancel
    absl::Time since = absl::Now();
    // A quick command's run ended with this outcome; its record is being written
    // (FinishQuick): a cancel now finds it finished. Guarded by running_mu_.
    proto::Outcome ran = proto::OUTCOME_UNSPECIFIED;
  };

  const Parts parts_;
  // Held across a cancel's look-up and record, and to register a command before it is
  // recorded: a cancel either finds the command here, or records it canceled first.
  absl::Mutex running_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Running>> running_ ABSL_GUARDED_BY(running_mu_);
  std::string stop_reason_ ABSL_GUARDED_BY(running_mu_) = kShuttingDown;  // StopAll's
  absl::Mutex unrecorded_mu_;
  std::vector<proto::Ack> unrecorded_ ABSL_GUARDED_BY(unrecorded_mu_);
  mutable std::atomic<int64_t> payload_limit_{0};
  mutable std::atomic<int64_t> payload_read_ns_{0};
};

}  // namespace steward::agent
