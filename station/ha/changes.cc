// The session extension's declarations are compiled in only with these (Debian's
// SQLite is built with both), before sqlite3.h is first included.
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

#include "station/ha/changes.h"

#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace steward::station::ha {
namespace {

constexpr char kAppliedTable[] = "ha_applied";

// The replication's bookkeeping, the schema's version (each copy migrates itself, and
// a changeset between different versions is refused) and SQLite's internal tables are
// never replicated.
bool Replicated(absl::string_view table) {
  return !absl::StartsWith(table, "ha_") && !absl::StartsWith(table, "sqlite_") && table != "schema_version";
}

int FilterTable(void* /*ctx*/, const char* table) { return Replicated(table) ? 1 : 0; }

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", sqlite3_errstr(rc),
                                          db != nullptr ? absl::StrCat(" (", sqlite3_errmsg(db), ")") : ""));
}

// Any conflict means the replica's rows are not what the changeset was made from: it
// diverged, and papering over that would hide it. The whole changeset is refused.
int OnConflict(void* ctx, int conflict, sqlite3_changeset_iter* /*it*/) {
  *static_cast<int*>(ctx) = conflict;
  return SQLITE_CHANGESET_ABORT;
}

const char* ConflictName(int conflict) {
  switch (conflict) {
    case SQLITE_CHANGESET_DATA: return "a row differs from what the change expected";
    case SQLITE_CHANGESET_NOTFOUND: return "a changed row is missing";
    case SQLITE_CHANGESET_CONFLICT: return "an inserted row exists already";
    case SQLITE_CHANGESET_CONSTRAINT: return "a constraint failed";
    case SQLITE_CHANGESET_FOREIGN_KEY: return "a foreign key failed";
    default: return "a conflict";
  }
}

absl::Status EnsureAppliedTable(sqlite::Database& db) {
  return db.Exec(absl::StrCat("CREATE TABLE IF NOT EXISTS ", kAppliedTable,
                              " (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL)"));
}

// The transaction is rolled back unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite::Database& db) : db_(db) {}
  ~Transaction() {
    if (open_) (void)db_.Exec("ROLLBACK");
  }
  absl::Status Begin() {
    STEWARD_RETURN_IF_ERROR(db_.Exec("BEGIN IMMEDIATE"));
    open_ = true;
    return absl::OkStatus();
  }
  absl::Status Commit() {
    STEWARD_RETURN_IF_ERROR(db_.Exec("COMMIT"));
    open_ = false;
    return absl::OkStatus();
  }

 private:
  sqlite::Database& db_;
  bool open_ = false;
};

absl::StatusOr<uint64_t> ReadApplied(sqlite::Database& db) {
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                           db.Prepare(absl::StrCat("SELECT seq FROM ", kAppliedTable, " WHERE id = 1")));
  STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? static_cast<uint64_t>(st.ColumnInt(0)) : 0;
}

// SQLite skips, silently, the changes to a table the target lacks or that has another
// number of columns: a replica would miss rows. Each table of the changeset must be
// here with the same columns, or the changeset is refused. Also tells bytes that are no
// changeset.
absl::Status CheckTables(sqlite::Database& db, uint64_t seq, absl::string_view changeset) {
  sqlite3_changeset_iter* it = nullptr;
  if (int rc = sqlite3changeset_start(&it, static_cast<int>(changeset.size()), const_cast<char*>(changeset.data()));
      rc != SQLITE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("changeset ", seq, " is unreadable: ", sqlite3_errstr(rc)));
  }
  std::map<std::string, int> columns;  // checked tables
  absl::Status result;
  while (result.ok() && sqlite3changeset_next(it) == SQLITE_ROW) {
    const char* table = nullptr;
    int n = 0;
    int op = 0;
    int indirect = 0;
    if (sqlite3changeset_op(it, &table, &n, &op, &indirect) != SQLITE_OK) break;
    auto [known, fresh] = columns.try_emplace(table, -1);
    if (fresh) {
      absl::StatusOr<sqlite::Statement> st = db.Prepare("SELECT count(*) FROM pragma_table_info(?1)");
      if (!st.ok()) {
        result = st.status();
        break;
      }
      if (absl::Status b = st->Bind(1, absl::string_view(table)); !b.ok()) {
        result = b;
        break;
      }
      absl::StatusOr<bool> row = st->Step();
      if (!row.ok()) {
        result = row.status();
        break;
      }
      known->second = *row ? static_cast<int>(st->ColumnInt(0)) : 0;
    }
    if (known->second != n) {
      result = absl::FailedPreconditionError(
          known->second == 0
              ? absl::StrCat("changeset ", seq, " changes table ", table, ", which this ledger lacks")
              : absl::StrCat("changeset ", seq, " changes table ", table, " with ", n, " columns; this ledger's has ",
                             known->second, " (another schema version)"));
    }
  }
  if (int rc = sqlite3changeset_finalize(it); rc != SQLITE_OK && result.ok()) {
    result = absl::InvalidArgumentError(absl::StrCat("changeset ", seq, " is unreadable: ", sqlite3_errstr(rc)));
  }
  return result;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChangeCapture>> ChangeCapture::Start(sqlite::Database& db) {
  sqlite3_session* session = nullptr;
  if (int rc = sqlite3session_create(db.raw(), "main", &session); rc != SQLITE_OK) {
    return SqliteError(db.raw(), rc, "starting a change capture");
  }
  std::unique_ptr<ChangeCapture> capture(new ChangeCapture(db, session));
  STEWARD_RETURN_IF_ERROR(capture->Attach());
  return capture;
}

