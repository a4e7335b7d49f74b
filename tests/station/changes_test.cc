// The replicated ledger's record format (station/ha/changes.h) on real ledger files:
// the writer's operations captured on one ledger and applied to another leave the two
// with the same rows, full-text index included; a replay changes nothing, a gap and a
// diverged copy are refused whole, and no ledger table escapes the capture.
#include "station/ha/changes.h"
#include "station/ha/replicated_commit.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/protocol.h"
#include "common/sqlite.h"
#include "proto/steward.pb.h"
#include "station/ledger/log_index.h"
#include "station/ledger/log_store.h"
#include "station/ledger/schema.h"
#include "station/ledger/store.h"
#include "tests/station/ha_testing.h"
#include "tests/testing/nats_server.h"

namespace steward::station::ha {
namespace {

using ledger::Store;
using testing::Count;
using testing::Dump;
using testing::OpenLedger;

// Lines whose message the full-text index says may hold `text`.
int64_t Found(sqlite::Database& db, const std::string& text) {
  absl::StatusOr<sqlite::Statement> st = db.Prepare("SELECT count(*) FROM log_fts_1 WHERE log_fts_1 MATCH ?1");
  REQUIRE(st.ok());
  REQUIRE(st->Bind(1, ledger::TrigramQuery(text)).ok());
  absl::StatusOr<bool> row = st->Step();
  INFO(row.status().ToString());
  REQUIRE(row.ok());
  return st->ColumnInt(0);
}

// One writer transaction on `db` running `ops`, captured: its changeset.
std::string Transaction(sqlite::Database& db, ChangeCapture& capture, std::vector<Store::Op> ops) {
  REQUIRE(db.Exec("BEGIN IMMEDIATE").ok());
  for (Store::Op& op : ops) {
    absl::Status st = op(db);
    INFO(st.ToString());
    REQUIRE(st.ok());
  }
  absl::StatusOr<std::string> changes = capture.Take();
  REQUIRE(changes.ok());
  REQUIRE(db.Exec("COMMIT").ok());
  return *changes;
}

proto::CommandState Command(const std::string& id, proto::State state) {
  proto::CommandState c;
  *c.mutable_command() = NewEnvelope("station", "ship1", proto::KIND_COMMAND, kMethodEcho, "d");
  c.mutable_command()->set_id(id);
  c.mutable_command()->add_argv("hello");
  c.set_state(state);
  return c;
}

proto::LogBatch Batch(const std::vector<std::string>& messages) {
  proto::LogBatch b;
  for (const std::string& m : messages) {
    proto::LogRecord* r = b.add_records();
    r->set_message(m);
    r->set_severity(3);
    r->set_received_unix_us(1'700'000'000'000'000);
  }
  return b;
}

TEST_CASE("Changesets replay the ledger's writes on another copy, once, in order", "[ha][ledger]") {
  steward::testing::TempDir dir;
  sqlite::Database active = OpenLedger((dir.path() / "active.db").string());
  sqlite::Database replica = OpenLedger((dir.path() / "replica.db").string());
  absl::StatusOr<std::unique_ptr<ChangeCapture>> capture = ChangeCapture::Start(active);
  REQUIRE(capture.ok());
  // A store of its own only to make the command writes (they run on any ledger
  // connection; the store's spool is for copy chunks, which these are not).
  absl::StatusOr<std::unique_ptr<Store>> maker = Store::Open((dir.path() / "maker").string());
  REQUIRE(maker.ok());

  proto::NodeInfo node;
  node.set_name("ship1");
  node.set_status(proto::NODE_ONLINE);
  proto::Envelope event = NewEnvelope("ship1", "station", proto::KIND_EVENT, "hello", "agent");
  const std::string one = Transaction(
      active, **capture,
      {(*maker)->PutCommand(Command("01M8R14FM6C3WJX91Z0EQ79BPH", proto::STATE_QUEUED)), Store::PutNode(node),
       Store::AddTransition("ship1", true, 1000, "hello"), Store::AddEvent(event),
       Store::PutSetting("acl/ship1", "allow echo"),
       ledger::AddLogs("ship1", "ev1", Batch({"disk full on /var", "link up"}), nullptr)});
  CHECK_FALSE(one.empty());
  REQUIRE(AppliedSeq(replica).value() == 0);
  absl::StatusOr<bool> applied = ApplyChanges(replica, 1, one);
  INFO(applied.status().ToString());
  REQUIRE(applied.ok());
  CHECK(*applied);
  CHECK(Dump(replica) == Dump(active));
  CHECK(AppliedSeq(replica).value() == 1);
  // The replica's full-text index finds the line: the index's own tables came along.
  CHECK(Found(active, "disk full") == 1);
  CHECK(Found(replica, "disk full") == 1);
  CHECK(Found(replica, "link up") == 1);
  CHECK(Found(replica, "no such line") == 0);
  CHECK(Count(replica, "SELECT count(*) FROM node_transitions") == 1);

  // The next transaction: state changes, a deletion.
  proto::CommandState done = Command("01M8R14FM6C3WJX91Z0EQ79BPH", proto::STATE_SUCCEEDED);
  const std::string two = Transaction(
      active, **capture, {(*maker)->PutCommand(done), Store::DeleteNode("ship1"), Store::AddTransition("ship1", false, 2000, "gone")});
  // Nothing written: an empty changeset, which still takes its number.
  const std::string three = Transaction(active, **capture, {});
  CHECK(three.empty());

  SECTION("in order") {
    REQUIRE(ApplyChanges(replica, 2, two).value());
    REQUIRE(ApplyChanges(replica, 3, three).value());
    CHECK(Dump(replica) == Dump(active));
    CHECK(AppliedSeq(replica).value() == 3);
    // A replay of any of them is skipped and changes nothing.
    const auto before = Dump(replica);
    CHECK_FALSE(ApplyChanges(replica, 1, one).value());
    CHECK_FALSE(ApplyChanges(replica, 2, two).value());
    CHECK(Dump(replica) == before);
    CHECK(AppliedSeq(replica).value() == 3);
  }

  SECTION("a gap is refused and changes nothing") {
    const auto before = Dump(replica);
    absl::StatusOr<bool> gap = ApplyChanges(replica, 3, three);
    REQUIRE_FALSE(gap.ok());
    CHECK(gap.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(gap.status().message()), Catch::Contains("1 missing"));
    CHECK(Dump(replica) == before);
    CHECK(AppliedSeq(replica).value() == 1);
  }

  SECTION("a copy that diverged refuses the whole changeset") {
    REQUIRE(replica.Exec("DELETE FROM nodes WHERE name = 'ship1'").ok());  // not by a changeset
    const auto before = Dump(replica);
    absl::StatusOr<bool> bad = ApplyChanges(replica, 2, two);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(bad.status().message()), Catch::Contains("diverged"));
    CHECK(Dump(replica) == before);  // the command's new state did not land either
    CHECK(AppliedSeq(replica).value() == 1);
  }

  SECTION("a table the copy lacks is refused, not skipped") {
    REQUIRE(active.Exec("CREATE TABLE extra (k TEXT PRIMARY KEY, v TEXT)").ok());
    const std::string with_extra = Transaction(active, **capture, {[](sqlite::Database& db) {
      return db.Exec("INSERT INTO extra VALUES ('a', 'b')");
    }});
    REQUIRE(ApplyChanges(replica, 2, two).value());
    REQUIRE(ApplyChanges(replica, 3, three).value());
    absl::StatusOr<bool> missing = ApplyChanges(replica, 4, with_extra);
    REQUIRE_FALSE(missing.ok());
    CHECK_THAT(std::string(missing.status().message()), Catch::Contains("extra"));
    CHECK(AppliedSeq(replica).value() == 3);
  }
}

TEST_CASE("Every table of the ledger is carried by a changeset", "[ha][ledger]") {
  steward::testing::TempDir dir;
  sqlite::Database db = OpenLedger((dir.path() / "ledger.db").string());
  absl::StatusOr<std::vector<std::string>> untracked = UntrackedTables(db);
  REQUIRE(untracked.ok());
  CHECK(untracked->empty());
  REQUIRE(db.Exec("CREATE TABLE keyless (a TEXT)").ok());
  untracked = UntrackedTables(db);
  REQUIRE(untracked.ok());
  CHECK(*untracked == std::vector<std::string>{"keyless"});
}

TEST_CASE("Applying refuses bytes that are no changeset", "[ha][ledger]") {
  steward::testing::TempDir dir;
  sqlite::Database db = OpenLedger((dir.path() / "ledger.db").string());
  absl::StatusOr<bool> r = ApplyChanges(db, 1, "not a changeset at all");
  CHECK_FALSE(r.ok());
  CHECK(AppliedSeq(db).value() == 0);
  CHECK_FALSE(ApplyChanges(db, 0, "").ok());
}

TEST_CASE(
    "A transaction rolled back before it was published leaves the next one publishable, even when it made a table",
    "[ha][ledger]") {
  steward::testing::TempDir dir;
  sqlite::Database db = OpenLedger((dir.path() / "ledger.db").string());
  std::vector<std::string> entries;
  absl::StatusOr<std::unique_ptr<ReplicatedCommit>> commit = ReplicatedCommit::Start(
      db,
      [&entries](uint64_t seq, absl::string_view changes) -> absl::StatusOr<uint64_t> {
        entries.emplace_back(changes);
        return seq;
      },
      0);
  REQUIRE(commit.ok());
  // A log batch that opens a new index part makes a table (with its full-text shadow
  // tables) and writes rows to it: the ROLLBACK drops them again, captured rows and all.
  REQUIRE((*commit)->Before().ok());
  REQUIRE(db.Exec("BEGIN IMMEDIATE").ok());
  REQUIRE(ledger::AddLogs("ship1", "ev1", Batch({"disk full on /var"}), nullptr, /*part_lines=*/0)(db).ok());
  REQUIRE(Count(db, "SELECT count(*) FROM sqlite_master WHERE name = 'log_fts_2'") == 1);
  REQUIRE(db.Exec("ROLLBACK").ok());
  (*commit)->Ended(false);
  CHECK(entries.empty());
  // The next transaction is published and commits.
  REQUIRE((*commit)->Before().ok());
  REQUIRE(db.Exec("BEGIN IMMEDIATE").ok());
  REQUIRE(Store::PutSetting("acl/ship1", "allow echo")(db).ok());
  const absl::Status published = (*commit)->Publish();
  INFO(published.ToString());
  CHECK(published.ok());
  REQUIRE(db.Exec(published.ok() ? "COMMIT" : "ROLLBACK").ok());
  (*commit)->Ended(published.ok());
  REQUIRE(entries.size() == 1);
  CHECK((*commit)->journal_seq() == 1);
  // What was published is that transaction alone: a copy that applies it has the setting
  // and no log part.
  sqlite::Database replica = OpenLedger((dir.path() / "replica.db").string());
  absl::StatusOr<bool> applied = ApplyChanges(replica, 1, entries[0]);
  INFO(applied.status().ToString());
  REQUIRE(applied.ok());
  CHECK(Count(replica, "SELECT count(*) FROM settings WHERE key = 'acl/ship1'") == 1);
  CHECK(Count(replica, "SELECT count(*) FROM log_lines") == 0);
  CHECK(Count(db, "SELECT count(*) FROM sqlite_master WHERE name = 'log_fts_2'") == 0);
}

}  // namespace
}  // namespace steward::station::ha
