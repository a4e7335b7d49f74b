// The replicated ledger's journal on a real nats-server with JetStream: entries in their
// place only (fencing), a lost answer that counts as stored, and a ledger Store that
// publishes every transaction before it commits: a copy rebuilt from the journal has
// the same rows, and a write the journal refuses is neither committed nor acknowledged.
#include "station/ha/journal.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "station/ha/changes.h"
#include "station/ha/follower.h"
#include "station/ha/lease.h"
#include "station/ledger/store.h"
#include "tests/station/ha_testing.h"
#include "tests/station/ledger_testing.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/wait.h"

namespace steward::station::ha {
namespace {

using ledger::Store;
using ledger::testing::WriteAndWait;
using steward::testing::NatsServer;
using steward::testing::TempDir;
using testing::Broker;
using testing::Dump;
using testing::OpenLedger;

std::unique_ptr<Journal> MustOpen(natsConnection* nc, size_t part_bytes = 0) {
  absl::StatusOr<std::unique_ptr<Journal>> j = Journal::Open(nc, {.station = "station", .part_bytes = part_bytes});
  INFO(j.status().ToString());
  REQUIRE(j.ok());
  return std::move(*j);
}

TEST_CASE("Journal entries go in their own place only", "[ha][integration]") {
  Broker broker;
  std::unique_ptr<Journal> a = MustOpen(broker.a.get());
  std::unique_ptr<Journal> b = MustOpen(broker.b.get());  // binds to the same stream
  CHECK(a->LastSeq().value() == 0);
  REQUIRE(a->Append(1, 7, "one").ok());
  REQUIRE(a->Append(2, 7, "two").ok());
  CHECK(b->LastSeq().value() == 2);
  absl::StatusOr<JournalEntry> e = b->Get(2);
  REQUIRE(e.ok());
  CHECK(e->term == 7);
  CHECK(e->changes == "two");
  CHECK(b->Get(3).status().code() == absl::StatusCode::kNotFound);

  // A gap, and a place already taken, are refused.
  absl::Status st = a->Append(4, 7, "four").status();
  CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
  // The same entry again (an attempt whose answer was lost): stored, once.
  CHECK(a->Append(2, 7, "two").ok());
  CHECK(a->LastSeq().value() == 2);

  // A new active instance (term 9) writes entry 3; the old one (term 7), not knowing,
  // tries the same place and is fenced off.
  REQUIRE(b->Append(3, 9, "three by b").ok());
  st = a->Append(3, 7, "three by a").status();
  CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(st.message()), Catch::Contains("term 9"));
  CHECK(a->Get(3)->changes == "three by b");

