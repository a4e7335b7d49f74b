// Tests for common/sqlite.h on real database files: status mapping, migrations, and
// the statement cache (a reused statement starts with cleared bindings, sees current
// data, and a released read does not pin a WAL snapshot).
#include "common/sqlite.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/nats_server.h"

namespace steward::sqlite {
namespace {

Database OpenOrDie(const std::string& path) {
  absl::StatusOr<Database> db = Database::Open(path, {});
  REQUIRE(db.ok());
  return *std::move(db);
}

int64_t CountRows(Database& db) {
  absl::StatusOr<Statement> st = db.Prepare("SELECT COUNT(*) FROM t");
  REQUIRE(st.ok());
  REQUIRE(*st->Step());
  return st->ColumnInt(0);
}

TEST_CASE("A reused statement has cleared bindings and sees new rows", "[sqlite]") {
  steward::testing::TempDir dir;
  Database db = OpenOrDie((dir.path() / "a.db").string());
  REQUIRE(db.Exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)").ok());
  constexpr char kInsert[] = "INSERT INTO t(k, v) VALUES (?1, ?2)";
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Statement> st = db.Prepare(kInsert);
    REQUIRE(st.ok());
    REQUIRE(st->Bind(1, absl::string_view(std::to_string(i))).ok());
    if (i != 2) REQUIRE(st->Bind(2, int64_t{i * 10}).ok());  // the last one binds no v
    REQUIRE_FALSE(*st->Step());
    REQUIRE(CountRows(db) == i + 1);
  }
  absl::StatusOr<Statement> q = db.Prepare("SELECT v FROM t WHERE k = ?1");
  REQUIRE(q.ok());
  REQUIRE(q->Bind(1, absl::string_view("2")).ok());
  REQUIRE(*q->Step());
  CHECK(q->ColumnIsNull(0));  // not the 10 bound for row "1" on the same statement

