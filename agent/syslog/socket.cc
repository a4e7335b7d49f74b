// Listen addresses and bound sockets for the syslog network inputs.
#include "agent/syslog/socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

namespace steward::agent::syslog {
namespace {

absl::Status BadSpec(absl::string_view spec, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad listen address \"", spec, "\": ", why, " (want host:port)"));
}

absl::StatusOr<uint16_t> LocalPort(int fd, absl::string_view what) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("getsockname ", what));
  }
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
}

// Resolves spec.host (an address literal or a name; the first answer wins).
absl::StatusOr<addrinfo*> Resolve(const ListenSpec& spec, int type, absl::string_view what) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = type;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* result = nullptr;
  const std::string service = std::to_string(spec.port);
  const int rc = getaddrinfo(spec.host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve ", what, ": ", gai_strerror(rc)));
  }
  return result;
}

}  // namespace

absl::StatusOr<ListenSpec> ParseListenSpec(absl::string_view spec) {
  absl::string_view host;
  absl::string_view port;
  if (absl::StartsWith(spec, "[")) {
    const size_t close = spec.find(']');
    if (close == absl::string_view::npos) return BadSpec(spec, "missing ']'");
    host = spec.substr(1, close - 1);
    absl::string_view rest = spec.substr(close + 1);
    if (!absl::ConsumePrefix(&rest, ":")) return BadSpec(spec, "missing port");
    port = rest;
  } else {
    const size_t colon = spec.rfind(':');
    if (colon == absl::string_view::npos) return BadSpec(spec, "missing port");
    host = spec.substr(0, colon);
    port = spec.substr(colon + 1);
    if (absl::StrContains(host, ':')) return BadSpec(spec, "IPv6 hosts need brackets: [::1]:514");
  }
  if (host.empty()) return BadSpec(spec, "empty host (0.0.0.0 listens on every address)");
  if (port.empty()) return BadSpec(spec, "missing port");
  if (!std::all_of(port.begin(), port.end(),
                   [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); })) {
    return BadSpec(spec, "port is not a number");
  }
  uint32_t value = 0;
  if (port.size() > 5 || !absl::SimpleAtoi(port, &value) || value > 65535) {
    return BadSpec(spec, "port out of range 0-65535");
  }
  return ListenSpec{.host = std::string(host), .port = static_cast<uint16_t>(value)};
}

std::string HostPort(absl::string_view host, uint16_t port) {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<BoundSocket> BindSocket(const ListenSpec& spec, int type) {
  const std::string what =
      absl::StrCat(type == SOCK_DGRAM ? "udp " : "tcp ", HostPort(spec.host, spec.port));
  STEWARD_ASSIGN_OR_RETURN(addrinfo * ai, Resolve(spec, type, what));
  BoundSocket s;
  s.fd.Reset(socket(ai->ai_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s.fd.valid()) {
    freeaddrinfo(ai);
    return absl::ErrnoToStatus(errno, absl::StrCat("socket for ", what));
  }
  const int one = 1;
  if (type == SOCK_STREAM) setsockopt(s.fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const int rc = bind(s.fd.get(), ai->ai_addr, ai->ai_addrlen);
  const int bind_errno = errno;
  freeaddrinfo(ai);
  if (rc != 0) return absl::ErrnoToStatus(bind_errno, absl::StrCat("bind ", what));
  if (type == SOCK_STREAM && listen(s.fd.get(), SOMAXCONN) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("listen ", what));
  }
  STEWARD_ASSIGN_OR_RETURN(s.port, LocalPort(s.fd.get(), what));
  return s;
}

SocketInput::SocketInput(BoundSocket socket, const ListenSpec& spec, absl::string_view kind,
                         const InputOptions& options)
    : fd_(std::move(socket.fd)),
      max_(options.max_frame_bytes),
      port_(socket.port),
      name_(absl::StrCat("syslog-", kind, ":", HostPort(spec.host, socket.port))),
      origin_(std::make_shared<const LineOrigin>(LineOrigin{
          .source = absl::StrCat(kind, ":", HostPort(spec.host, socket.port)),
          .domain = options.domain,
          .zone = options.zone,
          .severity = options.severity,
          .plain_text = false})) {}

}  // namespace steward::agent::syslog