  std::vector<std::string> read;
  absl::StatusOr<uint64_t> last = a->ReadFrom(2, [&](const JournalEntry& entry) {
    read.push_back(entry.changes);
    return absl::OkStatus();
  });
  REQUIRE(last.ok());
  CHECK(*last == 3);
  CHECK(read == std::vector<std::string>{"two", "three by b"});
}

TEST_CASE("A compacted journal keeps its numbering and its fencing", "[ha][integration]") {
  Broker broker;
  std::unique_ptr<Journal> a = MustOpen(broker.a.get());
  std::unique_ptr<Journal> b = MustOpen(broker.b.get());
  absl::StatusOr<Journal::Bounds> bounds = a->GetBounds();
  REQUIRE(bounds.ok());
  CHECK(bounds->first == 1);
  CHECK(bounds->last == 0);
  for (uint64_t seq = 1; seq <= 5; ++seq) REQUIRE(a->Append(seq, 7, absl::StrCat("entry ", seq)).ok());

  REQUIRE(a->Compact(4).ok());
  bounds = b->GetBounds();
  REQUIRE(bounds.ok());
  CHECK(bounds->first == 4);
  CHECK(bounds->last == 5);
  CHECK(b->Get(3).status().code() == absl::StatusCode::kNotFound);
  CHECK(b->Get(4)->changes == "entry 4");
  // Compacting below what is gone already changes nothing.
  REQUIRE(a->Compact(2).ok());
  CHECK(b->GetBounds()->first == 4);

  // The numbering goes on from the last entry, and a stale writer is still fenced.
  CHECK(a->Append(5, 7, "another five").status().code() == absl::StatusCode::kFailedPrecondition);
  REQUIRE(b->Append(6, 9, "six").ok());
  CHECK(a->Append(6, 7, "six by a").status().code() == absl::StatusCode::kFailedPrecondition);

  // Everything dropped: the journal is empty and starts after its last entry.
  REQUIRE(a->Compact(7).ok());
  bounds = b->GetBounds();
  REQUIRE(bounds.ok());
  CHECK(bounds->first == 7);
  CHECK(bounds->last == 6);
  REQUIRE(b->Append(7, 9, "seven").ok());
  std::vector<std::string> read;
  REQUIRE(b->ReadFrom(7, [&](const JournalEntry& e) {
             read.push_back(e.changes);
             return absl::OkStatus();
           }).ok());
  CHECK(read == std::vector<std::string>{"seven"});
}

TEST_CASE("A new active instance seals the journal, so a late write of the old one lands before it or never",
          "[ha][integration]") {
  Broker broker;
  TempDir data;
  std::unique_ptr<Journal> old = MustOpen(broker.a.get());  // the old active instance, term 7
  std::unique_ptr<Journal> journal = MustOpen(broker.b.get());
  REQUIRE(old->Append(1, 7, "").ok());
  REQUIRE(old->Append(2, 7, "").ok());
  absl::StatusOr<std::unique_ptr<Lease>> lease =
      Lease::Open(broker.b.get(), {.key = "station", .holder = "new", .ttl = absl::Seconds(2)});
  REQUIRE(lease.ok());

  FollowState state;
  int seals = 0;
  // The old instance's write that was on its way (its link frozen past its lease)
  // lands after the new one caught up, before it sealed.
  state.before_seal = [&] {
    if (seals++ == 0) REQUIRE(old->Append(3, 7, "").ok());
  };
  absl::Notification stop;
  absl::StatusOr<bool> held = FollowUntilActive(data.str(), **lease, *journal, stop, state);
  INFO(held.status().ToString());
  REQUIRE(held.ok());
  REQUIRE(*held);
  CHECK(seals == 2);            // refused once, then sealed after applying the late entry
  CHECK(state.applied == 3);    // the late entry is in the new active's ledger
  CHECK(state.journal == 4);    // its writes go after the seal
  absl::StatusOr<JournalEntry> seal = journal->Get(4);
  REQUIRE(seal.ok());
  CHECK(seal->term == (*lease)->term());
  CHECK(seal->changes.empty());
  // Anything more from the old instance is refused.
  CHECK(old->Append(4, 7, "").status().code() == absl::StatusCode::kFailedPrecondition);
}

// What a writer killed part-way through a large entry leaves: its first part only.
void PublishFirstPartOnly(natsConnection* nc, uint64_t seq, uint64_t term, const std::string& bytes) {
  jsCtx* js = nullptr;
  REQUIRE(natsConnection_JetStream(&js, nc, nullptr) == NATS_OK);
  natsMsg* msg = nullptr;
  REQUIRE(natsMsg_Create(&msg, "steward.ledger.station", nullptr, bytes.data(), static_cast<int>(bytes.size())) ==
          NATS_OK);
  REQUIRE(natsMsgHeader_Set(msg, "Steward-Term", absl::StrCat(term).c_str()) == NATS_OK);
  REQUIRE(natsMsgHeader_Set(msg, "Steward-Part", "1/3") == NATS_OK);
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.ExpectLastSeq = seq - 1;
  jsPubAck* ack = nullptr;
  const natsStatus s = js_PublishMsg(&ack, js, msg, &po, nullptr);
  jsPubAck_Destroy(ack);
  natsMsg_Destroy(msg);
  jsCtx_Destroy(js);
  REQUIRE(s == NATS_OK);
}

TEST_CASE("A journal entry larger than a message goes in parts and an unfinished one is dropped",
          "[ha][integration]") {
  Broker broker;
  std::unique_ptr<Journal> a = MustOpen(broker.a.get(), /*part_bytes=*/1024);
  std::unique_ptr<Journal> b = MustOpen(broker.b.get(), /*part_bytes=*/1024);
  std::string big;
  for (int i = 0; big.size() < 3000; ++i) big += absl::StrCat(i, ",");
  absl::StatusOr<uint64_t> last = a->Append(1, 7, big);
  REQUIRE(last.ok());
  CHECK(*last == 3);  // 3 parts of at most 1024 bytes
  CHECK(a->Get(2)->part == 2);
  CHECK(a->Get(2)->parts == 3);
  // Repeated after a lost answer: every part is found in its place, nothing is added.
  CHECK(a->Append(1, 7, big).value() == 3);
  CHECK(a->LastSeq().value() == 3);
  // A different entry in those places is another writer's.
  CHECK(a->Append(1, 7, big + "x").status().code() == absl::StatusCode::kFailedPrecondition);

  // The writer of term 7 dies after the first part of its next entry; term 9 goes on
  // after it.
  PublishFirstPartOnly(broker.a.get(), 4, 7, big.substr(0, 1024));
  CHECK(b->Append(5, 9, "small").value() == 5);

  std::vector<JournalEntry> read;
  last = b->ReadFrom(1, [&](const JournalEntry& e) {
    read.push_back(e);
    return absl::OkStatus();
  });
  REQUIRE(last.ok());
  CHECK(*last == 5);
  REQUIRE(read.size() == 2);
  CHECK(read[0].first == 1);
  CHECK(read[0].seq == 3);
  CHECK(read[0].changes == big);
  CHECK(read[1].first == 4);  // the unfinished entry's message is covered, not applied
  CHECK(read[1].seq == 5);
  CHECK(read[1].changes == "small");

  // An unfinished entry at the end is left for later: the reader stops before it.
  PublishFirstPartOnly(broker.a.get(), 6, 9, big.substr(0, 1024));
  read.clear();
  last = b->ReadFrom(4, [&](const JournalEntry& e) {
    read.push_back(e);
    return absl::OkStatus();
  });
  REQUIRE(last.ok());
  CHECK(*last == 5);
  CHECK(read.size() == 1);
}

TEST_CASE("A replicated ledger splits a large transaction and goes on after an unfinished entry",
          "[ha][integration]") {
  Broker broker;
  std::unique_ptr<Journal> journal = MustOpen(broker.a.get(), /*part_bytes=*/2048);
  TempDir data;
  Store::Options options;
  options.replicate = [&](uint64_t seq, absl::string_view changes) { return journal->Append(seq, 3, changes); };
  const std::string value(20000, 'v');  // ~10 parts
  {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open((data.path() / "active").string(), options);
    REQUIRE(store.ok());
    REQUIRE(WriteAndWait(**store, Store::PutSetting("big", value)).ok());
    CHECK((*store)->journal_seq() > 5);
    CHECK((*store)->journal_seq() == journal->LastSeq().value());
  }
  // The instance that held the lease before died part-way through an entry; a new one
  // takes over, knowing where the journal ends.
  const uint64_t end = journal->LastSeq().value();
  PublishFirstPartOnly(broker.a.get(), end + 1, 3, "lost");
  options.journal_end = end + 1;
  options.replicate = [&](uint64_t seq, absl::string_view changes) { return journal->Append(seq, 4, changes); };
  {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open((data.path() / "active").string(), options);
    REQUIRE(store.ok());
    REQUIRE(WriteAndWait(**store, Store::PutSetting("after", "the takeover")).ok());
    CHECK((*store)->journal_seq() == end + 2);
  }
  sqlite::Database active = OpenLedger((data.path() / "active" / "station.db").string());
  sqlite::Database copy = OpenLedger((data.path() / "copy.db").string());
  absl::StatusOr<uint64_t> done = journal->ReadFrom(1, [&](const JournalEntry& e) {
    return ApplyChanges(copy, e.first, e.seq, e.changes).status();
  });
  INFO(done.status().ToString());
  REQUIRE(done.ok());
  CHECK(*done == end + 2);
  CHECK(Dump(copy) == Dump(active));
  CHECK(testing::Count(copy, "SELECT length(value) FROM settings WHERE key = 'big'") == 20000);
  CHECK(AppliedSeq(copy).value() == end + 2);
  CHECK(AppliedSeq(active).value() == end + 2);
}

TEST_CASE("A replicated ledger publishes every transaction before it commits it", "[ha][integration]") {
  Broker broker;
  std::unique_ptr<Journal> journal = MustOpen(broker.a.get());
  std::unique_ptr<Journal> other = MustOpen(broker.b.get());
  TempDir data;
  uint64_t term = 5;
  Store::Options options;
  options.replicate = [&](uint64_t seq, absl::string_view changes) { return journal->Append(seq, term, changes); };
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open((data.path() / "active").string(), options);
  REQUIRE(store.ok());

  proto::NodeInfo node;
  node.set_name("ship1");
  REQUIRE(WriteAndWait(**store, Store::PutNode(node)).ok());
  REQUIRE(WriteAndWait(**store, Store::PutSetting("acl/ship1", "allow echo")).ok());
  REQUIRE(WriteAndWait(**store, Store::AddTransition("ship1", true, 1000, "hello")).ok());
  CHECK((*store)->journal_seq() == 3);
  CHECK(journal->LastSeq().value() == 3);
  // A write that changes nothing takes no entry.
  REQUIRE(WriteAndWait(**store, [](sqlite::Database&) { return absl::OkStatus(); }).ok());
  CHECK(journal->LastSeq().value() == 3);

  // Another instance takes over and writes entry 4: this store's next write is
  // refused by the journal, so it is not committed here and its caller hears so.
  REQUIRE(other->Append(4, 6, "").ok());
  proto::NodeInfo refused;
  refused.set_name("ship2");
  absl::Status st = WriteAndWait(**store, Store::PutNode(refused));
  CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
  CHECK((*store)->journal_seq() == 3);

  // Closing the store: a copy rebuilt from the journal's first three entries holds
  // exactly what the active ledger committed (ship2 in neither).
  store->reset();
  sqlite::Database active = OpenLedger((data.path() / "active" / "station.db").string());
  sqlite::Database copy = OpenLedger((data.path() / "copy.db").string());
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    absl::StatusOr<JournalEntry> e = journal->Get(seq);
    REQUIRE(e.ok());
    CHECK(e->term == 5);
    absl::StatusOr<bool> applied = ApplyChanges(copy, seq, e->changes);
    INFO(applied.status().ToString());
    REQUIRE(applied.ok());
  }
  CHECK(Dump(copy) == Dump(active));
  CHECK(testing::Count(active, "SELECT count(*) FROM nodes WHERE name = 'ship2'") == 0);
  CHECK(AppliedSeq(active).value() == 3);
}

