// Dispatcher: subscription, checks, rejection and routing to per-subject processes.
#include "agent/dispatcher.h"

#include <algorithm>
#include <fstream>
#include <map>

#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/atomic_write.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "subjects/subject.h"

namespace steward::agent {
namespace {

// How long the dispatcher waits for a command before looking again. StopIntake ends the
// wait at once (it unsubscribes); this bounds it so that an idle dispatcher still beats
// (ProcessContext::Beat) well inside the service watchdog.
constexpr absl::Duration kDispatchWait = absl::Seconds(1);

// Where the handlers an operator stopped are kept, one "method/domain" a line.
std::string StoppedFile(const AgentOptions& options) {
  return options.data_dir.empty() ? "" : options.data_dir + "/stopped-handlers";
}

// Handlers an operator must not stop: the ones that answer the operator.
bool Unstoppable(const std::string& method) {
  return method == kMethodProcess || method == kMethodStatus || method == kMethodConfig || method == kMethodCancel;
}

}  // namespace

Dispatcher::Dispatcher(const AgentOptions& options, const MethodRegistry& methods,
                       natsConnection* conn, const EventWriter& events, Supervisor& supervisor,
                       CommandProcessor& processor)
    : options_(options),
      methods_(methods),
      conn_(conn),
      events_(events),
      supervisor_(supervisor),
      processor_(processor) {
  // A handler stopped before a restart of the agent stays stopped.
  if (const std::string path = StoppedFile(options_); !path.empty()) {
    std::ifstream in(path);
    absl::MutexLock lock(&mu_);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) stopped_.insert(line);
    }
  }
}

bool Dispatcher::Subscribed() const {
  absl::MutexLock lock(&mu_);
  return sub_ != nullptr;
}

void Dispatcher::StopIntake() {
  closing_.store(true);
  absl::MutexLock lock(&mu_);
  intake_closed_ = true;
  // The dispatcher and the processes sleep until there is work; this wakes them.
  if (sub_ != nullptr) (void)natsSubscription_Unsubscribe(sub_);
  for (auto& [subject, handler] : handlers_) handler->queue.Close();
}

absl::Status Dispatcher::Run(ProcessContext& ctx) {
  STEWARD_ASSIGN_OR_RETURN(std::string pattern,
                           subjects::KindPattern(options_.node, subjects::Kind::kCommand));
  STEWARD_ASSIGN_OR_RETURN(nats::SubscriptionPtr sub,
                           nats::SubscribeSync(conn_, pattern, /*max_pending_msgs=*/65536,
                                               static_cast<int>(options_.intake_max_bytes)));
  {
    absl::MutexLock lock(&mu_);
    if (intake_closed_) return absl::OkStatus();
    sub_ = sub.get();
  }
  // Before `sub` goes: StopIntake must not touch a destroyed subscription.
  absl::Cleanup forget = [this, &sub] {
    absl::MutexLock lock(&mu_);
    int64_t dropped = 0;
    (void)natsSubscription_GetDropped(sub.get(), &dropped);
    dropped_before_ += static_cast<uint64_t>(std::max<int64_t>(dropped, 0));
    sub_ = nullptr;
  };
  while (!ctx.stopping()) {
    ctx.Beat();
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub.get(), kDispatchWait);
    if (closing_.load()) break;  // StopIntake unsubscribed: NextMsg fails at once.
    if (absl::IsDeadlineExceeded(msg.status())) continue;
    // A connection closed for good fails every call at once: the error kernel restarts
    // the dispatcher with backoff (and stops the agent past its restart limit) rather
    // than this loop reporting the same error as fast as it can.
    if (absl::IsUnavailable(msg.status())) return msg.status();
    if (!msg.ok()) {
      // Slow consumer (a flood: more than intake_max_bytes waiting) and the like:
      // report with how many were dropped, and carry on unless told otherwise.
      int64_t dropped = 0;
      (void)natsSubscription_GetDropped(sub.get(), &dropped);
      absl::Status st(msg.status().code(),
                      absl::StrCat(msg.status().message(), " (", dropped, " messages dropped so far)"));
      if (ctx.Report(Severity::kWarning, st) != Decision::kContinue) return msg.status();
      continue;
    }
    Route(ctx, std::move(*msg));
  }
  return absl::OkStatus();
}