absl::Status ChangeCapture::Attach() {
  sqlite3session_table_filter(session_, FilterTable, nullptr);
  if (int rc = sqlite3session_attach(session_, nullptr); rc != SQLITE_OK) {  // every table
    return SqliteError(db_.raw(), rc, "attaching the change capture");
  }
  return absl::OkStatus();
}

ChangeCapture::~ChangeCapture() { sqlite3session_delete(session_); }

absl::StatusOr<std::string> ChangeCapture::Take() {
  int size = 0;
  void* data = nullptr;
  if (int rc = sqlite3session_changeset(session_, &size, &data); rc != SQLITE_OK) {
    return SqliteError(db_.raw(), rc, "reading the captured changes");
  }
  std::string out(static_cast<const char*>(data), static_cast<size_t>(size));
  sqlite3_free(data);
  // A session only grows; a fresh one records the next transaction alone.
  STEWARD_RETURN_IF_ERROR(Reset());
  return out;
}

absl::Status ChangeCapture::Reset() {
  sqlite3_session* fresh = nullptr;
  if (int rc = sqlite3session_create(db_.raw(), "main", &fresh); rc != SQLITE_OK) {
    return SqliteError(db_.raw(), rc, "restarting the change capture");
  }
  sqlite3session_delete(session_);
  session_ = fresh;
  return Attach();
}

absl::StatusOr<uint64_t> AppliedSeq(sqlite::Database& db) {
  STEWARD_RETURN_IF_ERROR(EnsureAppliedTable(db));
  return ReadApplied(db);
}

absl::Status RecordApplied(sqlite::Database& db, uint64_t seq) {  // AppliedSeq made the table
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                           db.Prepare(absl::StrCat("INSERT INTO ", kAppliedTable,
                                                   " (id, seq) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET seq = ?1")));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, static_cast<int64_t>(seq)));
  return st.Step().status();
}

absl::StatusOr<bool> ApplyChanges(sqlite::Database& db, uint64_t seq, absl::string_view changeset) {
  return ApplyChanges(db, seq, seq, changeset);
}

absl::StatusOr<bool> ApplyChanges(sqlite::Database& db, uint64_t first, uint64_t last, absl::string_view changeset) {
  const uint64_t seq = last;
  if (first == 0 || last < first) {
    return absl::InvalidArgumentError(absl::StrCat("changeset numbers start at 1 (got ", first, " to ", last, ")"));
  }
  STEWARD_RETURN_IF_ERROR(EnsureAppliedTable(db));
  Transaction tx(db);
  STEWARD_RETURN_IF_ERROR(tx.Begin());
  STEWARD_ASSIGN_OR_RETURN(uint64_t applied, ReadApplied(db));
  if (last <= applied) return false;  // a replay: already here
  if (first != applied + 1) {
    return absl::FailedPreconditionError(
        first > applied + 1
            ? absl::StrCat("changeset ", seq, " does not follow the last one applied (", applied, "): ",
                           first - applied - 1, " missing")
            : absl::StrCat("changeset ", first, "-", last, " overlaps the last one applied (", applied, ")"));
  }
  if (!changeset.empty()) {
    STEWARD_RETURN_IF_ERROR(CheckTables(db, seq, changeset));
    int conflict = 0;
    const int rc = sqlite3changeset_apply(db.raw(), static_cast<int>(changeset.size()),
                                          const_cast<char*>(changeset.data()), nullptr, OnConflict, &conflict);
    if (conflict != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("changeset ", seq, " does not fit this ledger (", ConflictName(conflict),
                       "): the copy diverged"));
    }
    if (rc != SQLITE_OK) return SqliteError(db.raw(), rc, absl::StrCat("applying changeset ", seq));
  }
  STEWARD_RETURN_IF_ERROR(RecordApplied(db, seq));
  STEWARD_RETURN_IF_ERROR(tx.Commit());
  return true;
}

absl::StatusOr<std::vector<std::string>> UntrackedTables(sqlite::Database& db) {
  std::vector<std::string> tables;
  {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             db.Prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND "
                                        "sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name"));
    for (;;) {
      STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      std::string name = st.ColumnText(0);
      if (Replicated(name)) tables.push_back(std::move(name));
    }
  }
  std::vector<std::string> out;
  for (const std::string& t : tables) {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("SELECT count(*) FROM pragma_table_info(?1) WHERE pk > 0"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, t));
    STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row && st.ColumnInt(0) == 0) out.push_back(t);
  }
  return out;
}

}  // namespace steward::station::ha
