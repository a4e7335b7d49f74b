// SQLite wrappers: status conversion, statements, WAL set-up, schema migrations.
#include "common/sqlite.h"

#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "common/status_macros.h"

namespace steward::sqlite {

// Released statements by SQL text. Bounded: SQL built at run time (queries with
// optional filters) must not grow it without end; beyond the bound a statement is
// finalized instead of kept.
struct StatementCache {
  static constexpr size_t kMaxKept = 128;

  ~StatementCache() {
    for (auto& [sql, free] : kept) {
      for (sqlite3_stmt* st : free) sqlite3_finalize(st);
    }
  }

  absl::flat_hash_map<std::string, std::vector<sqlite3_stmt*>> kept;
  size_t count = 0;
};

namespace {

// The payload ToStatus puts on a disk I/O error: SQLite's extended code, in decimal.
constexpr absl::string_view kIoErrorUrl = "type.steward/sqlite.io_error";

// Without extended result codes turned on, SQLite returns a primary code; the
// connection still knows the extended one of its last error.
int Extended(sqlite3* db, int rc) {
  const int extended = sqlite3_extended_errcode(db);
  return (extended & 0xff) == rc ? extended : rc;
}

absl::Status Canonical(sqlite3* db, int rc, absl::string_view what) {
  const std::string msg =
      absl::StrCat(what, ": ", db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::PermissionDeniedError(msg);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    default:
      return absl::InternalError(msg);
  }
}

}  // namespace

absl::Status ToStatus(sqlite3* db, int rc, absl::string_view what) {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return absl::OkStatus();
  absl::Status st = Canonical(db, rc, what);
  if ((rc & 0xff) != SQLITE_IOERR) return st;
  const int code = db != nullptr ? Extended(db, rc) : rc;
  if (code != SQLITE_IOERR_NOMEM) st.SetPayload(kIoErrorUrl, absl::Cord(absl::StrCat(code)));
  return st;
}

int IoErrorCode(const absl::Status& st) {
  const absl::optional<absl::Cord> payload = st.GetPayload(kIoErrorUrl);
  int code = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &code)) return 0;
  return code;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    Release();
    st_ = std::move(other.st_);
    cache_ = std::exchange(other.cache_, nullptr);
    sql_ = std::move(other.sql_);
  }
  return *this;
}

Statement::~Statement() { Release(); }

void Statement::Release() {
  if (st_ == nullptr || cache_ == nullptr || cache_->count >= StatementCache::kMaxKept) {
    st_.reset();
    return;
  }
  // A reset ends the statement's read of the database (it would otherwise hold a WAL
  // snapshot); its error, if any, was reported by the Step that failed.
  sqlite3_reset(st_.get());
  sqlite3_clear_bindings(st_.get());
  cache_->kept[sql_].push_back(st_.release());
  ++cache_->count;
  cache_ = nullptr;
}

absl::Status Statement::Bind(int index, int64_t value) {
  return ToStatus(sqlite3_db_handle(st_.get()), sqlite3_bind_int64(st_.get(), index, value), "bind");
}

absl::Status Statement::Bind(int index, absl::string_view text) {
  return ToStatus(sqlite3_db_handle(st_.get()),
                  sqlite3_bind_text64(st_.get(), index, text.data(), text.size(),
                                      SQLITE_TRANSIENT, SQLITE_UTF8),
                  "bind");
}

absl::Status Statement::BindBlob(int index, absl::string_view bytes) {
  return ToStatus(sqlite3_db_handle(st_.get()),
                  sqlite3_bind_blob64(st_.get(), index, bytes.data(), bytes.size(), SQLITE_TRANSIENT),
                  "bind");
}

absl::Status Statement::BindNull(int index) {
  return ToStatus(sqlite3_db_handle(st_.get()), sqlite3_bind_null(st_.get(), index), "bind");
}

absl::StatusOr<bool> Statement::Step() {
  const int rc = sqlite3_step(st_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return ToStatus(sqlite3_db_handle(st_.get()), rc, "step");
}

absl::Status Statement::Reset() {
  return ToStatus(sqlite3_db_handle(st_.get()), sqlite3_reset(st_.get()), "reset");
}

int64_t Statement::ColumnInt(int col) const { return sqlite3_column_int64(st_.get(), col); }

std::string Statement::ColumnText(int col) const {
  const unsigned char* p = sqlite3_column_text(st_.get(), col);
  return p == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(p),
                                    static_cast<size_t>(sqlite3_column_bytes(st_.get(), col)));
}

std::string Statement::ColumnBlob(int col) const { return std::string(ColumnView(col)); }

absl::string_view Statement::ColumnView(int col) const {
  const void* p = sqlite3_column_blob(st_.get(), col);
  return p == nullptr ? absl::string_view()
                      : absl::string_view(static_cast<const char*>(p),
                                          static_cast<size_t>(sqlite3_column_bytes(st_.get(), col)));
}

