// The ledger writer commits what is queued together, in one transaction, and runs the
// AfterGroup follow-up once per transaction, after every completion of it: the
// station wakes its dispatcher there, once for all the commands one commit made.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/sqlite.h"
#include "station/ledger/store.h"
#include "station/repeats.h"
#include "tests/station/ledger_testing.h"

namespace steward::station {
namespace {

TEST_CASE("the ledger runs its after-group follow-up once per transaction, after all its completions",
          "[station][ledger]") {
  const std::filesystem::path dir = ledger::testing::FreshDir("ledger-group");
  auto store = ledger::Store::Open(dir.string());
  REQUIRE(store.ok());
  absl::Mutex mu;
  std::vector<std::string> seen;  // completions ("done N") and follow-ups ("after"), in order
  (*store)->AfterGroup([&] {
    absl::MutexLock lock(&mu);
    seen.push_back("after");
  });
  // The first write holds the writer until the others are queued, so that they make
  // one group of their own.
  absl::Notification release;
  absl::Notification holding;
  (*store)->Write(
      [&](sqlite::Database&) {
        holding.Notify();
        release.WaitForNotification();
        return absl::OkStatus();
      },
      [&](absl::Status) {
        absl::MutexLock lock(&mu);
        seen.push_back("done 0");
      });
  holding.WaitForNotification();
  constexpr int kQueued = 5;
  for (int i = 1; i <= kQueued; ++i) {
    (*store)->Write(ledger::Store::PutSetting(absl::StrCat("k", i), "v"), [&, i](absl::Status st) {
      absl::MutexLock lock(&mu);
      seen.push_back(st.ok() ? absl::StrCat("done ", i) : st.ToString());
    });
  }
  release.Notify();
  // The held write's group, then the five queued meanwhile as one group, each group's
  // completions before its one follow-up.
  std::vector<std::string> expected = {"done 0", "after"};
  for (int i = 1; i <= kQueued; ++i) expected.push_back(absl::StrCat("done ", i));
  expected.push_back("after");
  std::vector<std::string> got;
  {
    absl::MutexLock lock(&mu);
    auto all_in = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return seen.size() >= expected.size(); };
    REQUIRE(mu.AwaitWithTimeout(absl::Condition(&all_in), absl::Seconds(30)));
    got = seen;
  }
  CHECK(got == expected);

