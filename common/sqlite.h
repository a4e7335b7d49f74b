// RAII over SQLite: Database and Statement own their handles, SQL binds parameters,
// result codes become absl::Status once, here (ToStatus: SQLITE_BUSY -> Unavailable,
// SQLITE_CONSTRAINT -> AlreadyExists, SQLITE_FULL -> ResourceExhausted, a damaged file
// -> DataLoss, no access -> PermissionDenied, the rest -> Internal; a disk I/O error
// stays Internal and says so: IsIoError).
//
//   STEWARD_ASSIGN_OR_RETURN(Database db, Database::Open(path, {}));
//   STEWARD_ASSIGN_OR_RETURN(Statement st, db.Prepare("SELECT state FROM commands WHERE id = ?1"));
//   STEWARD_RETURN_IF_ERROR(st.Bind(1, id));
//   STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
//   if (row) state = st.ColumnText(0);
//
// A Database is thread-compatible: one thread at a time (the owner serializes, and
// says how in its class comment). Statements belong to their Database and must not
// outlive it.
//
// Prepare keeps compiled statements: a Statement, when destroyed, is reset and handed
// back to its Database, and the next Prepare of the same SQL text reuses it. Compiling
// SQL costs more than running a small INSERT, so hot paths write plain Prepare calls
// and pay for compiling once per connection.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace steward::sqlite {

struct CloseDb {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct FinalizeStmt {
  void operator()(sqlite3_stmt* st) const noexcept { sqlite3_finalize(st); }
};

absl::Status ToStatus(sqlite3* db, int rc, absl::string_view what);
// SQLite's extended result code when `st` is ToStatus's of a disk I/O error
// (SQLITE_IOERR and its extended codes, bar SQLITE_IOERR_NOMEM: the file system failed
// a read, write, sync or lock), through any code that passes the status on unchanged
// (a status rebuilt with another message loses it); 0 for any other status. The code
// is the extended one where SQLite gave it (statements, Exec), else SQLITE_IOERR. The
// status's code stays Internal, as before: this tells it from SQLite's other internal
// errors. (It rides as a payload, which Status::ToString shows.)
int IoErrorCode(const absl::Status& st);
inline bool IsIoError(const absl::Status& st) { return IoErrorCode(st) != 0; }

struct StatementCache;

class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* st) : st_(st) {}
  Statement(Statement&& other) noexcept = default;
  Statement& operator=(Statement&& other) noexcept;
  ~Statement();

  absl::Status Bind(int index, int64_t value);
  absl::Status Bind(int index, absl::string_view text);   // TEXT
  absl::Status BindBlob(int index, absl::string_view bytes);
  absl::Status BindNull(int index);
  // Step runs one step: true when a row is ready, false when done.
  absl::StatusOr<bool> Step();
  // Reset makes the statement runnable again (bindings kept).
  absl::Status Reset();

  int64_t ColumnInt(int col) const;
  std::string ColumnText(int col) const;
  std::string ColumnBlob(int col) const;
  // The column's bytes without a copy: valid until the next Step, Reset or destruction.
  absl::string_view ColumnView(int col) const;
  bool ColumnIsNull(int col) const;

 private:
  friend class Database;
  // Hands the statement back to `cache_` (reset, bindings cleared) or finalizes it.
  void Release();

  std::unique_ptr<sqlite3_stmt, FinalizeStmt> st_;
  StatementCache* cache_ = nullptr;  // owned by the Database; null: not cached
  std::string sql_;                  // the cache key
};

struct OpenOptions {
  bool read_only = false;
  // "FULL" syncs the WAL on every commit (durable across power loss); "NORMAL" only at
  // checkpoints (durable across process crashes).
  std::string synchronous = "FULL";
  int busy_timeout_ms = 5000;
  // One process owns the file: its locks are taken once and kept, and the WAL index
  // lives in its memory instead of a shared -shm file (no lock calls per transaction).
  // Another process can then not open the file at all while this one has it open.
  bool exclusive = false;
  // A WAL file's writes are gathered and written at once when SQLite syncs it (the
  // "steward-wal-batch" VFS, common/sqlite_wal_vfs.cc): a write call per 64 KiB
  // instead of two per page. Only with synchronous FULL or EXTRA, whose commits sync.
  bool batch_wal_writes = false;
};

// The name of the VFS that batch_wal_writes opens with, registered on first use;
// nullptr when the default VFS cannot be wrapped.
const char* WalBatchVfs();

class Database {
 public:
  // Open creates the file if needed (unless read_only) and sets WAL mode.
  static absl::StatusOr<Database> Open(const std::string& path, const OpenOptions& options);

  absl::Status Exec(absl::string_view sql);
  // Prepare compiles `sql`, or reuses a statement of the same text that was released.
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  int64_t Changes() const { return sqlite3_changes64(db_.get()); }
  sqlite3* raw() const { return db_.get(); }

  // Migrate brings the schema to migrations.size() (schema version = number of applied
  // steps), running each missing step in its own transaction. A database newer than
  // this program is refused (FailedPrecondition).
  absl::Status Migrate(const std::vector<std::string>& migrations);

 private:
  explicit Database(sqlite3* db);
  // Declared after db_ so that cached statements are finalized before the close.
  std::unique_ptr<sqlite3, CloseDb> db_;
  std::unique_ptr<StatementCache> cache_;

 public:
  Database(Database&&) noexcept;
  Database& operator=(Database&&) noexcept;
  ~Database();
};

}  // namespace steward::sqlite
