// Syslog frame parser: RFC 5424 first (a PRI followed by a VERSION), then RFC 3164 and
// its common real-world variants (no PRI as in rsyslog's files, no HOSTNAME, ISO
// timestamps), and "raw" for whatever is left. The parser reads the frame left to right
// through absl::string_view cursors ("Take*" helpers consume from the view they are given
// and leave it untouched when they fail). Only `message` keeps the original bytes; every
// string field is made valid UTF-8 so that the record always serializes.
#include "agent/syslog/parser.h"

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/civil_time.h"
#include "common/utf8.h"

namespace steward::agent::syslog {
namespace {

constexpr int kMaxPri = 191;
constexpr size_t kMaxTagBytes = 32;    // RFC 3164 4.1.3
constexpr size_t kMaxPidBytes = 128;   // RFC 5424 PROCID
constexpr size_t kMaxQuotedBytes = 64;  // of a bad field quoted in parse_problem
constexpr absl::string_view kBom = "\xEF\xBB\xBF";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// `field` in quotes for parse_problem, clipped.
std::string Quoted(absl::string_view field) {
  if (field.size() <= kMaxQuotedBytes) return absl::StrCat("\"", field, "\"");
  return absl::StrCat("\"", field.substr(0, kMaxQuotedBytes), "...\"");
}

bool TakeChar(absl::string_view& s, char c) {
  if (s.empty() || s[0] != c) return false;
  s.remove_prefix(1);
  return true;
}

// Exactly `n` decimal digits.
bool TakeDigits(absl::string_view& s, size_t n, int& value) {
  if (s.size() < n) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!IsDigit(s[i])) return false;
    v = v * 10 + (s[i] - '0');
  }
  value = v;
  s.remove_prefix(n);
  return true;
}

// "hh:mm:ss" with a range check (no leap seconds, as RFC 5424 6.2.3 demands).
bool TakeClock(absl::string_view& s, int& h, int& m, int& sec) {
  absl::string_view t = s;
  if (!TakeDigits(t, 2, h) || !TakeChar(t, ':') || !TakeDigits(t, 2, m) ||
      !TakeChar(t, ':') || !TakeDigits(t, 2, sec)) {
    return false;
  }
  if (h > 23 || m > 59 || sec > 59) return false;
  s = t;
  return true;
}

// ".fraction" (1 to 9 digits; RFC 5424 allows 6, some senders write nanoseconds) as
// microseconds; nothing to take is 0.
bool TakeFraction(absl::string_view& s, int64_t& micros) {
  micros = 0;
  if (!TakeChar(s, '.')) return true;
  size_t n = 0;
  int64_t scale = 100000;
  while (n < s.size() && IsDigit(s[n])) {
    if (n >= 9) return false;
    micros += (s[n] - '0') * scale;
    scale /= 10;
    ++n;
  }
  if (n == 0) return false;
  s.remove_prefix(n);
  return true;
}

// The civil time if its fields are a real date (no Feb 30).
std::optional<absl::CivilSecond> MakeCivil(int64_t y, int mo, int d, int h, int mi, int sec) {
  const absl::CivilSecond cs(y, mo, d, h, mi, sec);
  if (cs.year() != y || cs.month() != mo || cs.day() != d) return std::nullopt;
  return cs;
}

// "Z", "+hh:mm" or "-hh:mm"; nothing to take is no offset.
bool TakeOffset(absl::string_view& s, std::optional<absl::Duration>& offset) {
  offset.reset();
  if (TakeChar(s, 'Z')) {
    offset = absl::ZeroDuration();
    return true;
  }
  if (s.empty() || (s[0] != '+' && s[0] != '-')) return true;
  const bool negative = s[0] == '-';
  s.remove_prefix(1);
  int h = 0, m = 0;
  if (!TakeDigits(s, 2, h) || !TakeChar(s, ':') || !TakeDigits(s, 2, m) || h > 23 || m > 59) {
    return false;
  }
  offset = absl::Hours(h) + absl::Minutes(m);
  if (negative) offset = -*offset;
  return true;
}

