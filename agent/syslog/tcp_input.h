// The TCP syslog input: many connections at once, each framed per RFC 6587 (octet
// counting or newline framing, detected per frame; see framer.h). A frame the sink
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

// Binds at once; serves many connections; a frame over max_frame_bytes is cut (and
// the rest of it skipped), never buffered without bound.
absl::StatusOr<std::unique_ptr<Input>> NewTcpInput(const ListenSpec& spec, std::string domain,
                                                   size_t max_frame_bytes);

}  // namespace steward::agent::syslog
