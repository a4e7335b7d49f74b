#include "station/dispatcher.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "station/repeats.h"
#include "station/ledger/log_store.h"
#include "station/operations.h"
#include "subjects/subject.h"

namespace steward::station {
namespace {

constexpr absl::Duration kHousekeeping = absl::Milliseconds(50);

}  // namespace

Gate Dispatcher::GateOf(proto::CommandState& c) {
  // A site station is in control of the node (station/site.h): held, with why, until it
  // hands control back (which unparks the node's commands).
  if (auto it = core_.model.site_held.find(c.node()); it != core_.model.site_held.end()) {
    c.mutable_result()->set_error(absl::StrCat("held: ", it->second));
    return Gate::kPark;
  }
  if (c.has_result() && c.result().outcome() == proto::OUTCOME_UNSPECIFIED &&
      absl::StartsWith(c.result().error(), "held: ")) {
    c.clear_result();  // the hold is over
  }
  // A rollout's batch not released yet, a splayed run's command before its time.
  if (core_.model.jobs.Held(c.id())) return Gate::kPark;
  // Paused, or the node is in maintenance: resume / maintenance off unparks it.
  if (Operations::Parked(core_.model, c)) return Gate::kPark;
  // Secure mode: a node's commands wait until an operator accepted its key (so their
  // results can be verified) and it was heard from (so they are bound to its
  // installation); accepting it, or its next hello, unparks them.
  return core_.BindLocked(c) ? Gate::kSend : Gate::kPark;
}

void Dispatcher::Run(const absl::Notification& stop) {
  absl::Time next_prune = absl::Now() + absl::Seconds(5);
  absl::Time next_housekeeping = absl::Now();
  while (!stop.HasBeenNotified()) {
    last_turn_.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
    if (absl::Now() >= next_prune) {
      const StationOptions& o = core_.options();
      ledger::PruneLogs(core_.store(), absl::ToUnixMillis(absl::Now() - o.log_retention), o.log_max_lines);
      core_.store().Write(ledger::Store::PruneEvents(absl::ToUnixMillis(absl::Now() - o.event_retention),
                                                     o.event_max_rows));
      core_.store().Write(Repeats::PruneBefore(absl::ToUnixMillis(absl::Now() - Repeats::kWindow)));
      next_prune = absl::Now() + o.log_prune_every;
    }
    std::vector<Dispatch> sends;
    Effects effects;
    {
      absl::MutexLock lock(&core_.model.mu);
      const absl::Time due = core_.model.commands.NextDue();
      core_.model.mu.AwaitWithDeadline(absl::Condition(&core_.model.wake), std::min(due, next_housekeeping));
      core_.model.wake = false;
      const absl::Time now = absl::Now();
      Changes changes;
      sends = core_.model.commands.TakeDue(
          now, [this](proto::CommandState& c) ABSL_NO_THREAD_SAFETY_ANALYSIS { return GateOf(c); },
          changes);
      core_.ApplyLocked(changes);
      if (now >= next_housekeeping) {
        HousekeepLocked(now, effects);
        next_housekeeping = now + kHousekeeping;
      }
    }
    core_.Run(effects);
    for (Dispatch& d : sends) Send(std::move(d));
  }
}

void Dispatcher::Send(Dispatch d) {
  const std::string node = d.command.to_node();
  absl::StatusOr<subjects::Subject> subject =
      subjects::Make(node, subjects::Kind::kCommand, d.command.method(), d.command.domain());
  if (!subject.ok()) {
    absl::MutexLock lock(&core_.model.mu);
    Changes changes;
    core_.model.commands.Finish(d.id, proto::STATE_REJECTED,
                                RejectAck(d.id, core_.options().name, subject.status().message()), absl::Now(),
                                changes);
    core_.ApplyLocked(changes);
    return;
  }
  const std::string id = d.id;
  const uint64_t gen = d.gen;
  const absl::Time sent = absl::Now();
  absl::Status st = core_.pump().Send(subject->ToString(), d.wire, core_.options().ack_timeout,
                                      [this, id, gen, node, sent](RequestPump::Result r, nats::MsgPtr m) {
                                        if (r == RequestPump::Result::kReply) {
                                          core_.metrics.receipt_latency.Observe(
                                              absl::ToDoubleSeconds(absl::Now() - sent));
                                        }
                                        OnAnswer(id, gen, node, r, std::move(m));
                                      });
  if (st.ok()) return;
  // The station is stopping: left as it is.
  if (absl::IsFailedPrecondition(st)) return OnAnswer(id, gen, node, RequestPump::Result::kShutdown, nullptr);
  // Not sent at all: no delivery, and not a timeout of the node's.
  const uint64_t n = ++not_sent_;
  if (n == 1 || n % 1000 == 0) {
    STEWARD_LOG_WARNING("command {} to {} not sent: {}; tried again later ({} dispatches not sent so far)", id, node,
                        st.message(), n);
  }
  core_.metrics.dispatch_answers.Add({"not_sent"});
  absl::MutexLock lock(&core_.model.mu);
  core_.model.commands.OnNotSent(id, gen, absl::Now());
}

void Dispatcher::OnAnswer(const std::string& id, uint64_t gen, const std::string& node,
                          RequestPump::Result r, nats::MsgPtr msg) {
  Effects effects;
  {
    absl::MutexLock lock(&core_.model.mu);
    const absl::Time now = absl::Now();
    Changes changes;
    switch (r) {
      case RequestPump::Result::kReply: {
        absl::StatusOr<proto::Ack> ack = DecodeAck(nats::Data(msg.get()));
        if (!ack.ok() && !core_.options().key.has_value()) {
          // The node answered, but not in a way this station can read (another
          // protocol version, a broken agent): it may have recorded the command and
          // run it, so its outcome cannot be known. Said so, not retried in silence.
          // (With keys only a verified ACK counts: then it is refused below.)
          const uint64_t n = ++core_.counters.bad_acks;
          core_.metrics.dispatch_answers.Add({"bad_ack"});
          const std::string why = absl::StrCat(node, " answered with an ACK this station cannot read (",
                                               ack.status().message(), "): its agent speaks another protocol; "
                                               "the command may have run there, its outcome is unknown");
          STEWARD_LOG_WARNING("command {}: {} ({} unreadable ACKs so far)", id, why, n);
          core_.HeardFromLocked(node, now, effects);
          if (core_.model.commands.Generation(id) != gen) break;  // an older send's answer
          core_.model.commands.OnTimeout(id, gen, now);  // no longer in flight
          core_.model.commands.Finish(id, proto::STATE_LOST, RejectAck(id, core_.options().name, why), now,
                                      changes);
          break;
        }
        absl::Status believed = ack.ok() ? CheckAnswer(id, node, *ack) : ack.status();
        if (!believed.ok()) {
          // Not an answer the station can take: sent again later (and said why).
          ++core_.counters.refused_answers;
          core_.metrics.dispatch_answers.Add({"refused"});
          STEWARD_LOG_WARNING("answer of {} for command {} not taken: {}", node, id, believed.message());
          core_.model.commands.OnTimeout(id, gen, now);
          break;
        }
        if (ack->outcome() == proto::OUTCOME_ERROR && ack->stage() != proto::STAGE_RESULT) {
          // The node could not take the command now (it cannot record it: a full disk).
          STEWARD_LOG_WARNING("node {} could not take command {} now: {}", node, id, ack->error());
          core_.HeardFromLocked(node, now, effects);
          core_.model.commands.OnTimeout(id, gen, now);
          break;
        }
        core_.metrics.dispatch_answers.Add({ack->stage() == proto::STAGE_RESULT ? "result" : "received"});
        core_.HeardFromLocked(node, now, effects);
        core_.model.commands.OnReply(id, gen, *ack, now, changes);
        break;
      }
      case RequestPump::Result::kNoResponders:
        core_.metrics.dispatch_answers.Add({"no_responders"});
        // Parked: it goes out again when the node is heard from.
        if (std::optional<Transition> t = core_.model.nodes.NoResponders(node, now)) core_.RecordLocked(*t, effects);
        core_.model.commands.OnNoResponders(id, gen);
        break;
      case RequestPump::Result::kTimeout:
        core_.metrics.dispatch_answers.Add({"timeout"});
        core_.model.commands.OnTimeout(id, gen, now);
        break;
      case RequestPump::Result::kShutdown:
        core_.model.commands.OnShutdown(id, gen);
        break;
    }
    core_.ApplyLocked(changes);
  }
  core_.Run(effects);
}

absl::Status Dispatcher::CheckAnswer(const std::string& id, const std::string& node, const proto::Ack& ack) {
  if (ack.envelope_id() != id) {
    return absl::InvalidArgumentError(absl::StrCat("it answers \"", ack.envelope_id(), "\""));
  }
  const NodeTable::Node* n = core_.model.nodes.Find(node);
  const std::string instance = n == nullptr ? "" : n->info.instance_id();
  if (!instance.empty() && !ack.instance_id().empty() && ack.instance_id() != instance) {
    return absl::FailedPreconditionError(absl::StrCat("it comes from installation ", ack.instance_id(),
                                                      ", not the current one (", instance, ")"));
  }
  if (core_.options().key.has_value()) {
    // Secure mode: the node's own key, the installation named.
    if (n == nullptr || n->info.public_key().empty()) return absl::PermissionDeniedError("the node is not accepted");
    if (ack.instance_id().empty()) return absl::PermissionDeniedError("it names no installation");
    return signing::VerifyAckWith(ack, n->info.public_key());
  }
  return absl::OkStatus();
}

void Dispatcher::HousekeepLocked(absl::Time now, Effects& effects) {
  for (Waiter& w : core_.model.waiters.Expire(now)) effects.ready.push_back(std::move(w));
  Changes changes;
  core_.model.commands.Housekeep(now, changes);
  core_.ApplyLocked(changes);
  // Node monitor: offline after missed heartbeats.
  for (const Transition& t : core_.model.nodes.Monitor(now, core_.options().missed_heartbeats)) {
    core_.RecordLocked(t, effects);
  }
  std::vector<std::pair<std::string, std::string>> rows = core_.model.nodes.TakeDirty();
  if (!rows.empty()) core_.store().Write(ledger::Store::PutNodeRows(std::move(rows)));
}

void Dispatcher::Flush() {
  absl::MutexLock lock(&core_.model.mu);
  Changes changes;
  core_.model.commands.FlushRunning(changes);
  core_.ApplyLocked(changes);
  std::vector<std::pair<std::string, std::string>> rows = core_.model.nodes.TakeDirty();
  if (!rows.empty()) core_.store().Write(ledger::Store::PutNodeRows(std::move(rows)));
}

}  // namespace steward::station
