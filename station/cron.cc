// CronSpec: a cron line's fields as bit sets, and the next matching time by jumping
// field by field in civil time.
#include "station/cron.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"

namespace steward::station {
namespace {

struct FieldRule {
  const char* name;
  int lo;
  int hi;
  const char* const* names;  // names for lo.. (null: numbers only)
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",  "jul",
                                       "aug", "sep", "oct", "nov", "dec", nullptr};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", nullptr};

// A value of the field: a number or a name.
absl::StatusOr<int> Value(absl::string_view text, const FieldRule& rule) {
  int v = 0;
  if (absl::SimpleAtoi(text, &v)) return v;
  if (rule.names != nullptr) {
    const std::string lower = absl::AsciiStrToLower(text);
    for (int i = 0; rule.names[i] != nullptr; ++i) {
      if (lower == rule.names[i]) return rule.lo + i;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("\"", text, "\" is not a number", rule.names != nullptr ? " or a name" : ""));
}

// Sets the bits of `field` (lo..hi) in `bits`; `star` says whether it starts with *.
template <size_t N>
absl::Status ParseField(absl::string_view field, const FieldRule& rule, std::bitset<N>& bits, bool* star) {
  auto fail = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("cron ", rule.name, " field \"", field, "\": ", why));
  };
  if (field.empty()) return fail("empty");
  *star = field.front() == '*';
  // Day-of-week 7 is Sunday too.
  const int hi = rule.names == kDayNames ? 7 : rule.hi;
  for (absl::string_view part : absl::StrSplit(field, ',')) {
    int step = 1;
    if (const size_t slash = part.find('/'); slash != absl::string_view::npos) {
      if (!absl::SimpleAtoi(part.substr(slash + 1), &step) || step < 1) {
        return fail(absl::StrCat("step \"", part.substr(slash + 1), "\" is not a positive number"));
      }
      part = part.substr(0, slash);
    }
    int from = rule.lo;
    int to = hi == 7 ? 6 : hi;
    if (part != "*") {
      const size_t dash = part.find('-');
      absl::StatusOr<int> a = Value(part.substr(0, dash), rule);
      if (!a.ok()) return fail(a.status().message());
      from = to = *a;
      if (dash != absl::string_view::npos) {
        absl::StatusOr<int> b = Value(part.substr(dash + 1), rule);
        if (!b.ok()) return fail(b.status().message());
        to = *b;
      } else if (step > 1) {
        to = hi == 7 ? 6 : hi;  // "5/15": from 5 to the end, every 15
      }
      if (from < rule.lo || to > hi || from > to) {
        return fail(absl::StrCat(part, " is outside ", rule.lo, "-", hi));
      }
    }
    for (int v = from; v <= to; v += step) bits.set(static_cast<size_t>(v == 7 && hi == 7 ? 0 : v));
  }
  return absl::OkStatus();
}

constexpr FieldRule kSecond{"second", 0, 59, nullptr};
constexpr FieldRule kMinute{"minute", 0, 59, nullptr};
constexpr FieldRule kHour{"hour", 0, 23, nullptr};
constexpr FieldRule kDay{"day-of-month", 1, 31, nullptr};
constexpr FieldRule kMonth{"month", 1, 12, kMonthNames};
constexpr FieldRule kWeekday{"day-of-week", 0, 6, kDayNames};

int WeekdayNumber(absl::Weekday w) {
  switch (w) {
    case absl::Weekday::sunday:
      return 0;
    case absl::Weekday::monday:
      return 1;
    case absl::Weekday::tuesday:
      return 2;
    case absl::Weekday::wednesday:
      return 3;
    case absl::Weekday::thursday:
      return 4;
    case absl::Weekday::friday:
      return 5;
    case absl::Weekday::saturday:
      return 6;
  }
  return 0;
}

}  // namespace

