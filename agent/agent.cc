// Agent: dispatcher, per-subject processes, result delivery and heartbeat.
#include "agent/agent.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/syslog/file_tail.h"
#include "agent/syslog/socket.h"
#include "agent/syslog/tcp_input.h"
#include "agent/syslog/udp_input.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "subjects/subject.h"

namespace steward::agent {
namespace {

constexpr char kDispatcher[] = "dispatcher";
constexpr char kHeartbeat[] = "heartbeat";
// How long the dispatcher waits for a command before looking again. Shutdown ends the
// wait at once (it unsubscribes); this only bounds it, so idle agents do not wake.
constexpr absl::Duration kDispatchWait = absl::Minutes(1);

std::string Hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

std::string OsName() {
  struct utsname u {};
  if (::uname(&u) != 0) return "unknown";
  return absl::StrCat(u.sysname, " ", u.release, " ", u.machine);
}

// Shrinks captured output so the ACK fits in `limit` bytes, marking what was cut.
void FitAck(proto::Ack& ack, size_t limit) {
  size_t size = ack.ByteSizeLong();
  if (size <= limit) return;
  size_t excess = size - limit;
  auto trim = [&excess](std::string* data, bool* truncated) {
    if (excess == 0 || data->empty()) return;
    const size_t cut = std::min(excess, data->size());
    data->resize(data->size() - cut);
    excess -= cut;
    *truncated = true;
  };
  bool out_t = ack.stdout_truncated(), err_t = ack.stderr_truncated();
  trim(ack.mutable_stderr(), &err_t);
  trim(ack.mutable_stdout(), &out_t);
  ack.set_stdout_truncated(out_t);
  ack.set_stderr_truncated(err_t);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Agent>> Agent::Start(AgentOptions options, MethodRegistry methods,
                                                    std::unique_ptr<CommandRunner> runner,
                                                    std::unique_ptr<CommandLog> log,
                                                    std::unique_ptr<Spool> spool,
                                                    std::vector<proto::Ack> interrupted,
                                                    std::unique_ptr<Spool> log_spool) {
  STEWARD_RETURN_IF_ERROR(subjects::ValidateToken(options.node));
  STEWARD_RETURN_IF_ERROR(subjects::ValidateToken(options.station));
  if (options.nats.name.empty()) options.nats.name = absl::StrCat("steward-agent ", options.node);
  if (options.security.acl == nullptr) {
    STEWARD_ASSIGN_OR_RETURN(options.security.acl, Acl::Open(""));
  }
  methods.Register(kMethodSetAcl, [acl = options.security.acl] { return NewSetAclMethod(acl); });
  if (options.security.trusted == nullptr || options.security.trusted->empty()) {
    STEWARD_LOG_WARNING("agent {}: no trusted station key: running UNSIGNED commands (development mode)",
                        options.node);
  }
  std::unique_ptr<Agent> agent(
      new Agent(std::move(options), std::move(methods), std::move(runner), std::move(log)));
  STEWARD_RETURN_IF_ERROR(agent->Init(std::move(spool), interrupted, std::move(log_spool)));
  return agent;
}

Agent::Agent(AgentOptions options, MethodRegistry methods, std::unique_ptr<CommandRunner> runner,
             std::unique_ptr<CommandLog> log)
    : options_(std::move(options)),
      methods_(std::move(methods)),
      runner_(std::move(runner)),
      log_(std::move(log)),
      started_(absl::Now()) {}

Agent::~Agent() { Shutdown(); }

absl::Status Agent::Init(std::unique_ptr<Spool> spool, const std::vector<proto::Ack>& interrupted,
                         std::unique_ptr<Spool> log_spool) {
  nats::ConnectOptions copts = options_.nats;
  if (copts.inbox_prefix.empty()) copts.inbox_prefix = "_INBOX_" + options_.node;
  copts.on_reconnected = [this] {
    {
      absl::MutexLock lock(&hello_mu_);
      hello_now_ = true;
    }
    if (outbox_) outbox_->Kick();
    if (log_outbox_) log_outbox_->Kick();
  };
  if (options_.shared_connection != nullptr) {
    conn_ = options_.shared_connection;
  } else {
    STEWARD_ASSIGN_OR_RETURN(owned_conn_, nats::Connect(copts));
    conn_ = owned_conn_.get();
  }
  STEWARD_ASSIGN_OR_RETURN(
      pump_, RequestPump::Create(conn_, options_.shared_connection != nullptr ? "" : copts.inbox_prefix));
  outbox_ = std::make_unique<Outbox>(pump_.get(), std::move(spool), options_.outbox);
  STEWARD_RETURN_IF_ERROR(outbox_->Start());
  for (const proto::Ack& received : interrupted) {
    // Before the dispatcher starts, so a redelivery is answered with this result.
    proto::Ack ack = NewAck(received.envelope_id(), options_.node, proto::STAGE_RESULT,
                            proto::OUTCOME_ERROR);
    ack.set_started_unix_ms(received.started_unix_ms());
    ack.set_finished_unix_ms(NowUnixMillis());
    ack.set_error(
        "interrupted: the agent stopped while the command ran; its outcome is unknown "
        "(it may have run in part, or still be running)");
    STEWARD_LOG_WARNING("command {} was interrupted by an agent restart", received.envelope_id());
    STEWARD_RETURN_IF_ERROR(SendResult("agent", "", std::move(ack)));
  }
  supervisor_ = std::make_unique<Supervisor>(
      options_.restart, [this](const DecisionRecord& d) { OnDecision(d); });
  STEWARD_RETURN_IF_ERROR(
      supervisor_->Start(kDispatcher, [this](ProcessContext& ctx) { return DispatchLoop(ctx); }));
  STEWARD_RETURN_IF_ERROR(
      supervisor_->Start(kHeartbeat, [this](ProcessContext& ctx) { return HeartbeatLoop(ctx); }));
  STEWARD_RETURN_IF_ERROR(StartSyslog(std::move(log_spool)));
  STEWARD_LOG_INFO("agent {} serving {} (station {})", options_.node,
                   *subjects::KindPattern(options_.node, subjects::Kind::kCommand),
                   options_.station);
  return absl::OkStatus();
}

absl::Status Agent::StartSyslog(std::unique_ptr<Spool> log_spool) {
  const SyslogOptions& so = options_.syslog;
  if (so.udp.empty() && so.tcp.empty() && so.tails.empty()) return absl::OkStatus();
  for (const std::string& spec : so.udp) {
    STEWARD_ASSIGN_OR_RETURN(syslog::ListenSpec ls, syslog::ParseListenSpec(spec));
    STEWARD_ASSIGN_OR_RETURN(auto input, syslog::NewUdpInput(ls, "", so.max_message_bytes));
    inputs_.push_back(std::move(input));
  }
  for (const std::string& spec : so.tcp) {
    STEWARD_ASSIGN_OR_RETURN(syslog::ListenSpec ls, syslog::ParseListenSpec(spec));
    STEWARD_ASSIGN_OR_RETURN(auto input, syslog::NewTcpInput(ls, "", so.max_message_bytes));
    inputs_.push_back(std::move(input));
  }
  for (const auto& [path, domain] : so.tails) {
    if (!domain.empty()) STEWARD_RETURN_IF_ERROR(subjects::ValidateToken(domain));
    STEWARD_ASSIGN_OR_RETURN(auto input,
                             syslog::NewFileTail(path, domain, so.state_dir, so.max_message_bytes));
    inputs_.push_back(std::move(input));
  }
  OutboxOptions lo = options_.outbox;
  lo.max_bytes = so.spool_max_bytes;
  lo.max_items = std::max<size_t>(lo.max_items, 1000000);
  lo.drop_oldest = true;
  // A few 500-line batches in flight already carry far more than a station stores;
  // a wide window with a short timeout would only re-send batches the station is
  // still committing.
  lo.max_in_flight = 16;
  lo.ack_timeout = std::max(lo.ack_timeout, absl::Seconds(10));
  if (log_spool == nullptr) log_spool = NewMemorySpool();
  log_outbox_ = std::make_unique<Outbox>(pump_.get(), std::move(log_spool), lo);
  STEWARD_RETURN_IF_ERROR(log_outbox_->Start());
  syslog::ForwarderOptions fo;
  fo.node = options_.node;
  fo.station = options_.station;
  fo.batch_lines = so.batch_lines;
  fo.batch_delay = so.batch_delay;
  fo.parse.max_message_bytes = so.max_message_bytes;
  fo.seal = [this](proto::Envelope& env) { Seal(env); };
  fo.input_drops = [this] {
    uint64_t n = 0;
    for (const auto& in : inputs_) n += in->dropped();
    return n;
  };
  forwarder_ = std::make_unique<syslog::Forwarder>(fo, log_outbox_.get());
  STEWARD_RETURN_IF_ERROR(supervisor_->Start(
      "syslog-forwarder", [this](ProcessContext& ctx) { return forwarder_->Run(ctx); }));
  for (const auto& in : inputs_) {
    syslog::Input* input = in.get();
    STEWARD_RETURN_IF_ERROR(supervisor_->Start(input->name(), [this, input](ProcessContext& ctx) {
      return input->Run(ctx.stop(), *forwarder_);
    }));
    STEWARD_LOG_INFO("syslog input {} (port {})", input->name(), input->port());
  }
  return absl::OkStatus();
}

std::vector<uint16_t> Agent::syslog_ports() const {
  std::vector<uint16_t> out;
  for (const auto& in : inputs_) {
    if (in->port() != 0) out.push_back(in->port());
  }
  return out;
}

void Agent::Shutdown() {
  if (shut_down_.exchange(true)) return;
  cancel_.Notify();
  {
    absl::MutexLock lock(&hello_mu_);
    hello_stop_ = true;
  }
  StopIntake();
  if (supervisor_) supervisor_->Shutdown();
  const absl::Time flush_until = absl::Now() + options_.shutdown_flush;
  if (outbox_ && !outbox_->WaitEmpty(flush_until - absl::Now())) {
    STEWARD_LOG_WARNING("agent {}: {} messages not yet confirmed by the station at shutdown",
                        options_.node, outbox_->pending());
  }
  if (log_outbox_ && !log_outbox_->WaitEmpty(flush_until - absl::Now())) {
    STEWARD_LOG_WARNING("agent {}: {} log batches stay in the spool", options_.node,
                        log_outbox_->pending());
  }
  if (pump_) pump_->Shutdown();
  if (outbox_) outbox_->Shutdown();
  if (log_outbox_) log_outbox_->Shutdown();
  if (conn_ != nullptr) natsConnection_FlushTimeout(conn_, 500);
}

void Agent::StopIntake() {
  absl::MutexLock lock(&mu_);
  intake_closed_ = true;
  // The dispatcher and the processes sleep until there is work; this wakes them.
  if (dispatch_sub_ != nullptr) (void)natsSubscription_Unsubscribe(dispatch_sub_);
  for (auto& [subject, queue] : queues_) queue->Close();
}

absl::Status Agent::DispatchLoop(ProcessContext& ctx) {
  STEWARD_ASSIGN_OR_RETURN(std::string pattern,
                           subjects::KindPattern(options_.node, subjects::Kind::kCommand));
  STEWARD_ASSIGN_OR_RETURN(nats::SubscriptionPtr sub,
                           nats::SubscribeSync(conn_, pattern, /*max_pending_msgs=*/65536));
  {
    absl::MutexLock lock(&mu_);
    if (intake_closed_) return absl::OkStatus();
    dispatch_sub_ = sub.get();
  }
  // Before `sub` goes: StopIntake must not touch a destroyed subscription.
  absl::Cleanup forget = [this] {
    absl::MutexLock lock(&mu_);
    dispatch_sub_ = nullptr;
  };
  while (!ctx.stopping()) {
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub.get(), kDispatchWait);
    if (shut_down_.load()) break;  // StopIntake unsubscribed: NextMsg fails at once.
    if (absl::IsDeadlineExceeded(msg.status())) continue;
    // A connection closed for good fails every call at once: the error kernel restarts
    // the dispatcher with backoff (and stops the agent past its restart limit) rather
    // than this loop reporting the same error as fast as it can.
    if (absl::IsUnavailable(msg.status())) return msg.status();
    if (!msg.ok()) {
      // Slow consumer and the like: report, and carry on unless told otherwise.
      if (ctx.Report(Severity::kWarning, msg.status()) != Decision::kContinue) return msg.status();
      continue;
    }
    Route(ctx, std::move(*msg));
  }
  return absl::OkStatus();
}

void Agent::Route(ProcessContext& ctx, nats::MsgPtr msg) {
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
  if (queue == nullptr && shut_down_.load()) return;
  if (queue == nullptr) {
    Reject(ctx, reply, id,
           absl::StrCat("process ", subject_text, " was stopped by the error kernel"));
    return;
  }
  if (!queue->TryPush(Work{std::move(*env), reply}) && !shut_down_.load()) {
    // Not accepted: no ACK, so the sender retries later. Nothing is lost.
    ctx.Report(Severity::kWarning,
               absl::ResourceExhaustedError(absl::StrCat("queue full for ", subject_text)));
  }
}

absl::Status Agent::Admit(const proto::Envelope& env) const {
  const AgentSecurity& sec = options_.security;
  if (sec.trusted != nullptr && !sec.trusted->empty()) {
    if (absl::Status st = signing::VerifyEnvelope(env, *sec.trusted); !st.ok()) {
      return absl::PermissionDeniedError(absl::StrCat("refused: ", st.message()));
    }
    const int64_t horizon = NowUnixMillis() + absl::ToInt64Milliseconds(sec.max_ttl);
    if (env.expires_unix_ms() == 0 || env.expires_unix_ms() > horizon) {
      return absl::PermissionDeniedError("refused: a signed command must expire within the replay window");
    }
  }
  if (env.to_node() == options_.node && sec.acl != nullptr) return sec.acl->Check(env);
  return absl::OkStatus();
}

void Agent::Seal(proto::Envelope& env) const {
  if (!options_.security.node_key.has_value()) return;
  if (absl::Status st = signing::SignEnvelope(env, *options_.security.node_key); !st.ok()) {
    STEWARD_LOG_ERROR("signing {}: {}", env.id(), st.ToString());
  }
}

void Agent::Reject(ProcessContext& ctx, const std::string& reply, const std::string& id,
                   const std::string& reason) {
  if (!reply.empty()) {
    (void)ReplyAck(reply, RejectAck(id, options_.node, reason));
  }
  ctx.Report(Severity::kWarning, absl::InvalidArgumentError(absl::StrCat("rejected: ", reason)));
}

std::shared_ptr<Agent::WorkQueue> Agent::ProcessFor(const std::string& subject,
                                                    const std::string& method) {
  absl::MutexLock lock(&mu_);
  if (intake_closed_) return nullptr;  // A new process would never be woken.
  auto it = queues_.find(subject);
  if (it != queues_.end()) {
    return supervisor_->IsRunning(subject) ? it->second : nullptr;
  }
  auto queue = std::make_shared<WorkQueue>(options_.queue_capacity);
  absl::Status st = supervisor_->Start(subject, [this, method, queue](ProcessContext& ctx) {
    return ProcessLoop(ctx, method, queue);
  });
  if (!st.ok()) return nullptr;
  queues_.emplace(subject, queue);
  return queue;
}

absl::Status Agent::ProcessLoop(ProcessContext& ctx, const std::string& method_name,
                                const std::shared_ptr<WorkQueue>& queue) {
  std::unique_ptr<Method> method = (*methods_.Find(method_name))();
  // Sleeps until work comes; StopIntake closes the queue, which ends the loop. Work
  // still queued then is dropped unacknowledged: the station sends it again later.
  while (std::optional<Work> work = queue->Pop()) {
    if (ctx.stopping() || cancel_.HasBeenNotified()) break;
    STEWARD_RETURN_IF_ERROR(Handle(ctx, *method, *work));
  }
  return absl::OkStatus();
}

absl::Status Agent::ReplyAck(const std::string& reply, const proto::Ack& ack) {
  if (reply.empty()) return absl::OkStatus();
  return nats::Publish(conn_, reply, ack.SerializeAsString());
}

absl::Status Agent::Handle(ProcessContext& ctx, Method& method, const Work& work) {
  const proto::Envelope& cmd = work.command;
  ExecContext exec{cmd, options_.node, cancel_, *runner_, options_.limits};
  if (method.immediate()) {
    STEWARD_ASSIGN_OR_RETURN(proto::Ack ack, method.Execute(exec));
    if (absl::Status st = ReplyAck(work.reply, ack); !st.ok()) ctx.Report(Severity::kWarning, st);
    return absl::OkStatus();
  }
  proto::Ack received = NewAck(cmd.id(), options_.node, proto::STAGE_RECEIVED, proto::OUTCOME_UNSPECIFIED);
  received.set_started_unix_ms(NowUnixMillis());
  STEWARD_ASSIGN_OR_RETURN(std::optional<proto::Ack> seen, log_->RecordIfNew(received));
  if (seen.has_value()) {
    // Redelivery: answer with what we recorded, never run twice.
    if (absl::Status st = ReplyAck(work.reply, *seen); !st.ok()) ctx.Report(Severity::kWarning, st);
    return absl::OkStatus();
  }
  if (absl::Status st = ReplyAck(work.reply, received); !st.ok()) ctx.Report(Severity::kWarning, st);

  absl::StatusOr<proto::Ack> result = method.Execute(exec);
  if (!result.ok()) {
    // The process is broken; the command still gets a truthful final word.
    proto::Ack err = NewAck(cmd.id(), options_.node, proto::STAGE_RESULT, proto::OUTCOME_ERROR);
    err.set_error(std::string(result.status().message()));
    err.set_finished_unix_ms(NowUnixMillis());
    STEWARD_RETURN_IF_ERROR(SendResult(cmd.domain(), cmd.request_id(), std::move(err)));
    return result.status();
  }
  return SendResult(cmd.domain(), cmd.request_id(), *std::move(result));
}

absl::Status Agent::SendResult(const std::string& domain, const std::string& request_id,
                              proto::Ack ack) {
  const size_t max_payload = static_cast<size_t>(natsConnection_GetMaxPayload(conn_));
  // Before the first connect nats.c reports 0; assume the broker default then.
  FitAck(ack, (max_payload > 0 ? max_payload : size_t{1} << 20) - 4096);
  proto::Envelope ev = NewEnvelope(options_.node, options_.station, proto::KIND_EVENT,
                                   kEventResult, domain);
  ev.set_request_id(request_id);
  ev.set_payload(ack.SerializeAsString());
  Seal(ev);
  STEWARD_ASSIGN_OR_RETURN(subjects::Subject subject,
                           subjects::Make(options_.station, subjects::Kind::kEvent, kEventResult,
                                          domain));
  // The result is recorded and spooled together (one transaction with the SQLite
  // store), then sent.
  absl::Status st = outbox_->Enqueue(
      OutboxItem{ev.id(), subject.ToString(), ev.SerializeAsString()},
      [this, &ack](Spool& spool, const OutboxItem& item) {
        return log_->RecordAndSpool(ack, spool, item);
      });
  if (!st.ok()) {
    // Not spooled (outbox full, store error): record the result alone if possible, so
    // that the station's redelivery of the command is answered with it.
    if (absl::Status rec = log_->Record(ack); !rec.ok()) {
      STEWARD_LOG_ERROR("result of {} not recorded: {}", ack.envelope_id(), rec.ToString());
    }
  }
  return st;
}

absl::Status Agent::HeartbeatLoop(ProcessContext& ctx) {
  absl::Time next = absl::InfinitePast();
  while (!ctx.stopping()) {
    bool send = false;
    {
      absl::MutexLock lock(&hello_mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(hello_mu_) { return hello_now_ || hello_stop_; };
      hello_mu_.AwaitWithDeadline(absl::Condition(&wake), next);
      if (hello_stop_) break;
      send = hello_now_ || absl::Now() >= next;
      hello_now_ = false;
      if (send) hello_confirmed_ = false;
    }
    if (!send) continue;
    SendHello();
    // An unconfirmed hello (station down or not yet subscribed) is retried sooner.
    const absl::Time sent = absl::Now();
    next = sent + options_.heartbeat;
    absl::MutexLock lock(&hello_mu_);
    auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(hello_mu_) {
      return hello_confirmed_ || hello_stop_;
    };
    const absl::Duration retry = std::min(absl::Milliseconds(500), options_.heartbeat);
    if (!hello_mu_.AwaitWithDeadline(absl::Condition(&settled), sent + retry)) next = sent + retry;
  }
  return absl::OkStatus();
}

void Agent::SendHello() {
  proto::Hello hello;
  hello.set_version(STEWARD_VERSION);
  hello.set_started_unix_ms(absl::ToUnixMillis(started_));
  hello.set_hostname(Hostname());
  hello.set_os(OsName());
  double load[1] = {0};
  if (::getloadavg(load, 1) == 1) hello.set_load1(load[0]);
  for (const std::string& m : methods_.Names()) hello.add_methods(m);
  hello.set_heartbeat_ms(absl::ToInt64Milliseconds(options_.heartbeat));
  if (options_.security.node_key.has_value()) hello.set_public_key(options_.security.node_key->public_key);
  proto::Envelope ev =
      NewEnvelope(options_.node, options_.station, proto::KIND_EVENT, kEventHello, "agent");
  ev.set_payload(hello.SerializeAsString());
  Seal(ev);
  absl::StatusOr<subjects::Subject> subject =
      subjects::Make(options_.station, subjects::Kind::kEvent, kEventHello, "agent");
  // Heartbeats are not spooled: a stale one is worthless, the next one follows.
  (void)pump_->Send(subject->ToString(), ev.SerializeAsString(), absl::Seconds(2),
                    [this](RequestPump::Result r, nats::MsgPtr msg) {
                      if (r != RequestPump::Result::kReply) return;
                      absl::StatusOr<proto::Ack> ack = DecodeAck(nats::Data(msg.get()));
                      if (!ack.ok() || ack->outcome() != proto::OUTCOME_SUCCEEDED) return;
                      absl::MutexLock lock(&hello_mu_);
                      hello_confirmed_ = true;
                    });
}

void Agent::OnDecision(const DecisionRecord& d) {
  if (d.process == kDispatcher && d.decision == Decision::kStop && !fatal_flag_.exchange(true)) {
    fatal_.Notify();
  }
  if (!outbox_) return;
  proto::ErrorLog log;
  log.set_process(d.process);
  log.set_severity(SeverityName(d.severity));
  log.set_error(d.error);
  log.set_decision(DecisionName(d.decision));
  log.set_at_unix_ms(absl::ToUnixMillis(d.at));
  proto::Envelope ev =
      NewEnvelope(options_.node, options_.station, proto::KIND_EVENT, kEventErrorLog, "agent");
  ev.set_payload(log.SerializeAsString());
  Seal(ev);
  absl::StatusOr<subjects::Subject> subject =
      subjects::Make(options_.station, subjects::Kind::kEvent, kEventErrorLog, "agent");
  if (absl::Status st = outbox_->Enqueue(OutboxItem{ev.id(), subject->ToString(), ev.SerializeAsString()});
      !st.ok()) {
    STEWARD_LOG_ERROR("errorlog event not queued: {}", st.ToString());
  }
}

}  // namespace steward::agent