  // A statement that fails is reset on release and works again.
  {
    absl::StatusOr<Statement> dup = db.Prepare(kInsert);
    REQUIRE(dup.ok());
    REQUIRE(dup->Bind(1, absl::string_view("0")).ok());
    CHECK(dup->Step().status().code() == absl::StatusCode::kAlreadyExists);
  }
  absl::StatusOr<Statement> again = db.Prepare(kInsert);
  REQUIRE(again.ok());
  REQUIRE(again->Bind(1, absl::string_view("3")).ok());
  REQUIRE_FALSE(*again->Step());
}

TEST_CASE("A released read does not hold back a checkpoint", "[sqlite]") {
  steward::testing::TempDir dir;
  const std::string path = (dir.path() / "b.db").string();
  Database writer = OpenOrDie(path);
  Database reader = OpenOrDie(path);
  REQUIRE(writer.Exec("CREATE TABLE t (k INTEGER PRIMARY KEY)").ok());
  REQUIRE(writer.Exec("INSERT INTO t(k) VALUES (1), (2), (3)").ok());
  {
    // Stepped once, rows left: without a reset this read would keep its snapshot.
    absl::StatusOr<Statement> st = reader.Prepare("SELECT k FROM t");
    REQUIRE(st.ok());
    REQUIRE(*st->Step());
  }
  REQUIRE(writer.Exec("INSERT INTO t(k) VALUES (4)").ok());
  absl::StatusOr<Statement> ck = writer.Prepare("PRAGMA wal_checkpoint(TRUNCATE)");
  REQUIRE(ck.ok());
  REQUIRE(*ck->Step());
  CHECK(ck->ColumnInt(0) == 0);  // 0: not blocked by a reader
  CHECK(CountRows(reader) == 4);
}

TEST_CASE("Many distinct statements stay correct beyond the cache bound", "[sqlite]") {
  steward::testing::TempDir dir;
  Database db = OpenOrDie((dir.path() / "c.db").string());
  REQUIRE(db.Exec("CREATE TABLE t (k INTEGER PRIMARY KEY)").ok());
  std::vector<Statement> held;
  for (int i = 0; i < 300; ++i) {
    absl::StatusOr<Statement> st = db.Prepare("SELECT " + std::to_string(i));
    REQUIRE(st.ok());
    held.push_back(*std::move(st));
  }
  held.clear();  // more than the cache keeps: the rest are finalized
  for (int i = 0; i < 300; ++i) {
    absl::StatusOr<Statement> st = db.Prepare("SELECT " + std::to_string(i));
    REQUIRE(st.ok());
    REQUIRE(*st->Step());
    REQUIRE(st->ColumnInt(0) == i);
  }
}

// Batched WAL writes (OpenOptions::batch_wal_writes, common/sqlite_wal_vfs.cc).

absl::Status InsertGroup(Database& db, int rows) {
  if (absl::Status st = db.Exec("BEGIN IMMEDIATE"); !st.ok()) return st;
  for (int i = 0; i < rows; ++i) {
    // Rows of 600 bytes: a group of 10 spans several pages, as the ledger's groups do.
    if (absl::Status st = db.Exec("INSERT INTO t(v) VALUES (randomblob(600))"); !st.ok()) return st;
  }
  return db.Exec("COMMIT");
}

// A database with batched WAL writes and the table t (id, v).
Database OpenBatchedWithTable(const std::string& path) {
  absl::StatusOr<Database> db = Database::Open(path, {.batch_wal_writes = true});
  REQUIRE(db.ok());
  REQUIRE(db->Exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)").ok());
  return *std::move(db);
}

std::string IntegrityCheck(Database& db) {
  absl::StatusOr<Statement> check = db.Prepare("PRAGMA integrity_check");
  REQUIRE(check.ok());
  REQUIRE(*check->Step());
  return check->ColumnText(0);
}

TEST_CASE("Batched WAL writes: every commit is seen by another connection and after a checkpoint", "[sqlite]") {
  steward::testing::TempDir dir;
  const std::string path = (dir.path() / "b.db").string();
  Database writer = OpenBatchedWithTable(path);
  Database reader = OpenOrDie(path);
  for (int group = 1; group <= 300; ++group) {
    INFO("group " << group);
    REQUIRE(InsertGroup(writer, 10).ok());
    REQUIRE(CountRows(reader) == group * 10);
    if (group % 100 == 0) {
      // The WAL starts over: later groups overwrite it from its start.
      int log = 0, copied = 0;
      REQUIRE(sqlite3_wal_checkpoint_v2(writer.raw(), nullptr, SQLITE_CHECKPOINT_RESTART, &log, &copied) == SQLITE_OK);
    }
  }
  // One transaction larger than a batch (1 MiB) and than the page cache, so that pages
  // spill into the WAL before the commit and are read back through the batch.
  REQUIRE(writer.Exec("PRAGMA cache_size = 50").ok());
  REQUIRE(InsertGroup(writer, 4000).ok());
  REQUIRE(CountRows(reader) == 3000 + 4000);
  CHECK(IntegrityCheck(reader) == "ok");
}

TEST_CASE("Batched WAL writes: a process killed right after its commits returned keeps them all", "[sqlite]") {
  steward::testing::TempDir dir;
  const std::string path = (dir.path() / "k.db").string();
  OpenBatchedWithTable(path);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Commits, then dies at once: no close, no checkpoint, nothing flushed by exit.
    absl::StatusOr<Database> db = Database::Open(path, {.batch_wal_writes = true});
    if (!db.ok()) _exit(2);
    for (int group = 0; group < 50; ++group) {
      if (!InsertGroup(*db, 10).ok()) _exit(3);
    }
    // A transaction left open with rows written but not committed is not kept.
    if (!db->Exec("BEGIN IMMEDIATE").ok() || !db->Exec("INSERT INTO t(v) VALUES (randomblob(600))").ok()) _exit(4);
    kill(getpid(), SIGKILL);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
  Database db = OpenOrDie(path);
  CHECK(CountRows(db) == 500);
}

// Fails the next write to a WAL file with `error` (ENOSPC: a full disk), once, through
// the unix VFS's system calls (process-wide while it lives; restored after).
class WalWriteFault {
 public:
  explicit WalWriteFault(int error = ENOSPC) : vfs_(sqlite3_vfs_find(nullptr)) {
    error_ = error;
    pwrite_ = vfs_->xGetSystemCall(vfs_, "pwrite");
    pwrite64_ = vfs_->xGetSystemCall(vfs_, "pwrite64");
    write_ = vfs_->xGetSystemCall(vfs_, "write");
    if (pwrite_ != nullptr) vfs_->xSetSystemCall(vfs_, "pwrite", reinterpret_cast<sqlite3_syscall_ptr>(&Pwrite));
    if (pwrite64_ != nullptr) vfs_->xSetSystemCall(vfs_, "pwrite64", reinterpret_cast<sqlite3_syscall_ptr>(&Pwrite64));
    if (write_ != nullptr) vfs_->xSetSystemCall(vfs_, "write", reinterpret_cast<sqlite3_syscall_ptr>(&WriteFd));
  }
  ~WalWriteFault() {
    vfs_->xSetSystemCall(vfs_, nullptr, nullptr);  // every system call back to its default
    armed_ = false;
  }
  void Arm() { armed_ = true; }
  void Disarm() { armed_ = false; }
  int fired() const { return fired_; }

