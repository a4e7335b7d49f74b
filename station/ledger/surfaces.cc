#include "station/ledger/surfaces.h"

#include <algorithm>

#include "common/status_macros.h"

namespace steward::station::ledger {

std::string ActionKind(absl::string_view action) {
  return std::string(action.substr(0, action.find(' ')));
}

absl::StatusOr<std::vector<proto::OperatorAction>> ActionsOf(Store& store, const std::string& kind,
                                                             const std::vector<std::string>& targets, int limit) {
  std::vector<std::pair<int64_t, proto::OperatorAction>> rows;  // (seq, action)
  auto read = [&](const std::string& sql, const std::vector<std::string>& args) {
    return store.Rows(sql, args, limit, [&](sqlite::Statement& st) -> absl::Status {
      proto::OperatorAction a;
      if (!a.ParseFromString(st.ColumnBlob(1))) return absl::DataLossError("corrupt operator action");
      rows.emplace_back(st.ColumnInt(0), std::move(a));
      return absl::OkStatus();
    });
  };
  if (targets.empty()) {
    STEWARD_RETURN_IF_ERROR(
        read("SELECT seq, record FROM operator_actions WHERE kind = ?1 ORDER BY seq DESC LIMIT ?2", {kind}));
  }
  for (const std::string& target : targets) {
    STEWARD_RETURN_IF_ERROR(read(
        "SELECT seq, record FROM operator_actions WHERE target = ?1 AND kind = ?2 ORDER BY seq DESC LIMIT ?3", {target, kind}));
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  if (rows.size() > static_cast<size_t>(limit)) rows.resize(static_cast<size_t>(limit));
  std::vector<proto::OperatorAction> out;
  out.reserve(rows.size());
  for (auto& [seq, a] : rows) out.push_back(std::move(a));
  return out;
}

Store::Op AddAction(proto::OperatorAction action) {
  return [action = std::move(action)](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             db.Prepare("INSERT INTO operator_actions(at_ms, record, target, kind) "
                                        "VALUES (?1, ?2, ?3, ?4)"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, action.at_unix_ms()));
    STEWARD_RETURN_IF_ERROR(st.BindBlob(2, action.SerializeAsString()));
    STEWARD_RETURN_IF_ERROR(st.Bind(3, action.target()));
    STEWARD_RETURN_IF_ERROR(st.Bind(4, ActionKind(action.action())));
    return st.Step().status();
  };
}

absl::StatusOr<std::vector<proto::OperatorAction>> Actions(Store& store, int64_t before_ms, const std::string& op,
                                                           const std::string& target, int limit) {
  std::vector<proto::OperatorAction> out;
  STEWARD_RETURN_IF_ERROR(store.Read([&](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement st,
        db.Prepare("SELECT record FROM operator_actions WHERE (?1 = 0 OR at_ms < ?1) ORDER BY seq DESC"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, before_ms));
    while (static_cast<int>(out.size()) < limit) {
      STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      proto::OperatorAction a;
      if (!a.ParseFromString(st.ColumnBlob(0))) return absl::DataLossError("corrupt operator action");
      if (!op.empty() && a.operator_().find(op) == std::string::npos) continue;
      if (!target.empty() && a.target() != target) continue;
      out.push_back(std::move(a));
    }
    return absl::OkStatus();
  }));
  return out;
}

Store::Op PutToken(std::string hash, proto::TokenInfo info) {
  return [hash = std::move(hash), info = std::move(info)](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             db.Prepare("INSERT INTO http_tokens(id, hash, info) VALUES (?1, ?2, ?3)"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, info.id()));
    STEWARD_RETURN_IF_ERROR(st.BindBlob(2, hash));
    STEWARD_RETURN_IF_ERROR(st.BindBlob(3, info.SerializeAsString()));
    return st.Step().status();
  };
}

Store::Op DeleteToken(std::string id) {
  return [id = std::move(id)](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("DELETE FROM http_tokens WHERE id = ?1"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, id));
    return st.Step().status();
  };
}

absl::StatusOr<std::vector<std::pair<std::string, proto::TokenInfo>>> Tokens(Store& store) {
  std::vector<std::pair<std::string, proto::TokenInfo>> out;
  STEWARD_RETURN_IF_ERROR(store.Read([&](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("SELECT hash, info FROM http_tokens ORDER BY id"));
    while (true) {
      STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return absl::OkStatus();
      proto::TokenInfo info;
      if (!info.ParseFromString(st.ColumnBlob(1))) return absl::DataLossError("corrupt token record");
      out.emplace_back(st.ColumnBlob(0), std::move(info));
    }
  }));
  return out;
}

absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> NodeEvents(Store& store, const std::string& node,
                                                                       const std::string& method, int limit) {
  std::vector<std::pair<int64_t, std::string>> out;
  STEWARD_RETURN_IF_ERROR(store.Read([&](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement st,
        db.Prepare("SELECT at_ms, payload FROM events WHERE node = ?1 AND method = ?2 ORDER BY at_ms DESC LIMIT ?3"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, node));
    STEWARD_RETURN_IF_ERROR(st.Bind(2, method));
    STEWARD_RETURN_IF_ERROR(st.Bind(3, int64_t{limit}));
    while (true) {
      STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return absl::OkStatus();
      out.emplace_back(st.ColumnInt(0), st.ColumnBlob(1));
    }
  }));
  return out;
}

}  // namespace steward::station::ledger