void Dispatcher::Route(ProcessContext& ctx, nats::MsgPtr msg) {
  const std::string subject_text = nats::Subject(msg.get());
  const std::string reply = nats::Reply(msg.get());
  absl::StatusOr<subjects::Subject> subject = subjects::Parse(subject_text);
  if (!subject.ok()) {
    Reject(ctx, reply, "", std::string(subject.status().message()));
    return;
  }
  if (subject->method == kMethodBatch) {
    RouteBatch(ctx, subject_text, reply, nats::Data(msg.get()));
    return;
  }
  absl::StatusOr<proto::Envelope> env = DecodeEnvelope(nats::Data(msg.get()));
  if (!env.ok()) {
    Reject(ctx, reply, "", absl::StrCat(subject_text, ": ", env.status().message()));
    return;
  }
  RouteCommand(ctx, *subject, subject_text, *std::move(env), reply);
}

void Dispatcher::RouteBatch(ProcessContext& ctx, const std::string& subject_text, const std::string& reply,
                            absl::string_view data) {
  absl::StatusOr<proto::Envelope> carrier = DecodeEnvelope(data);
  if (!carrier.ok()) {
    Reject(ctx, reply, "", absl::StrCat(subject_text, ": ", carrier.status().message()));
    return;
  }
  proto::CommandBatch batch;
  if (carrier->to_node() != options_.node || carrier->kind() != proto::KIND_COMMAND ||
      carrier->method() != kMethodBatch || !batch.ParseFromString(carrier->payload())) {
    Reject(ctx, reply, carrier->id(),
           absl::StrCat("not a batch of commands for ", options_.node, " (", carrier->method(), " for ",
                        carrier->to_node(), ", arrived on ", subject_text, ")"));
    return;
  }
  if (batch.commands_size() > kMaxBatchCommands) {
    Reject(ctx, reply, carrier->id(),
           absl::StrCat("a batch of ", batch.commands_size(), " commands (at most ", kMaxBatchCommands, ")"));
    return;
  }
  // The carrier is only the way in: each command in it is checked, refused or queued
  // as if it came alone on its own subject, and answered in its slot.
  std::shared_ptr<BatchAnswer> answer =
      BatchAnswer::Create(conn_, events_, reply, carrier->id(), processor_.PayloadLimit(), batch.answer_signed_once());
  BatchRouting routing;
  for (int i = 0; i < batch.commands_size(); ++i) {
    // (Nobody waits for the answer to a carrier published with no reply subject: its
    // commands are routed as if published alone, with none.)
    Reply slot = reply.empty() ? Reply() : Reply(answer->NewSlot());
    absl::StatusOr<proto::Envelope> env = DecodeEnvelope(batch.commands(i));
    if (!env.ok()) {
      Reject(ctx, slot, "", absl::StrCat(subject_text, " command ", i + 1, ": ", env.status().message()));
      continue;
    }
    absl::StatusOr<subjects::Subject> subject =
        env->method() == kMethodBatch
            ? absl::InvalidArgumentError("a batch inside a batch")
            : subjects::Make(options_.node, subjects::Kind::kCommand, env->method(), env->domain());
    if (!subject.ok()) {
      Reject(ctx, slot, env->id(), absl::StrCat(subject_text, " command ", i + 1, ": ", subject.status().message()));
      continue;
    }
    RouteCommand(ctx, *subject, subject->ToString(), *std::move(env), std::move(slot), &routing);
  }
  // The quick commands taken here, recorded in one write before anything of the batch
  // is answered (the answer goes once it is routed). A failed record or spooling is
  // reported there, a method's failure by TakeHere.
  if (!routing.quick.empty()) (void)processor_.FinishQuick(ctx, std::move(routing.quick));
  answer->Routed();
}

const Dispatcher::Traits& Dispatcher::TraitsOf(const std::string& method) {
  auto [it, added] = traits_.try_emplace(method);
  if (added) {
    if (const MethodFactory* factory = methods_.Find(method); factory != nullptr) {
      const std::unique_ptr<Method> m = (*factory)();
      it->second = Traits{.quick = m->quick(), .immediate = m->immediate()};
    }
  }
  return it->second;
}

bool Dispatcher::Prompt(const std::string& method) {
  const Traits& t = TraitsOf(method);
  return t.quick || t.immediate;
}

bool Dispatcher::Quick(const std::string& method) { return TraitsOf(method).quick; }

