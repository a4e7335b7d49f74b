// Agent: the wiring. Connection, outboxes, the rooms (dispatcher, processes, heartbeat,
// syslog) under one supervisor; start-up and shutdown.
#include "agent/agent.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/config_host.h"
#include "agent/leftovers.h"
#include "agent/syslog/batcher.h"
#include "agent/syslog/file_tail.h"
#include "agent/syslog/socket.h"
#include "agent/syslog/tcp_input.h"
#include "agent/syslog/udp_input.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "common/status_macros.h"
#include "subjects/subject.h"

namespace steward::agent {
namespace {

// Whether `path` is `dir` or inside it (both made absolute, symbolic links resolved as
// far as they exist).
bool Within(const std::string& path, const std::string& dir) {
  std::error_code ec;
  const std::filesystem::path p = std::filesystem::weakly_canonical(path, ec);
  if (ec) return false;
  const std::filesystem::path d = std::filesystem::weakly_canonical(dir, ec);
  if (ec || d.empty()) return false;
  const std::filesystem::path rel = p.lexically_relative(d);
  return !rel.empty() && *rel.begin() != "..";
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
  if (options.instance_id.empty()) options.instance_id = NewId();
  std::unique_ptr<Agent> agent(
      new Agent(std::move(options), std::move(methods), std::move(runner), std::move(log)));
  if (absl::Status st = agent->Init(std::move(spool), interrupted, std::move(log_spool)); !st.ok()) {
    // Closed under it while it started (it subscribes and the library gives up at once):
    // the broker's doing, not a fault of this start, so main() tries again.
    std::optional<std::string> closed = agent->BrokerClosed();
    // Only a broker call that failed on it (a syslog port taken meanwhile stays an error
    // of this configuration).
    if (closed.has_value() && nats::FailedOnClosed(st)) {
      // Named as main() names a close seen after the start: one cause, one wording.
      return absl::UnavailableError(absl::StrCat("the broker connection to ", nats::RedactUrl(agent->options_.nats.url),
                                                 " closed while the agent started: ", *closed, " (", st.message(),
                                                 ")"));
    }
    return st;
  }
  return agent;
}

Agent::Agent(AgentOptions options, MethodRegistry methods, std::unique_ptr<CommandRunner> runner,
             std::unique_ptr<CommandLog> log)
    : options_(std::move(options)),
      methods_(std::move(methods)),
      runner_(std::move(runner)),
      log_(std::move(log)),
      events_(options_.node, options_.station, options_.instance_id, options_.security.node_key),
      heartbeat_(events_, methods_.Names(), options_.heartbeat,
                 options_.security.node_key ? options_.security.node_key->public_key : "", options_.facts) {}

Agent::~Agent() { Shutdown(); }

absl::Status Agent::Init(std::unique_ptr<Spool> spool, const std::vector<proto::Ack>& interrupted,
                         std::unique_ptr<Spool> log_spool) {
  nats::ConnectOptions copts = options_.nats;
  if (copts.inbox_prefix.empty()) copts.inbox_prefix = kNodeInboxPrefix + options_.node;
  // A link that stops delivering without a reset is seen within about two heartbeats.
  if (copts.ping_interval == absl::ZeroDuration()) copts.ping_interval = options_.heartbeat;
  copts.on_disconnected = [node = options_.node] {
    STEWARD_LOG_WARNING("agent {}: lost the broker connection; reconnecting", node);
  };
  {
    absl::MutexLock lock(&reconnect_hook_->mu);
    reconnect_hook_->agent = this;
  }
  copts.on_reconnected = [hook = reconnect_hook_] {
    absl::MutexLock lock(&hook->mu);
    if (hook->agent != nullptr) hook->agent->OnReconnected();
  };
  if (options_.shared_connection != nullptr) {
    conn_ = options_.shared_connection;
  } else {
    STEWARD_ASSIGN_OR_RETURN(owned_conn_, nats::Connect(copts));
    conn_ = owned_conn_.get();
  }
  // Replies come to the node's own inbox, also on a shared connection: the station
  // answers a node's events only there.
  STEWARD_ASSIGN_OR_RETURN(pump_, RequestPump::Create(conn_, copts.inbox_prefix));
  debug_ = std::make_unique<DebugStreams>(conn_, options_.node);
  OutboxOptions oo = options_.outbox;
  oo.station = options_.station;  // results spooled for a station name since mended go to this one
  outbox_ = std::make_unique<Outbox>(pump_.get(), std::move(spool), oo);
  STEWARD_RETURN_IF_ERROR(outbox_->Start());
  if (!options_.run_dir.empty()) {
    absl::StatusOr<std::unique_ptr<RunningMarks>> marks = RunningMarks::Open(options_.run_dir, options_.data_dir);
    if (marks.ok()) {
      marks_ = *std::move(marks);
      if (Within(options_.run_dir, options_.data_dir)) {
        STEWARD_LOG_WARNING("agent {}: --run-dir {} is inside the data directory {}: a reinstall that wipes it "
                            "wipes the marks too, and the new installation cannot stop what the old one left "
                            "running; use a directory outside it (the default is /run/steward-agent)",
                            options_.node, options_.run_dir, options_.data_dir);
      }
    } else {
      STEWARD_LOG_WARNING("agent {}: no marks of running commands ({}): should this unit be reinstalled while a "
                          "command runs, the new installation will not stop what it leaves; set --run-dir to a "
                          "writable directory outside the data directory, or to '' to turn this off",
                          options_.node, marks.status().message());
    }
  }
  processor_ = std::make_unique<CommandProcessor>(CommandProcessor::Parts{
      .methods = &methods_,
      .limits = &options_.limits,
      .runner = runner_.get(),
      .log = log_.get(),
      .cancel = &cancel_,
      .conn = conn_,
      .outbox = outbox_.get(),
      .events = &events_,
      .agent = this,
      .marks = marks_.get(),
  });
  absl::flat_hash_set<std::string> ended;  // commands whose process had ended
  if (marks_ != nullptr) {
    for (const RunningMarks::Marked& m : marks_->List()) {
      if (m.ended) ended.insert(m.id);
    }
  }
  for (const proto::Ack& received : interrupted) {
    // Before the dispatcher starts, so a redelivery is answered with this result.
    proto::Ack ack = NewAck(received.envelope_id(), options_.node, proto::STAGE_RESULT,
                            proto::OUTCOME_ERROR);
    ack.set_started_unix_ms(received.started_unix_ms());
    ack.set_finished_unix_ms(NowUnixMillis());
    if (ended.contains(received.envelope_id())) {
      // Its process had ended, and only its result was not recorded: what it left
      // running (a daemon it started) it left on purpose.
      ack.set_error(
          "interrupted: the agent stopped after the command's process ended, before its result was recorded; "
          "its outcome is unknown");
      STEWARD_LOG_WARNING("command {} ended, but the agent stopped before its result was recorded",
                          received.envelope_id());
      STEWARD_RETURN_IF_ERROR(processor_->SendResult("agent", "", std::move(ack)));
      continue;
    }
    // What it left running is stopped: nothing runs on that no one supervises or can cancel.
    const int left = StopLeftovers(received.envelope_id());
    ack.set_error(absl::StrCat(
        "interrupted: the agent stopped while the command ran; its outcome is unknown (it may have run in part)",
        left > 0 ? absl::StrCat("; ", left, left == 1 ? " process it left running was" : " processes it left running were",
                                " stopped when the agent started again")
                 : ""));
    STEWARD_LOG_WARNING("command {} was interrupted by an agent restart{}", received.envelope_id(),
                        left > 0 ? absl::StrCat("; stopped ", left, " processes it left running") : "");
    STEWARD_RETURN_IF_ERROR(processor_->SendResult("agent", "", std::move(ack)));
  }
  // Before the dispatcher and the first hello: once the station hears from this
  // installation, nothing of an earlier one runs beside what it sends.
  StopEarlierInstallations(interrupted);
  supervisor_ = std::make_unique<Supervisor>(
      options_.restart, [this](const DecisionRecord& d) { OnDecision(d); });
  dispatcher_ = std::make_unique<Dispatcher>(options_, methods_, conn_, events_, *supervisor_, *processor_);
  STEWARD_RETURN_IF_ERROR(supervisor_->Start(
      Dispatcher::kProcessName, [this](ProcessContext& ctx) { return dispatcher_->Run(ctx); }));
  STEWARD_RETURN_IF_ERROR(StartSyslog(std::move(log_spool)));
  // After the syslog inputs exist: every hello counts their drops.
  heartbeat_.SetStats([this](proto::AgentStats& s) { FillStats(s); }, options_.data_dir);
  // Errorlog summaries of a flood go out once its window turned, flood or not.
  heartbeat_.OnTick([this] {
    std::vector<proto::ErrorLog> summaries;
    {
      absl::MutexLock lock(&errorlog_mu_);
      summaries = errorlog_limiter_.Flush(absl::Now());
    }
    SendErrorLogs(summaries);
  });
  STEWARD_RETURN_IF_ERROR(supervisor_->Start(Heartbeat::kProcessName, [this](ProcessContext& ctx) {
    return heartbeat_.Run(ctx, *pump_);
  }));
  STEWARD_LOG_INFO("agent {} started: commands on {} (station {}); installation {}, key {}", options_.node,
                   *subjects::KindPattern(options_.node, subjects::Kind::kCommand), options_.station,
                   options_.instance_id,
                   options_.security.node_key ? signing::KeyId(options_.security.node_key->public_key) : "none");
  return absl::OkStatus();
}

void Agent::StopEarlierInstallations(const std::vector<proto::Ack>& interrupted) {
  if (marks_ == nullptr) return;
  for (const RunningMarks::Marked& m : marks_->List()) {
    const std::string& id = m.id;
    // Interrupted: handled above, and its mark goes once that result is recorded (a
    // full disk may keep it until a later start, which needs the mark still).
    if (std::any_of(interrupted.begin(), interrupted.end(),
                    [&](const proto::Ack& a) { return a.envelope_id() == id; })) {
      continue;
    }
    // Known: it ended here, its result recorded (the mark outlived it by a kill).
    // Unknown: an earlier installation ran it; unless its process had ended, what is
    // left of it is stopped.
    const bool known = log_->Lookup(id).has_value();
    if (!known) {
      const int left = m.ended ? 0 : StopLeftovers(id);
      STEWARD_LOG_WARNING("agent {}: command {} ran under an earlier installation of this node, whose data "
                          "directory is gone; {} (the station ends it lost)",
                          options_.node, id,
                          m.ended ? "its process had ended"
                                  : absl::StrCat("stopped ", left, left == 1 ? " process" : " processes",
                                                 " it left running"));
    }
    marks_->Clear(id);
  }
}

absl::Status Agent::StartSyslog(std::unique_ptr<Spool> log_spool) {
  const SyslogOptions& so = options_.syslog;
  const bool inputs = !so.udp.empty() || !so.tcp.empty() || !so.tails.empty();
  // Without inputs the logs outbox still runs when there is a spool: it delivers what an
  // earlier run left in it.
  if (!inputs && log_spool == nullptr) return absl::OkStatus();
  auto input_options = [&](std::string input, std::string domain, int severity) {
    return syslog::InputOptions{.domain = std::move(domain),
                                .max_frame_bytes = so.max_message_bytes,
                                .zone = so.zones.For(input),
                                .severity = severity,
                                .udp_buffer_bytes = so.udp_buffer_bytes};
  };
  for (const std::string& spec : so.udp) {
    STEWARD_ASSIGN_OR_RETURN(syslog::ListenSpec ls, syslog::ParseListenSpec(spec));
    STEWARD_ASSIGN_OR_RETURN(auto input, syslog::NewUdpInput(ls, input_options("udp:" + spec, "", 5)));
    inputs_.push_back(std::move(input));
  }
  for (const std::string& spec : so.tcp) {
    STEWARD_ASSIGN_OR_RETURN(syslog::ListenSpec ls, syslog::ParseListenSpec(spec));
    STEWARD_ASSIGN_OR_RETURN(auto input, syslog::NewTcpInput(ls, input_options("tcp:" + spec, "", 5)));
    inputs_.push_back(std::move(input));
  }
  for (const syslog::TailSpec& t : so.tails) {
    if (!t.domain.empty()) STEWARD_RETURN_IF_ERROR(subjects::ValidateToken(t.domain));
    STEWARD_ASSIGN_OR_RETURN(
        auto input, syslog::NewFileTail(t.path, input_options("file:" + t.path, t.domain, t.severity), so.state_dir));
    inputs_.push_back(std::move(input));
  }
  // The largest message the broker takes, as the connection knows it.
  auto max_payload = [conn = conn_] { return static_cast<size_t>(nats::MaxPayload(conn)); };
  OutboxOptions lo = options_.outbox;
  lo.station = options_.station;
  lo.max_bytes = so.spool_max_bytes;
  lo.max_items = std::max<size_t>(lo.max_items, 1000000);
  lo.drop_oldest = true;
  // A few 500-line batches in flight already carry far more than a station stores;
  // a wide window with a short timeout would only re-send batches the station is
  // still committing.
  lo.max_in_flight = 16;
  lo.ack_timeout = std::max(lo.ack_timeout, absl::Seconds(10));
  // A batch too large for the broker (spooled by an older agent) is split, never retried.
  lo.max_item_bytes = max_payload;
  lo.refit = [this](const OutboxItem& item, size_t limit) {
    return syslog::RefitBatchEvent(events_, item, limit);
  };
  if (log_spool == nullptr) log_spool = NewMemorySpool();
  log_outbox_ = std::make_unique<Outbox>(pump_.get(), std::move(log_spool), lo);
  STEWARD_RETURN_IF_ERROR(log_outbox_->Start());
  if (!inputs) return absl::OkStatus();
  syslog::ForwarderOptions fo;
  fo.batch_lines = so.batch_lines;
  fo.batch_delay = so.batch_delay;
  fo.parse.max_message_bytes = so.max_message_bytes;
  fo.max_payload = max_payload;
  fo.input_drops = [this] {
    uint64_t n = 0;
    for (const auto& in : inputs_) n += in->dropped();
    return n;
  };
  forwarder_ = std::make_unique<syslog::Forwarder>(fo, &events_, log_outbox_.get());
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

void Agent::DrainSyslogInputs() {
  if (forwarder_ == nullptr) return;
  // The forwarder still runs: what the inputs read meanwhile is spooled.
  const absl::Time deadline = absl::Now() + kSyslogDrainGrace;
  for (const auto& in : inputs_) in->StartDraining(deadline);
  for (const auto& in : inputs_) {
    while (!in->Drained() && absl::Now() < deadline + absl::Milliseconds(500)) absl::SleepFor(absl::Milliseconds(10));
  }
}

std::vector<uint16_t> Agent::syslog_ports() const {
  std::vector<uint16_t> out;
  for (const auto& in : inputs_) {
    if (in->port() != 0) out.push_back(in->port());
  }
  return out;
}

bool Agent::Serving() const {
  if (dispatcher_ == nullptr || !dispatcher_->Subscribed() || conn_ == nullptr) return false;
  if (natsConnection_Status(conn_) != NATS_CONN_STATUS_CONNECTED) return false;
  // PING/PONG: the server has read everything sent before, the subscription included.
  return nats::Flush(conn_, absl::Seconds(1)).ok();
}

std::optional<std::string> Agent::BrokerClosed() const { return nats::ClosedReason(owned_conn_.get()); }

bool Agent::Alive(absl::Duration quiet) const {
  if (fatal_.HasBeenNotified() || supervisor_ == nullptr) return false;
  const std::vector<std::string> stalled = supervisor_->Stalled(quiet);
  for (const std::string& name : stalled) STEWARD_LOG_ERROR("process {} made no progress for {}", name, absl::FormatDuration(quiet));
  return stalled.empty();
}

void Agent::OnReconnected() {
  STEWARD_LOG_INFO("agent {}: reconnected to the broker", options_.node);
  heartbeat_.Wake();
  if (outbox_) outbox_->Kick();
  if (log_outbox_) log_outbox_->Kick();
}

void Agent::Shutdown(absl::string_view why) {
  if (shut_down_.exchange(true)) return;
  {
    absl::MutexLock lock(&reconnect_hook_->mu);  // a callback running now ends first
    reconnect_hook_->agent = nullptr;
  }
  cancel_.Notify();
  if (debug_) debug_->Shutdown();  // says so to the operators watching
  if (processor_) processor_->StopAll(why);
  heartbeat_.Stop();
  if (dispatcher_) dispatcher_->StopIntake();
  DrainSyslogInputs();
  if (supervisor_) supervisor_->Shutdown();
  // Results a full disk kept from the record: written now if there is room, or the next
  // start counts their commands interrupted (whose processes had ended: RunningMarks).
  if (processor_) {
    if (const size_t kept = processor_->RecordLater(); kept > 0) {
      STEWARD_LOG_WARNING("agent {}: {} results could not be recorded (the disk is still full); the next start "
                          "reports their commands interrupted",
                          options_.node, kept);
    }
  }
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

void Agent::FillStats(proto::AgentStats& s) const {
  size_t queues = 0, depth = 0;
  if (dispatcher_) dispatcher_->QueueStats(&queues, &depth);
  s.set_processes(static_cast<uint32_t>(queues));
  s.set_queue_depth(depth);
  s.set_queue_capacity(queues * options_.queue_capacity);
  s.set_restarts(restarts_.load());
  if (dispatcher_) s.set_intake_dropped(dispatcher_->IntakeDropped());
  if (outbox_) {
    s.set_outbox_entries(outbox_->pending());
    s.set_outbox_bytes(outbox_->pending_bytes());
    if (const std::string oldest = outbox_->oldest(); !oldest.empty()) {
      s.set_outbox_oldest_age_ms(std::max<int64_t>(0, NowUnixMillis() - IdUnixMillis(oldest)));
    }
  }
  uint64_t dropped = 0;
  for (const auto& in : inputs_) dropped += in->dropped();
  if (log_outbox_) {
    s.set_log_spool_entries(log_outbox_->pending());
    s.set_log_spool_bytes(log_outbox_->pending_bytes());
    dropped += log_outbox_->dropped();
  }
  s.set_log_dropped(dropped);
  if (options_.config != nullptr) {
    s.set_config_hash(options_.config->Hash());
    s.set_config_undone(options_.config->LastUndone());
  }
  for (const auto& in : inputs_) {
    proto::InputBrief* b = s.add_inputs();
    b->set_name(in->name());
    b->set_listening(supervisor_ != nullptr && supervisor_->IsRunning(in->name()));
    b->set_lines(in->lines());
    b->set_dropped(in->dropped());
    b->set_offset(in->offset());
  }
  for (const proto::ProcessStatus& p : Processes()) {
    if (!p.handler()) continue;
    proto::ProcessBrief* b = s.add_handlers();
    b->set_name(p.name());
    b->set_state(p.state());
    b->set_queue_depth(p.queue_depth());
    b->set_restarts(p.restarts());
    b->set_current_command(p.current_command());
  }
}

std::vector<proto::ProcessStatus> Agent::Processes() const {
  if (dispatcher_ == nullptr || supervisor_ == nullptr) return {};
  std::vector<proto::ProcessStatus> handlers = dispatcher_->Handlers();
  absl::flat_hash_map<std::string, proto::ProcessStatus*> by_subject;
  for (proto::ProcessStatus& p : handlers) by_subject[p.subject()] = &p;
  std::vector<proto::ProcessStatus> own;  // dispatcher, heartbeat, syslog
  for (const ProcessInfo& info : supervisor_->Processes()) {
    auto it = by_subject.find(info.name);
    proto::ProcessStatus* p = nullptr;
    if (it != by_subject.end()) {
      p = it->second;
    } else {
      // A handler that ran and was stopped by an operator keeps its supervisor entry.
      absl::StatusOr<subjects::Subject> s = subjects::Parse(info.name);
      if (s.ok()) continue;
      p = &own.emplace_back();
      p->set_name(info.name);
    }
    p->set_restarts(static_cast<uint32_t>(info.restarts));
    if (!info.last_error.empty()) {
      p->set_last_restart_reason(info.last_error);
      p->set_last_restart_unix_ms(absl::ToUnixMillis(info.last_error_at));
    }
    if (!p->state().empty()) continue;  // stopped by an operator
    p->set_state(info.backing_off ? "restarting" : info.running ? "running" : "failed");
  }
  // Handlers made but whose thread has not been seen yet are running.
  for (proto::ProcessStatus& p : handlers) {
    if (p.state().empty()) p.set_state("running");
  }
  handlers.insert(handlers.end(), std::make_move_iterator(own.begin()), std::make_move_iterator(own.end()));
  return handlers;
}

proto::AgentStatus Agent::Status() const {
  proto::AgentStatus st;
  st.set_node(options_.node);
  st.set_version(STEWARD_VERSION);
  st.set_started_unix_ms(absl::ToUnixMillis(heartbeat_.started()));
  st.set_instance_id(options_.instance_id);
  proto::AgentStats* stats = st.mutable_stats();
  stats->set_at_unix_ms(NowUnixMillis());
  ReadResources(options_.data_dir, *stats);
  FillStats(*stats);
  stats->clear_handlers();  // the full form follows
  for (proto::ProcessStatus& p : Processes()) *st.add_processes() = std::move(p);
  stats->clear_inputs();  // likewise
  for (const auto& in : inputs_) {
    proto::InputStatus* i = st.add_inputs();
    i->set_name(in->name());
    i->set_port(in->port());
    i->set_listening(supervisor_ != nullptr && supervisor_->IsRunning(in->name()));
    i->set_dropped(in->dropped());
    i->set_lines(in->lines());
    i->set_kernel_dropped(in->kernel_dropped());
    i->set_file(in->file());
    i->set_offset(in->offset());
  }
  return st;
}

absl::StatusOr<std::string> Agent::StopHandler(const std::string& name, bool cancel_running) {
  if (dispatcher_ == nullptr) return absl::UnavailableError("the agent is starting");
  absl::StatusOr<std::string> done = dispatcher_->StopHandler(name, cancel_running);
  if (done.ok()) {
    STEWARD_LOG_INFO("{}", *done);
    heartbeat_.Wake();  // the station's last known status says so at once
  }
  return done;
}

absl::StatusOr<std::string> Agent::StartHandler(const std::string& name) {
  if (dispatcher_ == nullptr) return absl::UnavailableError("the agent is starting");
  absl::StatusOr<std::string> done = dispatcher_->StartHandler(name);
  if (done.ok()) {
    STEWARD_LOG_INFO("{}", *done);
    heartbeat_.Wake();
  }
  return done;
}

void Agent::OnDecision(const DecisionRecord& d) {
  if (d.decision == Decision::kRestart) ++restarts_;
  if (d.process == Dispatcher::kProcessName && d.decision == Decision::kStop &&
      !fatal_flag_.exchange(true)) {
    fatal_.Notify();
  }
  if (!outbox_) return;
  // The broker connection closed for good (main starts the agent again): the errors
  // that follow say only that, once per start; logged here, not spooled for the station
  // (a unit out of coverage for a day would otherwise send it thousands at once).
  if (owned_conn_ != nullptr && natsConnection_IsClosed(owned_conn_.get())) return;
  proto::ErrorLog log;
  log.set_process(d.process);
  log.set_severity(SeverityName(d.severity));
  log.set_error(d.error);
  log.set_decision(DecisionName(d.decision));
  log.set_at_unix_ms(absl::ToUnixMillis(d.at));
  std::vector<proto::ErrorLog> send;
  {
    absl::MutexLock lock(&errorlog_mu_);
    send = errorlog_limiter_.Offer(std::move(log), absl::Now());
  }
  SendErrorLogs(send);
}

void Agent::SendErrorLogs(const std::vector<proto::ErrorLog>& logs) {
  for (const proto::ErrorLog& log : logs) {
    absl::StatusOr<OutboxItem> ev = events_.Make(kEventErrorLog, "agent", log.SerializeAsString());
    bool spooled = false;
    absl::Status st = ev.ok() ? outbox_->EnqueueOrKeep(
                                    *std::move(ev), [](Spool& spool, const OutboxItem& i) { return spool.Put(i); },
                                    &spooled)
                              : ev.status();
    if (!st.ok()) STEWARD_LOG_ERROR("errorlog event not queued: {}", st.ToString());
  }
}

}  // namespace steward::agent
