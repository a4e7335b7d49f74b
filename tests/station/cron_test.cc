// CronSpec (station/cron.h): parsing, and the next time a line matches, with an
// injected clock, in UTC and across daylight-saving changes.
#include "station/cron.h"

#include <catch2/catch.hpp>
#include <string>

namespace steward::station {
namespace {

absl::Time Utc(int y, int mo, int d, int h, int mi, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

std::string Fmt(absl::Time t, absl::TimeZone tz = absl::UTCTimeZone()) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S %z", t, tz);
}

CronSpec Must(const std::string& text) {
  absl::StatusOr<CronSpec> c = CronSpec::Parse(text);
  INFO(text << ": " << c.status().ToString());
  REQUIRE(c.ok());
  return *c;
}

std::string Next(const std::string& text, absl::Time after, absl::TimeZone tz = absl::UTCTimeZone()) {
  return Fmt(Must(text).Next(after, tz), tz);
}

TEST_CASE("cron fields: steps, ranges, lists and names", "[station][cron]") {
  const absl::Time t = Utc(2026, 3, 4, 10, 7, 30);  // a Wednesday
  CHECK(Next("*/15 * * * *", t) == "2026-03-04 10:15:00 +0000");
  CHECK(Next("0 * * * *", t) == "2026-03-04 11:00:00 +0000");
  CHECK(Next("5,10 9-11 * * *", t) == "2026-03-04 10:10:00 +0000");
  CHECK(Next("0 3 * * *", t) == "2026-03-05 03:00:00 +0000");
  CHECK(Next("0 0 1 * *", t) == "2026-04-01 00:00:00 +0000");
  CHECK(Next("0 12 * jan,jun *", t) == "2026-06-01 12:00:00 +0000");
  CHECK(Next("0 8 * * mon-fri", Utc(2026, 3, 6, 9, 0)) == "2026-03-09 08:00:00 +0000");  // Fri -> Mon
  CHECK(Next("0 8 * * 7", t) == "2026-03-08 08:00:00 +0000");                            // 7 is Sunday
  CHECK(Next("10/20 * * * *", t) == "2026-03-04 10:10:00 +0000");                        // from 10, every 20
  CHECK(Next("@hourly", t) == "2026-03-04 11:00:00 +0000");
  CHECK(Next("@daily", t) == "2026-03-05 00:00:00 +0000");
  CHECK(Next("@weekly", t) == "2026-03-08 00:00:00 +0000");
  CHECK(Next("@monthly", t) == "2026-04-01 00:00:00 +0000");
  CHECK(Next("@yearly", t) == "2027-01-01 00:00:00 +0000");
}

TEST_CASE("a sixth field counts seconds", "[station][cron]") {
  const absl::Time t = Utc(2026, 3, 4, 10, 7, 30);
  CHECK(Next("*/2 * * * * *", t) == "2026-03-04 10:07:32 +0000");
  CHECK(Next("*/2 * * * * *", t + absl::Milliseconds(500)) == "2026-03-04 10:07:32 +0000");
  CHECK(Next("0 */5 * * * *", t) == "2026-03-04 10:10:00 +0000");
  // Strictly after: a time on the spec gives the next one.
  CHECK(Next("*/2 * * * * *", Utc(2026, 3, 4, 10, 7, 32)) == "2026-03-04 10:07:34 +0000");
}

TEST_CASE("day of month and day of week: either, when both are restricted", "[station][cron]") {
  const absl::Time t = Utc(2026, 3, 4, 10, 0);                    // Wednesday the 4th
  CHECK(Next("0 0 13 * fri", t) == "2026-03-06 00:00:00 +0000");  // Friday the 6th comes first
  CHECK(Next("0 0 5 * fri", t) == "2026-03-05 00:00:00 +0000");   // the 5th comes first
  CHECK(Next("0 0 */10 * *", t) == "2026-03-11 00:00:00 +0000");  // * first: day of month only
}

TEST_CASE("a spec that never fires gives the infinite future", "[station][cron]") {
  CHECK(Must("0 0 30 2 *").Next(Utc(2026, 1, 1, 0, 0), absl::UTCTimeZone()) == absl::InfiniteFuture());
  CHECK(Next("0 0 29 2 *", Utc(2026, 1, 1, 0, 0)) == "2028-02-29 00:00:00 +0000");  // leap years only
}

TEST_CASE("time zones: civil time of the zone, across daylight-saving changes", "[station][cron]") {
  absl::StatusOr<absl::TimeZone> oslo = LoadZone("Europe/Oslo");
  REQUIRE(oslo.ok());
  // 03:00 in Oslo in winter is 02:00 UTC.
  CHECK(Next("0 3 * * *", Utc(2026, 1, 10, 12, 0), *oslo) == "2026-01-11 03:00:00 +0100");
  // 2026-03-29: clocks jump from 02:00 to 03:00. 02:30 does not exist: it runs at the jump.
  const CronSpec at_0230 = Must("30 2 * * *");
  const absl::Time spring = at_0230.Next(Utc(2026, 3, 28, 12, 0), *oslo);
  CHECK(Fmt(spring, *oslo) == "2026-03-29 03:00:00 +0200");
  CHECK(Fmt(at_0230.Next(spring, *oslo), *oslo) == "2026-03-30 02:30:00 +0200");
  // 2026-10-25: 02:00-03:00 happens twice. 02:30 runs once, at its first occurrence.
  const absl::Time autumn = at_0230.Next(Utc(2026, 10, 24, 12, 0), *oslo);
  CHECK(Fmt(autumn, *oslo) == "2026-10-25 02:30:00 +0200");
  CHECK(Fmt(at_0230.Next(autumn, *oslo), *oslo) == "2026-10-26 02:30:00 +0100");
  // Every 15 minutes through the skipped hour: the skipped times are one run at 03:00.
  const CronSpec quarter = Must("*/15 * * * *");
  absl::Time t = quarter.Next(absl::FromCivil(absl::CivilSecond(2026, 3, 29, 1, 40, 0), *oslo), *oslo);
  std::string seen;
  for (int i = 0; i < 4; ++i, t = quarter.Next(t, *oslo)) seen += Fmt(t, *oslo).substr(11, 5) + " ";
  CHECK(seen == "01:45 03:00 03:15 03:30 ");
}

TEST_CASE("bad cron lines and zones are refused, naming the field", "[station][cron]") {
  auto error = [](const std::string& text) {
    absl::StatusOr<CronSpec> c = CronSpec::Parse(text);
    REQUIRE_FALSE(c.ok());
    return std::string(c.status().message());
  };
  CHECK(error("* * * *") ==
        "cron \"* * * *\" has 4 fields: expected 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)");
  CHECK(error("0 25 * * *") == "cron hour field \"25\": 25 is outside 0-23");
  CHECK(error("*/0 * * * *") == "cron minute field \"*/0\": step \"0\" is not a positive number");
  CHECK(error("0 0 * foo *") == "cron month field \"foo\": \"foo\" is not a number or a name");
  CHECK(error("0 0 0 * *") == "cron day-of-month field \"0\": 0 is outside 1-31");
  CHECK(error("0 0 * * 5-2") == "cron day-of-week field \"5-2\": 5-2 is outside 0-7");
  CHECK(error("@reboot") == "unknown cron macro \"@reboot\" (one of @yearly, @monthly, @weekly, @daily, @hourly)");
  CHECK(absl::IsNotFound(LoadZone("Mars/Olympus").status()));
  CHECK(LoadZone("").ok());
}

}  // namespace
}  // namespace steward::station
