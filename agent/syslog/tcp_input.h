// The TCP syslog input: many connections at once, each framed per RFC 6587 (octet
// counting or newline framing, decided at the connection's first frame; see framer.h). A frame the sink
// refuses is kept and offered again, and its connection is not read meanwhile, so TCP
// flow control slows the sender: nothing is lost while the agent runs.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/syslog/input.h"
#include "agent/syslog/socket.h"

namespace steward::agent::syslog {

// Binds at once; serves many connections; a frame over options.max_frame_bytes is cut
// (and the rest of it skipped, the line marked truncated), never buffered without bound.
absl::StatusOr<std::unique_ptr<Input>> NewTcpInput(const ListenSpec& spec, const InputOptions& options);

}  // namespace steward::agent::syslog
