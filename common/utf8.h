// UTF-8 helpers for text that comes from outside (log lines, command output): the
// length of a well-formed sequence, a copy with every ill-formed byte replaced, and a
// cut that does not split a character. "Well-formed" is RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF. Pure functions, thread-safe.
//
//   SanitizeUtf8("caf\xC3\xA9 \xFF") == "caf\xC3\xA9 \xEF\xBF\xBD"   // U+FFFD for 0xFF
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace steward {

// Length (1 to 4) of the well-formed UTF-8 sequence at s[i], or 0 when there is none.
// Requires i < s.size().
size_t Utf8SequenceLength(absl::string_view s, size_t i);

// `s` with every byte that is not part of a well-formed sequence replaced by U+FFFD.
std::string SanitizeUtf8(absl::string_view s);

// Where to cut `s` (longer than `limit`) so that the result is at most `limit` bytes
// and does not end inside a multi-byte sequence.
size_t Utf8CutPoint(absl::string_view s, size_t limit);

}  // namespace steward
