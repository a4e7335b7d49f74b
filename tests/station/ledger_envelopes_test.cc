// A command's envelope is kept apart from its state (schema step 7): written once, so a
// state change rewrites a small row; rewritten when the command is re-signed for another
// installation; a finished copy chunk's payload leaves the ledger. A ledger of the
// schema before (envelopes inside the records) opens, reads back whole, and moves a
// command's envelope out at its next write.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/protocol.h"
#include "common/sqlite.h"
#include "station/ledger/log_store.h"
#include "station/ledger/schema.h"
#include "station/ledger/store.h"
#include "tests/station/ledger_testing.h"

namespace steward::station {
namespace {

using ledger::Store;

using ledger::testing::FreshDir;

using ledger::testing::Int;
using ledger::testing::Put;

proto::CommandState Command(const std::string& id, const std::string& method, const std::string& payload,
                            proto::State state) {
  return ledger::testing::CommandRecord(id, method, payload, state);
}

proto::CommandState Get(Store& store, const std::string& id) {
  absl::StatusOr<std::optional<proto::CommandState>> c = store.GetCommand(id);
  REQUIRE(c.ok());
  REQUIRE(c->has_value());
  return **c;
}

TEST_CASE("a state change rewrites the command's row, not its envelope", "[station][ledger][envelopes]") {
  const std::filesystem::path dir = FreshDir("envelopes");
  {
    auto store = Store::Open(dir.string());
    REQUIRE(store.ok());
    // Counts every write of an envelope row from here on.
    REQUIRE(ledger::testing::WriteAndWait(**store, [](sqlite::Database& db) {
              return db.Exec(
                  "CREATE TABLE envelope_writes (id TEXT);"
                  "CREATE TRIGGER envelope_inserted AFTER INSERT ON command_envelopes "
                  "BEGIN INSERT INTO envelope_writes VALUES (new.id); END;"
                  "CREATE TRIGGER envelope_updated AFTER UPDATE ON command_envelopes "
                  "BEGIN INSERT INTO envelope_writes VALUES (new.id); END;");
            }).ok());
    const std::string payload(300 << 10, 'p');
    proto::CommandState c = Command("c1", kMethodEcho, payload, proto::STATE_QUEUED);
    Put(**store, c);
    for (proto::State s : {proto::STATE_SENT, proto::STATE_RUNNING, proto::STATE_SUCCEEDED}) {
      c.set_state(s);
      Put(**store, c);
    }
    CHECK(Int(**store, "SELECT count(*) FROM envelope_writes") == 1);
    // The record is the state alone.
    CHECK(Int(**store, "SELECT length(record) FROM commands WHERE id = 'c1'") < 200);
    proto::CommandState back = Get(**store, "c1");
    CHECK(back.state() == proto::STATE_SUCCEEDED);
    CHECK(back.command().payload() == payload);  // not a copy chunk: kept
    CHECK(back.command().argv_size() == 2);

    // Re-signed for another installation: the envelope is written again.
    proto::CommandState d = Command("d1", kMethodEcho, "abc", proto::STATE_QUEUED);
    Put(**store, d);
    d.mutable_command()->set_target_instance("inst-2");
    d.mutable_command()->set_signature("sig-2");
    d.set_state(proto::STATE_SENT);
    Put(**store, d);
    CHECK(Int(**store, "SELECT count(*) FROM envelope_writes WHERE id = 'd1'") == 2);
    CHECK(Get(**store, "d1").command().target_instance() == "inst-2");
    CHECK(Get(**store, "d1").command().signature() == "sig-2");

    // A record without its envelope (a state change, as CommandTable writes it while
    // the ledger holds the envelope as it is): the envelope row stays as it was.
    proto::CommandState bare = c;
    bare.clear_command();
    bare.set_state(proto::STATE_FAILED);
    Put(**store, bare);
    CHECK(Int(**store, "SELECT count(*) FROM envelope_writes WHERE id = 'c1'") == 1);
    proto::CommandState after = Get(**store, "c1");
    CHECK(after.state() == proto::STATE_FAILED);
    CHECK(after.command().payload() == payload);
    CHECK(after.command().argv_size() == 2);

    // A fresh command (Core::Submit) is written without looking for its row first.
    proto::CommandState f = Command("f1", kMethodEcho, "xyz", proto::STATE_QUEUED);
    REQUIRE(ledger::testing::WriteAndWait(**store, [&](sqlite::Database& db) {
              return (*store)->WriteCommand(db, f, /*fresh=*/true);
            }).ok());
    CHECK(Int(**store, "SELECT count(*) FROM envelope_writes WHERE id = 'f1'") == 1);
    CHECK(Get(**store, "f1").command().payload() == "xyz");
    CHECK(Get(**store, "f1").state() == proto::STATE_QUEUED);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a finished copy chunk's payload leaves the ledger, an unfinished one's stays",
          "[station][ledger][envelopes]") {
  const std::filesystem::path dir = FreshDir("envelopes-copy");
  {
    auto store = Store::Open(dir.string());
    REQUIRE(store.ok());
    const std::string chunk(200 << 10, 'c');
    proto::CommandState c = Command("k1", kMethodCopy, chunk, proto::STATE_QUEUED);
    Put(**store, c);
    c.set_state(proto::STATE_SENT);
    Put(**store, c);
    // Not finished: a restart must be able to send it again.
    auto active = (*store)->ActiveCommands();
    REQUIRE(active.ok());
    REQUIRE(active->size() == 1);
    CHECK(active->front().command().payload() == chunk);
    CHECK(Int(**store, "SELECT payload_dropped FROM command_envelopes WHERE id = 'k1'") == 0);

    c.set_state(proto::STATE_SUCCEEDED);
    Put(**store, c);
    CHECK(Int(**store, "SELECT payload_dropped FROM command_envelopes WHERE id = 'k1'") == static_cast<int64_t>(chunk.size()));
    CHECK(Int(**store, "SELECT length(envelope) FROM command_envelopes WHERE id = 'k1'") < 200);
    proto::CommandState back = Get(**store, "k1");
    CHECK(back.state() == proto::STATE_SUCCEEDED);
    CHECK(back.command().payload().empty());
    CHECK(back.command().method() == kMethodCopy);
    CHECK(back.command().argv_size() == 2);  // what was copied where, and the chunk's hash
    CHECK(back.command().signature() == "sig-1");
    // A later write of the same finished command with its payload (a table that kept
    // it) does not bring it back.
    c.set_updated_unix_ms(2000);
    Put(**store, c);
    CHECK(Get(**store, "k1").command().payload().empty());
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a finished copy chunk written without its payload drops the one the ledger holds",
          "[station][ledger][envelopes]") {
  // The table gives a chunk's payload to its first write at the end only: when that
  // write failed, the next comes without it, and the row must lose it all the same.
  const std::filesystem::path dir = FreshDir("envelopes-copy-bare");
  {
    auto store = Store::Open(dir.string());
    REQUIRE(store.ok());
    const std::string chunk(100 << 10, 'c');
    proto::CommandState c = Command("k2", kMethodCopy, chunk, proto::STATE_SENT);
    Put(**store, c);
    c.set_state(proto::STATE_SUCCEEDED);
    c.mutable_command()->clear_payload();
    Put(**store, c);
    const int64_t dropped = Int(**store, "SELECT payload_dropped FROM command_envelopes WHERE id = 'k2'");
    CHECK(dropped >= static_cast<int64_t>(chunk.size()));
    CHECK(dropped < static_cast<int64_t>(chunk.size()) + 16);  // the payload's bytes and its field's tag
    CHECK(Int(**store, "SELECT length(envelope) FROM command_envelopes WHERE id = 'k2'") < 200);
    CHECK(Get(**store, "k2").command().signature() == "sig-1");
    // Written again: nothing changes.
    Put(**store, c);
    CHECK(Int(**store, "SELECT payload_dropped FROM command_envelopes WHERE id = 'k2'") == dropped);

    // An empty chunk (an empty file) has nothing to drop: its envelope stays as it is.
    proto::CommandState e = Command("k3", kMethodCopy, "", proto::STATE_SENT);
    Put(**store, e);
    e.set_state(proto::STATE_SUCCEEDED);
    Put(**store, e);
    CHECK(Int(**store, "SELECT payload_dropped FROM command_envelopes WHERE id = 'k3'") == 0);
  }
  std::filesystem::remove_all(dir);
}

// The ledger as the schema before step 7 wrote it: each command's envelope inside its
// record.
void WriteOldLedger(const std::filesystem::path& dir, const std::vector<proto::CommandState>& commands) {
  auto db = sqlite::Database::Open((dir / "station.db").string(), {});
  REQUIRE(db.ok());
  REQUIRE(ledger::RegisterLogFunctions(*db).ok());
  std::vector<std::string> before = ledger::Migrations();
  before.resize(6);
  REQUIRE(db->Migrate(before).ok());
  for (const proto::CommandState& c : commands) {
    auto st = db->Prepare(
        "INSERT INTO commands(id, node, request_id, state, terminal, created_ms, updated_ms, record) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    REQUIRE(st.ok());
    REQUIRE(st->Bind(1, c.id()).ok());
    REQUIRE(st->Bind(2, c.node()).ok());
    REQUIRE(st->Bind(3, c.request_id()).ok());
    REQUIRE(st->Bind(4, absl::string_view(StateName(c.state()))).ok());
    REQUIRE(st->Bind(5, int64_t{IsTerminal(c.state()) ? 1 : 0}).ok());
    REQUIRE(st->Bind(6, c.created_unix_ms()).ok());
    REQUIRE(st->Bind(7, c.updated_unix_ms()).ok());
    REQUIRE(st->BindBlob(8, c.SerializeAsString()).ok());
    REQUIRE(st->Step().ok());
  }
}

TEST_CASE("a ledger of the schema before command envelopes opens, reads whole, and moves them out",
          "[station][ledger][envelopes][upgrade]") {
  const std::filesystem::path dir = FreshDir("envelopes-old");
  const std::string payload(100 << 10, 'o');
  WriteOldLedger(dir, {Command("a1", kMethodCopy, payload, proto::STATE_SENT),
                       Command("b1", kMethodShell, "input", proto::STATE_SUCCEEDED)});
  {
    auto store = Store::Open(dir.string());
    REQUIRE(store.ok());
    CHECK(Int(**store, "SELECT max(version) FROM schema_version") == static_cast<int64_t>(ledger::Migrations().size()));
    CHECK(Int(**store, "SELECT count(*) FROM command_envelopes") == 0);  // the migration copies nothing
    auto active = (*store)->ActiveCommands();
    REQUIRE(active.ok());
    REQUIRE(active->size() == 1);
    CHECK(active->front().id() == "a1");
    CHECK(active->front().state() == proto::STATE_SENT);
    CHECK(active->front().command().payload() == payload);  // the old record's, for a resend
    CHECK(Get(**store, "b1").command().payload() == "input");
    CHECK(Get(**store, "b1").command().method() == kMethodShell);

    // The next write of a1 moves its envelope out of the record.
    proto::CommandState a = active->front();
    a.set_state(proto::STATE_RUNNING);
    Put(**store, a);
    CHECK(Int(**store, "SELECT count(*) FROM command_envelopes WHERE id = 'a1'") == 1);
    CHECK(Int(**store, "SELECT length(record) FROM commands WHERE id = 'a1'") < 200);
  }
  {
    auto store = Store::Open(dir.string());
    REQUIRE(store.ok());
    proto::CommandState a = Get(**store, "a1");
    CHECK(a.state() == proto::STATE_RUNNING);
    CHECK(a.command().payload() == payload);
    CHECK(a.command().target_instance() == "inst-1");
    auto all = (*store)->History("", proto::STATE_UNSPECIFIED, 10);
    REQUIRE(all.ok());
    CHECK(all->size() == 2);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace steward::station
