// The UDP syslog input: one datagram is one frame (a trailing "\n" or "\r\n" is
// dropped, the rest cut to the frame limit and marked truncated). UDP has no way to
// slow the sender, so lines are lost in two places, and both are counted (dropped()):
// the kernel drops datagrams when the socket's receive buffer is full (its counter
// rides on every datagram, SO_RXQ_OVFL), and the input drops those the sink refuses.
// The receive buffer is sized as options.udp_buffer_bytes asks (SO_RCVBUF, capped by
// net.core.rmem_max unless the agent has CAP_NET_ADMIN; a warning says so).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/syslog/input.h"
#include "agent/syslog/socket.h"

namespace steward::agent::syslog {

// Binds at once (so a bad address fails at start-up).
absl::StatusOr<std::unique_ptr<Input>> NewUdpInput(const ListenSpec& spec, const InputOptions& options);

}  // namespace steward::agent::syslog
