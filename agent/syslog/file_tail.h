// The file syslog input: follows a file like tail -F. It survives rotation (rename:
// the old file is read to its end first) and truncation (copytruncate: reading starts
// again at 0), and keeps its offset in a small state file, saved only after the sink
// has spooled every line before it, so a restart neither loses nor repeats lines. A
// refused line is offered again; the file simply waits meanwhile. Lines that are not
// syslog (an application's own log) are plain text with the input's severity.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/syslog/input.h"

namespace steward::agent::syslog {

// Tails `path` (which may not exist yet). Offsets live in `state_dir`. Starts at the
// saved offset, or at the end of the file when there is none (like tail -F), unless
// `from_start`.
absl::StatusOr<std::unique_ptr<Input>> NewFileTail(const std::string& path, const InputOptions& options,
                                                   const std::string& state_dir, bool from_start = false);

}  // namespace steward::agent::syslog
