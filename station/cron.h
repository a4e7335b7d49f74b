// CronSpec: when a schedule runs, in cron syntax, evaluated in a time zone.
//
//   minute hour day-of-month month day-of-week          "*/15 * * * *", "0 3 * * mon-fri"
//   second minute hour day-of-month month day-of-week   "*/10 * * * * *" (6 fields)
//   @yearly @monthly @weekly @daily @hourly
//
// Each field is *, a number, a range a-b, a list a,b,c, and any of those with a step
// /n; months and weekdays also by name (jan..dec, sun..sat; 0 and 7 are Sunday). As in
// Vixie cron, when both day-of-month and day-of-week are restricted (neither starts
// with *), a day matches when either does.
//
// Time zones: Next works in civil time of the zone. A time that does not exist there
// (the hour skipped when clocks go forward) runs once at the moment of the jump; a time
// that exists twice (clocks go back) runs once, at its first occurrence.
//
//   STEWARD_ASSIGN_OR_RETURN(CronSpec c, CronSpec::Parse("0 3 * * *"));
//   absl::Time next = c.Next(now, tz);
//
// Pure: the caller passes the time; thread-safe once built.
#pragma once

#include <bitset>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace steward::station {

class CronSpec {
 public:
  // Parse reads a cron line; InvalidArgument names the field and what is wrong with it.
  static absl::StatusOr<CronSpec> Parse(absl::string_view text);

  // The first time strictly after `after` that the spec matches in `tz`, or
  // InfiniteFuture when there is none within 8 years (February 30th).
  absl::Time Next(absl::Time after, absl::TimeZone tz) const;

  const std::string& text() const { return text_; }

 private:
  bool DayMatches(int year, int month, int day) const;

  std::string text_;
  bool with_seconds_ = false;
  std::bitset<60> seconds_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 (Sunday) .. 6
  bool days_star_ = true;
  bool weekdays_star_ = true;
};

// LoadZone loads an IANA time zone ("Europe/Oslo"); "" and "UTC" are UTC. NotFound
// names the zone when the system has no such zone (tzdata).
absl::StatusOr<absl::TimeZone> LoadZone(const std::string& name);

}  // namespace steward::station