TEST_CASE("A replicated ledger whose broker is gone acknowledges nothing, and goes on when it is back",
          "[ha][integration]") {
  Broker broker;
  std::unique_ptr<Journal> journal = MustOpen(broker.a.get());
  TempDir data;
  Store::Options options;
  options.replicate = [&](uint64_t seq, absl::string_view changes) { return journal->Append(seq, 1, changes); };
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(data.str(), options);
  REQUIRE(store.ok());
  proto::NodeInfo node;
  node.set_name("ship1");
  REQUIRE(WriteAndWait(**store, Store::PutNode(node)).ok());

  broker.server.Stop();
  node.set_name("ship2");
  CHECK_FALSE(WriteAndWait(**store, Store::PutNode(node)).ok());
  CHECK((*store)->journal_seq() == 1);

  broker.server.Start();
  REQUIRE(steward::testing::WaitUntil(
      [&] { return WriteAndWait(**store, Store::PutNode(node)).ok(); }, absl::Seconds(15)));
  CHECK((*store)->journal_seq() == 2);
  CHECK(journal->LastSeq().value() == 2);
  absl::StatusOr<std::vector<proto::NodeInfo>> nodes = (*store)->Nodes();
  REQUIRE(nodes.ok());
  CHECK(nodes->size() == 2);
}

