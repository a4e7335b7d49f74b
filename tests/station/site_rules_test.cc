// SiteRules (station/site_rules.h): when a site station takes control of its nodes and
// when it hands it back, each rule with an injected clock; and the site messages'
// encoding (station/site.h).
#include "station/site_rules.h"

#include <catch2/catch.hpp>

#include "station/site.h"
#include "tests/station/ledger_testing.h"
#include "subjects/site.h"

namespace steward::station {
namespace {

// 2027-01-15 08:00:00 UTC, a Friday.
const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

SiteRules Rules(const std::string& window = "", absl::Duration length = absl::Hours(1)) {
  absl::StatusOr<SiteRules> r = SiteRules::Make(absl::Seconds(30), window, length, "");
  REQUIRE(r.ok());
  return *std::move(r);
}

TEST_CASE("site rule R1: no takeover while the central station answers, nor before the timeout",
          "[station][site]") {
  const SiteRules r = Rules();
  // It answers: never, however long the site has been up.
  CHECK(r.Decide(SiteState::kCentral, kT0 + absl::Hours(5), true, kT0 + absl::Hours(5)) == SiteAction::kNone);
  // Silent, but not for 30 s yet (counted from the last answer, or from the start).
  CHECK(r.Decide(SiteState::kCentral, kT0, false, kT0 + absl::Seconds(1)) == SiteAction::kNone);
  CHECK(r.Decide(SiteState::kCentral, kT0, false, kT0 + absl::Seconds(29)) == SiteAction::kNone);
  // An answer at 20 s starts the count again.
  CHECK(r.Decide(SiteState::kCentral, kT0 + absl::Seconds(20), false, kT0 + absl::Seconds(45)) ==
        SiteAction::kNone);
}

TEST_CASE("site rule R2: takeover once nothing answered for the timeout", "[station][site]") {
  const SiteRules r = Rules();
  CHECK(r.Decide(SiteState::kCentral, kT0, false, kT0 + absl::Seconds(30)) == SiteAction::kTakeControl);
  CHECK(r.Decide(SiteState::kCentral, kT0, false, kT0 + absl::Hours(2)) == SiteAction::kTakeControl);
  // In control and still cut off: it keeps control.
  CHECK(r.Decide(SiteState::kControl, kT0, false, kT0 + absl::Hours(2)) == SiteAction::kNone);
}

TEST_CASE("site rule R3: hand-back as soon as the central station answers, without a window",
          "[station][site]") {
  const SiteRules r = Rules();
  CHECK(r.Decide(SiteState::kControl, kT0, true, kT0) == SiteAction::kHandBack);
  // A hand-back under way goes on when it answers, and waits when it does not.
  CHECK(r.Decide(SiteState::kHandingBack, kT0, true, kT0) == SiteAction::kHandBack);
  CHECK(r.Decide(SiteState::kHandingBack, kT0, false, kT0 + absl::Hours(1)) == SiteAction::kNone);
}

TEST_CASE("site rule R4: with a restore window, control is handed back only inside it", "[station][site]") {
  // Windows start at 02:00 UTC and last an hour.
  const SiteRules r = Rules("0 2 * * *", absl::Hours(1));
  const absl::Time day = absl::FromCivil(absl::CivilSecond(2027, 1, 15, 0, 0, 0), absl::UTCTimeZone());
  CHECK_FALSE(r.InRestoreWindow(day + absl::Hours(1) + absl::Minutes(59)));
  CHECK(r.InRestoreWindow(day + absl::Hours(2)));
  CHECK(r.InRestoreWindow(day + absl::Hours(2) + absl::Minutes(59)));
  CHECK_FALSE(r.InRestoreWindow(day + absl::Hours(3)));
  CHECK_FALSE(r.InRestoreWindow(day + absl::Hours(12)));
  // Central answers at 08:00: the window is closed, the site keeps control...
  CHECK(r.Decide(SiteState::kControl, day + absl::Hours(8), true, day + absl::Hours(8)) == SiteAction::kNone);
  // ... until it opens the next night.
  const absl::Time next = day + absl::Hours(24 + 2) + absl::Minutes(10);
  CHECK(r.Decide(SiteState::kControl, next, true, next) == SiteAction::kHandBack);
  // A closed window does not stop a hand-back that began inside one.
  CHECK(r.Decide(SiteState::kHandingBack, day + absl::Hours(8), true, day + absl::Hours(8)) ==
        SiteAction::kHandBack);
  // And it never delays a takeover.
  CHECK(r.Decide(SiteState::kCentral, day, false, day + absl::Minutes(1)) == SiteAction::kTakeControl);
}

TEST_CASE("site rules refuse a bad window, length, zone or timeout", "[station][site]") {
  CHECK_FALSE(SiteRules::Make(absl::Seconds(30), "61 * * * *", absl::Hours(1), "").ok());
  CHECK_FALSE(SiteRules::Make(absl::Seconds(30), "0 2 * * *", absl::ZeroDuration(), "").ok());
  CHECK_FALSE(SiteRules::Make(absl::Seconds(30), "0 2 * * *", absl::Hours(1), "Nowhere/Atlantis").ok());
  CHECK_FALSE(SiteRules::Make(absl::ZeroDuration(), "", absl::Hours(1), "").ok());
  CHECK(ParseSiteState("handing-back").value() == SiteState::kHandingBack);
  CHECK_FALSE(ParseSiteState("bogus").ok());
}

TEST_CASE("site messages round-trip, and site subjects are validated", "[station][site]") {
  SiteMessage m;
  m.op = "batch";
  m.site = "ship-a";
  m.nodes = {"ship1", "ship2"};
  m.state = "handing-back";
  m.since_ms = 123;
  m.pending = 2;
  m.entries.push_back({7, "event", "01ABC", std::string("\0\xff bytes", 8)});
  absl::StatusOr<SiteMessage> back = DecodeSiteMessage(EncodeSiteMessage(m));
  REQUIRE(back.ok());
  CHECK(back->nodes == m.nodes);
  REQUIRE(back->entries.size() == 1);
  CHECK(back->entries[0].record == m.entries[0].record);
  CHECK(back->entries[0].seq == 7);
  CHECK_FALSE(DecodeSiteMessage("not cbor").ok());
  m.site = "ship.a";
  CHECK_FALSE(DecodeSiteMessage(EncodeSiteMessage(m)).ok());
  CHECK(DecodeSiteAnswer(EncodeSiteAnswer(absl::OkStatus())).ok());
  CHECK(DecodeSiteAnswer(EncodeSiteAnswer(absl::InternalError("x"))).message() == "the central station: x");
  // A refusal is told apart from a failure: the central station answered.
  CHECK(absl::IsUnavailable(DecodeSiteAnswer(EncodeSiteAnswer(absl::InternalError("x")))));
  CHECK(absl::IsPermissionDenied(DecodeSiteAnswer(EncodeSiteAnswer(absl::PermissionDeniedError("not yours")))));
  CHECK(subjects::SiteSubject("station", "ship-a").value() == "_STEWARD.site.station.ship-a");
  CHECK_FALSE(subjects::SiteSubject("station", "ship.*").ok());
  CHECK(subjects::ParseSiteSubject("_STEWARD.site.station.ship-a", "station").value() == "ship-a");
  CHECK_FALSE(subjects::ParseSiteSubject("_STEWARD.site.other.ship-a", "station").ok());
}

TEST_CASE("a site's journal keeps only what the central station has not acknowledged, and its numbers go on",
          "[station][site]") {
  const std::filesystem::path dir = ledger::testing::FreshDir("site-journal");
  auto store = ledger::Store::Open(dir.string());
  REQUIRE(store.ok());
  for (const char* id : {"a", "b", "c"}) {
    REQUIRE(ledger::testing::WriteAndWait(**store, AppendSiteJournalOp("event", id, "r")).ok());
  }
  // An agent's retry of a journaled event is not journaled twice.
  REQUIRE(ledger::testing::WriteAndWait(**store, AppendSiteJournalOp("event", "b", "r")).ok());
  REQUIRE(CountSiteJournal(**store, 0).value() == 3);
  // Acknowledged up to the second: the record moves and the two go.
  REQUIRE(ledger::testing::WriteAndWait(**store, PutSiteCursor("ship-a", {SiteState::kHandingBack, 5, 2})).ok());
  CHECK(LoadSiteRecord(**store, "ship-a").value()->cursor == 2);
  CHECK(ledger::testing::QueryInt(**store, "SELECT count(*) FROM site_journal").value() == 1);
  // Everything acknowledged, the journal empty: a new entry still comes after the cursor.
  REQUIRE(ledger::testing::WriteAndWait(**store, PutSiteCursor("ship-a", {SiteState::kCentral, 6, 3})).ok());
  CHECK(ledger::testing::QueryInt(**store, "SELECT count(*) FROM site_journal").value() == 0);
  REQUIRE(ledger::testing::WriteAndWait(**store, AppendSiteJournalOp("command", "d", "r")).ok());
  auto next = ReadSiteJournal(**store, 3, 10);
  REQUIRE(next.ok());
  REQUIRE(next->size() == 1);
  CHECK(next->at(0).seq > 3);
  CHECK(next->at(0).id == "d");
  store->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace steward::station
