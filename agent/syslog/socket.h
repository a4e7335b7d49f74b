// Sockets for the network syslog inputs: the listen address a user writes
// ("host:port", "[::1]:514"), a non-blocking socket bound to it, and SocketInput, what
// the UDP and TCP inputs share (the socket, its address, the names it gives lines).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/syslog/input.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace steward::agent::syslog {

// "host:port" -> the address to bind; InvalidArgument for a bad spec.
// Binds exactly the address given (never a wildcard unless the user wrote 0.0.0.0).
struct ListenSpec {
  std::string host;
  uint16_t port = 0;  // 0: the OS picks (see Input::port())
};
absl::StatusOr<ListenSpec> ParseListenSpec(absl::string_view spec);

// "host:port", with brackets around IPv6 hosts.
std::string HostPort(absl::string_view host, uint16_t port);

struct BoundSocket {
  UniqueFd fd;
  uint16_t port = 0;  // the port actually bound
};

// A non-blocking socket of `type` (SOCK_DGRAM or SOCK_STREAM) bound to `spec`, and
// listening for SOCK_STREAM. The host may be an address literal or a name (the first
// answer wins).
absl::StatusOr<BoundSocket> BindSocket(const ListenSpec& spec, int type);

// Checks the frame limit, binds `spec` for `type` and makes the input T (a SocketInput)
// over the socket: NewUdpInput and NewTcpInput.
template <typename T>
absl::StatusOr<std::unique_ptr<Input>> NewSocketInput(const ListenSpec& spec, int type,
                                                      const InputOptions& options) {
  STEWARD_RETURN_IF_ERROR(CheckMaxFrameBytes(options.max_frame_bytes));
  STEWARD_ASSIGN_OR_RETURN(BoundSocket socket, BindSocket(spec, type));
  return std::make_unique<T>(std::move(socket), spec, options);
}

// The base of the UDP and TCP inputs: owns the bound socket; names the input
// "syslog-<kind>:<host:port>" and its lines' source "<kind>:<host:port>".
class SocketInput : public Input {
 public:
  uint16_t port() const override { return port_; }
  std::string name() const override { return name_; }

 protected:
  SocketInput(BoundSocket socket, const ListenSpec& spec, absl::string_view kind,
              const InputOptions& options);

  // A line from this input, received now.
  RawLine Line(absl::string_view data, bool truncated) const {
    return MakeLine(data, origin_, truncated);
  }

  const UniqueFd fd_;
  const size_t max_;  // frame limit

 private:
  const uint16_t port_;
  const std::string name_;
  const OriginPtr origin_;
};

}  // namespace steward::agent::syslog