  // Unset: none runs from now on.
  (*store)->AfterGroup(nullptr);
  REQUIRE(ledger::testing::WriteAndWait(**store, ledger::Store::PutSetting("later", "v")).ok());
  absl::MutexLock lock(&mu);
  CHECK(seen == got);
}

TEST_CASE("the ledger's after-group follow-up is replaced only once it is not running",
          "[station][ledger]") {
  // What a follow-up uses may go once AfterGroup returns (a site station's core ends
  // while the ledger stays open): AfterGroup waits for one that runs.
  const std::filesystem::path dir = ledger::testing::FreshDir("ledger-group-replace");
  auto store = ledger::Store::Open(dir.string());
  REQUIRE(store.ok());
  absl::Notification running;
  absl::Notification release;
  absl::Mutex mu;
  bool returned = false;
  (*store)->AfterGroup([&] {
    if (!running.HasBeenNotified()) running.Notify();
    release.WaitForNotification();
  });
  (*store)->Write(ledger::Store::PutSetting("k", "v"));
  running.WaitForNotification();
  std::thread replace([&] {
    (*store)->AfterGroup(nullptr);
    absl::MutexLock lock(&mu);
    returned = true;
  });
  // While the follow-up runs, AfterGroup does not return.
  absl::SleepFor(absl::Milliseconds(100));
  {
    absl::MutexLock lock(&mu);
    CHECK_FALSE(returned);
  }
  release.Notify();
  replace.join();
  CHECK(returned);
  REQUIRE(ledger::testing::WriteAndWait(**store, ledger::Store::PutSetting("k2", "v")).ok());
}

TEST_CASE("a write whose error rolled the transaction back fails its whole group, and nothing of it is kept",
          "[station][ledger]") {
  const std::filesystem::path dir = ledger::testing::FreshDir("ledger-group-rollback");
  auto store = ledger::Store::Open(dir.string());
  REQUIRE(store.ok());
  const auto release = ledger::testing::HoldWriter(**store);
  // One group: a write, one whose error ended the transaction (as SQLite does on a full
  // disk without a statement journal: the ROLLBACK stands in for it), and one after it.
  ledger::testing::Completions completions(3);
  (*store)->Write(ledger::Store::PutSetting("before", "v"), completions.At(0));
  (*store)->Write(
      [](sqlite::Database& db) -> absl::Status {
        if (absl::Status st = db.Exec("ROLLBACK"); !st.ok()) return st;
        return absl::ResourceExhaustedError("database or disk is full");
      },
      completions.At(1));
  (*store)->Write(ledger::Store::PutSetting("after", "v"), completions.At(2));
  release->Notify();
  REQUIRE(completions.Wait());
  const std::vector<absl::Status> done = completions.statuses();
  for (const absl::Status& st : done) {
    INFO(st.ToString());
    CHECK(absl::IsResourceExhausted(st));
  }
  // The write after the rolled-back one did not commit on its own (reported failed, kept).
  auto settings = (*store)->Settings();
  REQUIRE(settings.ok());
  for (const auto& [key, value] : *settings) {
    CHECK(key != "before");
    CHECK(key != "after");
  }
  // The next group commits as usual.
  CHECK(ledger::testing::WriteAndWait(**store, ledger::Store::PutSetting("next", "v")).ok());
}

TEST_CASE("a write that fails part-way keeps nothing of it, and the others of its group commit", "[station][ledger]") {
  const std::filesystem::path dir = ledger::testing::FreshDir("ledger-group-partial");
  auto store = ledger::Store::Open(dir.string());
  REQUIRE(store.ok());
  const auto release = ledger::testing::HoldWriter(**store);
  ledger::testing::Completions completions(5);
  // Succeeds when first called; once called again (the group written again), writes and
  // then fails: that second call must be undone alone.
  int calls = 0;
  auto fails_when_again = [&calls](sqlite::Database& db) -> absl::Status {
    ++calls;
    if (absl::Status st = ledger::Store::PutSetting("again", "v")(db); !st.ok()) return st;
    if (calls > 1) return absl::InternalError("again: failed the second time");
    return absl::OkStatus();
  };
  (*store)->Write(ledger::Store::PutSetting("before", "v"), completions.At(0));
  (*store)->Write(fails_when_again, completions.At(1));
  (*store)->Write(ledger::testing::FailsPartWay("half"), completions.At(2));
  (*store)->Write(ledger::testing::FailsPartWay("half2"), completions.At(3));
  (*store)->Write(ledger::Store::PutSetting("after", "v"), completions.At(4));
  release->Notify();
  REQUIRE(completions.Wait());
  const std::vector<absl::Status> done = completions.statuses();
  CHECK(done[0].ok());
  CHECK(absl::IsInternal(done[1]));
  CHECK(absl::IsInternal(done[2]));
  CHECK(absl::IsInternal(done[3]));
  CHECK(done[4].ok());
  CHECK(calls == 2);
  CHECK(ledger::testing::SettingKeys(**store) == std::vector<std::string>{"after", "before"});
  // The ledger is not degraded by a write's own failure, and the next group commits.
  CHECK_FALSE((*store)->health().degraded);
  CHECK(ledger::testing::WriteAndWait(**store, ledger::Store::PutSetting("next", "v")).ok());
}

TEST_CASE("a write that fails for want of room degrades the ledger though its group commits", "[station][ledger]") {
  const std::filesystem::path dir = ledger::testing::FreshDir("ledger-group-room");
  constexpr absl::Duration kSettle = absl::Seconds(1);
  auto store = ledger::Store::Open(dir.string(), {.health_settle = kSettle});
  REQUIRE(store.ok());
  const auto release = ledger::testing::HoldWriter(**store);
  ledger::testing::Completions completions(3);
  (*store)->Write(ledger::Store::PutSetting("kept", "v"), completions.At(0));
  // A big write on a nearly full disk: its statements fail with SQLite's "full", and
  // the transaction goes on (a statement journal undid the statement).
  (*store)->Write(
      [](sqlite::Database& db) -> absl::Status {
        if (absl::Status st = ledger::Store::PutSetting("big", "v")(db); !st.ok()) return st;
        return absl::ResourceExhaustedError("database or disk is full");
      },
      completions.At(1));
  // A write's own error (not the storage's) does not degrade the ledger.
  (*store)->Write([](sqlite::Database&) { return absl::InternalError("its own failure"); }, completions.At(2));
  const absl::Time released = absl::Now();  // the failure is noted after this
  release->Notify();
  REQUIRE(completions.Wait());
  const std::vector<absl::Status> done = completions.statuses();
  CHECK(done[0].ok());
  CHECK(absl::IsResourceExhausted(done[1]));
  CHECK(absl::IsInternal(done[2]));
  CHECK(ledger::testing::SettingKeys(**store) == std::vector<std::string>{"kept"});
  const ledger::Store::Health degraded = (*store)->health();
  CHECK(degraded.degraded);
  CHECK(degraded.reason == "database or disk is full");
  CHECK(degraded.failed_writes == 1);
  CHECK(degraded.since_unix_ms > 0);
  // A group that commits with no storage failure right after: still degraded (small
  // writes commit between big ones that fail; the state must not flap with them).
  REQUIRE(ledger::testing::WriteAndWait(**store, ledger::Store::PutSetting("soon", "v")).ok());
  if (absl::Now() - released < kSettle) CHECK((*store)->health().degraded);
  // One after the settle time: healthy again, the count kept.
  absl::SleepFor(kSettle);
  REQUIRE(ledger::testing::WriteAndWait(**store, ledger::Store::PutSetting("next", "v")).ok());
  const ledger::Store::Health again = (*store)->health();
  CHECK_FALSE(again.degraded);
  CHECK(again.reason.empty());
  CHECK(again.failed_writes == 1);
  // A write's own error alone leaves it healthy.
  CHECK(absl::IsInternal(ledger::testing::WriteAndWait(
      **store, [](sqlite::Database&) { return absl::InternalError("its own failure"); })));
  CHECK_FALSE((*store)->health().degraded);
}

TEST_CASE("a write that fails on SQLite's disk I/O error degrades the ledger, the transaction ended or not",
          "[station][ledger]") {
  const std::filesystem::path dir = ledger::testing::FreshDir("ledger-group-ioerr");
  auto store = ledger::Store::Open(dir.string(), {.health_settle = absl::Milliseconds(200)});
  REQUIRE(store.ok());
  const auto io_error = [] { return sqlite::ToStatus(nullptr, SQLITE_IOERR_WRITE, "step"); };
  {
    // As SQLite does on an I/O error (tests/common/sqlite_test.cc, a real failing WAL
    // write): the transaction is rolled back; the ROLLBACK stands in for it.
    const auto release = ledger::testing::HoldWriter(**store);
    ledger::testing::Completions completions(2);
    (*store)->Write(ledger::Store::PutSetting("ended", "v"), completions.At(0));
    (*store)->Write(
        [&io_error](sqlite::Database& db) -> absl::Status {
          if (absl::Status st = db.Exec("ROLLBACK"); !st.ok()) return st;
          return io_error();
        },
        completions.At(1));
    release->Notify();
    REQUIRE(completions.Wait());
    for (const absl::Status& st : completions.statuses()) CHECK(absl::IsInternal(st));
    const ledger::Store::Health degraded = (*store)->health();
    CHECK(degraded.degraded);
    CHECK(degraded.failed_writes == 1);
    CHECK(absl::StrContains(degraded.reason, "disk I/O error"));
    CHECK(ledger::testing::SettingKeys(**store).empty());
    // A failed transaction's spell ends at the next commit.
    REQUIRE(ledger::testing::WriteAndWait(**store, ledger::Store::PutSetting("next", "v")).ok());
    CHECK_FALSE((*store)->health().degraded);
  }
  {
    // Should a statement fail on an I/O error and the transaction go on, the group commits
    // the rest, and the ledger still says that its storage failed.
    const auto release = ledger::testing::HoldWriter(**store);
    ledger::testing::Completions completions(2);
    (*store)->Write(ledger::Store::PutSetting("kept", "v"), completions.At(0));
    (*store)->Write(
        [&io_error](sqlite::Database& db) -> absl::Status {
          if (absl::Status st = ledger::Store::PutSetting("lost", "v")(db); !st.ok()) return st;
          return io_error();
        },
        completions.At(1));
    release->Notify();
    REQUIRE(completions.Wait());
    CHECK(completions.statuses()[0].ok());
    CHECK(absl::IsInternal(completions.statuses()[1]));
    CHECK(ledger::testing::SettingKeys(**store) == std::vector<std::string>{"kept", "next"});
    const ledger::Store::Health degraded = (*store)->health();
    CHECK(degraded.degraded);
    CHECK(degraded.failed_writes == 2);
    CHECK(absl::StrContains(degraded.reason, "disk I/O error"));
  }
  absl::SleepFor(absl::Milliseconds(250));
  REQUIRE(ledger::testing::WriteAndWait(**store, ledger::Store::PutSetting("later", "v")).ok());
  CHECK_FALSE((*store)->health().degraded);
}

TEST_CASE("a write that fails having written nothing leaves its group one transaction", "[station][ledger]") {
  const std::filesystem::path dir = ledger::testing::FreshDir("ledger-group-nothing");
  auto store = ledger::Store::Open(dir.string());
  REQUIRE(store.ok());
  const auto release = ledger::testing::HoldWriter(**store);
  ledger::testing::Completions completions(4);
  int calls = 0;  // a group written again would call it twice
  auto counted = [&calls](sqlite::Database& db) {
    ++calls;
    return ledger::Store::PutSetting("counted", "v")(db);
  };
  (*store)->Write(counted, completions.At(0));
  (*store)->Write([](sqlite::Database&) { return ledger::Store::WroteNothing(absl::AlreadyExistsError("a repeat")); },
                  completions.At(1));
  // The first pass goes on past the repeat to it, and the replay after the fourth
  // (which failed part-way) runs it again: twice. Had the repeat stopped the first
  // pass, only the replay would run it.
  int after_calls = 0;
  (*store)->Write(
      [&after_calls](sqlite::Database& db) {
        ++after_calls;
        return ledger::Store::PutSetting("after", "v")(db);
      },
      completions.At(2));
  // A mark on a write that wrote first is not believed once cleared.
  (*store)->Write(
      [](sqlite::Database& db) -> absl::Status {
        if (absl::Status st = ledger::Store::PutSetting("half", "v")(db); !st.ok()) return st;
        return ledger::Store::ClearWroteNothing(ledger::Store::WroteNothing(absl::InternalError("after a write")));
      },
      completions.At(3));
  release->Notify();
  REQUIRE(completions.Wait());
  const std::vector<absl::Status> done = completions.statuses();
  CHECK(done[0].ok());
  CHECK(absl::IsAlreadyExists(done[1]));
  CHECK(ledger::Store::IsWroteNothing(done[1]));
  CHECK(done[2].ok());
  CHECK(absl::IsInternal(done[3]));
  // The fourth failed part-way: the group was written again, without the repeat, once.
  CHECK(calls == 2);
  CHECK(after_calls == 2);
  CHECK(ledger::testing::SettingKeys(**store) == std::vector<std::string>{"after", "counted"});
  CHECK_FALSE((*store)->health().degraded);
}

TEST_CASE("a request's record found already fails having written nothing, and the group commits the rest",
          "[station][ledger]") {
  const std::filesystem::path dir = ledger::testing::FreshDir("ledger-group-recorded");
  auto store = ledger::Store::Open(dir.string());
  REQUIRE(store.ok());
  Call call;
  call.env.set_id("req-1");
  call.env.set_operator_("alice");
  call.env.set_method("submit");
  REQUIRE(ledger::testing::WriteAndWait(**store, Repeats::Record(call, "r1", "first answer")).ok());
  const auto release = ledger::testing::HoldWriter(**store);
  ledger::testing::Completions completions(2);
  (*store)->Write(Repeats::Record(call, "r2", "second answer"), completions.At(0));
  (*store)->Write(ledger::Store::PutSetting("beside", "v"), completions.At(1));
  release->Notify();
  REQUIRE(completions.Wait());
  const std::vector<absl::Status> done = completions.statuses();
  CHECK(Repeats::IsRecorded(done[0]));
  CHECK(ledger::Store::IsWroteNothing(done[0]));
  CHECK(done[1].ok());
  CHECK(ledger::testing::Int(**store, "SELECT count(*) FROM request_replies") == 1);
  CHECK(ledger::testing::Int(**store, "SELECT count(*) FROM request_replies WHERE request_id = 'r1'") == 1);
  CHECK(ledger::testing::SettingKeys(**store) == std::vector<std::string>{"beside"});
}

TEST_CASE("a group whose only failure wrote nothing is written once", "[station][ledger]") {
  const std::filesystem::path dir = ledger::testing::FreshDir("ledger-group-once");
  auto store = ledger::Store::Open(dir.string());
  REQUIRE(store.ok());
  const auto release = ledger::testing::HoldWriter(**store);
  int calls = 0;
  ledger::testing::Completions completions(2);
  (*store)->Write(
      [&calls](sqlite::Database& db) {
        ++calls;
        return ledger::Store::PutSetting("first", "v")(db);
      },
      completions.At(0));
  (*store)->Write([](sqlite::Database&) { return ledger::Store::WroteNothing(absl::AlreadyExistsError("a repeat")); },
                  completions.At(1));
  release->Notify();
  REQUIRE(completions.Wait());
  const std::vector<absl::Status> done = completions.statuses();
  CHECK(done[0].ok());
  CHECK(absl::IsAlreadyExists(done[1]));
  CHECK(calls == 1);
  CHECK(ledger::testing::SettingKeys(**store) == std::vector<std::string>{"first"});
}

}  // namespace
}  // namespace steward::station
