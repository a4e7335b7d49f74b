// Dispatcher: subscription, checks, rejection and routing to per-subject processes.
#include "agent/dispatcher.h"

#include <algorithm>

#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "subjects/subject.h"

namespace steward::agent {
namespace {

// How long the dispatcher waits for a command before looking again. StopIntake ends the
// wait at once (it unsubscribes); this bounds it so that an idle dispatcher still beats
// (ProcessContext::Beat) well inside the service watchdog.
constexpr absl::Duration kDispatchWait = absl::Seconds(1);

}  // namespace

Dispatcher::Dispatcher(const AgentOptions& options, const MethodRegistry& methods,
                       natsConnection* conn, const EventWriter& events, Supervisor& supervisor,
                       CommandProcessor& processor)
    : options_(options),
      methods_(methods),
      conn_(conn),
      events_(events),
      supervisor_(supervisor),
      processor_(processor) {}

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
  for (auto& [subject, queue] : queues_) queue->Close();
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
  absl::StatusOr<proto::Envelope> env = DecodeEnvelope(nats::Data(msg.get()));
  if (!env.ok()) {
    Reject(ctx, reply, "", absl::StrCat(subject_text, ": ", env.status().message()));
    return;
  }
  const std::string& id = env->id();
  if (absl::Status st = Admit(*env); !st.ok()) {
    Reject(ctx, reply, id, std::string(st.message()));
    return;
  }
  if (env->to_node() != options_.node || env->kind() != proto::KIND_COMMAND ||
      env->method() != subject->method || env->domain() != subject->domain) {
    Reject(ctx, reply, id,
           absl::StrCat("misaddressed: envelope for ", env->to_node(), " ", env->method(), ".",
                        env->domain(), " arrived on ", subject_text));
    return;
  }
  if (Expired(*env, NowUnixMillis())) {
    Reject(ctx, reply, id, absl::StrCat("expired at ", env->expires_unix_ms(), " (unix ms)"));
    return;
  }
  if (methods_.Find(subject->method) == nullptr) {
    Reject(ctx, reply, id, absl::StrCat("unknown method ", subject->method));
    return;
  }
  std::shared_ptr<WorkQueue> queue = ProcessFor(subject_text, subject->method);
  // Shutting down: no ACK, so the station sends the command again later.
  if (queue == nullptr && closing_.load()) return;
  if (queue == nullptr) {
    // A command this node has a record of is answered from it, whatever became of the
    // process that ran it.
    if (std::optional<proto::Ack> seen = processor_.Recorded(id)) {
      (void)ReplyAck(conn_, events_, reply, *seen);
      return;
    }
    Reject(ctx, reply, id,
           absl::StrCat("process ", subject_text, " was stopped by the error kernel"));
    return;
  }
  if (!queue->TryPush(Work{std::move(*env), reply}) && !closing_.load()) {
    // Not accepted: no ACK, so the sender retries later. Nothing is lost.
    ctx.Report(Severity::kWarning,
               absl::ResourceExhaustedError(absl::StrCat("queue full for ", subject_text)));
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

void Dispatcher::Reject(ProcessContext& ctx, const std::string& reply, const std::string& id,
                        const std::string& reason) {
  if (!reply.empty()) {
    (void)ReplyAck(conn_, events_, reply, RejectAck(id, options_.node, reason));
  }
  ctx.Report(Severity::kWarning, absl::InvalidArgumentError(absl::StrCat("rejected: ", reason)));
}

std::shared_ptr<WorkQueue> Dispatcher::ProcessFor(const std::string& subject,
                                                  const std::string& method) {
  absl::MutexLock lock(&mu_);
  if (intake_closed_) return nullptr;  // A new process would never be woken.
  auto it = queues_.find(subject);
  if (it != queues_.end()) {
    return supervisor_.IsRunning(subject) ? it->second : nullptr;
  }
  auto queue = std::make_shared<WorkQueue>(options_.queue_capacity);
  absl::Status st = supervisor_.Start(subject, [this, method, queue](ProcessContext& ctx) {
    return processor_.Run(ctx, method, *queue);
  });
  if (!st.ok()) return nullptr;
  queues_.emplace(subject, queue);
  return queue;
}

void Dispatcher::QueueStats(size_t* queues, size_t* depth) const {
  absl::MutexLock lock(&mu_);
  *queues = queues_.size();
  *depth = 0;
  for (const auto& [subject, queue] : queues_) *depth += queue->size();
}

uint64_t Dispatcher::IntakeDropped() const {
  absl::MutexLock lock(&mu_);
  int64_t dropped = 0;
  if (sub_ != nullptr) (void)natsSubscription_GetDropped(sub_, &dropped);
  return static_cast<uint64_t>(std::max<int64_t>(dropped, 0)) + dropped_before_;
}

}  // namespace steward::agent
