// A log line as the ledger's log_lines table holds it: what searches filter and order
// on in columns (domain, host, app, severity, the line's own time, its receive time,
// small flags), the message once (the full-text index reads it from there), and the
// rest of the LogRecord (procid, msgid, structured data, source, parse problem) as a
// small serialized LogRecord. ToRow and FromRow are inverse: a record read back is the
// record stored.
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/steward.pb.h"

namespace steward::station::ledger {

struct LogRow {
  std::string domain;
  std::string host;
  std::string app;
  int64_t severity = -1;
  int64_t ts_us = 0;  // the line's own time; its receive time when it has none
  int64_t received_us = 0;
  int64_t flags = 0;  // facility, format, parse_error, truncated, has a timestamp
  std::string message;
  std::string rest;  // a serialized LogRecord with the other fields
};

// Takes the record apart (moving its strings).
LogRow ToRow(proto::LogRecord record);

// The columns of one row, as read (views valid while the caller's row is).
struct LogRowView {
  absl::string_view domain;
  absl::string_view host;
  absl::string_view app;
  int64_t severity = -1;
  int64_t ts_us = 0;
  int64_t received_us = 0;
  int64_t flags = 0;
  absl::string_view message;
  absl::string_view rest;
};

// DataLoss when `rest` does not parse.
absl::StatusOr<proto::LogRecord> FromRow(const LogRowView& row);

}  // namespace steward::station::ledger
