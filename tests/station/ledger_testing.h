// Helpers of the ledger's tests: a write that waits for its commit, and a count.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "common/sqlite.h"
#include "station/ledger/store.h"

namespace steward::station::ledger::testing {

// Runs `op` in the writer's next transaction and waits for its commit.
inline absl::Status WriteAndWait(Store& store, Store::Op op) {
  absl::Notification done;
  absl::Status result;
  store.Write(std::move(op), [&](absl::Status st) {
    result = st;
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

// The first column of the first row of `sql` (a count), or the error.
inline absl::StatusOr<int64_t> QueryInt(Store& store, const std::string& sql) {
  int64_t n = -1;
  absl::Status st = store.Read([&](sqlite::Database& db) -> absl::Status {
    auto stmt = db.Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    auto row = stmt->Step();
    if (!row.ok()) return row.status();
    n = stmt->ColumnInt(0);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return n;
}

}  // namespace steward::station::ledger::testing
