#include "station/operations.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/protocol.h"
#include "station/ledger/surfaces.h"
#include "subjects/subject.h"

namespace steward::station {

void RecordAction(Core& core, const Call& call, const std::string& action, const std::string& target,
                  const std::string& detail, const std::string& outcome) {
  proto::OperatorAction a;
  a.set_at_unix_ms(NowUnixMillis());
  a.set_operator_(call.op());
  a.set_via(call.via);
  a.set_action(action);
  a.set_target(target);
  a.set_detail(detail);
  a.set_outcome(outcome);
  core.store().Write(ledger::AddAction(std::move(a)));
}

Operations::Operations(Core& core, Rpc& rpc) : core_(core), rpc_(rpc) {
  rpc.Handle<proto::PauseRequest>(kStationPause, [this](const Call& c, proto::PauseRequest r) {
    Pause(c, std::move(r));
  });
  rpc.Handle<proto::MaintenanceRequest>(kStationMaintenance, [this](const Call& c, proto::MaintenanceRequest r) {
    Maintenance(c, std::move(r));
  });
}

bool Operations::Parked(const Model& model, const proto::CommandState& c) {
  if (model.dispatch.paused()) return true;
  const NodeTable::Node* n = model.nodes.Find(c.node());
  return n != nullptr && n->info.maintenance().on();
}

void Operations::Pause(const Call& call, proto::PauseRequest req) {
  proto::DispatchSwitch now_switch;
  {
    absl::MutexLock lock(&core_.model.mu);
    proto::DispatchSwitch& sw = core_.model.dispatch;
    if (sw.paused() != req.pause()) {
      sw.Clear();
      sw.set_paused(req.pause());
      sw.set_reason(req.reason());
      sw.set_by(call.op());
      sw.set_since_unix_ms(NowUnixMillis());
      core_.store().Write(ledger::Store::PutSetting(kDispatchSetting, sw.SerializeAsString()));
      RecordAction(core_, call, req.pause() ? "pause" : "resume", "dispatch", req.reason());
      FeedEvent e;
      e.type = FeedEvent::Type::kDispatch;
      e.on = sw.paused();
      e.text = sw.reason();
      e.by = sw.by();
      core_.feed.Publish(std::move(e));
      if (req.pause()) {
        STEWARD_LOG_WARNING("dispatch PAUSED by {} ({})", call.op(), req.reason());
      } else {
        STEWARD_LOG_INFO("dispatch resumed by {}", call.op());
        // What the switch held back goes out now (a node that is offline or in
        // maintenance parks its commands again).
        const absl::Time now = absl::Now();
        for (const std::string& node : core_.model.nodes.Names()) core_.model.commands.Unpark(node, now);
        if (core_.model.commands.TakeSooner()) core_.model.wake = true;
      }
    }
    now_switch = sw;  // already so: answered with the switch as it is
  }
  rpc_.OkWhenStored(call, now_switch);
}

void Operations::Maintenance(const Call& call, proto::MaintenanceRequest req) {
  if (absl::Status st = subjects::ValidateToken(req.node()); !st.ok()) return rpc_.Reject(call, st.message());
  proto::NodesReply out;
  {
    absl::MutexLock lock(&core_.model.mu);
    NodeTable::Node* node = core_.model.nodes.Find(req.node());
    if (node == nullptr) return rpc_.Reject(call, absl::StrCat("unknown node ", req.node()));
    proto::Maintenance& m = *node->info.mutable_maintenance();
    if (m.on() != req.on() || (req.on() && m.reason() != req.reason())) {
      if (!m.on() || !req.on()) m.set_since_unix_ms(NowUnixMillis());
      m.set_on(req.on());
      m.set_reason(req.reason());
      m.set_by(call.op());
      core_.store().Write(ledger::Store::PutNode(node->info));
      RecordAction(core_, call, req.on() ? "maintenance on" : "maintenance off", req.node(), req.reason());
      FeedEvent e;
      e.type = FeedEvent::Type::kMaintenance;
      e.node = req.node();
      e.on = req.on();
      e.text = req.reason();
      e.by = call.op();
      core_.feed.Publish(std::move(e));
      STEWARD_LOG_INFO("node {}: maintenance {} by {} ({})", req.node(), req.on() ? "on" : "off", call.op(),
                       req.reason());
      if (!req.on()) {
        core_.model.commands.Unpark(req.node(), absl::Now());
        if (core_.model.commands.TakeSooner()) core_.model.wake = true;
      }
    }
    proto::NodeInfo* info = out.add_nodes();
    *info = core_.model.nodes.Info(req.node(), absl::Now());
    info->set_pending(static_cast<int>(core_.model.commands.Pending(req.node())));
    *out.mutable_dispatch() = core_.model.dispatch;
  }
  rpc_.OkWhenStored(call, out);
}

}  // namespace steward::station
