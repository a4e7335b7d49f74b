#include "station/dispatcher.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/protocol.h"
#include "station/ledger/log_store.h"
#include "subjects/subject.h"

namespace steward::station {
namespace {

constexpr absl::Duration kHousekeeping = absl::Milliseconds(50);

}  // namespace

Gate Dispatcher::GateOf(const proto::CommandState& c) const {
  // A rollout's batch not released yet, a splayed run's command before its time.
  if (core_.model.jobs.Held(c.id())) return Gate::kPark;
  if (core_.options().key.has_value() && c.command().method() != kMethodSetAcl) {
    // Secure mode: a node's commands wait until an operator accepted its key, so their
    // results can be verified and recorded. Accepting it unparks them.
    const NodeTable::Node* n = core_.model.nodes.Find(c.node());
    if (n == nullptr || n->info.public_key().empty()) return Gate::kPark;
  }
  return Gate::kSend;
}

void Dispatcher::Run(const absl::Notification& stop) {
  absl::Time next_prune = absl::Now() + absl::Seconds(5);
  absl::Time next_housekeeping = absl::Now();
  while (!stop.HasBeenNotified()) {
    if (absl::Now() >= next_prune) {
      const StationOptions& o = core_.options();
      core_.store().Write(ledger::PruneLogs(absl::ToUnixMillis(absl::Now() - o.log_retention), o.log_max_lines));
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
          now, [this](const proto::CommandState& c) ABSL_NO_THREAD_SAFETY_ANALYSIS { return GateOf(c); },
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
  absl::Status st = core_.pump().Send(subject->ToString(), d.command.SerializeAsString(), core_.options().ack_timeout,
                                      [this, id, node](RequestPump::Result r, nats::MsgPtr m) {
                                        OnAnswer(id, node, r, std::move(m));
                                      });
  if (!st.ok()) OnAnswer(id, node, RequestPump::Result::kTimeout, nullptr);
}

void Dispatcher::OnAnswer(const std::string& id, const std::string& node, RequestPump::Result r,
                          nats::MsgPtr msg) {
  Effects effects;
  {
    absl::MutexLock lock(&core_.model.mu);
    const absl::Time now = absl::Now();
    Changes changes;
    switch (r) {
      case RequestPump::Result::kReply: {
        absl::StatusOr<proto::Ack> ack = DecodeAck(nats::Data(msg.get()));
        if (!ack.ok() || (!ack->envelope_id().empty() && ack->envelope_id() != id)) {
          core_.model.commands.OnTimeout(id, now);
          break;
        }
        core_.HeardFromLocked(node, now, effects);
        ack->set_envelope_id(id);
        core_.model.commands.OnReply(id, *ack, now, changes);
        break;
      }
      case RequestPump::Result::kNoResponders:
        // Parked: it goes out again when the node is heard from.
        if (std::optional<Transition> t = core_.model.nodes.NoResponders(node, now)) core_.RecordLocked(*t, effects);
        core_.model.commands.OnNoResponders(id);
        break;
      case RequestPump::Result::kTimeout:
        core_.model.commands.OnTimeout(id, now);
        break;
      case RequestPump::Result::kShutdown:
        core_.model.commands.OnShutdown(id);
        break;
    }
    core_.ApplyLocked(changes);
  }
  core_.Run(effects);
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
  for (proto::NodeInfo& info : core_.model.nodes.TakeDirty()) core_.store().Write(ledger::Store::PutNode(std::move(info)));
}

void Dispatcher::Flush() {
  absl::MutexLock lock(&core_.model.mu);
  Changes changes;
  core_.model.commands.FlushRunning(changes);
  core_.ApplyLocked(changes);
  for (proto::NodeInfo& info : core_.model.nodes.TakeDirty()) {
    core_.store().Write(ledger::Store::PutNode(std::move(info)));
  }
}

}  // namespace steward::station
