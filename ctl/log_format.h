// How `stewardctl logs` reads times and prints lines. Times on the command line are a
// duration ago ("10m", "1h30m"), "now", "today", "yesterday", a date and time
// ("2026-11-30", "2026-11-30 10:00", "2026-11-30T10:00:05.250") in the operator's zone
// (or UTC), an RFC 3339 time with its own offset ("2026-11-30T10:00:00Z",
// "...+01:00"), or "@UNIX_SECONDS". Lines print in one of three formats:
//
//   short    2026-11-30 10:00:01.123 ship1 edge-7 nginx[123] warning: upstream timed out
//            (time NODE HOST [DOMAIN/]APP[PID] SEVERITY: MESSAGE; DOMAIN shown when it is
//            not the app; "-" for a missing host; " [truncated]" after a cut message)
//   verbose  every field, one per line, under a line naming the node, time and cursor
//   json     the LogEntry as the station's protocol has it (common/json.h)
//
// Remote text is escaped (render_text.h). Pure functions, thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/steward.pb.h"

namespace steward::ctl {

// `text` as a point in time (see above), relative to `now`, in `zone` when it names none.
absl::StatusOr<absl::Time> ParseLogTime(absl::string_view text, absl::Time now, const absl::TimeZone& zone);

// One line (with its newline) in the short format.
std::string ShortLogLine(const proto::LogEntry& entry, const absl::TimeZone& zone);
// The verbose block of one line (ends with a blank line).
std::string VerboseLogEntry(const proto::LogEntry& entry, const absl::TimeZone& zone);

}  // namespace steward::ctl