bool Statement::ColumnIsNull(int col) const {
  return sqlite3_column_type(st_.get(), col) == SQLITE_NULL;
}

absl::StatusOr<Database> Database::Open(const std::string& path, const OpenOptions& options) {
  sqlite3* raw = nullptr;
  const int flags = (options.read_only ? SQLITE_OPEN_READONLY
                                       : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                    SQLITE_OPEN_NOMUTEX;
  const char* vfs = nullptr;
  if (options.batch_wal_writes) {
    // Only a commit's sync writes its batch out: without one, other connections could
    // be shown frames still in memory.
    if (options.read_only || (options.synchronous != "FULL" && options.synchronous != "EXTRA")) {
      return absl::InvalidArgumentError(
          absl::StrCat("open ", path, ": batched WAL writes need synchronous FULL or EXTRA on a writable database"));
    }
    // A URI could turn powersafe overwrite off ("psow=0"), and SQLite decides from the
    // database file, not the WAL, whether a commit ends with writes after its sync.
    if (absl::StartsWithIgnoreCase(path, "file:")) {
      return absl::InvalidArgumentError(
          absl::StrCat("open ", path, ": batched WAL writes take a plain path, not a URI"));
    }
    vfs = WalBatchVfs();
    if (vfs == nullptr) return absl::InternalError("the steward-wal-batch SQLite VFS could not be registered");
  }
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, vfs);
  Database db(raw);  // open_v2 can allocate even when it fails.
  STEWARD_RETURN_IF_ERROR(ToStatus(raw, rc, absl::StrCat("open ", path)));
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  if (options.exclusive) STEWARD_RETURN_IF_ERROR(db.Exec("PRAGMA locking_mode=EXCLUSIVE"));
  if (!options.read_only) {
    STEWARD_RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL"));
    STEWARD_RETURN_IF_ERROR(db.Exec(absl::StrCat("PRAGMA synchronous=", options.synchronous)));
  }
  STEWARD_RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys=ON"));
  return db;
}

absl::Status Database::Exec(absl::string_view sql) {
  char* err = nullptr;
  const std::string text(sql);
  const int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    const std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return ToStatus(nullptr, Extended(db_.get(), rc), absl::StrCat("exec \"", text.substr(0, 60), "\": ", msg));
  }
  return absl::OkStatus();
}

Database::Database(sqlite3* db) : db_(db), cache_(std::make_unique<StatementCache>()) {}
Database::Database(Database&&) noexcept = default;
Database& Database::operator=(Database&&) noexcept = default;
Database::~Database() = default;

absl::StatusOr<Statement> Database::Prepare(absl::string_view sql) {
  Statement out;
  out.cache_ = cache_.get();
  out.sql_ = std::string(sql);
  if (auto it = cache_->kept.find(out.sql_); it != cache_->kept.end() && !it->second.empty()) {
    out.st_.reset(it->second.back());
    it->second.pop_back();
    --cache_->count;
    return out;
  }
  sqlite3_stmt* st = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &st, nullptr);
  out.st_.reset(st);
  STEWARD_RETURN_IF_ERROR(ToStatus(db_.get(), rc, absl::StrCat("prepare \"", sql.substr(0, 60), "\"")));
  return out;
}

absl::Status Database::Migrate(const std::vector<std::string>& migrations) {
  // The version is read before anything is written, so a database newer than this
  // program (a downgrade) is refused untouched.
  int64_t current = 0;
  {
    STEWARD_ASSIGN_OR_RETURN(Statement exists,
                             Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"));
    STEWARD_ASSIGN_OR_RETURN(bool has_table, exists.Step());
    if (has_table) {
      STEWARD_ASSIGN_OR_RETURN(Statement get, Prepare("SELECT MAX(version) FROM schema_version"));
      STEWARD_ASSIGN_OR_RETURN(bool row, get.Step());
      current = row && !get.ColumnIsNull(0) ? get.ColumnInt(0) : 0;
    }
  }
  if (current > static_cast<int64_t>(migrations.size())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database schema version ", current, " is newer than this program's (",
        migrations.size(), "): upgrade steward"));
  }
  STEWARD_RETURN_IF_ERROR(Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  for (size_t v = static_cast<size_t>(current); v < migrations.size(); ++v) {
    STEWARD_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    absl::Status st = Exec(migrations[v]);
    if (st.ok()) {
      st = Exec(absl::StrCat("INSERT INTO schema_version(version) VALUES (", v + 1, ")"));
    }
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return absl::Status(st.code(), absl::StrCat("migration to schema ", v + 1, ": ", st.message()));
    }
    STEWARD_RETURN_IF_ERROR(Exec("COMMIT"));
  }
  return absl::OkStatus();
}

}  // namespace steward::sqlite
