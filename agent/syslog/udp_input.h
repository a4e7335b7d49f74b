// The UDP syslog input: one datagram is one frame (a trailing "\n" or "\r\n" is
// dropped, the rest cut to the frame limit). Lines the sink refuses are dropped and
// counted (dropped()): UDP has no way to slow the sender.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/syslog/input.h"
#include "agent/syslog/socket.h"

namespace steward::agent::syslog {

// Binds at once (so a bad address fails at start-up).
absl::StatusOr<std::unique_ptr<Input>> NewUdpInput(const ListenSpec& spec, std::string domain,
                                                   size_t max_frame_bytes);

}  // namespace steward::agent::syslog
