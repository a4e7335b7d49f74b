// Log store: writes, retention, the migration's SQL function, errors per minute.
#include "station/ledger/log_store.h"

#include <algorithm>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "station/ledger/log_row.h"

namespace steward::station::ledger {
namespace {

// Lines (and batches) one retention transaction removes at most: other ledger writes
// wait meanwhile.
constexpr int64_t kPruneChunk = 20000;
// Batches are stored in order, but the clock may step back a little: the scan for
// recent ones goes this far past the first older one.
constexpr int64_t kClockSlackMs = 60'000;

bool IsError(int severity) { return severity >= 0 && severity <= 3; }

// steward_log_field(record, name): a column of ToRow(record) ("host", "app", "ts_us",
// "flags" or "rest"); NULL when the record does not parse.
void LogFieldFunction(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  if (argc != 2) return sqlite3_result_null(ctx);
  proto::LogRecord r;
  const void* blob = sqlite3_value_blob(argv[0]);
  if (!r.ParseFromArray(blob, sqlite3_value_bytes(argv[0]))) return sqlite3_result_null(ctx);
  const LogRow row = ToRow(std::move(r));
  const char* name = reinterpret_cast<const char*>(sqlite3_value_text(argv[1]));
  const std::string field = name != nullptr ? name : "";
  if (field == "host") return sqlite3_result_text(ctx, row.host.data(), static_cast<int>(row.host.size()), SQLITE_TRANSIENT);
  if (field == "app") return sqlite3_result_text(ctx, row.app.data(), static_cast<int>(row.app.size()), SQLITE_TRANSIENT);
  if (field == "ts_us") return sqlite3_result_int64(ctx, row.ts_us);
  if (field == "flags") return sqlite3_result_int64(ctx, row.flags);
  if (field == "rest") return sqlite3_result_blob(ctx, row.rest.data(), static_cast<int>(row.rest.size()), SQLITE_TRANSIENT);
  sqlite3_result_null(ctx);
}

// One int64 from `sql` (bound to `args`); `fallback` when there is no row or it is NULL.
absl::StatusOr<int64_t> QueryInt(sqlite::Database& db, absl::string_view sql, std::vector<int64_t> args,
                                 int64_t fallback) {
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare(sql));
  for (size_t i = 0; i < args.size(); ++i) STEWARD_RETURN_IF_ERROR(st.Bind(static_cast<int>(i + 1), args[i]));
  STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
  return row && !st.ColumnIsNull(0) ? st.ColumnInt(0) : fallback;
}

absl::Status Run(sqlite::Database& db, const std::string& sql, std::vector<int64_t> args) {
  return QueryInt(db, sql, std::move(args), 0).status();
}

// The next seq log_lines will use (AUTOINCREMENT: never reused, even after every line
// was pruned).
absl::StatusOr<int64_t> NextSeq(sqlite::Database& db) {
  STEWARD_ASSIGN_OR_RETURN(int64_t last,
                           QueryInt(db, "SELECT seq FROM sqlite_sequence WHERE name = 'log_lines'", {}, 0));
  return last + 1;
}

// Removes lines below `cut`, up to kPruneChunk of them, and the index parts left with
// no line. The index entries of the lines removed from a part that keeps some stay
// until the part goes: removing them one by one would cost as much as indexing them
// did (the part's messages tokenized again), which at the line cap is paid for every
// line stored. They cost nothing meanwhile: a search looks each candidate up in
// log_lines and skips the ones gone, and seq is never reused (AUTOINCREMENT), so an
// entry never points at another line. Returns whether lines below the cut remain.
absl::StatusOr<bool> PruneLines(sqlite::Database& db, int64_t cut, int64_t next) {
  STEWARD_ASSIGN_OR_RETURN(const int64_t oldest, QueryInt(db, "SELECT MIN(seq) FROM log_lines", {}, next));
  const int64_t until = std::min(cut, oldest + kPruneChunk);
  if (oldest < cut) STEWARD_RETURN_IF_ERROR(Run(db, "DELETE FROM log_lines WHERE seq < ?1", {until}));
  // Every line of a part is below the next part's first_seq (or `next`, for the last).
  const int64_t remaining = std::max(until, oldest);
  STEWARD_ASSIGN_OR_RETURN(const std::vector<IndexPart> parts, IndexParts(db));
  for (size_t i = 0; i < parts.size(); ++i) {
    const int64_t end = i + 1 < parts.size() ? parts[i + 1].first_seq : next;
    if (end > remaining) break;
    STEWARD_RETURN_IF_ERROR(DropIndexPart(db, parts[i]));  // no line of it is left
  }
  return until < cut;
}

// One retention step; *more when there is more to remove.
Store::Op PruneStep(int64_t older_than_ms, int64_t max_lines, std::shared_ptr<bool> more) {
  return [=](sqlite::Database& db) -> absl::Status {
    *more = false;
    STEWARD_ASSIGN_OR_RETURN(const int64_t next, NextSeq(db));
    // By age: lines before the first batch stored since the cut-off.
    STEWARD_ASSIGN_OR_RETURN(
        const int64_t age_cut,
        QueryInt(db, "SELECT first_seq FROM log_batches WHERE stored_ms >= ?1 ORDER BY id LIMIT 1", {older_than_ms},
                 next));
    STEWARD_ASSIGN_OR_RETURN(
        const int64_t age_batch_cut,
        QueryInt(db, "SELECT id FROM log_batches WHERE stored_ms >= ?1 ORDER BY id LIMIT 1", {older_than_ms},
                 std::numeric_limits<int64_t>::max()));
    // By count: all but the newest max_lines (seq has no gaps but those pruned below).
    const int64_t cut = std::max(age_cut, next - max_lines);
    STEWARD_ASSIGN_OR_RETURN(bool lines_left, PruneLines(db, cut, next));
    *more = lines_left;
    // Batches: as old as the cut-off, or beyond the newest max_lines of them.
    STEWARD_ASSIGN_OR_RETURN(const int64_t last_batch, QueryInt(db, "SELECT MAX(id) FROM log_batches", {}, 0));
    const int64_t batch_cut = std::max(std::min(age_batch_cut, last_batch + 1), last_batch - max_lines + 1);
    STEWARD_ASSIGN_OR_RETURN(const int64_t first_batch,
                             QueryInt(db, "SELECT MIN(id) FROM log_batches", {}, last_batch + 1));
    if (first_batch < batch_cut) {
      const int64_t until = std::min(batch_cut, first_batch + kPruneChunk);
      STEWARD_RETURN_IF_ERROR(Run(db, "DELETE FROM log_batches WHERE id < ?1", {until}));
      *more = *more || until < batch_cut;
    }
    return absl::OkStatus();
  };
}

}  // namespace