bool Dispatcher::TakeHere(ProcessContext& ctx, const std::string& subject_text, const std::string& method,
                          const std::shared_ptr<Handler>& handler, Work& work, BatchRouting* batch) {
  // In hand while it is taken (load), like a command its process took: nothing else is
  // routed to that process meanwhile, since only this thread routes. `taking_here` is
  // raised before the stop is looked at, and StopHandler waits for it to fall after it
  // sets the stop: a handler an operator stopped runs nothing once StopHandler returns
  // (in a batch, it falls once the batch's quick commands are recorded and answered).
  Handler& h = *handler;
  ++h.taking_here;
  ++h.load;
  bool held = false;  // by the batch, until its quick commands are recorded
  auto finished = absl::MakeCleanup([&h, &held] {
    --h.load;
    if (!held) --h.taking_here;
  });
  if (h.stopped.load()) return false;
  std::string failure;
  try {
    // A method instance of its own (Method is thread-compatible; a quick one holds
    // nothing across commands).
    const std::unique_ptr<Method> m = (*methods_.Find(method))();
    if (batch != nullptr && !m->immediate() && !Expired(work.command, NowUnixMillis())) {
      if (std::optional<CommandProcessor::QuickRun> run = processor_.TakeQuick(ctx, *m, std::move(work), &h)) {
        if (!run->broken().ok()) {
          // Finished now, alone: the process's next commands go through its own thread,
          // which must not record them before this one.
          failure = run->broken().ToString();
          (void)processor_.FinishQuick(ctx, *std::move(run));
        } else {
          batch->quick.push_back(*std::move(run));
          batch->holding.push_back(handler);
          held = true;
        }
      }
    } else if (absl::Status st = processor_.Handle(ctx, *m, work, &h); !st.ok()) {
      failure = st.ToString();
    }
  } catch (const std::exception& e) {
    failure = absl::StrCat("exception: ", e.what());
  } catch (...) {
    failure = "unknown exception";
  }
  ctx.Beat();
  if (!failure.empty()) {
    // The method failed here (its command got, or gets with its batch's answer, a
    // truthful result). Its next commands go through its process, whose failures the
    // error kernel counts, restarts and stops as for any process; this one is said now.
    h.take_here.store(false);
    ctx.Report(Severity::kWarning,
               absl::InternalError(absl::StrCat("process ", subject_text, " failed on the intake thread: ", failure,
                                                "; its commands go through its own thread from now on")));
  }
  return true;
}

