// Changes: what one write transaction of the ledger changed, as an SQLite changeset
// (the session extension), and applying such changesets, in order, to another copy of
// the ledger. This is the record format of the replicated ledger (issue 17): the active
// station captures each of its writer's transactions and publishes the bytes to a
// replicated JetStream stream before it commits and acknowledges anything; every
// station applies the stream to its own SQLite, which stays the query engine.
//
// Why changesets and not a record per ledger operation: they describe rows, not the
// code that made them, so every table the writer touches is replicated without a
// record type per operation, including the full-text index's own tables (a replica's
// log search answers as the active one's). What a changeset cannot carry, a table
// without a primary key, UntrackedTables names, and a test keeps that list empty.
//
// Replaying is idempotent. Each changeset has a sequence number (the stream's); a
// replica records the last one it applied in the same transaction as the rows, so a
// crash between the two cannot happen, a number already applied is skipped, and a gap
// is refused (the replica must fetch what it missed first).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sqlite.h"

struct sqlite3_session;

namespace steward::station::ha {

// Records every change made on `db` while it lives (all tables with a primary key but
// the replication's own bookkeeping). Used on the connection's own thread.
class ChangeCapture {
 public:
  static absl::StatusOr<std::unique_ptr<ChangeCapture>> Start(sqlite::Database& db);
  ~ChangeCapture();
  ChangeCapture(const ChangeCapture&) = delete;
  ChangeCapture& operator=(const ChangeCapture&) = delete;

  // The changeset of everything recorded since Start or the last Take (empty: nothing
  // changed), and starts afresh. Call it inside the transaction, before COMMIT, so that
  // what is published is exactly what is committed.
  absl::StatusOr<std::string> Take();
  // Forgets what was recorded, without reading it: after a ROLLBACK of a transaction
  // nothing of which was published. (Row changes rolled back drop out of a changeset by
  // themselves, but rows of a table the ROLLBACK dropped make every later Take fail.)
  absl::Status Reset();

 private:
  ChangeCapture(sqlite::Database& db, sqlite3_session* session) : db_(db), session_(session) {}
  absl::Status Attach();
  sqlite::Database& db_;
  sqlite3_session* session_;
};

// The sequence number of the last changeset applied to `db` (0: none yet).
absl::StatusOr<uint64_t> AppliedSeq(sqlite::Database& db);

// Records, inside the caller's transaction, that `db` holds every changeset up to `seq`
// (the active station, which made them). AppliedSeq must have run on `db` before.
absl::Status RecordApplied(sqlite::Database& db, uint64_t seq);

// Applies changeset `seq` to `db` in one transaction together with its number.
// Returns false (and changes nothing) when `seq` was applied already; refuses a gap
// (`seq` more than one past AppliedSeq) and a changeset that does not fit the rows
// (FailedPrecondition: the replica diverged), changing nothing either.
absl::StatusOr<bool> ApplyChanges(sqlite::Database& db, uint64_t seq, absl::string_view changeset);

// The same for a journal entry that covers messages `first` to `last` (several parts,
// or an unfinished entry's messages before it): the gap check is on `first`, the
// number recorded is `last`.
absl::StatusOr<bool> ApplyChanges(sqlite::Database& db, uint64_t first, uint64_t last, absl::string_view changeset);

// Tables whose changes a changeset cannot carry (no primary key), which a replica
// would silently lack. The replication's own tables and SQLite's are left out.
absl::StatusOr<std::vector<std::string>> UntrackedTables(sqlite::Database& db);

}  // namespace steward::station::ha