absl::Status RegisterLogFunctions(sqlite::Database& db) {
  STEWARD_RETURN_IF_ERROR(RegisterTrigramTokenizer(db.raw()));
  return sqlite::ToStatus(db.raw(),
                          sqlite3_create_function_v2(db.raw(), "steward_log_field", 2,
                                                     SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                                                     &LogFieldFunction, nullptr, nullptr, nullptr),
                          "register steward_log_field");
}

Store::Op AddLogs(std::string node, std::string event_id, proto::LogBatch batch,
                  std::shared_ptr<LogCounts> counts, int64_t part_lines) {
  return [node = std::move(node), event_id = std::move(event_id), batch = std::move(batch),
          rows = std::vector<LogRow>(), counts, part_lines](sqlite::Database& db) mutable -> absl::Status {
    if (counts != nullptr) *counts = LogCounts{};
    // The rows are made once, moving the records' strings: a group that had a write fail
    // part-way runs this again (Store::WriterLoop), and the batch is empty then.
    if (rows.empty() && batch.records_size() > 0) {
      rows.reserve(static_cast<size_t>(batch.records_size()));
      for (proto::LogRecord& r : *batch.mutable_records()) rows.push_back(ToRow(std::move(r)));
      batch.clear_records();
    }
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement seen, db.Prepare("SELECT 1 FROM log_batches WHERE event_id = ?1"));
    STEWARD_RETURN_IF_ERROR(seen.Bind(1, event_id));
    STEWARD_ASSIGN_OR_RETURN(bool repeat, seen.Step());
    if (repeat) return absl::OkStatus();
    STEWARD_ASSIGN_OR_RETURN(int64_t first_seq, NextSeq(db));
    // The index part the batch goes into: the newest, unless it is full (or there is none).
    STEWARD_ASSIGN_OR_RETURN(const std::vector<IndexPart> parts, IndexParts(db));
    IndexPart part;
    if (parts.empty() || first_seq - parts.back().first_seq >= part_lines) {
      STEWARD_ASSIGN_OR_RETURN(part, AddIndexPart(db, parts.empty() ? 1 : parts.back().id + 1, first_seq));
    } else {
      part = parts.back();
    }
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement st,
        db.Prepare("INSERT INTO log_lines(node, domain, host, app, severity, ts_us, received_us, flags, "
                   "message, rest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
    int64_t stored = 0;
    int64_t errors = 0;
    for (const LogRow& row : rows) {
      if (IsError(static_cast<int>(row.severity))) ++errors;
      STEWARD_RETURN_IF_ERROR(st.Reset());
      STEWARD_RETURN_IF_ERROR(st.Bind(1, node));
      STEWARD_RETURN_IF_ERROR(st.Bind(2, row.domain));
      STEWARD_RETURN_IF_ERROR(st.Bind(3, row.host));
      STEWARD_RETURN_IF_ERROR(st.Bind(4, row.app));
      STEWARD_RETURN_IF_ERROR(st.Bind(5, row.severity));
      STEWARD_RETURN_IF_ERROR(st.Bind(6, row.ts_us));
      STEWARD_RETURN_IF_ERROR(st.Bind(7, row.received_us));
      STEWARD_RETURN_IF_ERROR(st.Bind(8, row.flags));
      STEWARD_RETURN_IF_ERROR(st.BindBlob(9, row.message));
      STEWARD_RETURN_IF_ERROR(st.BindBlob(10, row.rest));
      STEWARD_RETURN_IF_ERROR(st.Step().status());
      if (stored++ == 0) first_seq = sqlite3_last_insert_rowid(db.raw());
    }
    // The batch's messages into the index, in one statement (per row, FTS5 would flush
    // its pending terms each time).
    if (stored > 0) {
      STEWARD_RETURN_IF_ERROR(Run(db,
                                  absl::StrCat("INSERT INTO ", part.table(),
                                               "(rowid, message) SELECT seq, message FROM log_lines WHERE seq >= ?1"),
                                  {first_seq}));
    }
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement add,
                             db.Prepare("INSERT INTO log_batches(event_id, node, first_seq, stored_ms, errors) "
                                        "VALUES (?1, ?2, ?3, ?4, ?5)"));
    STEWARD_RETURN_IF_ERROR(add.Bind(1, event_id));
    STEWARD_RETURN_IF_ERROR(add.Bind(2, node));
    STEWARD_RETURN_IF_ERROR(add.Bind(3, first_seq));
    STEWARD_RETURN_IF_ERROR(add.Bind(4, absl::ToUnixMillis(absl::Now())));
    STEWARD_RETURN_IF_ERROR(add.Bind(5, errors));
    STEWARD_RETURN_IF_ERROR(add.Step().status());
    if (counts != nullptr) *counts = LogCounts{.fresh = true, .stored = stored, .errors = errors};
    return absl::OkStatus();
  };
}