void Dispatcher::RouteCommand(ProcessContext& ctx, const subjects::Subject& subject,
                              const std::string& subject_text, proto::Envelope env, Reply reply,
                              BatchRouting* batch) {
  // The same command twice in one batch, the first taken here: the second copy is left
  // out of the answer (the station sends it again alone and is answered from the record).
  if (batch != nullptr && batch->taken_here.contains(env.id())) {
    if (reply.slot != nullptr) reply.slot->Skip();
    return;
  }
  const std::string& id = env.id();
  if (absl::Status st = Admit(env); !st.ok()) {
    Reject(ctx, reply, id, std::string(st.message()));
    return;
  }
  if (env.to_node() != options_.node || env.kind() != proto::KIND_COMMAND ||
      env.method() != subject.method || env.domain() != subject.domain) {
    Reject(ctx, reply, id,
           absl::StrCat("misaddressed: envelope for ", env.to_node(), " ", env.method(), ".",
                        env.domain(), " arrived on ", subject_text));
    return;
  }
  if (Expired(env, NowUnixMillis())) {
    // Expired now, but it may have run in time: a quick command's answer (its result,
    // Method::quick) was lost and this is the station's copy. Answered from the record.
    if (std::optional<proto::Ack> seen = processor_.Recorded(id)) {
      (void)ReplyAck(conn_, events_, reply, *seen);
      return;
    }
    // Still waiting in its queue (it came in time): not refused here, since a refusal is
    // final and the waiting one could still be taken. It answers when its turn comes.
    // (A copy in a batch takes no answer from it: the batch's answer would wait for it.)
    if (std::shared_ptr<Handler> h = HandlerOf(subject_text);
        h != nullptr && h->waiting.Move(id, reply.slot != nullptr ? Reply() : reply)) {
      if (reply.slot != nullptr) reply.slot->Skip();
      return;
    }
    Reject(ctx, reply, id, absl::StrCat("expired at ", env.expires_unix_ms(), " (unix ms)"));
    return;
  }
  if (methods_.Find(subject.method) == nullptr) {
    Reject(ctx, reply, id, absl::StrCat("unknown method ", subject.method));
    return;
  }
  if (subject.method == kMethodPing) {
    // Answered here, checked like any command but never queued behind a process: a
    // liveness probe measures the link and the agent, not a queue (one hop less).
    (void)ReplyAck(conn_, events_, reply, PingAck(id, options_.node));
    return;
  }
  std::shared_ptr<Handler> handler = ProcessFor(subject_text, subject.method);
  // Shutting down: no ACK, so the station sends the command again later.
  if (handler == nullptr && closing_.load()) return;
  if (handler == nullptr) {
    // A command this node has a record of is answered from it, whatever became of the
    // process that ran it.
    if (std::optional<proto::Ack> seen = processor_.Recorded(id)) {
      (void)ReplyAck(conn_, events_, reply, *seen);
      return;
    }
    const std::string name = absl::StrCat(subject.method, "/", subject.domain);
    bool by_operator = false;
    {
      absl::MutexLock lock(&mu_);
      by_operator = stopped_.contains(name);
    }
    // Rejected at once, never queued to time out: the operator said so.
    Reject(ctx, reply, id,
           by_operator ? absl::StrCat("stopped by operator: process ", name, " (stewardctl process start ",
                                      options_.node, " ", name, ")")
                       : absl::StrCat("process ", subject_text, " was stopped by the error kernel"));
    return;
  }
  // A copy of a command that still waits in the queue: that one answers, on this
  // copy's reply subject (WaitingCommands).
  const std::string queued_id = id;  // `id` lives in env, which the queue takes
  // A command of a batch whose process is busy would hold the batch's answer until its
  // turn: queued with no reply instead (the station sends it again alone, and that
  // copy takes the answer). Busy means anything ahead of it but the batch's own prompt
  // commands (the dispatcher alone adds load, so load within their count is theirs).
  if (batch != nullptr) {
    const Handler* h = handler.get();
    const bool soon = !batch->slow_ahead.contains(h) && !handler->broken.load() &&
                      handler->load.load() <= batch->prompt_ahead[h];
    if (soon && Prompt(subject.method)) {
      ++batch->prompt_ahead[h];
    } else {
      batch->slow_ahead.insert(h);
    }
    if (!soon && reply.slot != nullptr) {
      reply.slot->Skip();
      reply = Reply();
    }
  }
  // A copy of one queued or in hand (a batch naming a command twice) takes no slot.
  if (reply.slot != nullptr && handler->waiting.Move(queued_id, Reply())) {
    reply.slot->Skip();
    return;
  }
  // A quick command (Method::quick: it runs nothing that takes time, echo) whose process
  // has nothing queued or in hand is taken here, as that process would take it (looked
  // up, run, recorded, answered), without waking its thread: two thread switches less
  // per command. Its subject's commands are still taken one at a time, in order.
  if (!reply.empty() && Quick(subject.method) && handler->take_here.load() && handler->load.load() == 0 &&
      !handler->broken.load() && !handler->stopped.load() && !handler->waiting.Move(queued_id, Reply())) {
    Work work{std::move(env), std::move(reply)};
    if (TakeHere(ctx, subject_text, subject.method, handler, work, batch)) {
      if (batch != nullptr) batch->taken_here.insert(queued_id);
      return;
    }
    env = std::move(work.command);
    reply = std::move(work.reply);
  }
  if (!handler->waiting.Add(queued_id, reply)) return;
  ++handler->load;
  if (!handler->queue.TryPush(Work{std::move(env), reply})) {
    --handler->load;
    handler->waiting.Forget(queued_id);
    if (reply.slot != nullptr) reply.slot->Skip();  // left out of the batch's answer
    // Not accepted: no ACK, so the sender retries later. Nothing is lost.
    if (!closing_.load()) {
      ctx.Report(Severity::kWarning, absl::ResourceExhaustedError(absl::StrCat("queue full for ", subject_text)));
    }
  }
}

absl::Status Dispatcher::Admit(const proto::Envelope& env) const {
  const AgentSecurity& sec = options_.security;
  const bool secure = sec.trusted != nullptr && !sec.trusted->empty();
  // A command is for one installation of this node: one captured before the unit was
  // reinstalled (or meant for its previous installation) never runs on this one.
  if (!env.target_instance().empty() && env.target_instance() != events_.instance_id()) {
    return absl::PermissionDeniedError(
        absl::StrCat("refused: the command is for installation ", env.target_instance(),
                     " of this node; this is installation ", events_.instance_id(),
                     " (was the unit reinstalled?)"));
  }
  if (secure) {
    if (absl::Status st = signing::VerifyEnvelope(env, *sec.trusted); !st.ok()) {
      return absl::PermissionDeniedError(absl::StrCat("refused: ", st.message()));
    }
    // (A ping runs nothing: it may come before the station has heard of this
    // installation, unbound.)
    if (env.target_instance().empty() && env.method() != kMethodPing) {
      return absl::PermissionDeniedError(
          "refused: a signed command must name the installation it is for");
    }
    const int64_t horizon = NowUnixMillis() + absl::ToInt64Milliseconds(sec.max_ttl);
    if (env.expires_unix_ms() == 0 || env.expires_unix_ms() > horizon) {
      return absl::PermissionDeniedError(
          "refused: a signed command must expire within the replay window");
    }
  }
  if (env.to_node() == options_.node && sec.acl != nullptr) return sec.acl->Check(env);
  return absl::OkStatus();
}