// The whole of `s` as "YYYY-MM-DDThh:mm:ss[.frac][Z|+hh:mm]". Without an offset (only
// allowed when !require_offset) the time is in `zone`.
bool ParseIsoTimestamp(absl::string_view s, bool require_offset, const absl::TimeZone& zone,
                       int64_t& unix_us) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  int64_t frac_us = 0;
  std::optional<absl::Duration> offset;
  if (!TakeDigits(s, 4, y) || !TakeChar(s, '-') || !TakeDigits(s, 2, mo) ||
      !TakeChar(s, '-') || !TakeDigits(s, 2, d) || !TakeChar(s, 'T') ||
      !TakeClock(s, h, mi, sec) || !TakeFraction(s, frac_us) || !TakeOffset(s, offset) ||
      !s.empty() || (require_offset && !offset)) {
    return false;
  }
  const std::optional<absl::CivilSecond> cs = MakeCivil(y, mo, d, h, mi, sec);
  if (!cs) return false;
  const absl::Time t = offset ? absl::FromCivil(*cs, absl::UTCTimeZone()) - *offset
                              : absl::FromCivil(*cs, zone);
  unix_us = absl::ToUnixMicros(t) + frac_us;
  return true;
}

int MonthFromAbbrev(absl::string_view s) {
  static constexpr absl::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (absl::EqualsIgnoreCase(s, kMonths[i])) return i + 1;
  }
  return 0;
}

// A year-less BSD time: the year of `received` in `zone`, or the previous one when that
// puts the message more than a day after `received` (a December line read in January).
std::optional<absl::Time> InferYear(int mo, int d, int h, int mi, int sec, absl::Time received,
                                    const absl::TimeZone& zone) {
  if (received == absl::InfinitePast() || received == absl::InfiniteFuture()) {
    return std::nullopt;  // no year to take
  }
  const int64_t year = absl::ToCivilSecond(received, zone).year();
  for (int64_t y = year; y >= year - 1; --y) {
    const std::optional<absl::CivilSecond> cs = MakeCivil(y, mo, d, h, mi, sec);
    if (!cs) continue;  // Feb 29 of a common year
    const absl::Time t = absl::FromCivil(*cs, zone);
    if (y == year && t > received + absl::Hours(24)) continue;
    return t;
  }
  return std::nullopt;
}

// "Mmm dd hh:mm:ss" (day padded with a space, or with a zero, or not at all; an optional
// fraction) and the space after it.
bool TakeBsdTimestamp(absl::string_view& s, absl::Time received, const absl::TimeZone& zone,
                      int64_t& unix_us) {
  absl::string_view t = s;
  const int mo = t.size() >= 3 ? MonthFromAbbrev(t.substr(0, 3)) : 0;
  if (mo == 0) return false;
  t.remove_prefix(3);
  int d = 0, h = 0, mi = 0, sec = 0;
  int64_t frac_us = 0;
  if (!TakeChar(t, ' ')) return false;
  const bool day_ok = TakeChar(t, ' ') ? TakeDigits(t, 1, d)
                                       : TakeDigits(t, 2, d) || TakeDigits(t, 1, d);
  if (!day_ok || d < 1 || d > 31 || !TakeChar(t, ' ') || !TakeClock(t, h, mi, sec) ||
      !TakeFraction(t, frac_us) || (!t.empty() && t[0] != ' ')) {
    return false;
  }
  const std::optional<absl::Time> when = InferYear(mo, d, h, mi, sec, received, zone);
  if (!when) return false;
  unix_us = absl::ToUnixMicros(*when) + frac_us;
  TakeChar(t, ' ');
  s = t;
  return true;
}

// The text up to the next space (or the end), consumed with that space. Returns whether
// a space followed.
bool TakeField(absl::string_view& s, absl::string_view& field) {
  const size_t sp = s.find(' ');
  field = s.substr(0, sp);
  s.remove_prefix(sp == absl::string_view::npos ? s.size() : sp + 1);
  return sp != absl::string_view::npos;
}

