// Tests for common/sqlite.h on real database files: status mapping, migrations, and
// the statement cache (a reused statement starts with cleared bindings, sees current
// data, and a released read does not pin a WAL snapshot).
#include "common/sqlite.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
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

}  // namespace
}  // namespace steward::sqlite