absl::StatusOr<CronSpec> CronSpec::Parse(absl::string_view text) {
  std::string line(absl::StripAsciiWhitespace(text));
  const std::string lower = absl::AsciiStrToLower(line);
  if (lower == "@yearly" || lower == "@annually") line = "0 0 1 1 *";
  if (lower == "@monthly") line = "0 0 1 * *";
  if (lower == "@weekly") line = "0 0 * * 0";
  if (lower == "@daily" || lower == "@midnight") line = "0 0 * * *";
  if (lower == "@hourly") line = "0 * * * *";
  if (!line.empty() && line.front() == '@') {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown cron macro \"", line, "\" (one of @yearly, @monthly, @weekly, @daily, @hourly)"));
  }
  std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipWhitespace());
  if (fields.size() != 5 && fields.size() != 6) {
    return absl::InvalidArgumentError(
        absl::StrCat("cron \"", text, "\" has ", fields.size(),
                     " fields: expected 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"));
  }
  CronSpec c;
  c.text_ = std::string(absl::StripAsciiWhitespace(text));
  c.with_seconds_ = fields.size() == 6;
  size_t i = 0;
  bool star = false;
  if (c.with_seconds_) {
    if (absl::Status st = ParseField(fields[i++], kSecond, c.seconds_, &star); !st.ok()) return st;
  } else {
    c.seconds_.set(0);
  }
  if (absl::Status st = ParseField(fields[i++], kMinute, c.minutes_, &star); !st.ok()) return st;
  if (absl::Status st = ParseField(fields[i++], kHour, c.hours_, &star); !st.ok()) return st;
  if (absl::Status st = ParseField(fields[i++], kDay, c.days_, &c.days_star_); !st.ok()) return st;
  if (absl::Status st = ParseField(fields[i++], kMonth, c.months_, &star); !st.ok()) return st;
  if (absl::Status st = ParseField(fields[i++], kWeekday, c.weekdays_, &c.weekdays_star_); !st.ok()) return st;
  return c;
}

bool CronSpec::DayMatches(int year, int month, int day) const {
  const bool dom = days_.test(static_cast<size_t>(day));
  const bool dow =
      weekdays_.test(static_cast<size_t>(WeekdayNumber(absl::GetWeekday(absl::CivilDay(year, month, day)))));
  // A field written from * ("*", "*/10") matches with the other's days; two restricted
  // fields match on either (Vixie cron).
  if (days_star_ || weekdays_star_) return dom && dow;
  return dom || dow;
}

absl::Time CronSpec::Next(absl::Time after, absl::TimeZone tz) const {
  if (after == absl::InfiniteFuture()) return after;
  const absl::CivilSecond start = absl::ToCivilSecond(after, tz);
  const absl::CivilSecond limit = start + 8 * 366 * 86400;
  // The next candidate second (whole minutes without a seconds field).
  absl::CivilSecond c = with_seconds_ ? start + 1 : absl::CivilSecond(absl::CivilMinute(start) + 1);
  while (c < limit) {
    if (!months_.test(static_cast<size_t>(c.month()))) {
      c = absl::CivilSecond(absl::CivilMonth(c) + 1);
    } else if (!DayMatches(static_cast<int>(c.year()), c.month(), c.day())) {
      c = absl::CivilSecond(absl::CivilDay(c) + 1);
    } else if (!hours_.test(static_cast<size_t>(c.hour()))) {
      c = absl::CivilSecond(absl::CivilHour(c) + 1);
    } else if (!minutes_.test(static_cast<size_t>(c.minute()))) {
      c = absl::CivilSecond(absl::CivilMinute(c) + 1);
    } else if (!seconds_.test(static_cast<size_t>(c.second()))) {
      c += 1;
    } else {
      const absl::TimeZone::TimeInfo at = tz.At(c);
      // Skipped (clocks went forward): at the jump. Repeated: the first occurrence.
      const absl::Time t = at.kind == absl::TimeZone::TimeInfo::SKIPPED ? at.trans : at.pre;
      if (t > after) return t;
      c = with_seconds_ ? c + 1 : absl::CivilSecond(absl::CivilMinute(c) + 1);
    }
  }
  return absl::InfiniteFuture();
}

absl::StatusOr<absl::TimeZone> LoadZone(const std::string& name) {
  if (name.empty() || name == "UTC") return absl::UTCTimeZone();
  absl::TimeZone tz;
  if (!absl::LoadTimeZone(name, &tz)) {
    return absl::NotFoundError(
        absl::StrCat("unknown time zone \"", name, "\" (an IANA name such as Europe/Oslo; is tzdata installed?)"));
  }
  return tz;
}

}  // namespace steward::station
