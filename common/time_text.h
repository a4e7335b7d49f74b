// How steward writes a time: in UTC, to the second, in one of two layouts.
//
//   UtcText(t)          "2026-12-03 17:49:02 UTC"  in messages and tables people read
//   Rfc3339Utc(t)       "2026-12-03T17:49:02Z"     where a program may parse it back
//
// The *Ms forms take Unix milliseconds, as the protocol carries them.
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace steward {

inline std::string UtcText(absl::Time t) { return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone()); }
inline std::string UtcTextMs(int64_t unix_ms) { return UtcText(absl::FromUnixMillis(unix_ms)); }

inline std::string Rfc3339Utc(absl::Time t) { return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone()); }
inline std::string Rfc3339UtcMs(int64_t unix_ms) { return Rfc3339Utc(absl::FromUnixMillis(unix_ms)); }

}  // namespace steward
