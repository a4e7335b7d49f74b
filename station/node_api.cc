#include "station/node_api.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "station/operations.h"
#include "subjects/subject.h"

namespace steward::station {
namespace {

constexpr int64_t kMaxWaitMs = 3600 * 1000;

}  // namespace

NodeApi::NodeApi(Core& core, Rpc& rpc) : core_(core), rpc_(rpc) {
  rpc.Handle<proto::PingRequest>(kStationPing, [this](const Call& c, proto::PingRequest r) {
    Ping(c, std::move(r));
  });
  rpc.Handle<proto::ForgetRequest>(kStationForget, [this](const Call& c, proto::ForgetRequest r) {
    Forget(c, std::move(r));
  });
}

void NodeApi::Ping(const Call& call, proto::PingRequest req) {
  const std::string& station = core_.options().name;
  absl::StatusOr<subjects::Subject> subject =
      subjects::Make(req.node(), subjects::Kind::kCommand, kMethodPing, station);
  if (!subject.ok()) return rpc_.Reject(call, subject.status().message());
  proto::Envelope ping = NewEnvelope(station, req.node(), proto::KIND_COMMAND, kMethodPing, station);
  const absl::Duration wait =
      absl::Milliseconds(std::clamp<int64_t>(req.wait_ms() > 0 ? req.wait_ms() : 5000, 1, kMaxWaitMs));
  ping.set_expires_unix_ms(NowUnixMillis() + absl::ToInt64Milliseconds(wait));
  if (core_.options().key.has_value()) {
    if (absl::Status st = signing::SignEnvelope(ping, *core_.options().key); !st.ok()) {
      return rpc_.Error(call, absl::StrCat("signing the ping: ", st.message()));
    }
  }
  if (req.direct() && !call.respond && !call.reply.empty() && Online(req.node())) {
    // The node's ACK goes straight to the caller (a node may answer the reply subject
    // of what it received: allow_responses, granted to that node alone). The station
    // does not see it, so it is no sign of life here; heartbeats are. Only to a node
    // believed online: the broker's "no responders" would go to the station, not to
    // the caller, so an offline node is asked the station's way and reported so.
    if (absl::Status st = nats::Publish(core_.conn(), subject->ToString(), ping.SerializeAsString(), call.reply);
        !st.ok()) {
      rpc_.Error(call, st.message());
    }
    return;
  }
  const absl::Time sent = absl::Now();
  auto on_answer = [this, sent, call, node = req.node(), wait](RequestPump::Result r, nats::MsgPtr msg) {
    if (r != RequestPump::Result::kReply) {
      return rpc_.Error(call, r == RequestPump::Result::kNoResponders
                                  ? absl::StrCat("node ", node, " is offline (no responders)")
                                  : absl::StrCat("node ", node, " did not answer within ",
                                                 absl::FormatDuration(wait)));
    }
    absl::StatusOr<proto::Ack> ack = DecodeAck(nats::Data(msg.get()));
    if (!ack.ok() || ack->outcome() != proto::OUTCOME_SUCCEEDED) {
      return rpc_.Reject(call, absl::StrCat("rejected by ", node, ": ",
                                            ack.ok() ? absl::string_view(ack->error()) : ack.status().message()));
    }
    proto::PingReply pong;
    pong.set_node(node);
    pong.set_station_rtt_us(absl::ToInt64Microseconds(absl::Now() - sent));
    Effects effects;
    {
      absl::MutexLock lock(&core_.model.mu);
      // A sign of life, when it can be believed: from the installation on record (a
      // reinstalled unit answers pings before its first hello is handled; that hello,
      // not the ping, brings it online and settles what went to the earlier one), and
      // in secure mode signed by the node's pinned key (a pending node answers pings,
      // but is not online by them).
      const NodeTable::Node* n = core_.model.nodes.Find(node);
      const bool current = n == nullptr || n->info.instance_id().empty() || ack->instance_id().empty() ||
                           ack->instance_id() == n->info.instance_id();
      const bool believed =
          current && (!core_.options().key.has_value() ||
                      (n != nullptr && !n->info.public_key().empty() && n->info.status() != proto::NODE_PENDING &&
                       signing::VerifyAckWith(*ack, n->info.public_key()).ok()));
      if (believed) core_.HeardFromLocked(node, absl::Now(), effects);
    }
    rpc_.Ok(call, pong);
    core_.Run(effects);
  };
  if (absl::Status st = core_.pump().Send(subject->ToString(), ping.SerializeAsString(), wait, on_answer);
      !st.ok()) {
    rpc_.Error(call, st.message());
  }
}

bool NodeApi::Online(const std::string& node) {
  absl::MutexLock lock(&core_.model.mu);
  const NodeTable::Node* n = core_.model.nodes.Find(node);
  return n != nullptr && n->info.status() == proto::NODE_ONLINE;
}

void NodeApi::Forget(const Call& call, proto::ForgetRequest req) {
  const std::string& name = req.node();
  std::string refused;
  proto::AclReply out;
  {
    absl::MutexLock lock(&core_.model.mu);
    if (core_.model.nodes.Find(name) == nullptr) {
      refused = absl::StrCat("unknown node ", name);
    } else {
      std::vector<std::string> unfinished = core_.model.commands.Unfinished(name);
      std::sort(unfinished.begin(), unfinished.end());
      if (!unfinished.empty() && !req.cancel()) {
        refused = absl::StrCat("node ", name, " has ", unfinished.size(), " unfinished commands (",
                               absl::StrJoin(unfinished, ", "),
                               "): cancel them with --cancel, or wait until they end");
      }
      for (const std::string& id : unfinished) {
        if (!refused.empty()) break;
        if (absl::Status st = core_.model.commands.CanCancel(id); !st.ok()) {
          refused = absl::StrCat("node ", name, " cannot be forgotten now: ", st.message());
        }
      }
      if (refused.empty()) {
        Changes changes;
        const absl::Time now = absl::Now();
        for (const std::string& id : unfinished) {
          (void)core_.model.commands.Cancel(id, now, changes);  // checked above
          out.add_lines(absl::StrCat("canceled ", id));
        }
        core_.ApplyLocked(changes);
        const bool online = core_.model.nodes.Find(name)->info.status() == proto::NODE_ONLINE;
        core_.model.nodes.Forget(name);
        core_.store().Write(ledger::Store::DeleteNode(name));
        out.add_lines(absl::StrCat("forgot ", name,
                                   online ? " (it is online: it comes back with its next heartbeat)" : ""));
        STEWARD_LOG_INFO("node {} forgotten by {}", name, call.op());
        RecordAction(core_, call, "forget", name,
                     unfinished.empty() ? "" : absl::StrCat("canceled ", absl::StrJoin(unfinished, ", ")));
      }
    }
  }
  if (!refused.empty()) {
    if (!absl::StartsWith(refused, "unknown node")) RecordAction(core_, call, "forget", name, "", refused);
    return rpc_.Reject(call, refused);
  }
  rpc_.OkWhenStored(call, out);
}

}  // namespace steward::station
