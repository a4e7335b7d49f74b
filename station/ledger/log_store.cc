#include "station/ledger/log_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace steward::station::ledger {

Store::Op AddLogs(std::string node, std::string event_id, proto::LogBatch batch,
                  std::shared_ptr<LogCounts> counts) {
  return [node = std::move(node), event_id = std::move(event_id), batch = std::move(batch),
          counts](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement st,
        db.Prepare("INSERT OR IGNORE INTO logs(event_id, idx, node, domain, severity, received_us, "
                   "stored_ms, message, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    for (int i = 0; i < batch.records_size(); ++i) {
      const proto::LogRecord& r = batch.records(i);
      STEWARD_RETURN_IF_ERROR(st.Reset());
      STEWARD_RETURN_IF_ERROR(st.Bind(1, event_id));
      STEWARD_RETURN_IF_ERROR(st.Bind(2, int64_t{i}));
      STEWARD_RETURN_IF_ERROR(st.Bind(3, node));
      STEWARD_RETURN_IF_ERROR(st.Bind(4, r.domain()));
      STEWARD_RETURN_IF_ERROR(st.Bind(5, int64_t{r.severity()}));
      STEWARD_RETURN_IF_ERROR(st.Bind(6, r.received_unix_us()));
      STEWARD_RETURN_IF_ERROR(st.Bind(7, now_ms));
      STEWARD_RETURN_IF_ERROR(st.BindBlob(8, r.message()));
      STEWARD_RETURN_IF_ERROR(st.BindBlob(9, r.SerializeAsString()));
      STEWARD_RETURN_IF_ERROR(st.Step().status());
      if (counts != nullptr && db.Changes() > 0) {
        ++counts->stored;
        if (r.severity() >= 0 && r.severity() <= 3) ++counts->errors;
      }
    }
    return absl::OkStatus();
  };
}

Store::Op PruneLogs(int64_t older_than_ms, int64_t max_lines) {
  return [=](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement by_age,
                             db.Prepare("DELETE FROM logs WHERE stored_ms < ?1"));
    STEWARD_RETURN_IF_ERROR(by_age.Bind(1, older_than_ms));
    STEWARD_RETURN_IF_ERROR(by_age.Step().status());
    // Size: keep the newest max_lines (by arrival).
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement by_size,
        db.Prepare("DELETE FROM logs WHERE seq <= (SELECT MAX(seq) FROM logs) - ?1"));
    STEWARD_RETURN_IF_ERROR(by_size.Bind(1, max_lines));
    return by_size.Step().status();
  };
}

absl::StatusOr<proto::LogsReply> QueryLogs(Store& store, const proto::LogsRequest& req) {
  const bool follow = !req.after().empty();
  const int64_t limit = req.limit() > 0 ? std::min(req.limit(), 100000) : 100;
  int64_t after = 0;
  if (follow && !absl::SimpleAtoi(req.after(), &after)) {
    return absl::InvalidArgumentError("bad logs cursor");
  }
  const std::string where =
      "(?1 = '' OR node = ?1) AND (?2 = '' OR domain = ?2) AND received_us >= ?3 "
      "AND (?4 < 0 OR (severity >= 0 AND severity <= ?4)) AND (?5 = '' OR instr(message, ?5) > 0)";
  const std::string sql =
      follow ? "SELECT seq, node, record FROM logs WHERE " + where + " AND seq > ?6 ORDER BY seq LIMIT ?7"
             : "SELECT seq, node, record FROM (SELECT seq, node, record, event_id, idx FROM logs WHERE " +
                   where + " ORDER BY event_id DESC, idx DESC LIMIT ?7) ORDER BY event_id, idx";
  proto::LogsReply out;
  STEWARD_RETURN_IF_ERROR(store.Read([&](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare(sql));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, req.node()));
    STEWARD_RETURN_IF_ERROR(st.Bind(2, req.domain()));
    STEWARD_RETURN_IF_ERROR(st.Bind(3, req.since_unix_ms() * 1000));
    STEWARD_RETURN_IF_ERROR(st.Bind(4, int64_t{req.max_severity() >= 7 ? -1 : req.max_severity()}));
    STEWARD_RETURN_IF_ERROR(st.BindBlob(5, req.grep()));
    STEWARD_RETURN_IF_ERROR(st.Bind(6, after));
    STEWARD_RETURN_IF_ERROR(st.Bind(7, limit));
    int64_t cursor = after;
    while (true) {
      STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      proto::LogEntry* e = out.add_entries();
      const int64_t seq = st.ColumnInt(0);
      cursor = std::max(cursor, seq);
      e->set_cursor(absl::StrCat(seq));
      e->set_node(st.ColumnText(1));
      if (!e->mutable_record()->ParseFromString(st.ColumnBlob(2))) {
        return absl::DataLossError("corrupt log record");
      }
    }
    if (!follow) {
      // A follower starts after everything stored so far.
      STEWARD_ASSIGN_OR_RETURN(sqlite::Statement mx, db.Prepare("SELECT COALESCE(MAX(seq), 0) FROM logs"));
      STEWARD_ASSIGN_OR_RETURN(bool row, mx.Step());
      if (row) cursor = mx.ColumnInt(0);
    }
    out.set_cursor(absl::StrCat(cursor));
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace steward::station::ledger