// A BSD timestamp or an ISO one (rsyslog's high-precision format) and the space after it.
bool TakeTimestamp3164(absl::string_view& s, absl::Time received, const absl::TimeZone& zone,
                       int64_t& unix_us) {
  if (TakeBsdTimestamp(s, received, zone, unix_us)) return true;
  if (s.size() < 5 || !IsDigit(s[0]) || s[4] != '-') return false;
  absl::string_view t = s;
  absl::string_view field;
  TakeField(t, field);
  if (!ParseIsoTimestamp(field, /*require_offset=*/false, zone, unix_us)) return false;
  s = t;
  return true;
}

struct Tag {
  absl::string_view name;
  absl::string_view pid;
};

// "TAG[PID]: ", "TAG: " or "TAG[PID] " (or those at the end). A word followed by a
// space alone is content, not a tag: RFC 3164 5.4's "Use the BFG!" has no TAG.
std::optional<Tag> TakeTag(absl::string_view& s) {
  size_t n = 0;
  while (n < s.size() && n <= kMaxTagBytes && s[n] != '[' && s[n] != ':' &&
         static_cast<unsigned char>(s[n]) > ' ') {
    ++n;
  }
  if (n == 0 || n > kMaxTagBytes || n == s.size()) return std::nullopt;
  Tag tag{s.substr(0, n), {}};
  absl::string_view t = s.substr(n);
  bool terminated = false;
  if (t[0] == '[') {
    const size_t close = t.find(']');
    if (close == absl::string_view::npos || close == 1 || close > kMaxPidBytes + 1) {
      return std::nullopt;
    }
    tag.pid = t.substr(1, close - 1);
    if (absl::StrContains(tag.pid, ' ')) return std::nullopt;
    t.remove_prefix(close + 1);
    terminated = true;
  }
  if (TakeChar(t, ':')) terminated = true;
  if (!terminated || (!t.empty() && t[0] != ' ')) return std::nullopt;
  TakeChar(t, ' ');
  s = t;
  return tag;
}

// Whether `token` (no spaces) is a whole tag, so the line has no HOSTNAME before it.
bool IsTagToken(absl::string_view token) {
  return TakeTag(token).has_value() && token.empty();
}

// What follows the PRI (or the whole frame when it has none) of a BSD line. Without a
// timestamp it is all content (RFC 3164 4.3.2). Returns whether there was a timestamp.
bool Parse3164(absl::string_view s, absl::Time received, const ParseOptions& options,
               proto::LogRecord& r) {
  r.set_format("rfc3164");
  int64_t unix_us = 0;
  if (!TakeTimestamp3164(s, received, options.local_zone, unix_us)) {
    r.set_message(std::string(s));
    return false;
  }
  r.set_timestamp_unix_us(unix_us);
  const absl::string_view first = s.substr(0, s.find(' '));
  if (!first.empty() && !IsTagToken(first)) {
    r.set_hostname(SanitizeUtf8(first));
    absl::string_view field;
    TakeField(s, field);
  }
  if (std::optional<Tag> tag = TakeTag(s)) {
    r.set_app_name(SanitizeUtf8(tag->name));
    r.set_procid(SanitizeUtf8(tag->pid));
  }
  r.set_message(std::string(s));
  return true;
}

// An SD-NAME: printable, not '=', ' ', ']' or '"' (lengths are not enforced).
absl::string_view TakeSdName(absl::string_view& s) {
  size_t n = 0;
  while (n < s.size()) {
    const auto c = static_cast<unsigned char>(s[n]);
    if (c <= ' ' || c == 0x7F || c == '=' || c == ']' || c == '"') break;
    ++n;
  }
  const absl::string_view name = s.substr(0, n);
  s.remove_prefix(n);
  return name;
}

