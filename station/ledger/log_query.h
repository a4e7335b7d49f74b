// Log searches: QueryLogs answers a LogsRequest from the ledger's log store, as
// `stewardctl logs` and the HTTP API ask it. A pure function of the request and the
// ledger (no station state), so any surface can call it.
//
// A listing is newest first by the lines' own time (ts_us, then arrival), a page at a
// time: a reply holds at most `limit` lines and at most max_reply_bytes, and
// next_page continues it. Each request does a bounded amount of work (max_time): a
// search that finds little in much data answers with what it found so far and a
// next_page, so no request holds the ledger's reader for long. Following (`after`)
// returns what was stored since a cursor, in the order stored.
//
// How: filters on node (names or globs), domain, app, host, severity, time (the line's
// own, or its receive time) and text (grep, exact bytes or ASCII case-insensitive)
// are checked on each row read; rows are read along an index: the full-text index
// (log_index.h) when the text is rare enough that its candidates are few, else the
// (node, time) index for one node, the index of warnings and worse for --severity
// warning or worse, the (app, time) index for one app, or the time index, newest
// first.
//
//   LogQueryLimits limits{.max_reply_bytes = core.ReplyLimit()};
//   STEWARD_ASSIGN_OR_RETURN(proto::LogsReply page, QueryLogs(store, request, limits));
#pragma once

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/steward.pb.h"
#include "station/ledger/store.h"

namespace steward::station::ledger {

struct LogQueryLimits {
  size_t max_reply_bytes = size_t{1} << 20;  // the reply's LogsReply, serialized
  int max_lines = 10000;                     // a request's limit is capped at this
  absl::Duration max_time = absl::Milliseconds(500);
  // A text whose full-text candidates are more than this is searched along the time
  // index instead (it is common, so matches come soon that way).
  size_t max_candidates = 20000;
};

// InvalidArgument for a bad cursor or page.
absl::StatusOr<proto::LogsReply> QueryLogs(Store& store, const proto::LogsRequest& req,
                                           const LogQueryLimits& limits);

}  // namespace steward::station::ledger