 private:
  static bool Fire(int fd) {
    if (!armed_) return false;
    char target[512];
    const ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1);
    if (n <= 4 || std::string(target, static_cast<size_t>(n)).substr(static_cast<size_t>(n) - 4) != "-wal")
      return false;
    armed_ = false;
    ++fired_;
    errno = error_;
    return true;
  }
  static ssize_t Pwrite(int fd, const void* b, size_t n, off_t at) {
    return Fire(fd) ? -1 : reinterpret_cast<ssize_t (*)(int, const void*, size_t, off_t)>(pwrite_)(fd, b, n, at);
  }
  static ssize_t Pwrite64(int fd, const void* b, size_t n, off_t at) {
    return Fire(fd) ? -1 : reinterpret_cast<ssize_t (*)(int, const void*, size_t, off_t)>(pwrite64_)(fd, b, n, at);
  }
  static ssize_t WriteFd(int fd, const void* b, size_t n) {
    return Fire(fd) ? -1 : reinterpret_cast<ssize_t (*)(int, const void*, size_t)>(write_)(fd, b, n);
  }
  sqlite3_vfs* vfs_;
  static inline sqlite3_syscall_ptr pwrite_ = nullptr, pwrite64_ = nullptr, write_ = nullptr;
  static inline bool armed_ = false;
  static inline int fired_ = 0;
  static inline int error_ = ENOSPC;
};

// A batched database with 300 rows of 600 bytes in t, checkpointed, and an empty
// table u: enough for a transaction to outgrow a small page cache.
Database OpenBatchedWithRows(const std::string& path) {
  Database db = OpenBatchedWithTable(path);
  REQUIRE(db.Exec("CREATE TABLE u (id INTEGER PRIMARY KEY, v BLOB NOT NULL)").ok());
  REQUIRE(db.Exec("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300) "
                  "INSERT INTO t(v) SELECT randomblob(600) FROM c")
              .ok());
  REQUIRE(db.Exec("PRAGMA wal_checkpoint(TRUNCATE)").ok());
  return db;
}