// A PARAM-VALUE after its opening quote, through the closing one. A backslash escapes
// '"', '\' and ']'; before anything else it is kept (RFC 5424 6.3.3). An unescaped ']'
// is taken as is.
bool TakeParamValue(absl::string_view& s, std::string& value) {
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '"') {
      s.remove_prefix(i + 1);
      return true;
    }
    if (c == '\\' && i + 1 < s.size() &&
        (s[i + 1] == '"' || s[i + 1] == '\\' || s[i + 1] == ']')) {
      ++i;
    }
    value.push_back(s[i]);
  }
  return false;
}

// One "[SD-ID PARAM="VALUE" ...]".
bool TakeSdElement(absl::string_view& s, proto::SdElement& element, std::string& problem) {
  TakeChar(s, '[');
  const absl::string_view id = TakeSdName(s);
  if (id.empty()) {
    problem = "STRUCTURED-DATA: missing SD-ID after '['";
    return false;
  }
  element.set_id(SanitizeUtf8(id));
  while (true) {
    if (TakeChar(s, ']')) return true;
    if (!TakeChar(s, ' ')) {
      problem = absl::StrCat("STRUCTURED-DATA: expected ' ' or ']' in element ", Quoted(id));
      return false;
    }
    while (TakeChar(s, ' ')) {
    }
    if (TakeChar(s, ']')) return true;
    const absl::string_view name = TakeSdName(s);
    std::string value;
    if (name.empty() || !TakeChar(s, '=') || !TakeChar(s, '"') || !TakeParamValue(s, value)) {
      problem = absl::StrCat("STRUCTURED-DATA: malformed parameter in element ", Quoted(id));
      return false;
    }
    proto::SdParam* param = element.add_params();
    param->set_name(SanitizeUtf8(name));
    param->set_value(SanitizeUtf8(value));
  }
}

// "-" or one or more SD-ELEMENTs.
bool TakeStructuredData(absl::string_view& s, proto::LogRecord& r, std::string& problem) {
  if (TakeChar(s, '-')) return true;
  if (s.empty() || s[0] != '[') {
    problem = "STRUCTURED-DATA: expected '-' or '['";
    return false;
  }
  const absl::string_view start = s;
  while (!s.empty() && s[0] == '[') {
    if (!TakeSdElement(s, *r.add_sd(), problem)) return false;
  }
  r.set_structured_data(SanitizeUtf8(start.substr(0, start.size() - s.size())));
  return true;
}

// Whether what follows the PRI starts with an RFC 5424 VERSION (1*3 digits, no leading
// zero) and a space.
bool LooksLike5424(absl::string_view s) {
  size_t n = 0;
  while (n < s.size() && n < 4 && IsDigit(s[n])) ++n;
  return n >= 1 && n <= 3 && s[0] != '0' && n < s.size() && s[n] == ' ';
}

// HOSTNAME, APP-NAME, PROCID and MSGID; "-" is empty.
bool TakeHeaderNames(absl::string_view& s, proto::LogRecord& r, std::string& problem) {
  static constexpr const char* kNames[] = {"HOSTNAME", "APP-NAME", "PROCID", "MSGID",
                                           "STRUCTURED-DATA"};
  std::string* fields[] = {r.mutable_hostname(), r.mutable_app_name(), r.mutable_procid(),
                           r.mutable_msgid()};
  for (size_t i = 0; i < 4; ++i) {
    absl::string_view field;
    const bool more = TakeField(s, field);
    if (field.empty()) {
      problem = absl::StrCat(more ? "empty " : "missing ", kNames[i]);
      return false;
    }
    if (!more) {
      problem = absl::StrCat("missing ", kNames[i + 1]);
      return false;
    }
    if (field != "-") *fields[i] = SanitizeUtf8(field);
  }
  return true;
}