void PruneLogs(Store& store, int64_t older_than_ms, int64_t max_lines) {
  auto more = std::make_shared<bool>(false);
  store.Write(PruneStep(older_than_ms, max_lines, more), [&store, older_than_ms, max_lines, more](absl::Status st) {
    if (st.ok() && *more) PruneLogs(store, older_than_ms, max_lines);
  });
}

absl::StatusOr<std::vector<ErrorMinute>> RecentErrors(Store& store, int64_t since_ms) {
  std::map<std::pair<std::string, int64_t>, int64_t> by_minute;
  STEWARD_RETURN_IF_ERROR(store.Read([&](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             db.Prepare("SELECT node, stored_ms, errors FROM log_batches ORDER BY id DESC"));
    while (true) {
      STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return absl::OkStatus();
      const int64_t stored_ms = st.ColumnInt(1);
      if (stored_ms < since_ms - kClockSlackMs) return absl::OkStatus();
      if (stored_ms >= since_ms && st.ColumnInt(2) > 0) {
        by_minute[{st.ColumnText(0), stored_ms / 60'000}] += st.ColumnInt(2);
      }
    }
  }));
  std::vector<ErrorMinute> out;
  for (const auto& [key, errors] : by_minute) out.push_back(ErrorMinute{key.first, key.second, errors});
  return out;
}

}  // namespace steward::station::ledger
