// stewardctl logs: times read, lines printed.
#include "ctl/log_format.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/severity.h"
#include "ctl/render_text.h"

namespace steward::ctl {
namespace {

constexpr char kShortTime[] = "%Y-%m-%d %H:%M:%E3S";
constexpr char kFullTime[] = "%Y-%m-%d %H:%M:%E6S %Ez";

// Date-time layouts read in the operator's zone (absl::ParseTime; "%E*S": seconds with
// any fraction).
constexpr const char* kLocalLayouts[] = {"%Y-%m-%d %H:%M:%E*S", "%Y-%m-%dT%H:%M:%E*S", "%Y-%m-%d %H:%M",
                                         "%Y-%m-%dT%H:%M", "%Y-%m-%d"};
// Layouts with their own offset.
constexpr const char* kZonedLayouts[] = {"%Y-%m-%dT%H:%M:%E*S%Ez", "%Y-%m-%d %H:%M:%E*S%Ez",
                                         "%Y-%m-%dT%H:%M:%E*SZ", "%Y-%m-%d %H:%M:%E*SZ"};

std::string Time(int64_t unix_us, const char* layout, const absl::TimeZone& zone) {
  return absl::FormatTime(layout, absl::FromUnixMicros(unix_us), zone);
}

// The line's own time, or its receive time when it has none.
int64_t LineTime(const proto::LogRecord& r) {
  return r.timestamp_unix_us() != 0 ? r.timestamp_unix_us() : r.received_unix_us();
}

std::string OrDash(absl::string_view s) { return s.empty() ? "-" : Escape(s); }

}  // namespace

absl::StatusOr<absl::Time> ParseLogTime(absl::string_view text, absl::Time now, const absl::TimeZone& zone) {
  const std::string t(absl::StripAsciiWhitespace(text));
  if (t == "now") return now;
  const absl::Time midnight = absl::FromCivil(absl::CivilDay(absl::ToCivilDay(now, zone)), zone);
  if (t == "today") return midnight;
  if (t == "yesterday") return absl::FromCivil(absl::ToCivilDay(now, zone) - 1, zone);
  if (absl::StartsWith(t, "@")) {
    int64_t seconds = 0;
    if (absl::SimpleAtoi(t.substr(1), &seconds)) return absl::FromUnixSeconds(seconds);
  }
  absl::Duration ago;
  if (absl::ParseDuration(t, &ago) && ago >= absl::ZeroDuration()) return now - ago;
  absl::Time at;
  std::string err;
  for (const char* layout : kZonedLayouts) {
    if (absl::ParseTime(layout, t, &at, &err)) return at;
  }
  for (const char* layout : kLocalLayouts) {
    if (absl::ParseTime(layout, t, zone, &at, &err)) return at;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", text, "\" is not a time: a duration ago (10m, 1h30m), now, today, yesterday, "
      "2026-11-30 10:00[:05], 2026-11-30T10:00:00Z or @UNIX_SECONDS"));
}

std::string ShortLogLine(const proto::LogEntry& e, const absl::TimeZone& zone) {
  const proto::LogRecord& r = e.record();
  std::string what = r.app_name().empty() ? r.domain() : r.app_name();
  if (!r.domain().empty() && r.domain() != what) what = absl::StrCat(r.domain(), "/", what);
  if (!r.procid().empty()) absl::StrAppend(&what, "[", r.procid(), "]");
  return absl::StrCat(Time(LineTime(r), kShortTime, zone), " ", Escape(e.node()), " ", OrDash(r.hostname()), " ",
                      Escape(what), " ", SeverityName(r.severity()), ": ", Escape(r.message()),
                      r.truncated() ? " [truncated]" : "", "\n");
}

std::string VerboseLogEntry(const proto::LogEntry& e, const absl::TimeZone& zone) {
  const proto::LogRecord& r = e.record();
  std::string out = absl::StrCat(Escape(e.node()), " ", Time(LineTime(r), kFullTime, zone), " (cursor ",
                                 Escape(e.cursor()), ")\n");
  auto field = [&out](absl::string_view name, absl::string_view value) {
    absl::StrAppend(&out, "    ", name, ": ", value, "\n");
  };
  field("timestamp", r.timestamp_unix_us() != 0 ? Time(r.timestamp_unix_us(), kFullTime, zone)
                                                : "- (none in the message: the receive time stands for it)");
  field("received", Time(r.received_unix_us(), kFullTime, zone));
  field("host", OrDash(r.hostname()));
  field("app", OrDash(r.app_name()));
  field("procid", OrDash(r.procid()));
  field("msgid", OrDash(r.msgid()));
  field("domain", OrDash(r.domain()));
  field("facility", r.facility() >= 0 ? absl::StrCat(r.facility()) : "-");
  field("severity", absl::StrCat(SeverityName(r.severity()), " (", r.severity(), ")"));
  field("format", OrDash(r.format()));
  field("source", OrDash(r.source()));
  if (!r.structured_data().empty()) field("structured data", Escape(r.structured_data()));
  if (r.parse_error()) field("parse error", Escape(r.parse_problem()));
  if (r.truncated()) field("truncated", "yes (cut at the size limit)");
  field("message", Escape(r.message()));
  out += "\n";
  return out;
}

}  // namespace steward::ctl
