// Copy chunks' bytes in spool files beside the ledger (ledger/chunk_spool, schema step
// 8): read back whole and checked, a truncated, damaged or missing spool said so (never
// handed out as the chunk), files gone once no row names them; through the Store: a
// chunk's bytes are in the spool and not in station.db, survive a reopen, and leave
// with the chunk's end.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/synchronization/mutex.h"
#include "common/signing.h"
#include "common/protocol.h"
#include "station/ledger/chunk_spool.h"
#include "station/ledger/store.h"
#include "tests/station/ledger_testing.h"
#include "tests/testing/tmpfs.h"

namespace steward::station {
namespace {

using ledger::ChunkSpool;
using ledger::Store;

using ledger::testing::FreshDir;

std::string Bytes(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 + (i >> 9));
  return s;
}

// Overwrites one byte of `path` at `at`.
void Flip(const std::string& path, int64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(at);
  char ch = 0;
  f.read(&ch, 1);
  ch = static_cast<char>(ch ^ 0x5a);
  f.seekp(at);
  f.write(&ch, 1);
}

TEST_CASE("copy spool: chunks read back whole, a damaged spool is an error saying so",
          "[station][ledger][spool][copy]") {
  const std::filesystem::path dir = FreshDir("spool-read");
  auto spool = ChunkSpool::Open(dir.string(), {});
  REQUIRE(spool.ok());
  const std::string a = Bytes(100 << 10, 'a'), b = Bytes(70 << 10, 'b');
  auto ra = (*spool)->Append(a);
  auto rb = (*spool)->Append(b);
  REQUIRE(ra.ok());
  REQUIRE(rb.ok());
  (*spool)->Added(ra->file);
  (*spool)->Added(rb->file);
  REQUIRE((*spool)->Sync().ok());
  (*spool)->Ended(true);
  CHECK(rb->offset == static_cast<int64_t>(a.size()));
  CHECK(*(*spool)->Read(*ra) == a);
  CHECK(*(*spool)->Read(*rb) == b);

  const std::string path = (*spool)->Path(ra->file);
  SECTION("one byte changed") {
    Flip(path, ra->offset + 1000);
    absl::StatusOr<std::string> got = (*spool)->Read(*ra);
    CHECK(absl::IsDataLoss(got.status()));
    CHECK_THAT(std::string(got.status().message()), Catch::Contains("damaged"));
    CHECK((*spool)->Read(*rb).ok());  // the other chunk is whole
  }
  SECTION("truncated") {
    std::filesystem::resize_file(path, a.size() + 100);
    CHECK((*spool)->Read(*ra).ok());
    absl::StatusOr<std::string> got = (*spool)->Read(*rb);
    CHECK(absl::IsDataLoss(got.status()));
    CHECK_THAT(std::string(got.status().message()), Catch::Contains("truncated"));
  }
  SECTION("missing") {
    std::filesystem::remove(path);
    absl::StatusOr<std::string> got = (*spool)->Read(*ra);
    CHECK(absl::IsDataLoss(got.status()));
    CHECK_THAT(std::string(got.status().message()), Catch::Contains("missing"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("copy spool: a chunk that finds the disk full fails for want of room, and the spool goes on after",
          "[station][ledger][spool][copy]") {
  const std::filesystem::path dir = FreshDir("spool-full");
  std::string why;
  auto disk = steward::testing::Tmpfs::Mount(dir, 1 << 20, &why);
  if (disk == nullptr) {
    WARN("skipped: " << why);
    return;
  }
  auto spool = ChunkSpool::Open((dir / "spool").string(), {});
  REQUIRE(spool.ok());
  // Room for a part of the chunk only: a gap kept through the fill, then freed.
  std::ofstream(dir / "gap", std::ios::binary) << std::string(64 << 10, 'g');
  disk->Fill();
  std::filesystem::remove(dir / "gap");
  const std::string chunk = Bytes(256 << 10, 'f');
  absl::StatusOr<ChunkSpool::Ref> full = (*spool)->Append(chunk);
  // The ledger's health counts it as a storage failure (Store::IsStorageFailure), not
  // as a write's own error.
  CHECK(absl::IsResourceExhausted(full.status()));
  CHECK(Store::IsStorageFailure(full.status()));
  CHECK_THAT(std::string(full.status().message()), Catch::Contains("No space left"));
  // The part that found room is not left in the file, keeping it.
  REQUIRE((*spool)->Files().size() == 1);
  CHECK(std::filesystem::file_size((*spool)->Path((*spool)->Files()[0])) == 0);
  (*spool)->Ended(false);
  disk->Free();
  absl::StatusOr<ChunkSpool::Ref> room = (*spool)->Append(chunk);
  REQUIRE(room.ok());
  (*spool)->Added(room->file);
  REQUIRE((*spool)->Sync().ok());
  (*spool)->Ended(true);
  CHECK(*(*spool)->Read(*room) == chunk);
  spool->reset();
  disk.reset();  // unmounted
  std::filesystem::remove_all(dir);
}

TEST_CASE("copy spool: a file goes once no row names it, the current one is emptied",
          "[station][ledger][spool][copy]") {
  const std::filesystem::path dir = FreshDir("spool-files");
  const std::string chunk = Bytes(300 << 10, 'c');
  std::vector<ChunkSpool::Ref> refs;
  {
    // Files of 1 MiB: three chunks each.
    auto spool = ChunkSpool::Open(dir.string(), {}, 1 << 20);
    REQUIRE(spool.ok());
    ChunkSpool& s = **spool;
    for (int i = 0; i < 7; ++i) {
      auto r = s.Append(chunk);
      REQUIRE(r.ok());
      s.Added(r->file);
      refs.push_back(*r);
    }
    REQUIRE(s.Sync().ok());
    s.Ended(true);
    CHECK(s.Files().size() == 3);
    CHECK(refs[3].file == refs[0].file + 1);
    for (const ChunkSpool::Ref& r : refs) CHECK(*s.Read(r) == chunk);  // the rotation synced each whole

    // A transaction that failed: its releases do not count.
    s.Released(refs[0].file);
    s.Released(refs[1].file);
    s.Released(refs[2].file);
    s.Ended(false);
    CHECK(s.Files().size() == 3);
    // Committed: the first file goes.
    s.Released(refs[0].file);
    s.Released(refs[1].file);
    s.Released(refs[2].file);
    s.Ended(true);
    CHECK(s.Files().size() == 2);
    CHECK_FALSE(std::filesystem::exists(s.Path(refs[0].file)));
    // The current file (the 7th chunk's) is emptied once nothing in it is left.
    s.Released(refs[6].file);
    s.Ended(true);
    CHECK(std::filesystem::file_size(s.Path(refs[6].file)) == 0);
  }
  {
    // Reopened with the rows the ledger holds (the second file's three chunks): a file
    // nothing names is deleted, a new one begun.
    auto spool = ChunkSpool::Open(dir.string(), {{refs[3].file, 3}}, 1 << 20);
    REQUIRE(spool.ok());
    const std::vector<int64_t> files = (*spool)->Files();
    REQUIRE(files.size() == 2);
    CHECK(files[0] == refs[3].file);
    CHECK(files[1] > refs[6].file);
    CHECK(*(*spool)->Read(refs[4]) == chunk);
  }
  std::filesystem::remove_all(dir);
}

using ledger::testing::Int;
using ledger::testing::Put;

proto::CommandState Chunk(const std::string& id, const std::string& payload, proto::State state) {
  return ledger::testing::CommandRecord(id, kMethodCopy, payload, state);
}

std::vector<std::filesystem::path> SpoolFiles(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir / "spool")) out.push_back(e.path());
  return out;
}

TEST_CASE("copy spool: the ledger keeps a chunk's bytes in the spool until its end",
          "[station][ledger][spool][copy]") {
  const std::filesystem::path dir = FreshDir("spool-store");
  const std::string chunk = Bytes(896 << 10, 'k');
  {
    auto store = Store::Open(dir.string());
    REQUIRE(store.ok());
    Put(**store, Chunk("k1", chunk, proto::STATE_QUEUED));
    Put(**store, Chunk("k2", chunk, proto::STATE_QUEUED));
    // Small payloads stay in the row.
    Put(**store, Chunk("k3", "tiny", proto::STATE_QUEUED));
    CHECK(Int(**store, "SELECT count(*) FROM command_payloads") == 2);
    CHECK(Int(**store, "SELECT max(length(envelope)) FROM command_envelopes") < 1000);
    proto::CommandState done = Chunk("k1", chunk, proto::STATE_SUCCEEDED);
    Put(**store, done);
    CHECK(Int(**store, "SELECT count(*) FROM command_payloads") == 1);
    CHECK(Int(**store, "SELECT payload_dropped FROM command_envelopes WHERE id = 'k1'") ==
          static_cast<int64_t>(chunk.size()));
    auto k1 = (*store)->GetCommand("k1");
    REQUIRE(k1.ok());
    REQUIRE(k1->has_value());
    CHECK((*k1)->command().payload().empty());
    CHECK((*k1)->command().signature() == "sig-1");
    // Re-signed for another installation: the envelope row is new, the bytes stay.
    proto::CommandState k2 = Chunk("k2", chunk, proto::STATE_SENT);
    k2.mutable_command()->set_signature("sig-2");
    Put(**store, k2);
    CHECK(Int(**store, "SELECT count(*) FROM command_payloads") == 1);
  }
  {
    // Reopened, as after a kill: what is unfinished comes back whole, from the spool.
    auto store = Store::Open(dir.string());
    REQUIRE(store.ok());
    auto active = (*store)->ActiveCommands();
    REQUIRE(active.ok());
    REQUIRE(active->size() == 2);
    CHECK(active->at(0).command().payload() == chunk);
    CHECK(active->at(0).command().signature() == "sig-2");
    CHECK(active->at(1).command().payload() == "tiny");
    Put(**store, Chunk("k2", "", proto::STATE_FAILED));
    CHECK(Int(**store, "SELECT count(*) FROM command_payloads") == 0);
    // No chunk left: the spool holds no bytes.
    uintmax_t bytes = 0;
    for (const auto& f : SpoolFiles(dir)) bytes += std::filesystem::file_size(f);
    CHECK(bytes == 0);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("copy spool: a write undone at its savepoint leaves its chunk's bytes named",
          "[station][ledger][spool][copy]") {
  const std::filesystem::path dir = FreshDir("spool-savepoint");
  const std::string chunk = Bytes(300 << 10, 's');
  auto store = Store::Open(dir.string());
  REQUIRE(store.ok());
  Put(**store, Chunk("s1", chunk, proto::STATE_QUEUED));
  // One group: a write that fails part-way (the group is then written again, each write
  // in a savepoint), and one that ends the chunk (its payload row deleted, the spool told
  // so) and then fails: undone at its savepoint, the row is back and must still count.
  const auto release = ledger::testing::HoldWriter(**store);
  absl::Mutex mu;
  std::vector<absl::Status> done;
  absl::Notification both;
  auto record = [&](absl::Status st) {
    absl::MutexLock lock(&mu);
    done.push_back(st);
    if (done.size() == 2) both.Notify();
  };
  (*store)->Write(ledger::testing::FailsPartWay("half"), record);
  Store::Op end_chunk = (*store)->PutCommand(Chunk("s1", chunk, proto::STATE_SUCCEEDED));
  (*store)->Write(
      [end_chunk](sqlite::Database& db) -> absl::Status {
        if (absl::Status st = end_chunk(db); !st.ok()) return st;
        return absl::InternalError("failed after the chunk's end was written");
      },
      record);
  release->Notify();
  REQUIRE(both.WaitForNotificationWithTimeout(absl::Seconds(10)));
  {
    absl::MutexLock lock(&mu);
    for (const absl::Status& st : done) CHECK(absl::IsInternal(st));
  }
  CHECK(Int(**store, "SELECT count(*) FROM command_payloads") == 1);
  // The next write ends a transaction too: the spool must keep the bytes a row names.
  REQUIRE(ledger::testing::WriteAndWait(**store, Store::PutSetting("next", "v")).ok());
  auto active = (*store)->ActiveCommands();
  INFO(active.status().ToString());
  REQUIRE(active.ok());
  REQUIRE(active->size() == 1);
  CHECK(active->front().command().payload() == chunk);
  store->reset();
  std::filesystem::remove_all(dir);
}

TEST_CASE("copy spool: a chunk whose spooled bytes are damaged is reported, not read back as them",
          "[station][ledger][spool][copy]") {
  const std::filesystem::path dir = FreshDir("spool-damaged");
  const std::string chunk = Bytes(200 << 10, 'd');
  {
    auto store = Store::Open(dir.string());
    REQUIRE(store.ok());
    Put(**store, Chunk("d1", chunk, proto::STATE_SENT));
    Put(**store, Chunk("d2", chunk, proto::STATE_SENT));
    // A put names its chunk's SHA-256: the spool checks the bytes against that one.
    for (const auto& [id, named] : {std::pair{"d3", chunk}, std::pair{"d4", Bytes(10, 'x')}}) {
      proto::CommandState c = Chunk(id, chunk, proto::STATE_SENT);
      for (const char* arg : {"0", "1000000", "644", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}) {
        c.mutable_command()->add_argv(arg);
      }
      c.mutable_command()->add_argv(absl::BytesToHexString(signing::Sha256(named)));
      Put(**store, c);
    }
  }
  const std::vector<std::filesystem::path> files = SpoolFiles(dir);
  REQUIRE(files.size() == 1);
  Flip(files[0].string(), 5);  // d1's bytes changed
  {
    auto store = Store::Open(dir.string());
    REQUIRE(store.ok());
    CHECK(absl::IsDataLoss((*store)->ActiveCommands().status()));
    std::vector<std::pair<std::string, std::string>> damaged;
    auto active = (*store)->ActiveCommands(&damaged);
    REQUIRE(active.ok());
    REQUIRE(active->size() == 4);
    CHECK(active->at(0).command().payload().empty());
    CHECK(active->at(1).command().payload() == chunk);
    CHECK(active->at(2).command().payload() == chunk);  // the SHA-256 it names is its own
    CHECK(active->at(3).command().payload().empty());   // it names another
    REQUIRE(damaged.size() == 2);
    CHECK(damaged[0].first == "d1");
    CHECK_THAT(damaged[0].second, Catch::Contains("damaged"));
    CHECK(damaged[1].first == "d4");
    CHECK_THAT(damaged[1].second, Catch::Contains("SHA-256"));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace steward::station