TEST_CASE("Batched WAL writes: a write the disk refused is tried again, never dropped", "[sqlite]") {
  steward::testing::TempDir dir;
  const std::string path = (dir.path() / "f.db").string();
  Database db = OpenBatchedWithRows(path);
  WalWriteFault fault;
  // A transaction larger than the page cache: its pages spill into the WAL (gathered),
  // and a later statement reads them back, which writes the gathered frames first.
  REQUIRE(db.Exec("PRAGMA cache_size = 20").ok());
  REQUIRE(db.Exec("BEGIN IMMEDIATE").ok());
  REQUIRE(db.Exec("UPDATE t SET v = printf('%0600d', id) WHERE id % 3 = 0").ok());
  fault.Arm();
  // That write fails once (a full disk): SQLite fails this statement alone (it has a
  // statement journal) and the transaction goes on.
  const absl::Status refused = db.Exec("INSERT INTO u(v) SELECT v FROM t WHERE id < 30");
  fault.Disarm();
  REQUIRE(fault.fired() == 1);
  INFO(refused.ToString());
  // Room again: the commit writes every frame, those refused before first.
  const absl::Status commit = db.Exec("COMMIT");
  INFO(commit.ToString());
  Database reader = OpenOrDie(path);
  CHECK(IntegrityCheck(reader) == "ok");
  absl::StatusOr<Statement> updated =
      reader.Prepare("SELECT count(*), sum(v = printf('%0600d', id)) FROM t WHERE id % 3 = 0");
  REQUIRE(updated.ok());
  REQUIRE(*updated->Step());
  // Either the whole transaction (the commit worked) or none of it.
  CHECK(updated->ColumnInt(1) == (commit.ok() ? updated->ColumnInt(0) : 0));
}

TEST_CASE("A statement whose WAL write fails with EIO is an I/O error, and SQLite ends its transaction", "[sqlite]") {
  steward::testing::TempDir dir;
  const std::string path = (dir.path() / "eio.db").string();
  Database db = OpenBatchedWithRows(path);
  WalWriteFault fault(EIO);
  // As the ledger's writer runs a group: spilled pages gathered for the WAL, written when
  // a later statement reads them back; that write fails (the disk's I/O error).
  REQUIRE(db.Exec("PRAGMA cache_size = 20").ok());
  REQUIRE(db.Exec("BEGIN IMMEDIATE").ok());
  REQUIRE(db.Exec("UPDATE t SET v = printf('%0600d', id) WHERE id % 3 = 0").ok());
  const int fired_before = fault.fired();  // a count for the whole process
  fault.Arm();
  const absl::Status failed = db.Exec("INSERT INTO u(v) SELECT v FROM t WHERE id < 30");
  fault.Disarm();
  REQUIRE(fault.fired() == fired_before + 1);
  INFO(failed.ToString());
  // SQLite's I/O error, told apart from its other errors; the code stays Internal.
  CHECK(absl::IsInternal(failed));
  CHECK(IoErrorCode(failed) == SQLITE_IOERR_WRITE);  // the extended code: which operation failed
  CHECK(IsIoError(failed));
  // Unlike a full disk (the test above: the statement alone fails), SQLite rolls the
  // whole transaction back: the ledger's writer sees that (autocommit again) and fails
  // its whole group (ledger::Store::Transact), which degrades the ledger.
  CHECK(sqlite3_get_autocommit(db.raw()) != 0);
  Database reader = OpenOrDie(path);
  CHECK(IntegrityCheck(reader) == "ok");
  absl::StatusOr<Statement> updated = reader.Prepare("SELECT count(*) FROM t WHERE v = printf('%0600d', id)");
  REQUIRE(updated.ok());
  REQUIRE(*updated->Step());
  CHECK(updated->ColumnInt(0) == 0);
}

