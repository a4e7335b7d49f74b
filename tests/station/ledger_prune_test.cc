// Events and node transitions have a retention: by age, and events by a row cap that
// keeps the newest.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "station/ledger/store.h"
#include "tests/station/ledger_testing.h"

namespace steward::station {
namespace {

int64_t Count(ledger::Store& store, const std::string& table) {
  absl::StatusOr<int64_t> n = ledger::testing::QueryInt(store, "SELECT count(*) FROM " + table);
  REQUIRE(n.ok());
  return *n;
}

void WriteAndWait(ledger::Store& store, ledger::Store::Op op) {
  REQUIRE(ledger::testing::WriteAndWait(store, std::move(op)).ok());
}

TEST_CASE("events and node transitions go by age, and events beyond the cap oldest first",
          "[station][ledger][retention]") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("steward-prune-", ::getpid());
  std::filesystem::remove_all(dir);
  {
    auto store = ledger::Store::Open(dir.string());
    REQUIRE(store.ok());
    // 100 events a second apart, from t=1000 s; a transition with each.
    for (int i = 0; i < 100; ++i) {
      proto::Envelope ev;
      ev.set_id(absl::StrCat("ev", i));
      ev.set_from_node("ship1");
      ev.set_method("errorlog");
      ev.set_created_unix_ms(1'000'000 + i * 1000);
      (*store)->Write(ledger::Store::AddEvent(ev));
      (*store)->Write(ledger::Store::AddTransition("ship1", i % 2 == 0, 1'000'000 + i * 1000, "test"));
    }
    // Older than t=1030 s goes: 30 of each.
    WriteAndWait(**store, ledger::Store::PruneEvents(1'030'000, 1'000'000));
    CHECK(Count(**store, "events") == 70);
    CHECK(Count(**store, "node_transitions") == 70);
    // A cap of 25: the oldest go, the newest 25 stay.
    WriteAndWait(**store, ledger::Store::PruneEvents(0, 25));
    CHECK(Count(**store, "events") == 25);
    int64_t oldest = 0;
    REQUIRE((*store)
                ->Read([&](sqlite::Database& db) -> absl::Status {
                  auto st = db.Prepare("SELECT min(at_ms) FROM events");
                  if (!st.ok()) return st.status();
                  if (auto row = st->Step(); !row.ok()) return row.status();
                  oldest = st->ColumnInt(0);
                  return absl::OkStatus();
                })
                .ok());
    CHECK(oldest == 1'000'000 + 75 * 1000);
    // Under the cap and nothing old: nothing goes.
    WriteAndWait(**store, ledger::Store::PruneEvents(0, 25));
    CHECK(Count(**store, "events") == 25);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace steward::station
