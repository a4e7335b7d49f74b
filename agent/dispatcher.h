// Dispatcher: the agent's intake, run as the supervised "dispatcher" process. One
// subscription on <node>.command.*.*; each message is checked (subject, envelope,
// signature and replay window, ACL, address, expiry, known method) and either
// rejected (a `rejected` ACK in the reply, a warning to the error kernel) or queued for
// the process of its subject, which is started on first use (see process.h). A full
// queue gets no ACK: the station sends the command again later. A batch
// (<node>.command.batch.<station>, proto::CommandBatch) is opened and each command in it
// routed as if it came alone; their ACKs go back together (BatchAnswer).
//
// Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <set>
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "agent/method.h"
#include "agent/options.h"
#include "agent/process.h"
#include "agent/supervisor.h"
#include "common/nats.h"
#include "proto/steward.pb.h"
#include "subjects/subject.h"

namespace steward::agent {

class Dispatcher {
 public:
  // The supervisor's name for the dispatcher process.
  static constexpr char kProcessName[] = "dispatcher";

  // Everything borrowed must outlive the dispatcher.
  Dispatcher(const AgentOptions& options, const MethodRegistry& methods, natsConnection* conn,
             const EventWriter& events, Supervisor& supervisor, CommandProcessor& processor);

  // The dispatcher process body: subscribes and routes until stopped. A connection
  // closed for good is an error (the error kernel restarts the dispatcher with backoff).
  absl::Status Run(ProcessContext& ctx) ABSL_LOCKS_EXCLUDED(mu_);

  // Ends intake at shutdown: no new processes, and the dispatcher and the processes,
  // which sleep until there is work, are woken to return.
  void StopIntake() ABSL_LOCKS_EXCLUDED(mu_);
  // The processes' queues: how many, and the commands waiting in them (hello stats).
  void QueueStats(size_t* queues, size_t* depth) const ABSL_LOCKS_EXCLUDED(mu_);
  // Messages the intake subscription dropped (slow consumer: a flood) since it was made.
  uint64_t IntakeDropped() const ABSL_LOCKS_EXCLUDED(mu_);
  // True while the dispatcher's subscription exists (it may not be on the server yet).
  bool Subscribed() const ABSL_LOCKS_EXCLUDED(mu_);

  // Operators' stop and start of command handlers (AgentControl), by "method/domain".
  // The stopped set is kept in <data_dir>/stopped-handlers (none: in memory only).
  absl::StatusOr<std::string> StopHandler(const std::string& name, bool cancel_running)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::string> StartHandler(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  // Every command handler (running, stopped or failed) for `status` and the hellos.
  std::vector<proto::ProcessStatus> Handlers() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Route(ProcessContext& ctx, nats::MsgPtr msg);
  // A batch of commands (proto::CommandBatch): each routed as RouteCommand, answered
  // together (BatchAnswer).
  void RouteBatch(ProcessContext& ctx, const std::string& subject_text, const std::string& reply,
                  absl::string_view data);
  // What a batch being routed has queued so far: which processes have only its own
  // prompt commands ahead (a command queued there is answered at once when they are
  // done), and which have one that runs a while once acknowledged.
  struct BatchRouting {
    BatchRouting() = default;
    BatchRouting(const BatchRouting&) = delete;
    BatchRouting& operator=(const BatchRouting&) = delete;
    ~BatchRouting() {
      quick.clear();  // (left only by an exception: neither recorded nor answered)
      for (const std::shared_ptr<Handler>& h : holding) --h->taking_here;
    }
    absl::flat_hash_map<const Handler*, int64_t> prompt_ahead;
    absl::flat_hash_set<const Handler*> slow_ahead;
    absl::flat_hash_set<std::string> taken_here;  // ids of its commands taken by TakeHere
    // Its quick commands TakeHere ran, recorded together (one write) before the batch is
    // answered, and their processes, held (Handler::taking_here) until then.
    std::vector<CommandProcessor::QuickRun> quick;
    std::vector<std::shared_ptr<Handler>> holding;
  };
  // One command that came on `subject` (or in a batch, for the subject it would have
  // come on, with `batch` set): checked, then refused, answered from the record, or
  // queued.
  void RouteCommand(ProcessContext& ctx, const subjects::Subject& subject, const std::string& subject_text,
                    proto::Envelope env, Reply reply, BatchRouting* batch = nullptr);
  // Whether `method` finishes as soon as it is taken (Method::quick or immediate).
  bool Prompt(const std::string& method);
  // Whether `method` is Method::quick (recorded with its result, answered in the reply).
  bool Quick(const std::string& method);
  // A quick command whose process has nothing queued or in hand, taken on the
  // dispatcher's thread as the process would take it (see RouteCommand); in a batch,
  // run now and recorded with the batch's others (BatchRouting::quick). False, with
  // nothing done, when the process was stopped meanwhile: it is routed as usual then.
  bool TakeHere(ProcessContext& ctx, const std::string& subject_text, const std::string& method,
                const std::shared_ptr<Handler>& handler, Work& work, BatchRouting* batch);
  // Signature, replay window and ACL checks of an incoming command.
  absl::Status Admit(const proto::Envelope& env) const;
  void Reject(ProcessContext& ctx, const Reply& reply, const std::string& id,
              const std::string& reason);
  // The handler of the process serving `subject`, started on first use; nullptr when the
  // error kernel or an operator has stopped that process, or intake is closed.
  std::shared_ptr<Handler> ProcessFor(const std::string& subject, const std::string& method)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The handler serving `subject` if there is one; none is started.
  std::shared_ptr<Handler> HandlerOf(const std::string& subject) const ABSL_LOCKS_EXCLUDED(mu_);
  // "method/domain" -> the subject it is served on; InvalidArgument for a bad name or an
  // unknown method.
  absl::StatusOr<subjects::Subject> HandlerSubject(const std::string& name) const;
  absl::Status SaveStopped(const std::set<std::string>& stopped) const;

  const AgentOptions& options_;
  const MethodRegistry& methods_;
  natsConnection* const conn_;
  const EventWriter& events_;
  Supervisor& supervisor_;
  CommandProcessor& processor_;
  std::atomic<bool> closing_{false};  // StopIntake began
  // Method::quick and Method::immediate, by method (the dispatcher thread's).
  struct Traits {
    bool quick = false;
    bool immediate = false;
  };
  const Traits& TraitsOf(const std::string& method);
  absl::flat_hash_map<std::string, Traits> traits_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Handler>> handlers_ ABSL_GUARDED_BY(mu_);
  // Handlers stopped by an operator, by "method/domain".
  std::set<std::string> stopped_ ABSL_GUARDED_BY(mu_);
  absl::Mutex save_mu_;  // one writer of the stopped-handlers file at a time
  natsSubscription* sub_ ABSL_GUARDED_BY(mu_) = nullptr;  // the dispatcher's, while it runs
  uint64_t dropped_before_ ABSL_GUARDED_BY(mu_) = 0;  // by subscriptions of earlier runs
  bool intake_closed_ ABSL_GUARDED_BY(mu_) = false;       // StopIntake ran
};

}  // namespace steward::agent
