// The syslog lines in the ledger: stored once per (event id, index), indexed by node,
// domain, time and severity, pruned by age and count, queried by stewardctl logs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/steward.pb.h"
#include "station/ledger/store.h"

namespace steward::station::ledger {

// What AddLogs stored (repeats are not counted); read after the commit.
struct LogCounts {
  int64_t stored = 0;
  int64_t errors = 0;  // severity error or worse
};

// Stores a syslog batch once: a repeated (event_id, index) is a no-op.
Store::Op AddLogs(std::string node, std::string event_id, proto::LogBatch batch,
                  std::shared_ptr<LogCounts> counts);
// Retention: drops lines stored before `older_than_ms`, then all but the newest
// `max_lines`.
Store::Op PruneLogs(int64_t older_than_ms, int64_t max_lines);
// Without a cursor: the newest `limit` matching lines, oldest first in the order the
// agents made them. With one (`after`): what arrived after it, in arrival order.
absl::StatusOr<proto::LogsReply> QueryLogs(Store& store, const proto::LogsRequest& req);

}  // namespace steward::station::ledger
