#include "station/queries.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/protocol.h"
#include "station/ledger/log_query.h"
#include "station/reply_fit.h"

namespace steward::station {

Queries::Queries(Core& core, Rpc& rpc) : core_(core), rpc_(rpc) {
  rpc.Handle<proto::NodesRequest>(kStationNodes, [this](const Call& c, proto::NodesRequest r) {
    Nodes(c, std::move(r));
  });
  rpc.Handle<proto::ShowRequest>(kStationShow, [this](const Call& c, proto::ShowRequest r) {
    Show(c, std::move(r));
  });
  rpc.Handle<proto::HistoryRequest>(kStationHistory, [this](const Call& c, proto::HistoryRequest r) {
    History(c, std::move(r));
  });
  rpc.Handle<proto::LogsRequest>(kStationLogs, [this](const Call& c, proto::LogsRequest r) {
    Logs(c, std::move(r));
  });
}

void Queries::Overlay(Core& core, std::vector<proto::CommandState>& rows) {
  absl::MutexLock lock(&core.model.mu);
  for (proto::CommandState& row : rows) {
    const proto::CommandState* s = core.model.commands.Find(row.id());
    if (s == nullptr || s->state() == row.state()) continue;
    if (core.model.commands.OutputInLedgerOnly(row.id())) {
      row.set_state(s->state());
    } else {
      row = *s;
    }
  }
}

proto::StationStatus Queries::Health(const std::string& name, const ledger::Store& store) {
  const ledger::Store::Health health = store.health();
  proto::StationStatus out;
  out.set_name(name);
  out.set_degraded(health.degraded);
  out.set_reason(health.reason);
  out.set_degraded_since_unix_ms(health.since_unix_ms);
  out.set_failed_writes(health.failed_writes);
  return out;
}

void Queries::Nodes(const Call& call, proto::NodesRequest req) {
  if (req.limit() < 0) return rpc_.Reject(call, "limit must not be negative");
  const bool paged = req.paged() && req.node().empty();
  proto::NodesReply out;
  *out.mutable_station() = Health(core_.options().name, core_.store());
  // A page's room for its node rows: one reply, less what the rest of it takes.
  const size_t limit = core_.ReplyLimit();
  size_t room = limit > out.ByteSizeLong() + 256 ? limit - out.ByteSizeLong() - 256 : 0;
  {
    absl::MutexLock lock(&core_.model.mu);
    const absl::Time now = absl::Now();
    std::vector<std::string> names;
    if (req.node().empty()) {
      names = core_.model.nodes.Names();
    } else if (core_.model.nodes.Find(req.node()) != nullptr) {
      names = {req.node()};
    }
    auto from = names.begin();
    if (paged) from = std::upper_bound(names.begin(), names.end(), req.after());
    for (auto it = from; it != names.end(); ++it) {
      proto::NodeInfo info = core_.model.nodes.Info(*it, now);
      info.set_pending(static_cast<int>(core_.model.commands.Pending(*it)));
      if (paged) {
        // (A row's bytes in the reply: its own, its length and its tag.) A page holds at
        // least one row.
        const size_t bytes = info.ByteSizeLong() + 6;
        if (out.nodes_size() > 0 && (bytes > room || (req.limit() > 0 && out.nodes_size() >= req.limit()))) {
          out.set_more(true);
          break;
        }
        room -= std::min(room, bytes);
      }
      *out.add_nodes() = std::move(info);
    }
    *out.mutable_dispatch() = core_.model.dispatch;
  }
  if (!req.node().empty() && out.nodes_size() == 0) {
    return rpc_.Reject(call, absl::StrCat("unknown node ", req.node()));
  }
  if (!req.node().empty()) {
    absl::StatusOr<std::vector<proto::CommandState>> recent =
        core_.store().History(req.node(), proto::STATE_UNSPECIFIED, 10);
    if (recent.ok()) {
      Overlay(core_, *recent);
      for (proto::CommandState& s : *recent) *out.add_recent() = std::move(s);
    }
    // The node row comes first; the recent commands get the room that is left.
    proto::NodesReply without_recent = out;
    without_recent.clear_recent();
    const size_t others = without_recent.ByteSizeLong();
    FitStates(out.mutable_recent(), limit > others ? limit - others : 0, /*may_drop=*/true);
  }
  // A fleet too large for one message is told so, never left without an answer. (The
  // HTTP API's calls are in-process: no message carries their reply.)
  if (const size_t size = out.ByteSizeLong(); call.via != "http" && size > core_.ReplyLimit()) {
    return rpc_.Reject(call, absl::StrCat(out.nodes_size(), " nodes take ", size, " bytes, more than one reply may (",
                                          core_.ReplyLimit(), "): ask for one node, take them in pages (a newer "
                                          "stewardctl does), or use the HTTP API (GET /api/v1/nodes pages, "
                                          "/api/v1/fleet counts)"));
  }
  rpc_.Ok(call, out);
}

void Queries::Show(const Call& call, proto::ShowRequest req) {
  std::vector<std::string> ids(req.ids().begin(), req.ids().end());
  if (ids.empty() && req.request_id().empty()) {
    return rpc_.Reject(call, "no command id and no request id: nothing to show");
  }
  if (!req.request_id().empty()) {
    absl::StatusOr<std::vector<proto::CommandState>> group = core_.store().ByRequest(req.request_id());
    if (!group.ok()) return rpc_.Error(call, group.status().message());
    if (group->empty()) return rpc_.Reject(call, absl::StrCat("unknown request ", req.request_id()));
    for (const proto::CommandState& s : *group) ids.push_back(s.id());
  }
  absl::StatusOr<std::vector<proto::CommandState>> states = core_.States(ids);
  if (!states.ok()) return rpc_.Fail(call, states.status());
  proto::CommandStates out;
  for (proto::CommandState& s : *states) *out.add_commands() = std::move(s);
  out.set_incomplete(FitStates(out.mutable_commands(), core_.ReplyLimit(), /*may_drop=*/true));
  rpc_.Ok(call, out);
}

void Queries::History(const Call& call, proto::HistoryRequest req) {
  proto::State state = proto::STATE_UNSPECIFIED;
  if (!req.state().empty()) {
    std::optional<proto::State> s = StateFromName(req.state());
    if (!s.has_value()) {
      return rpc_.Reject(call, absl::StrCat("unknown state \"", req.state(), "\" (one of: ", StateNames(), ")"));
    }
    state = *s;
  }
  absl::StatusOr<std::vector<proto::CommandState>> rows = core_.store().Commands(
      {.node = req.node(), .state = state, .request_id = req.request_id(), .before = req.before(),
       .since_unix_ms = req.since_unix_ms(), .until_unix_ms = req.until_unix_ms(),
       .limit = std::clamp(req.limit(), 1, 10000)});
  if (!rows.ok()) return rpc_.Error(call, rows.status().message());
  Overlay(core_, *rows);
  proto::CommandStates out;
  for (proto::CommandState& s : *rows) *out.add_commands() = std::move(s);
  out.set_incomplete(FitStates(out.mutable_commands(), core_.ReplyLimit(), /*may_drop=*/true));
  rpc_.Ok(call, out);
}

void Queries::Logs(const Call& call, proto::LogsRequest req) {
  absl::StatusOr<proto::LogsReply> out =
      ledger::QueryLogs(core_.store(), req, ledger::LogQueryLimits{.max_reply_bytes = core_.ReplyLimit()});
  if (!out.ok()) return rpc_.Fail(call, out.status());
  rpc_.Ok(call, *out);
}

}  // namespace steward::station