TEST_CASE("A journal entry whose answer was lost is settled before the next write", "[ha][integration]") {
  // No answer at all, or an error after (some of) the entry was stored: either way the
  // store cannot know what the journal holds.
  const absl::Status lost = GENERATE(as<absl::Status>{}, absl::DeadlineExceededError("no answer"),
                                     absl::InternalError("failed after part 1 of 2 was stored"));
  INFO(lost.ToString());
  Broker broker;
  std::unique_ptr<Journal> journal = MustOpen(broker.a.get());
  TempDir data;
  bool lose_answer = true;
  Store::Options options;
  // The broker stores the entry, but the answer never comes back (as when the link
  // drops right after the publish): the store cannot know which.
  options.replicate = [&](uint64_t seq, absl::string_view changes) -> absl::StatusOr<uint64_t> {
    absl::StatusOr<uint64_t> st = journal->Append(seq, 1, changes);
    if (st.ok() && lose_answer) {
      lose_answer = false;
      return lost;
    }
    return st;
  };
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open((data.path() / "active").string(), options);
  REQUIRE(store.ok());
  proto::NodeInfo node;
  node.set_name("ship1");
  CHECK_FALSE(WriteAndWait(**store, Store::PutNode(node)).ok());  // not acknowledged
  CHECK(journal->LastSeq().value() == 1);                          // yet in the journal

  node.set_name("ship2");
  REQUIRE(WriteAndWait(**store, Store::PutNode(node)).ok());
  CHECK((*store)->journal_seq() == 2);
  CHECK(journal->LastSeq().value() == 2);
  absl::StatusOr<std::vector<proto::NodeInfo>> nodes = (*store)->Nodes();
  REQUIRE(nodes.ok());
  CHECK(nodes->size() == 2);  // ship1 too: what the journal holds, this ledger holds

  store->reset();
  sqlite::Database active = OpenLedger((data.path() / "active" / "station.db").string());
  sqlite::Database copy = OpenLedger((data.path() / "copy.db").string());
  REQUIRE(journal->ReadFrom(1, [&](const JournalEntry& e) { return ApplyChanges(copy, e.first, e.seq, e.changes).status(); })
              .ok());
  CHECK(Dump(copy) == Dump(active));
}

}  // namespace
}  // namespace steward::station::ha