void Dispatcher::Reject(ProcessContext& ctx, const Reply& reply, const std::string& id,
                        const std::string& reason) {
  if (!reply.empty()) {
    (void)ReplyAck(conn_, events_, reply, RejectAck(id, options_.node, reason));
  }
  ctx.Report(Severity::kWarning, absl::InvalidArgumentError(absl::StrCat("rejected: ", reason)));
}

std::shared_ptr<Handler> Dispatcher::HandlerOf(const std::string& subject) const {
  absl::MutexLock lock(&mu_);
  auto it = handlers_.find(subject);
  // A stopped process takes nothing more from its queue: as none.
  return it != handlers_.end() && supervisor_.IsRunning(subject) ? it->second : nullptr;
}

std::shared_ptr<Handler> Dispatcher::ProcessFor(const std::string& subject,
                                                const std::string& method) {
  absl::MutexLock lock(&mu_);
  if (intake_closed_) return nullptr;  // A new process would never be woken.
  auto it = handlers_.find(subject);
  if (it != handlers_.end()) {
    return supervisor_.IsRunning(subject) ? it->second : nullptr;
  }
  absl::StatusOr<subjects::Subject> parsed = subjects::Parse(subject);
  if (!parsed.ok() || stopped_.contains(absl::StrCat(parsed->method, "/", parsed->domain))) return nullptr;
  auto handler = std::make_shared<Handler>(options_.queue_capacity);
  auto body = [this, method, handler](ProcessContext& ctx) { return processor_.Run(ctx, method, *handler); };
  // A process that ran before (an operator stopped and started it) runs again under
  // its old name.
  absl::Status st = supervisor_.Exists(subject) ? supervisor_.StartAgain(subject, body)
                                                : supervisor_.Start(subject, body);
  if (!st.ok()) return nullptr;
  handlers_.emplace(subject, handler);
  return handler;
}

void Dispatcher::QueueStats(size_t* queues, size_t* depth) const {
  absl::MutexLock lock(&mu_);
  *queues = handlers_.size();
  *depth = 0;
  for (const auto& [subject, handler] : handlers_) *depth += handler->queue.size();
}

absl::StatusOr<subjects::Subject> Dispatcher::HandlerSubject(const std::string& name) const {
  const std::vector<std::string> parts = absl::StrSplit(name, absl::MaxSplits('/', 1));
  if (parts.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat("process name \"", name, "\" is not METHOD/DOMAIN"));
  }
  STEWARD_ASSIGN_OR_RETURN(subjects::Subject subject,
                           subjects::Make(options_.node, subjects::Kind::kCommand, parts[0], parts[1]));
  if (methods_.Find(subject.method) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown method ", subject.method));
  }
  return subject;
}

absl::Status Dispatcher::SaveStopped(const std::set<std::string>& stopped) const {
  const std::string path = StoppedFile(options_);
  if (path.empty()) return absl::OkStatus();
  return WriteFileAtomically(path, stopped.empty() ? "" : absl::StrCat(absl::StrJoin(stopped, "\n"), "\n"));
}

