// The ledger's WAL is copied back into the database by a thread of its own, and kept
// bounded by the writer when that thread cannot keep up; nothing committed is lost.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "station/ledger/store.h"
#include "tests/station/ledger_testing.h"

namespace steward::station {
namespace {

TEST_CASE("the ledger checkpoints off the writer, keeps its WAL bounded and loses nothing",
          "[station][ledger][checkpoint]") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("steward-checkpoint-", ::getpid());
  std::filesystem::remove_all(dir);
  const std::string value(3000, 'x');  // about one page each
  constexpr int kRows = 3000;
  {
    // Small limits, so that a few MiB of writes cross both of them many times.
    auto store = ledger::Store::Open(dir.string(), {.checkpoint_frames = 20, .wal_limit_frames = 300});
    REQUIRE(store.ok());
    uintmax_t wal_max = 0;
    for (int i = 0; i < kRows; ++i) {
      (*store)->Write(ledger::Store::PutSetting(absl::StrCat("k", i), absl::StrCat(i, value)));
      if (i % 50 == 49) {
        REQUIRE(ledger::testing::WriteAndWait(**store, ledger::Store::PutSetting("mark", "x")).ok());
        std::error_code ec;
        wal_max = std::max(wal_max, std::filesystem::file_size(dir / "station.db-wal", ec));
      }
    }
    REQUIRE(ledger::testing::WriteAndWait(**store, ledger::Store::PutSetting("last", "x")).ok());
    const ledger::Store::CheckpointCounts counts = (*store)->checkpoints();
    CHECK(counts.background > 0);
    CHECK(counts.by_writer > 0);
    // About 9 MiB went through a WAL that restarted near 300 pages (1.2 MiB): one
    // group's pages more at most, never the whole history.
    CHECK(wal_max > 0);
    CHECK(wal_max < 4 * 1024 * 1024);
    absl::StatusOr<int64_t> n = ledger::testing::QueryInt(**store, "SELECT count(*) FROM settings");
    REQUIRE(n.ok());
    CHECK(*n == kRows + 2);
  }
  {
    // Everything is there after a reopen, and the rows are whole.
    auto store = ledger::Store::Open(dir.string());
    REQUIRE(store.ok());
    auto settings = (*store)->Settings();
    REQUIRE(settings.ok());
    int whole = 0;
    for (const auto& [key, v] : *settings) {
      if (key.size() > 1 && key[0] == 'k' && v == absl::StrCat(key.substr(1), value)) ++whole;
    }
    CHECK(whole == kRows);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("the checkpointer wakes per checkpoint_frames new frames, not after every commit",
          "[station][ledger][checkpoint]") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("steward-checkpoint-wake-", ::getpid());
  std::filesystem::remove_all(dir);
  constexpr int kCommits = 400;
  {
    auto store = ledger::Store::Open(dir.string(), {.checkpoint_frames = 100, .wal_limit_frames = 100000});
    REQUIRE(store.ok());
    // One small row per transaction: a command's write under a light load. Each
    // commit adds a few frames; the WAL passes 100 frames early and stays past it
    // until a checkpoint lets it start over.
    for (int i = 0; i < kCommits; ++i) {
      REQUIRE(ledger::testing::WriteAndWait(**store, ledger::Store::PutSetting(absl::StrCat("k", i), "v")).ok());
    }
    const ledger::Store::CheckpointCounts counts = (*store)->checkpoints();
    // Woken after every commit past 100 frames, it ran a checkpoint (two fsyncs) for
    // most of the 400 commits; per 100 new frames, it runs a few dozen times at most.
    CHECK(counts.background > 0);
    CHECK(counts.background < kCommits / 8);
    CHECK(counts.by_writer == 0);
  }
  {
    auto store = ledger::Store::Open(dir.string());
    REQUIRE(store.ok());
    absl::StatusOr<int64_t> n = ledger::testing::QueryInt(**store, "SELECT count(*) FROM settings");
    REQUIRE(n.ok());
    CHECK(*n == kCommits);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("under a steady light load the WAL still starts over, short of the writer's limit",
          "[station][ledger][checkpoint]") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("steward-checkpoint-light-", ::getpid());
  std::filesystem::remove_all(dir);
  constexpr int kCommits = 1000;
  {
    // One small row per commit, a millisecond apart. The WAL starts over only when a
    // transaction begins after a checkpoint copied all of it; with a checkpoint per 100
    // new frames (and its retries while frames are left) it still does, well short of
    // the writer's limit.
    auto store = ledger::Store::Open(
        dir.string(), {.checkpoint_frames = 100, .wal_limit_frames = 1000000, .checkpoint_retry = absl::Milliseconds(5)});
    REQUIRE(store.ok());
    for (int i = 0; i < kCommits; ++i) {
      REQUIRE(ledger::testing::WriteAndWait(**store, ledger::Store::PutSetting(absl::StrCat("k", i % 50), "v")).ok());
      ::usleep(1000);
    }
    const ledger::Store::CheckpointCounts counts = (*store)->checkpoints();
    std::error_code ec;
    const uintmax_t wal = std::filesystem::file_size(dir / "station.db-wal", ec);  // its largest
    INFO("WAL file " << wal << " bytes; checkpoints " << counts.background);
    CHECK(counts.by_writer == 0);
    CHECK(wal < 600 * 4096);
    CHECK(counts.background < kCommits / 2);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace steward::station
