// The syslog lines in the ledger (schema step "log lines, once, with a full-text
// index"): each line stored once in log_lines (log_row.h), its message indexed by an
// SQLite FTS5 index of trigrams (log_index.h: in parts of lines; external content: the
// message is not copied), each batch recorded once in log_batches (a repeated event id
// is a no-op; its store time and error count serve retention and errors per minute
// across restarts). Retention removes lines in short transactions, and an index part
// with its last line (the entries of removed lines in a part that keeps some wait for
// it; searches skip them). Searches are in log_query.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/sqlite.h"
#include "proto/steward.pb.h"
#include "station/ledger/log_index.h"
#include "station/ledger/store.h"

namespace steward::station::ledger {

// What AddLogs did; read after the commit.
struct LogCounts {
  bool fresh = false;  // the batch was new (not a repeat)
  int64_t stored = 0;
  int64_t errors = 0;  // severity error or worse
};

// Registers on `db` what the log tables need, on every connection that opens the ledger
// (before Migrate): the index's tokenizer (log_index.h), and steward_log_field(record,
// name), with which the migration reads a 0.1.0 row's record blob.
absl::Status RegisterLogFunctions(sqlite::Database& db);

// Stores a syslog batch once: a repeated event id is a no-op. A new index part begins
// when the newest holds `part_lines` (tests make small ones).
Store::Op AddLogs(std::string node, std::string event_id, proto::LogBatch batch,
                  std::shared_ptr<LogCounts> counts, int64_t part_lines = kPartLines);

// Retention: drops lines stored before `older_than_ms`, then all but the newest
// `max_lines`, in transactions of at most a few thousand lines, each written after the
// previous one committed (other ledger writes go in between).
void PruneLogs(Store& store, int64_t older_than_ms, int64_t max_lines);

// Error lines stored per node and minute since `since_ms` (unix minutes).
struct ErrorMinute {
  std::string node;
  int64_t minute = 0;
  int64_t errors = 0;
};
absl::StatusOr<std::vector<ErrorMinute>> RecentErrors(Store& store, int64_t since_ms);

}  // namespace steward::station::ledger
