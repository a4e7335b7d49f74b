// Syslog severity name table.
#include "common/severity.h"

#include "absl/strings/ascii.h"

namespace steward {
namespace {
constexpr const char* kNames[] = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};
}  // namespace

int SeverityFromName(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  for (int i = 0; i < 8; ++i) {
    if (n == kNames[i]) return i;
  }
  if (n == "emergency" || n == "panic") return 0;
  if (n == "critical") return 2;
  if (n == "error") return 3;
  if (n == "warn") return 4;
  return -1;
}

const char* SeverityName(int severity) {
  return severity >= 0 && severity < 8 ? kNames[severity] : "unknown";
}

}  // namespace steward