// What follows the PRI of a frame that LooksLike5424.
bool Parse5424(absl::string_view s, const ParseOptions& options, proto::LogRecord& r,
               std::string& problem) {
  r.set_format("rfc5424");
  absl::string_view field;
  TakeField(s, field);
  if (field != "1") {
    problem = absl::StrCat("unsupported VERSION ", field);
    return false;
  }
  const bool more = TakeField(s, field);
  if (field.empty() || !more) {
    problem = field.empty() ? "empty TIMESTAMP" : "missing HOSTNAME";
    return false;
  }
  int64_t unix_us = 0;
  if (field != "-" &&
      !ParseIsoTimestamp(field, /*require_offset=*/true, options.local_zone, unix_us)) {
    problem = absl::StrCat("invalid TIMESTAMP ", Quoted(field));
    return false;
  }
  r.set_timestamp_unix_us(unix_us);
  if (!TakeHeaderNames(s, r, problem) || !TakeStructuredData(s, r, problem)) return false;
  if (!s.empty() && !TakeChar(s, ' ')) {
    problem = "STRUCTURED-DATA: expected ' ' before MSG";
    return false;
  }
  absl::ConsumePrefix(&s, kBom);
  r.set_message(std::string(s));
  return true;
}

// `pri` from "<PRI>" at the start of `s`, consumed. Without one `s` is unchanged and
// `problem` says what was wrong if it looked like a PRI.
std::optional<int> TakePri(absl::string_view& s, std::string& problem) {
  if (s.empty() || s[0] != '<') return std::nullopt;
  size_t n = 1;
  while (n < s.size() && n <= 4 && IsDigit(s[n])) ++n;
  const absl::string_view digits = s.substr(1, n - 1);
  int pri = 0;
  for (const char c : digits) pri = pri * 10 + (c - '0');
  if (digits.empty() || digits.size() > 3 || n >= s.size() || s[n] != '>') {
    problem = "invalid PRI: expected '<', 1 to 3 digits and '>'";
  } else if (digits.size() > 1 && digits[0] == '0') {
    problem = absl::StrCat("invalid PRI: leading zero in <", digits, ">");
  } else if (pri > kMaxPri) {
    problem = absl::StrCat("invalid PRI: ", pri, " is out of range 0..191");
  } else {
    s.remove_prefix(n + 1);
    return pri;
  }
  return std::nullopt;
}

proto::LogRecord Raw(absl::string_view frame, int64_t received_us, bool truncated,
                     absl::string_view problem) {
  proto::LogRecord r;
  r.set_format("raw");
  r.set_facility(-1);
  r.set_severity(-1);
  r.set_message(std::string(frame));
  r.set_received_unix_us(received_us);
  r.set_truncated(truncated);
  r.set_parse_error(true);
  r.set_parse_problem(SanitizeUtf8(problem));
  return r;
}

}  // namespace

proto::LogRecord Parse(absl::string_view frame, absl::Time received,
                       const ParseOptions& options) {
  if (absl::ConsumeSuffix(&frame, "\n")) absl::ConsumeSuffix(&frame, "\r");
  const bool truncated = frame.size() > options.max_message_bytes;
  if (truncated) frame = frame.substr(0, Utf8CutPoint(frame, options.max_message_bytes));
  const int64_t received_us = absl::ToUnixMicros(received);

  proto::LogRecord r;
  r.set_received_unix_us(received_us);
  r.set_truncated(truncated);
  absl::string_view rest = frame;
  std::string problem;
  const std::optional<int> pri = TakePri(rest, problem);
  if (pri) {
    r.set_facility(*pri / 8);
    r.set_severity(*pri % 8);
    if (!LooksLike5424(rest)) {
      Parse3164(rest, received, options, r);
    } else if (!Parse5424(rest, options, r, problem)) {
      return Raw(frame, received_us, truncated, problem);
    }
    return r;
  }
  // No PRI: a BSD line as a file holds it, with RFC 3164 4.3.3's default PRI, user.notice
  // (or the input's severity).
  r.set_facility(1);
  r.set_severity(options.no_pri_severity);
  if (!Parse3164(rest, received, options, r)) {
    if (options.plain_text) {  // "<html>" is text here, not a bad PRI
      r.set_format("text");
      return r;
    }
    if (problem.empty()) problem = frame.empty() ? "empty frame" : "no PRI and no timestamp";
    return Raw(frame, received_us, truncated, problem);
  }
  return r;
}

}  // namespace steward::agent::syslog
