// Unique, time-ordered message ids: 48 bits of Unix milliseconds and 80 random bits,
// written as 26 Crockford base32 characters (the ULID layout). Ids made by one process
// sort in creation order even within one millisecond. Thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace steward {

std::string NewId();

// True when `id` has the shape NewId() produces.
bool IsValidId(absl::string_view id);

// The creation time encoded in a valid id, in Unix milliseconds.
int64_t IdUnixMillis(absl::string_view id);

}  // namespace steward
