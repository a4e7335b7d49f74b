// Upgrades: the real steward-station and steward-agent open the data directories that
// steward 0.1.0 wrote (tests/fixtures/release-0.1.0), migrate them and serve; and a
// data directory newer than the program (a downgrade) is refused with a clear error,
// its file left byte for byte as it was.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/sqlite.h"
#include "tests/testing/cluster.h"
#include "tests/testing/wait.h"

namespace steward::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kFixture = fs::path(STEWARD_SOURCE_DIR) / "tests/fixtures/release-0.1.0";

std::string Bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int64_t SchemaVersion(const fs::path& db) {
  absl::StatusOr<sqlite::Database> d = sqlite::Database::Open(db.string(), {.read_only = true});
  REQUIRE(d.ok());
  absl::StatusOr<sqlite::Statement> st = d->Prepare("SELECT MAX(version) FROM schema_version");
  REQUIRE(st.ok());
  REQUIRE(*st->Step());
  return st->ColumnInt(0);
}

// Marks `db` as written by a steward from the future: schema version 99.
void FromTheFuture(const fs::path& db) {
  absl::StatusOr<sqlite::Database> d = sqlite::Database::Open(db.string(), {});
  REQUIRE(d.ok());
  REQUIRE(d->Exec("INSERT INTO schema_version(version) VALUES (99)").ok());
  REQUIRE(d->Exec("PRAGMA wal_checkpoint(TRUNCATE)").ok());
}

TEST_CASE("upgrade: the station opens a 0.1.0 ledger and serves what it holds", "[integration][upgrade]") {
  Cluster c;
  fs::create_directories(c.dir().path() / "station");
  fs::copy_file(kFixture / "station.db", c.dir().path() / "station" / "station.db");
  c.StartStation();
  RunResult r = c.Ctl({"history", "--limit", "20"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("ship2"));    // the command still queued for ship2
  CHECK_THAT(r.out, Catch::Contains("failed"));   // sh -c 'exit 3'
  r = c.Ctl({"nodes"});
  CHECK_THAT(r.out, Catch::Contains("ship1"));
  r = c.Ctl({"logs", "--node", "ship1"});
  CHECK_THAT(r.out, Catch::Contains("upstream timed out"));
  r = c.Ctl({"acl", "show", "ship1"});
  CHECK_THAT(r.out, Catch::Contains("shellcommand"));
  c.StopStation();
  CHECK(SchemaVersion(c.dir().path() / "station" / "station.db") >= 3);
}

TEST_CASE("upgrade: the agent opens a 0.1.0 data directory and runs commands", "[integration][upgrade]") {
  Cluster c;
  c.StartStation();
  fs::create_directories(c.dir().path() / "ship1");
  fs::copy_file(kFixture / "ship1" / "agent.db", c.dir().path() / "ship1" / "agent.db");
  fs::copy_file(kFixture / "ship1" / "acl.pb", c.dir().path() / "ship1" / "acl.pb");
  c.StartAgent("ship1");
  RunResult r = c.Ctl({"send", "ship1", "--", "echo", "upgraded"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "upgraded\n");
  c.StopAgent("ship1");
  CHECK(SchemaVersion(c.dir().path() / "ship1" / "agent.db") >= 2);
}

TEST_CASE("downgrade: a ledger newer than the station is refused and left as it was", "[integration][upgrade]") {
  TempDir dir;
  fs::create_directories(dir.path() / "station");
  const fs::path db = dir.path() / "station" / "station.db";
  fs::copy_file(kFixture / "station.db", db);
  FromTheFuture(db);
  const std::string before = Bytes(db);
  RunResult r = RunProgram({BinPath("station/steward-station"), "--nats", "nats://127.0.0.1:1", "--data-dir",
                            (dir.path() / "station").string()});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(absl::StrCat("steward-station: database schema version 99 is newer than this "
                                                 "program's (")));
  CHECK_THAT(r.err, Catch::Contains("): upgrade steward"));
  CHECK(Bytes(db) == before);
  CHECK((!fs::exists(db.string() + "-wal") || fs::file_size(db.string() + "-wal") == 0));
}

TEST_CASE("downgrade: an agent.db newer than the agent is refused and left as it was", "[integration][upgrade]") {
  TempDir dir;
  fs::create_directories(dir.path() / "ship1");
  const fs::path db = dir.path() / "ship1" / "agent.db";
  fs::copy_file(kFixture / "ship1" / "agent.db", db);
  FromTheFuture(db);
  const std::string before = Bytes(db);
  RunResult r = RunProgram({BinPath("agent/steward-agent"), "--node", "ship1", "--nats", "nats://127.0.0.1:1",
                            "--data-dir", (dir.path() / "ship1").string()});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::StartsWith(absl::StrCat("steward-agent: agent store ", db.string(),
                                                   ": database schema version 99 is newer than this program's (")));
  CHECK_THAT(r.err, Catch::EndsWith("): upgrade steward\n"));
  CHECK(Bytes(db) == before);
}

}  // namespace
}  // namespace steward::testing
