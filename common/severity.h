// Syslog severity names (RFC 5424 table 2) shared by the agent's parser and stewardctl.
#pragma once

#include "absl/strings/string_view.h"

namespace steward {

// "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", also
// "emergency", "panic", "critical", "error", "warn", in any case; -1 for anything else.
int SeverityFromName(absl::string_view name);
// The short name of 0..7; "unknown" for anything else.
const char* SeverityName(int severity);

}  // namespace steward
