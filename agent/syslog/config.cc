// Reading the syslog flags: tail specs and zones.
#include "agent/syslog/config.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/severity.h"
#include "subjects/subject.h"

namespace steward::agent::syslog {
namespace {

absl::StatusOr<absl::TimeZone> LoadZone(absl::string_view name) {
  if (name == "local") return absl::LocalTimeZone();
  absl::TimeZone tz;
  if (!absl::LoadTimeZone(std::string(name), &tz)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown time zone \"", name, "\" (an IANA name such as Europe/Berlin, UTC, or local)"));
  }
  return tz;
}

}  // namespace

absl::StatusOr<TailSpec> ParseTail(absl::string_view spec) {
  TailSpec out;
  absl::string_view rest = spec;
  // PATH:DOMAIN:SEVERITY, when the last part names a severity.
  if (const size_t last = rest.rfind(':'); last != absl::string_view::npos) {
    const absl::string_view tail = rest.substr(last + 1);
    const absl::string_view head = rest.substr(0, last);
    const size_t second = head.rfind(':');
    if (SeverityFromName(tail) >= 0 && second != absl::string_view::npos && second > 0) {
      out.severity = SeverityFromName(tail);
      out.domain = std::string(head.substr(second + 1));
      rest = head.substr(0, second);
    } else if (last > 0) {
      out.domain = std::string(tail);
      rest = head;
    }
  }
  out.path = std::string(rest);
  if (out.path.empty()) return absl::InvalidArgumentError(absl::StrCat("--tail \"", spec, "\": empty path"));
  if (!out.domain.empty()) {
    if (absl::Status st = subjects::ValidateToken(out.domain); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--tail \"", spec, "\": bad domain: ", st.message(),
                                                     " (PATH[:DOMAIN[:SEVERITY]])"));
    }
  }
  return out;
}

absl::TimeZone Zones::For(const std::string& input) const {
  auto it = by_input.find(input);
  return it == by_input.end() ? fallback : it->second;
}

absl::StatusOr<Zones> ParseZones(const std::vector<std::string>& specs) {
  Zones out;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos) {
      auto tz = LoadZone(spec);
      if (!tz.ok()) return absl::InvalidArgumentError(absl::StrCat("--syslog-tz: ", tz.status().message()));
      out.fallback = *tz;
      continue;
    }
    const std::string input = spec.substr(0, eq);
    if (!absl::StartsWith(input, "udp:") && !absl::StartsWith(input, "tcp:") && !absl::StartsWith(input, "file:")) {
      return absl::InvalidArgumentError(absl::StrCat("--syslog-tz \"", spec,
                                                     "\": name the input as udp:HOST:PORT, tcp:HOST:PORT or "
                                                     "file:PATH, as configured"));
    }
    auto tz = LoadZone(absl::string_view(spec).substr(eq + 1));
    if (!tz.ok()) return absl::InvalidArgumentError(absl::StrCat("--syslog-tz: ", tz.status().message()));
    out.by_input[input] = *tz;
  }
  return out;
}

}  // namespace steward::agent::syslog