TEST_CASE("ToStatus marks SQLite's disk I/O errors, and only those", "[sqlite]") {
  const absl::Status io = ToStatus(nullptr, SQLITE_IOERR_FSYNC, "sync");
  CHECK(absl::IsInternal(io));
  CHECK(IoErrorCode(io) == SQLITE_IOERR_FSYNC);
  CHECK(IsIoError(io));
  CHECK(IoErrorCode(ToStatus(nullptr, SQLITE_IOERR, "step")) == SQLITE_IOERR);
  // Out of memory is not the disk's failure, and the other codes are not I/O errors.
  CHECK_FALSE(IsIoError(ToStatus(nullptr, SQLITE_IOERR_NOMEM, "step")));
  CHECK_FALSE(IsIoError(ToStatus(nullptr, SQLITE_FULL, "step")));
  CHECK_FALSE(IsIoError(ToStatus(nullptr, SQLITE_INTERNAL, "step")));
  CHECK_FALSE(IsIoError(absl::InternalError("disk I/O error")));  // not from SQLite
  CHECK_FALSE(IsIoError(absl::OkStatus()));
  // A real error of another kind carries nothing more than its code and message.
  steward::testing::TempDir dir;
  Database db = OpenOrDie((dir.path() / "c.db").string());
  REQUIRE(db.Exec("CREATE TABLE k (id INTEGER PRIMARY KEY)").ok());
  REQUIRE(db.Exec("INSERT INTO k VALUES (1)").ok());
  absl::StatusOr<Statement> dup = db.Prepare("INSERT INTO k VALUES (1)");
  REQUIRE(dup.ok());
  const absl::Status refused = dup->Step().status();
  CHECK(absl::IsAlreadyExists(refused));
  CHECK_FALSE(IsIoError(refused));
  CHECK(refused.ToString() == absl::StrCat("ALREADY_EXISTS: ", refused.message()));
}

TEST_CASE("Batched WAL writes: a commit the disk refused does not come back after a crash", "[sqlite]") {
  steward::testing::TempDir dir;
  const std::string path = (dir.path() / "r.db").string();
  OpenBatchedWithTable(path);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    WalWriteFault fault;
    absl::StatusOr<Database> db = Database::Open(path, {.batch_wal_writes = true});
    // Another connection keeps the WAL file when the writer closes (no checkpoint, no delete).
    absl::StatusOr<Database> other = Database::Open(path, {});
    if (!db.ok() || !other.ok()) _exit(2);
    if (!InsertGroup(*db, 10).ok()) _exit(3);
    // The commit's frames are gathered whole; writing them at its sync fails (a full
    // disk), so the commit fails and SQLite takes them as never written.
    if (!db->Exec("BEGIN IMMEDIATE").ok() || !db->Exec("INSERT INTO t(v) VALUES ('refused')").ok()) _exit(4);
    const int fired_before = fault.fired();  // a count for the whole process
    fault.Arm();
    const bool committed = db->Exec("COMMIT").ok();
    fault.Disarm();
    if (committed || fault.fired() != fired_before + 1) _exit(5);
    (void)db->Exec("ROLLBACK");
    // Room again. Closing writes whatever the file still holds; then the process dies
    // before anything else overwrites that part of the WAL.
    db = absl::CancelledError("closed");
    kill(getpid(), SIGKILL);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  INFO("child status " << status);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
  // Recovery must not find the refused commit in the WAL: it was reported failed.
  Database db = OpenOrDie(path);
  CHECK(CountRows(db) == 10);
  CHECK(IntegrityCheck(db) == "ok");
}

TEST_CASE("Batched WAL writes are refused without a sync at each commit", "[sqlite]") {
  steward::testing::TempDir dir;
  absl::StatusOr<Database> db =
      Database::Open((dir.path() / "n.db").string(), {.synchronous = "NORMAL", .batch_wal_writes = true});
  REQUIRE_FALSE(db.ok());
  CHECK(absl::IsInvalidArgument(db.status()));
  CHECK_THAT(std::string(db.status().message()), Catch::Contains("synchronous FULL"));
}

TEST_CASE("Batched WAL writes are refused for a URI, which could turn powersafe overwrite off", "[sqlite]") {
  steward::testing::TempDir dir;
  const std::string uri = "file:" + (dir.path() / "u.db").string() + "?psow=0";
  absl::StatusOr<Database> db = Database::Open(uri, {.batch_wal_writes = true});
  REQUIRE_FALSE(db.ok());
  CHECK(absl::IsInvalidArgument(db.status()));
  CHECK_THAT(std::string(db.status().message()), Catch::Contains("not a URI"));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "u.db"));
  // The same URI opens without batching.
  CHECK(Database::Open(uri, {}).ok());
}

}  // namespace
}  // namespace steward::sqlite
