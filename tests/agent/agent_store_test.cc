// Tests for the agent's durable store (agent/agent_store.h): the command log (upsert,
// reopen, interrupted commands, pruning, concurrent writers), the spool (order, reopen)
// and clear errors for a corrupt file or a data dir that can't be created.
#include "agent/agent_store.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/testing/nats_server.h"

namespace steward::agent {
namespace {

proto::Ack MakeAck(const std::string& id, proto::Stage stage) {
  proto::Ack ack;
  ack.set_protocol_version(1);
  ack.set_envelope_id(id);
  ack.set_node("ship1");
  ack.set_stage(stage);
  if (stage == proto::STAGE_RESULT) {
    ack.set_outcome(proto::OUTCOME_SUCCEEDED);
    ack.set_stdout(std::string("out\0put", 7));  // bytes, not text
    ack.set_finished_unix_ms(1234);
  }
  return ack;
}

std::shared_ptr<AgentStore> MustOpen(const std::string& dir, AgentStore::Clock clock = nullptr) {
  absl::StatusOr<std::shared_ptr<AgentStore>> store = AgentStore::Open(dir, std::move(clock));
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return *std::move(store);
}

std::vector<std::string> Ids(const std::vector<proto::Ack>& acks) {
  std::vector<std::string> ids;
  for (const proto::Ack& a : acks) ids.push_back(a.envelope_id());
  return ids;
}

std::vector<std::string> Ids(const std::vector<OutboxItem>& items) {
  std::vector<std::string> ids;
  for (const OutboxItem& i : items) ids.push_back(i.id);
  return ids;
}

TEST_CASE("AgentStore: Record then Lookup returns the ACK", "[store]") {
  testing::TempDir dir;
  std::unique_ptr<CommandLog> log = MustOpen(dir.str())->NewCommandLog();  // keeps the store
  CHECK_FALSE(log->Lookup("01A").has_value());
  const proto::Ack ack = MakeAck("01A", proto::STAGE_RESULT);
  REQUIRE(log->Record(ack).ok());
  std::optional<proto::Ack> got = log->Lookup("01A");
  REQUIRE(got.has_value());
  CHECK(got->SerializeAsString() == ack.SerializeAsString());
  CHECK(got->stdout() == std::string("out\0put", 7));
  CHECK_FALSE(log->Lookup("01B").has_value());
  CHECK(std::filesystem::exists(dir.path() / "agent.db"));
}

TEST_CASE("AgentStore: a RESULT overwrites the RECEIVED", "[store]") {
  testing::TempDir dir;
  std::shared_ptr<AgentStore> store = MustOpen(dir.str());
  std::unique_ptr<CommandLog> log = store->NewCommandLog();
  REQUIRE(log->Record(MakeAck("01A", proto::STAGE_RECEIVED)).ok());
  REQUIRE(log->Lookup("01A")->stage() == proto::STAGE_RECEIVED);
  REQUIRE(log->Record(MakeAck("01A", proto::STAGE_RESULT)).ok());
  std::optional<proto::Ack> got = log->Lookup("01A");
  REQUIRE(got.has_value());
  CHECK(got->stage() == proto::STAGE_RESULT);
  CHECK(got->outcome() == proto::OUTCOME_SUCCEEDED);
  absl::StatusOr<std::vector<proto::Ack>> interrupted = store->Interrupted();
  REQUIRE(interrupted.ok());
  CHECK(interrupted->empty());
}

TEST_CASE("AgentStore: the command log survives closing and reopening", "[store]") {
  testing::TempDir dir;
  {
    std::shared_ptr<AgentStore> store = MustOpen(dir.str());
    std::unique_ptr<CommandLog> log = store->NewCommandLog();
    REQUIRE(log->Record(MakeAck("01A", proto::STAGE_RESULT)).ok());
    REQUIRE(log->Record(MakeAck("01B", proto::STAGE_RECEIVED)).ok());
  }
  std::unique_ptr<CommandLog> log = MustOpen(dir.str())->NewCommandLog();
  std::optional<proto::Ack> a = log->Lookup("01A");
  REQUIRE(a.has_value());
  CHECK(a->SerializeAsString() == MakeAck("01A", proto::STAGE_RESULT).SerializeAsString());
  std::optional<proto::Ack> b = log->Lookup("01B");
  REQUIRE(b.has_value());
  CHECK(b->stage() == proto::STAGE_RECEIVED);
}

TEST_CASE("AgentStore: Interrupted lists exactly the received-only commands", "[store]") {
  testing::TempDir dir;
  {
    std::shared_ptr<AgentStore> store = MustOpen(dir.str());
    std::unique_ptr<CommandLog> log = store->NewCommandLog();
    // Recorded out of order; Interrupted answers in id (creation) order.
    REQUIRE(log->Record(MakeAck("01D", proto::STAGE_RECEIVED)).ok());
    REQUIRE(log->Record(MakeAck("01A", proto::STAGE_RECEIVED)).ok());
    REQUIRE(log->Record(MakeAck("01B", proto::STAGE_RECEIVED)).ok());
    REQUIRE(log->Record(MakeAck("01B", proto::STAGE_RESULT)).ok());
    REQUIRE(log->Record(MakeAck("01C", proto::STAGE_RESULT)).ok());
  }
  // As after a crash: a new process opens the same file.
  absl::StatusOr<std::vector<proto::Ack>> interrupted = MustOpen(dir.str())->Interrupted();
  REQUIRE(interrupted.ok());
  CHECK(Ids(*interrupted) == std::vector<std::string>{"01A", "01D"});
  for (const proto::Ack& a : *interrupted) CHECK(a.node() == "ship1");
}

TEST_CASE("AgentStore: the spool keeps items in id order across reopen", "[store]") {
  testing::TempDir dir;
  {
    std::unique_ptr<Spool> spool = MustOpen(dir.str())->NewSpool();
    REQUIRE(spool->Put({"03", "steward.events.ship1.result", "c"}).ok());
    REQUIRE(spool->Put({"01", "steward.events.ship1.result", std::string("a\0b", 3)}).ok());
    REQUIRE(spool->Put({"02", "steward.events.ship1.hello", "b"}).ok());
    REQUIRE(spool->Put({"04", "steward.events.ship1.errorlog", "d"}).ok());
    REQUIRE(spool->Put({"02", "steward.events.ship1.hello", "b2"}).ok());  // replaces
    REQUIRE(spool->Remove("03").ok());
    REQUIRE(spool->Remove("99").ok());  // not there: no error
    absl::StatusOr<std::vector<OutboxItem>> items = spool->LoadAll();
    REQUIRE(items.ok());
    CHECK(Ids(*items) == std::vector<std::string>{"01", "02", "04"});
  }
  std::unique_ptr<Spool> spool = MustOpen(dir.str())->NewSpool();
  absl::StatusOr<std::vector<OutboxItem>> items = spool->LoadAll();
  REQUIRE(items.ok());
  REQUIRE(Ids(*items) == std::vector<std::string>{"01", "02", "04"});
  CHECK((*items)[0].subject == "steward.events.ship1.result");
  CHECK((*items)[0].data == std::string("a\0b", 3));
  CHECK((*items)[1].data == "b2");
  CHECK((*items)[2].subject == "steward.events.ship1.errorlog");
}

TEST_CASE("AgentStore: PruneCommandLog forgets old results only", "[store]") {
  testing::TempDir dir;
  absl::Time now = absl::FromUnixSeconds(1700000000);
  std::shared_ptr<AgentStore> store = MustOpen(dir.str(), [&now] { return now; });
  std::unique_ptr<CommandLog> log = store->NewCommandLog();
  REQUIRE(log->Record(MakeAck("01OLD", proto::STAGE_RESULT)).ok());
  REQUIRE(log->Record(MakeAck("01STUCK", proto::STAGE_RECEIVED)).ok());
  now += absl::Hours(2);
  REQUIRE(log->Record(MakeAck("01NEW", proto::STAGE_RESULT)).ok());
  now += absl::Minutes(1);

  absl::StatusOr<int64_t> removed = store->PruneCommandLog(absl::Hours(1));
  REQUIRE(removed.ok());
  CHECK(*removed == 1);
  CHECK_FALSE(log->Lookup("01OLD").has_value());
  CHECK(log->Lookup("01NEW").has_value());
  CHECK(log->Lookup("01STUCK").has_value());  // received-only: kept however old

  removed = store->PruneCommandLog(absl::Hours(1));
  REQUIRE(removed.ok());
  CHECK(*removed == 0);
  removed = store->PruneCommandLog(absl::ZeroDuration());
  REQUIRE(removed.ok());
  CHECK(*removed == 1);
  CHECK_FALSE(log->Lookup("01NEW").has_value());
  CHECK(log->Lookup("01STUCK").has_value());
}

TEST_CASE("AgentStore: concurrent Record from several threads", "[store]") {
  testing::TempDir dir;
  std::shared_ptr<AgentStore> store = MustOpen(dir.str());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&store, &failures, t] {
      std::unique_ptr<CommandLog> log = store->NewCommandLog();  // one each, same store
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = absl::StrCat("01T", t, "_", i);
        if (!log->Record(MakeAck(id, proto::STAGE_RECEIVED)).ok() ||
            !log->Record(MakeAck(id, proto::STAGE_RESULT)).ok()) {
          ++failures[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int f : failures) CHECK(f == 0);
  std::unique_ptr<CommandLog> log = store->NewCommandLog();
  int found = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      std::optional<proto::Ack> a = log->Lookup(absl::StrCat("01T", t, "_", i));
      if (a.has_value() && a->stage() == proto::STAGE_RESULT) ++found;
    }
  }
  CHECK(found == kThreads * kPerThread);
  absl::StatusOr<std::vector<proto::Ack>> interrupted = store->Interrupted();
  REQUIRE(interrupted.ok());
  CHECK(interrupted->empty());
}

TEST_CASE("AgentStore: RecordIfNew records a new id once and then answers with the record",
          "[store]") {
  testing::TempDir dir;
  std::shared_ptr<AgentStore> store = MustOpen(dir.str());
  std::unique_ptr<CommandLog> log = store->NewCommandLog();
  const proto::Ack received = MakeAck("01A", proto::STAGE_RECEIVED);
  absl::StatusOr<std::optional<proto::Ack>> first = log->RecordIfNew(received);
  REQUIRE(first.ok());
  CHECK_FALSE(first->has_value());  // new: recorded, to be run
  REQUIRE(log->Lookup("01A").has_value());
  CHECK(log->Lookup("01A")->stage() == proto::STAGE_RECEIVED);

  // Seen before: nothing is overwritten, the record comes back.
  absl::StatusOr<std::optional<proto::Ack>> again = log->RecordIfNew(received);
  REQUIRE(again.ok());
  REQUIRE(again->has_value());
  CHECK((*again)->stage() == proto::STAGE_RECEIVED);
  REQUIRE(log->Record(MakeAck("01A", proto::STAGE_RESULT)).ok());
  again = log->RecordIfNew(received);
  REQUIRE(again.ok());
  REQUIRE(again->has_value());
  CHECK((*again)->SerializeAsString() == MakeAck("01A", proto::STAGE_RESULT).SerializeAsString());
  CHECK(log->Lookup("01A")->stage() == proto::STAGE_RESULT);

  CHECK_FALSE(log->RecordIfNew(MakeAck("", proto::STAGE_RECEIVED)).ok());  // no id
}

TEST_CASE("MemoryCommandLog: RecordIfNew records a new id once", "[store]") {
  std::unique_ptr<CommandLog> log = NewMemoryCommandLog();
  absl::StatusOr<std::optional<proto::Ack>> first = log->RecordIfNew(MakeAck("01A", proto::STAGE_RECEIVED));
  REQUIRE(first.ok());
  CHECK_FALSE(first->has_value());
  REQUIRE(log->Record(MakeAck("01A", proto::STAGE_RESULT)).ok());
  absl::StatusOr<std::optional<proto::Ack>> again = log->RecordIfNew(MakeAck("01A", proto::STAGE_RECEIVED));
  REQUIRE(again.ok());
  REQUIRE(again->has_value());
  CHECK((*again)->stage() == proto::STAGE_RESULT);
}

TEST_CASE("AgentStore: RecordAndSpool writes the result and the item together", "[store]") {
  testing::TempDir dir;
  const OutboxItem item{"02EV", "station.event.result.default", std::string("ev\0data", 7)};
  {
    std::shared_ptr<AgentStore> store = MustOpen(dir.str());
    std::unique_ptr<CommandLog> log = store->NewCommandLog();
    std::unique_ptr<Spool> spool = store->NewSpool();
    REQUIRE(log->Record(MakeAck("01A", proto::STAGE_RECEIVED)).ok());
    REQUIRE(log->RecordAndSpool(MakeAck("01A", proto::STAGE_RESULT), *spool, item).ok());
    // Nothing is written when the ACK is refused.
    CHECK_FALSE(log->RecordAndSpool(MakeAck("", proto::STAGE_RESULT), *spool,
                                    OutboxItem{"02NO", "s", "x"})
                    .ok());
  }
  std::shared_ptr<AgentStore> store = MustOpen(dir.str());
  std::optional<proto::Ack> a = store->NewCommandLog()->Lookup("01A");
  REQUIRE(a.has_value());
  CHECK(a->stage() == proto::STAGE_RESULT);
  absl::StatusOr<std::vector<OutboxItem>> items = store->NewSpool()->LoadAll();
  REQUIRE(items.ok());
  REQUIRE(Ids(*items) == std::vector<std::string>{"02EV"});
  CHECK((*items)[0].data == item.data);
  absl::StatusOr<std::vector<proto::Ack>> interrupted = store->Interrupted();
  REQUIRE(interrupted.ok());
  CHECK(interrupted->empty());
}

TEST_CASE("AgentStore: RecordAndSpool into another spool records, then puts", "[store]") {
  testing::TempDir dir;
  std::shared_ptr<AgentStore> store = MustOpen(dir.str());
  std::unique_ptr<CommandLog> log = store->NewCommandLog();
  std::unique_ptr<Spool> memory = NewMemorySpool();
  REQUIRE(log->RecordAndSpool(MakeAck("01A", proto::STAGE_RESULT), *memory,
                              OutboxItem{"02EV", "s", "x"})
              .ok());
  CHECK(log->Lookup("01A")->stage() == proto::STAGE_RESULT);
  absl::StatusOr<std::vector<OutboxItem>> items = memory->LoadAll();
  REQUIRE(items.ok());
  CHECK(Ids(*items) == std::vector<std::string>{"02EV"});
  // Another store's spool is "another spool" too.
  testing::TempDir other_dir;
  std::unique_ptr<Spool> other = MustOpen(other_dir.str())->NewSpool();
  REQUIRE(log->RecordAndSpool(MakeAck("01B", proto::STAGE_RESULT), *other,
                              OutboxItem{"02EW", "s", "y"})
              .ok());
  CHECK(log->Lookup("01B").has_value());
  items = other->LoadAll();
  REQUIRE(items.ok());
  CHECK(Ids(*items) == std::vector<std::string>{"02EW"});
  items = store->NewSpool()->LoadAll();
  REQUIRE(items.ok());
  CHECK(items->empty());
}

TEST_CASE("AgentStore: spool removals hold across writes, reads and reopening", "[store]") {
  testing::TempDir dir;
  {
    std::shared_ptr<AgentStore> store = MustOpen(dir.str());
    std::unique_ptr<Spool> spool = store->NewSpool();
    std::unique_ptr<Spool> logs = store->NewSpool("logs");
    for (const char* id : {"01", "02", "03", "04"}) REQUIRE(spool->Put({id, "s", id}).ok());
    REQUIRE(logs->Put({"05", "s", "l"}).ok());
    REQUIRE(spool->Remove("01").ok());
    REQUIRE(spool->Remove("05").ok());  // another kind's id: not this spool's to remove
    absl::StatusOr<std::vector<OutboxItem>> items = spool->LoadAll();
    REQUIRE(items.ok());
    CHECK(Ids(*items) == std::vector<std::string>{"02", "03", "04"});
    // Removed, then put again: the item stays.
    REQUIRE(spool->Remove("02").ok());
    REQUIRE(spool->Put({"02", "s", "again"}).ok());
    REQUIRE(spool->Remove("03").ok());
    REQUIRE(store->NewCommandLog()->Record(MakeAck("01A", proto::STAGE_RECEIVED)).ok());
    REQUIRE(spool->Remove("04").ok());  // written when the store closes
  }
  std::shared_ptr<AgentStore> store = MustOpen(dir.str());
  absl::StatusOr<std::vector<OutboxItem>> items = store->NewSpool()->LoadAll();
  REQUIRE(items.ok());
  REQUIRE(Ids(*items) == std::vector<std::string>{"02"});
  CHECK((*items)[0].data == "again");
  items = store->NewSpool("logs")->LoadAll();
  REQUIRE(items.ok());
  CHECK(Ids(*items) == std::vector<std::string>{"05"});
}

TEST_CASE("AgentStore: many removals without writes are written in batches", "[store]") {
  testing::TempDir dir;
  constexpr int kItems = 1000;
  // The removals are made in a child that then dies without closing the store, as a
  // kill -9 would: what it left in the file is what was written by then.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    absl::StatusOr<std::shared_ptr<AgentStore>> store = AgentStore::Open(dir.str());
    if (!store.ok()) ::_exit(10);
    std::unique_ptr<Spool> spool = (*store)->NewSpool();
    for (int i = 0; i < kItems; ++i) {
      const std::string id = absl::StrCat("01", 1000 + i);
      if (!spool->Put({id, "s", id}).ok()) ::_exit(11);
    }
    for (int i = 0; i < kItems; ++i) {
      if (!spool->Remove(absl::StrCat("01", 1000 + i)).ok()) ::_exit(12);
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  // At most a batch of removals was still waiting.
  absl::StatusOr<sqlite::Database> db =
      sqlite::Database::Open((dir.path() / "agent.db").string(), {.read_only = true});
  REQUIRE(db.ok());
  absl::StatusOr<sqlite::Statement> count = db->Prepare("SELECT COUNT(*) FROM spool");
  REQUIRE(count.ok());
  absl::StatusOr<bool> row = count->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  CHECK(count->ColumnInt(0) > 0);
  CHECK(count->ColumnInt(0) < 300);
}

TEST_CASE("AgentStore: a second store on the same file is refused while the first is open", "[store]") {
  testing::TempDir dir;
  std::shared_ptr<AgentStore> store = MustOpen(dir.str());
  REQUIRE(store->NewSpool()->Put({"01", "s", "kept"}).ok());
  // Another process (a second agent on the same data directory): the file is the
  // first one's alone.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    absl::StatusOr<std::shared_ptr<AgentStore>> other = AgentStore::Open(dir.str());
    if (other.ok()) ::_exit(1);
    const bool says = absl::IsUnavailable(other.status()) &&
                      absl::StrContains(other.status().message(), "another process has it open") &&
                      absl::StrContains(other.status().message(), (dir.path() / "agent.db").string());
    ::_exit(says ? 0 : 2);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // The first store goes on, and once it is closed the file opens again.
  REQUIRE(store->NewSpool()->Put({"02", "s", "also"}).ok());
  store.reset();
  std::shared_ptr<AgentStore> again = MustOpen(dir.str());
  absl::StatusOr<std::vector<OutboxItem>> items = again->NewSpool()->LoadAll();
  REQUIRE(items.ok());
  CHECK(Ids(*items) == std::vector<std::string>{"01", "02"});
}

TEST_CASE("AgentStore: a file that is not a database is an error naming it", "[store]") {
  testing::TempDir dir;
  const std::string db_path = (dir.path() / "agent.db").string();
  {
    std::ofstream out(db_path, std::ios::binary);
    for (int i = 0; i < 200; ++i) out << "this is not an SQLite database, just garbage. ";
  }
  absl::StatusOr<std::shared_ptr<AgentStore>> store = AgentStore::Open(dir.str());
  REQUIRE_FALSE(store.ok());
  INFO(store.status().ToString());
  CHECK(absl::StrContains(store.status().message(), db_path));
  CHECK(store.status().code() == absl::StatusCode::kDataLoss);
}

TEST_CASE("AgentStore: a data dir that can't be created is an error naming it", "[store]") {
  testing::TempDir dir;
  const std::filesystem::path file = dir.path() / "plain-file";
  { std::ofstream(file) << "x"; }
  const std::string data_dir = (file / "state").string();  // under a regular file
  absl::StatusOr<std::shared_ptr<AgentStore>> store = AgentStore::Open(data_dir);
  REQUIRE_FALSE(store.ok());
  INFO(store.status().ToString());
  CHECK(absl::StrContains(store.status().message(), data_dir));
}

TEST_CASE("AgentStore: a newer schema is refused", "[store]") {
  testing::TempDir dir;
  {
    absl::StatusOr<sqlite::Database> db =
        sqlite::Database::Open((dir.path() / "agent.db").string(), {});
    REQUIRE(db.ok());
    REQUIRE(db->Exec("CREATE TABLE schema_version (version INTEGER NOT NULL);"
                     "INSERT INTO schema_version(version) VALUES (99)")
                .ok());
  }
  absl::StatusOr<std::shared_ptr<AgentStore>> store = AgentStore::Open(dir.str());
  REQUIRE_FALSE(store.ok());
  INFO(store.status().ToString());
  CHECK(store.status().code() == absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace steward::agent