absl::StatusOr<std::string> Dispatcher::StopHandler(const std::string& name, bool cancel_running) {
  STEWARD_ASSIGN_OR_RETURN(subjects::Subject subject, HandlerSubject(name));
  if (Unstoppable(subject.method)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ", subject.method, " handlers answer operators; they cannot be stopped"));
  }
  const std::string subject_text = subject.ToString();
  absl::MutexLock save(&save_mu_);
  std::shared_ptr<Handler> handler;
  std::set<std::string> stopped;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_.contains(name)) return absl::StrCat(name, " was already stopped");
    if (auto it = handlers_.find(subject_text); it != handlers_.end()) handler = it->second;
    if (handler != nullptr && !cancel_running) {
      absl::MutexLock hl(&handler->mu);
      if (!handler->current.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            name, " is running command ", handler->current, " (for ",
            absl::FormatDuration(absl::Trunc(absl::Now() - handler->current_since, absl::Seconds(1))),
            "); not stopped: wait for it, or stop with --cancel-running to kill it"));
      }
    }
    stopped = stopped_;
  }
  stopped.insert(name);
  // Durable before it takes effect: an agent restart finds the handler stopped.
  STEWARD_RETURN_IF_ERROR(SaveStopped(stopped));
  std::string canceled;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = std::move(stopped);
    handlers_.erase(subject_text);
  }
  if (handler != nullptr) {
    handler->stopped.store(true);
    handler->queue.Close();
    {
      absl::MutexLock hl(&handler->mu);
      canceled = handler->current;
    }
    if (cancel_running && !canceled.empty()) {
      (void)processor_.CancelCommand(canceled, subject.domain, "operator (process stop --cancel-running)");
    }
  }
  // The thread ends once the queue is closed (and a canceled command is killed).
  const absl::Time until = absl::Now() + absl::Seconds(10);
  // (A quick command the dispatcher takes itself ends too: TakeHere.)
  while ((supervisor_.IsRunning(subject_text) || (handler != nullptr && handler->taking_here.load() > 0)) &&
         absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  std::string line = absl::StrCat("stopped ", name);
  if (!canceled.empty() && cancel_running) absl::StrAppend(&line, " (canceled command ", canceled, ")");
  if (supervisor_.IsRunning(subject_text)) absl::StrAppend(&line, "; its thread is still ending");
  return line;
}

absl::StatusOr<std::string> Dispatcher::StartHandler(const std::string& name) {
  STEWARD_ASSIGN_OR_RETURN(subjects::Subject subject, HandlerSubject(name));
  const std::string subject_text = subject.ToString();
  absl::MutexLock save(&save_mu_);
  std::set<std::string> stopped;
  bool failed = false;
  {
    absl::MutexLock lock(&mu_);
    stopped = stopped_;
    auto it = handlers_.find(subject_text);
    failed = it != handlers_.end() && !supervisor_.IsRunning(subject_text);
  }
  if (stopped.erase(name) == 0 && !failed) return absl::StrCat(name, " was not stopped");
  STEWARD_RETURN_IF_ERROR(SaveStopped(stopped));
  {
    absl::MutexLock lock(&mu_);
    stopped_ = std::move(stopped);
    // One the error kernel stopped gets a fresh start too: its next command makes it.
    if (failed) handlers_.erase(subject_text);
  }
  return absl::StrCat("started ", name, " (its thread starts with its next command)");
}

std::vector<proto::ProcessStatus> Dispatcher::Handlers() const {
  std::map<std::string, proto::ProcessStatus> out;  // by name
  absl::MutexLock lock(&mu_);
  for (const auto& [subject_text, handler] : handlers_) {
    absl::StatusOr<subjects::Subject> subject = subjects::Parse(subject_text);
    if (!subject.ok()) continue;
    proto::ProcessStatus& p = out[absl::StrCat(subject->method, "/", subject->domain)];
    p.set_subject(subject_text);
    p.set_handler(true);
    p.set_queue_depth(handler->queue.size());
    p.set_queue_capacity(options_.queue_capacity);
    p.set_handled(handler->handled.load());
    p.set_failed(handler->failed.load());
    absl::MutexLock hl(&handler->mu);
    if (!handler->current.empty()) {
      p.set_current_command(handler->current);
      p.set_current_since_unix_ms(absl::ToUnixMillis(handler->current_since));
    }
  }
  for (const std::string& name : stopped_) {
    proto::ProcessStatus& p = out[name];
    p.set_handler(true);
    p.set_state("stopped");
    if (absl::StatusOr<subjects::Subject> s = HandlerSubject(name); s.ok()) p.set_subject(s->ToString());
  }
  std::vector<proto::ProcessStatus> list;
  list.reserve(out.size());
  for (auto& [name, p] : out) {
    p.set_name(name);
    list.push_back(std::move(p));
  }
  return list;
}

uint64_t Dispatcher::IntakeDropped() const {
  absl::MutexLock lock(&mu_);
  int64_t dropped = 0;
  if (sub_ != nullptr) (void)natsSubscription_GetDropped(sub_, &dropped);
  return static_cast<uint64_t>(std::max<int64_t>(dropped, 0)) + dropped_before_;
}

}  // namespace steward::agent
