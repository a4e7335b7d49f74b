// CommandProcessor: the per-subject process body, command handling and result delivery.
#include "agent/process.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "agent/output_stream.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/status_macros.h"

namespace steward::agent {
namespace {

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

// The final word on a command whose process broke while it ran.
proto::Ack BrokenResult(const std::string& id, const std::string& node, const absl::Status& broken) {
  proto::Ack err = NewAck(id, node, proto::STAGE_RESULT, proto::OUTCOME_ERROR);
  err.set_error(std::string(broken.message()));
  err.set_finished_unix_ms(NowUnixMillis());
  return err;
}

}  // namespace

std::shared_ptr<BatchAnswer> BatchAnswer::Create(natsConnection* conn, const EventWriter& events, std::string reply,
                                                 std::string carrier_id, size_t limit, bool signed_once) {
  return std::shared_ptr<BatchAnswer>(
      new BatchAnswer(conn, events, std::move(reply), std::move(carrier_id), limit, signed_once));
}

BatchAnswer::BatchAnswer(natsConnection* conn, const EventWriter& events, std::string reply, std::string carrier_id,
                         size_t limit, bool signed_once)
    : conn_(conn),
      events_(events),
      reply_(std::move(reply)),
      carrier_id_(std::move(carrier_id)),
      limit_(limit),
      signed_once_(signed_once) {}

std::shared_ptr<Reply::Slot> BatchAnswer::NewSlot() {
  {
    absl::MutexLock lock(&mu_);
    ++outstanding_;
  }
  return std::make_shared<Reply::Slot>(shared_from_this());
}

void BatchAnswer::Routed() { Done(nullptr, /*may_send=*/true); }

size_t BatchAnswer::left_out() const {
  absl::MutexLock lock(&mu_);
  return left_out_;
}

void BatchAnswer::Done(proto::Ack* ack, bool may_send) {
  proto::Ack carrier;
  {
    absl::MutexLock lock(&mu_);
    if (ack != nullptr) {
      // The carrier's own fields and signature take well under 1 KiB.
      const size_t size = ack->ByteSizeLong() + 16;
      if (bytes_ + size + 1024 > limit_) {
        ++left_out_;
      } else {
        bytes_ += size;
        *acks_.add_acks() = std::move(*ack);
      }
    }
    if (!may_send) dropped_ = true;
    if (--outstanding_ > 0 || dropped_ || reply_.empty()) return;
    carrier = NewAck(carrier_id_, events_.node(), proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
    carrier.set_payload(acks_.SerializeAsString());
  }
  if (signed_once_) {
    // One signature for the whole answer: it covers the payload, every ACK in it.
    events_.SealAck(carrier);
  } else {
    // Not signed: the station believes each ACK in it by its own signature.
    events_.NameAck(carrier);
  }
  (void)nats::Publish(conn_, reply_, carrier.SerializeAsString());
}

bool WaitingCommands::Add(const std::string& id, const Reply& reply) {
  absl::MutexLock lock(&mu_);
  auto [it, added] = latest_.try_emplace(id, Delivery{reply});
  // A copy with no reply subject (a bare publish) takes no answer from the one waiting.
  if (!added && !it->second.in_hand && !reply.empty()) it->second.reply = reply;
  return added;
}

bool WaitingCommands::Move(const std::string& id, const Reply& reply) {
  absl::MutexLock lock(&mu_);
  auto it = latest_.find(id);
  if (it == latest_.end()) return false;
  if (!it->second.in_hand && !reply.empty()) it->second.reply = reply;
  return true;
}

Reply WaitingCommands::Take(const std::string& id, Reply reply) {
  absl::MutexLock lock(&mu_);
  auto it = latest_.find(id);
  if (it == latest_.end()) return reply;
  it->second.in_hand = true;
  return it->second.reply;
}

void WaitingCommands::Release(const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (auto it = latest_.find(id); it != latest_.end() && it->second.in_hand) latest_.erase(it);
}

void WaitingCommands::Forget(const std::string& id) {
  absl::MutexLock lock(&mu_);
  latest_.erase(id);
}

size_t WaitingCommands::size() const {
  absl::MutexLock lock(&mu_);
  return latest_.size();
}

absl::Status ReplyAck(natsConnection* conn, const EventWriter& events, const Reply& reply, proto::Ack ack) {
  if (reply.empty()) return absl::OkStatus();
  if (reply.slot != nullptr && reply.slot->signed_with_batch()) {
    events.NameAck(ack);
  } else {
    events.SealAck(ack);
  }
  if (reply.slot != nullptr) {
    reply.slot->Answer(std::move(ack));
    return absl::OkStatus();
  }
  return nats::Publish(conn, reply.subject, ack.SerializeAsString());
}

absl::Status CommandProcessor::Run(ProcessContext& ctx, const std::string& method_name,
                                   Handler& handler) {
  std::unique_ptr<Method> method = (*parts_.methods->Find(method_name))();
  handler.broken.store(false);
  while (std::optional<Work> work = handler.queue.Pop()) {
    // In hand from here until it is answered (Handle releases it just before its
    // answer) or handled: a copy meanwhile (one after the command's expiry too) is
    // neither queued nor refused; the station's next one is answered from the record.
    auto finished = absl::MakeCleanup([&handler] { --handler.load; });
    const std::string id = work->command.id();
    work->reply = handler.waiting.Take(id, std::move(work->reply));
    auto handled = absl::MakeCleanup([&handler, &id] { handler.waiting.Release(id); });
    // Stopped by an operator: what is still queued was never acknowledged; the
    // station sends it again and it is rejected then ("stopped by operator").
    if (ctx.stopping() || parts_.cancel->HasBeenNotified() || handler.stopped.load()) break;
    if (absl::Status st = Handle(ctx, *method, *work, &handler); !st.ok()) {
      handler.broken.store(true);  // until the error kernel starts the process again
      return st;
    }
  }
  return absl::OkStatus();
}

void CommandProcessor::ReplyTo(ProcessContext& ctx, const Work& work, const proto::Ack& ack, Handler* handler) {
  // Decided once it is answered: a copy after the answer is queued and answered from
  // the record (one that came before it, while in hand, was not: Run).
  if (handler != nullptr) handler->waiting.Release(work.command.id());
  if (absl::Status st = ReplyAck(parts_.conn, *parts_.events, work.reply, ack); !st.ok()) {
    ctx.Report(Severity::kWarning, st);
  }
}

absl::Status CommandProcessor::Handle(ProcessContext& ctx, Method& method, const Work& work,
                                      Handler* handler) {
  const proto::Envelope& cmd = work.command;
  const std::string& node = parts_.events->node();
  auto reply = [&](const proto::Ack& ack) { ReplyTo(ctx, work, ack, handler); };
  if (Expired(cmd, NowUnixMillis())) {
    // Its expiry passed while it waited behind a long command: nobody may act on it
    // now. Refused, as at its arrival, unless it was recorded before (a redelivery of
    // one taken in time): then answered from the record.
    if (std::optional<proto::Ack> seen = parts_.log->Lookup(cmd.id())) {
      reply(*seen);
      return absl::OkStatus();
    }
    const std::string reason = absl::StrCat("expired at ", cmd.expires_unix_ms(),
                                            " (unix ms) while it waited for its turn; not run");
    reply(RejectAck(cmd.id(), node, reason));
    if (handler != nullptr) {
      ++handler->handled;
      ++handler->failed;
    }
    ctx.Report(Severity::kWarning, absl::InvalidArgumentError(absl::StrCat("rejected ", cmd.id(), ": ", reason)));
    return absl::OkStatus();
  }
  if (method.immediate()) {
    ExecContext exec{cmd, node, *parts_.cancel, *parts_.runner, *parts_.limits, this, parts_.agent};
    STEWARD_ASSIGN_OR_RETURN(proto::Ack ack, method.Execute(exec));
    reply(ack);
    return absl::OkStatus();
  }
  if (method.quick() && !work.reply.empty()) return HandleQuick(ctx, method, work, handler);
  RecordLater();
  proto::Ack received = NewAck(cmd.id(), node, proto::STAGE_RECEIVED, proto::OUTCOME_UNSPECIFIED);
  received.set_started_unix_ms(NowUnixMillis());
  // Registered before it is recorded (see running_mu_), in the same critical section.
  auto running = std::make_shared<Running>();
  absl::StatusOr<std::optional<proto::Ack>> recorded;
  {
    absl::MutexLock lock(&running_mu_);
    recorded = parts_.log->RecordIfNew(received);
    if (recorded.ok() && !recorded->has_value()) {
      running_[cmd.id()] = running;
      if (parts_.cancel->HasBeenNotified()) running->stop.Notify();  // StopAll ran already
    }
  }
  if (!recorded.ok()) {
    // A command that cannot be recorded does not run: it could run twice otherwise.
    // The station is told it was not taken (an ERROR that is no result) and sends it
    // again later; the process goes on (a full disk empties again).
    proto::Ack refused = NewAck(cmd.id(), node, proto::STAGE_UNSPECIFIED, proto::OUTCOME_ERROR);
    refused.set_error(absl::StrCat("cannot record the command: ", recorded.status().message()));
    reply(refused);
    ctx.Report(Severity::kWarning, recorded.status());
    return absl::OkStatus();
  }
  std::optional<proto::Ack> seen = *std::move(recorded);
  if (seen.has_value()) {
    // Redelivery (or cancelled before it came): answer with what we recorded, never
    // run twice.
    reply(*seen);
    return absl::OkStatus();
  }
  reply(received);
  STEWARD_LOG_DEBUG("command {} {}/{} from {}: received, running", cmd.id(), cmd.method(), cmd.domain(),
                    cmd.operator_().empty() ? cmd.from_node() : cmd.operator_());

  if (handler != nullptr) {
    absl::MutexLock lock(&handler->mu);
    handler->current = cmd.id();
    handler->current_since = absl::Now();
  }
  // Output streamed as it comes (agent/output_stream.h); the result carries it whole.
  ChunkPublisher output(parts_.conn, *parts_.events, cmd.domain(), cmd.id(),
                        PayloadLimit());
  ExecContext exec{cmd, node, running->stop, *parts_.runner, *parts_.limits, this, parts_.agent,
                   parts_.conn != nullptr ? &output : nullptr};
  // Marked while it runs, outside the data directory: should the unit be reinstalled
  // meanwhile, the new installation stops what it leaves (agent/leftovers.h). Once
  // Execute returns its process has ended; the mark says so until the result is recorded.
  if (parts_.marks != nullptr) parts_.marks->Mark(cmd.id());
  absl::StatusOr<proto::Ack> result = method.Execute(exec);
  if (parts_.marks != nullptr) parts_.marks->Ended(cmd.id());
  if (handler != nullptr) {
    {
      absl::MutexLock lock(&handler->mu);
      handler->current.clear();
    }
    ++handler->handled;
    if (!result.ok() || result->outcome() != proto::OUTCOME_SUCCEEDED) ++handler->failed;
  }
  // Unregistered once the result is recorded: a cancel meanwhile finds it finished.
  auto unregister = absl::MakeCleanup([this, &cmd] {
    absl::MutexLock lock(&running_mu_);
    running_.erase(cmd.id());
  });
  if (!result.ok()) {
    // The process is broken; the command still gets a truthful final word.
    STEWARD_RETURN_IF_ERROR(SendResult(cmd.domain(), cmd.request_id(), BrokenResult(cmd.id(), node, result.status())));
    return result.status();
  }
  if (result->outcome() == proto::OUTCOME_CANCELED) {
    std::string by, stopped;
    {
      absl::MutexLock lock(&running_mu_);
      by = running->canceled_by;
      stopped = stop_reason_;
    }
    if (by.empty()) {
      // Not an operator's cancel: the agent is shutting down, or restarting in its
      // process to apply a new configuration.
      result->set_outcome(proto::OUTCOME_FAILED);
      result->set_error(absl::StrCat("canceled: ", stopped));
    } else {
      result->set_error(absl::StrCat("canceled by ", by, " after ",
                                     absl::FormatDuration(absl::Trunc(absl::Now() - running->since,
                                                                      absl::Milliseconds(1))),
                                     " (the output until then is kept)"));
    }
  }
  STEWARD_LOG_DEBUG("command {} {}/{}: {}, exit {}", cmd.id(), cmd.method(), cmd.domain(),
                    proto::Outcome_Name(result->outcome()), result->exit_code());
  return SendResult(cmd.domain(), cmd.request_id(), *std::move(result));
}

absl::Status CommandProcessor::HandleQuick(ProcessContext& ctx, Method& method, const Work& work,
                                          Handler* handler) {
  std::optional<QuickRun> run = TakeQuick(ctx, method, work, handler);
  return run.has_value() ? FinishQuick(ctx, *std::move(run)) : absl::OkStatus();
}

absl::Status CommandProcessor::FinishQuick(ProcessContext& ctx, QuickRun run) {
  std::vector<QuickRun> one;
  one.push_back(std::move(run));
  return FinishQuick(ctx, std::move(one));
}

CommandProcessor::QuickRun& CommandProcessor::QuickRun::operator=(QuickRun&& other) noexcept {
  if (this == &other) return *this;
  if (processor_ != nullptr) processor_->Unregister(work_.command.id());
  processor_ = std::exchange(other.processor_, nullptr);
  work_ = std::move(other.work_);
  handler_ = other.handler_;
  result_ = std::move(other.result_);
  broken_ = std::move(other.broken_);
  return *this;
}

CommandProcessor::QuickRun::~QuickRun() {
  if (processor_ != nullptr) processor_->Unregister(work_.command.id());
}

void CommandProcessor::Unregister(const std::string& id) {
  absl::MutexLock lock(&running_mu_);
  running_.erase(id);
}

std::optional<CommandProcessor::QuickRun> CommandProcessor::TakeQuick(ProcessContext& ctx, Method& method, Work work,
                                                                      Handler* handler) {
  const proto::Envelope& cmd = work.command;
  const std::string& node = parts_.events->node();
  RecordLater();
  // Looked up and registered as running in one critical section with CancelCommand's
  // tombstone (see running_mu_): a cancel finds it either recorded or running.
  auto running = std::make_shared<Running>();
  std::optional<proto::Ack> seen;
  bool in_progress = false;
  {
    absl::MutexLock lock(&running_mu_);
    seen = parts_.log->Lookup(cmd.id());
    // Another copy of it running now (bench/node_simulator's workers may take one
    // node's commands at once; an agent's process takes its subject's one by one).
    in_progress = !seen.has_value() && running_.contains(cmd.id());
    if (!seen.has_value() && !in_progress) running_[cmd.id()] = running;
  }
  // No answer: the station asks again after its timeout, and that copy is answered
  // from the record.
  if (in_progress) return std::nullopt;
  if (seen.has_value()) {
    ReplyTo(ctx, work, *seen, handler);  // a redelivery: answered from the record, never run twice
    return std::nullopt;
  }
  QuickRun run;
  run.work_ = std::move(work);
  run.processor_ = this;  // registered: unregistered when `run` ends, however it ends
  run.handler_ = handler;
  const proto::Envelope& command = run.work_.command;
  ExecContext exec{command, node, running->stop, *parts_.runner, *parts_.limits, this, parts_.agent};
  absl::StatusOr<proto::Ack> result = method.Execute(exec);
  // A broken process: the command still gets a truthful final word, and the error
  // kernel hears of it once that is answered.
  run.broken_ = result.status();
  if (!result.ok()) result = BrokenResult(command.id(), node, run.broken_);
  if (handler != nullptr) {
    ++handler->handled;
    if (result->outcome() != proto::OUTCOME_SUCCEEDED) ++handler->failed;
  }
  if (result->started_unix_ms() == 0) result->set_started_unix_ms(NowUnixMillis());
  // Recorded unsigned: what answers it (alone, or in a batch's answer signed once)
  // signs it then, so a result in a batch costs no signature of its own.
  FitResult(*result);
  {
    absl::MutexLock lock(&running_mu_);
    running->ran = result->outcome();
  }
  run.result_ = *std::move(result);
  return run;
}

absl::Status CommandProcessor::FinishQuick(ProcessContext& ctx, std::vector<QuickRun> runs) {
  if (runs.empty()) return absl::OkStatus();
  std::vector<proto::Ack> results;
  results.reserve(runs.size());
  for (QuickRun& r : runs) results.push_back(std::move(r.result_));
  // Recorded before they are answered: the record is what a lost reply is answered from.
  const absl::Status rec = parts_.log->RecordAll(results);
  if (!rec.ok()) ctx.Report(Severity::kWarning, rec);
  absl::Status spooled;
  absl::Status broken;
  for (size_t i = 0; i < runs.size(); ++i) {
    QuickRun& r = runs[i];
    proto::Ack& result = results[i];
    const proto::Envelope& cmd = r.work_.command;
    if (broken.ok()) broken = r.broken_;
    if (rec.ok()) {
      STEWARD_LOG_DEBUG("command {} {}/{}: {} in the reply", cmd.id(), cmd.method(), cmd.domain(),
                        proto::Outcome_Name(result.outcome()));
      ReplyTo(ctx, r.work_, result, r.handler_);
      continue;
    }
    // Not recorded (a full disk): the long way, which keeps the result in memory until
    // the station has it. `received` first, as for any command.
    proto::Ack received = NewAck(cmd.id(), parts_.events->node(), proto::STAGE_RECEIVED, proto::OUTCOME_UNSPECIFIED);
    received.set_started_unix_ms(result.started_unix_ms());
    ReplyTo(ctx, r.work_, received, r.handler_);
    parts_.events->SealAck(result);
    if (absl::Status st = SpoolResult(cmd.domain(), cmd.request_id(), std::move(result)); !st.ok()) {
      // Said here too: a batch's quick commands have no process of their own to fail.
      ctx.Report(Severity::kWarning, st);
      if (spooled.ok()) spooled = st;
    }
  }
  runs.clear();  // no longer running: answered, recorded or on their way
  return spooled.ok() ? broken : spooled;
}

absl::StatusOr<std::string> CommandProcessor::CancelCommand(const std::string& id, const std::string& domain,
                                                            const std::string& by) {
  const std::string who = by.empty() ? "an operator" : by;
  absl::MutexLock lock(&running_mu_);
  if (auto it = running_.find(id); it != running_.end()) {
    if (it->second->ran != proto::OUTCOME_UNSPECIFIED) {
      // A quick command that ran; its record is being written (FinishQuick).
      return absl::StrCat(id, " already finished here: ", OutcomeName(it->second->ran));
    }
    if (it->second->stop.HasBeenNotified()) return absl::StrCat("stopping ", id, " already");
    it->second->canceled_by = who;
    it->second->stop.Notify();
    return absl::StrCat("stopping ", id, ": SIGTERM to its process group, SIGKILL after the grace");
  }
  proto::Ack tombstone = NewAck(id, parts_.events->node(), proto::STAGE_RESULT, proto::OUTCOME_CANCELED);
  tombstone.set_error(absl::StrCat("canceled by ", who, " before it ran on ", parts_.events->node(),
                                   ": it never runs there"));
  tombstone.set_finished_unix_ms(NowUnixMillis());
  STEWARD_ASSIGN_OR_RETURN(std::optional<proto::Ack> seen, parts_.log->RecordIfNew(tombstone));
  if (seen.has_value()) {
    if (seen->stage() == proto::STAGE_RESULT) {
      return absl::StrCat(id, " already finished here: ", OutcomeName(seen->outcome()));
    }
    // Received, no result and not running: an earlier run of the agent was stopped
    // while it ran (its result says "interrupted").
    return absl::StrCat(id, " is not running here (interrupted by an agent restart)");
  }
  // Never came here: the station learns it now (the command itself may never come).
  STEWARD_RETURN_IF_ERROR(SendResult(domain, "", tombstone));
  return absl::StrCat(id, " had not come here: recorded as canceled, it never runs");
}

void CommandProcessor::StopAll(absl::string_view why) {
  absl::MutexLock lock(&running_mu_);
  stop_reason_ = std::string(why);
  for (auto& [id, r] : running_) {
    if (!r->stop.HasBeenNotified()) r->stop.Notify();
  }
}

size_t CommandProcessor::PayloadLimit() const {
  if (parts_.conn == nullptr) return 0;
  // Monotonic: a clock set back (NTP on an edge unit) must not stop the refresh.
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t limit = payload_limit_.load(std::memory_order_relaxed);
  if (limit == 0 || now - payload_read_ns_.load(std::memory_order_relaxed) > int64_t{1'000'000'000}) {
    // 0 before the first connect: the broker default then, not kept (the broker may
    // say less once connected).
    limit = natsConnection_GetMaxPayload(parts_.conn);
    if (limit <= 0) return size_t{1} << 20;
    payload_limit_.store(limit, std::memory_order_relaxed);
    payload_read_ns_.store(now, std::memory_order_relaxed);
  }
  return static_cast<size_t>(limit);
}

void CommandProcessor::FitResult(proto::Ack& ack) const {
  const size_t max_payload = PayloadLimit();
  // Without a connection (tests): the broker default.
  FitAck(ack, (max_payload > 0 ? max_payload : size_t{1} << 20) - 4096);
  parts_.events->NameAck(ack);
}

void CommandProcessor::SealResult(proto::Ack& ack) const {
  FitResult(ack);
  parts_.events->SealAck(ack);
}

absl::Status CommandProcessor::SendResult(const std::string& domain,
                                          const std::string& request_id, proto::Ack ack) {
  SealResult(ack);
  return SpoolResult(domain, request_id, std::move(ack));
}

absl::Status CommandProcessor::SpoolResult(const std::string& domain, const std::string& request_id,
                                           proto::Ack ack) {
  STEWARD_ASSIGN_OR_RETURN(
      OutboxItem item,
      parts_.events->Make(kEventResult, domain, ack.SerializeAsString(), request_id));
  RecordLater();  // results a full disk kept from the record, if there is room now
  // The result is recorded and spooled together (one transaction with the SQLite
  // store), then sent. When the store fails (a full disk), the command ran all the
  // same: the station hears what came of it, from memory, and the record is written
  // once there is room again.
  bool spooled = false;
  absl::Status st = parts_.outbox->EnqueueOrKeep(
      std::move(item),
      [this, &ack](Spool& spool, const OutboxItem& i) { return parts_.log->RecordAndSpool(ack, spool, i); },
      &spooled);
  if (st.ok() && !spooled) {
    absl::MutexLock lock(&unrecorded_mu_);
    unrecorded_.push_back(ack);
  }
  bool recorded = st.ok() && spooled;
  if (!st.ok()) {
    // Not accepted (outbox full, shutting down): record the result alone if possible,
    // so that the station's redelivery of the command is answered with it.
    if (absl::Status rec = parts_.log->Record(ack); !rec.ok()) {
      STEWARD_LOG_ERROR("result of {} not recorded: {}", ack.envelope_id(), rec.ToString());
    } else {
      recorded = true;
    }
  }
  if (recorded && parts_.marks != nullptr) parts_.marks->Clear(ack.envelope_id());
  return st;
}

size_t CommandProcessor::RecordLater() {
  std::vector<proto::Ack> waiting;
  {
    absl::MutexLock lock(&unrecorded_mu_);
    if (unrecorded_.empty()) return 0;
    waiting.swap(unrecorded_);
  }
  std::vector<proto::Ack> still;  // no room yet
  for (proto::Ack& ack : waiting) {
    if (!still.empty() || !parts_.log->Record(ack).ok()) {
      still.push_back(std::move(ack));
    } else if (parts_.marks != nullptr) {
      parts_.marks->Clear(ack.envelope_id());
    }
  }
  if (still.empty()) return 0;
  absl::MutexLock lock(&unrecorded_mu_);
  unrecorded_.insert(unrecorded_.begin(), std::make_move_iterator(still.begin()),
                     std::make_move_iterator(still.end()));
  return unrecorded_.size();
}

std::optional<proto::Ack> CommandProcessor::Recorded(const std::string& id) const {
  return parts_.log->Lookup(id);
}

}  // namespace steward::agent
