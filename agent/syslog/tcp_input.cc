// TCP input: one poll loop over the listener and every connection.
#include "agent/syslog/tcp_input.h"

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <optional>
#include <utility>
#include <vector>

#include "agent/syslog/framer.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace steward::agent::syslog {
namespace {

// The loop wakes this often (ms) to look at `stop`.
constexpr int kPollMs = 250;
// While a refused line waits, the sink is asked again this often (ms).
constexpr int kRetryPollMs = 10;
// At most this many connections at once (more are accepted and closed).
constexpr size_t kMaxConnections = 256;
constexpr size_t kTcpReadChunk = 64 * 1024;

// A frame and whether it was cut at the size limit.
struct Frame {
  std::string data;
  bool truncated = false;
};

// One client connection: its framer (which decides the connection's framing at its
// first frame), the bytes of the last read not framed yet, and a frame the sink
// refused. While either is held the connection is not read from.
struct Connection {
  Connection(UniqueFd socket, size_t max_bytes)
      : fd(std::move(socket)), framer(max_bytes, Framing::kDetect) {}
  bool Blocked() const { return pending.has_value() || unread_pos < unread.size(); }

  UniqueFd fd;
  Framer framer;
  std::string unread;
  size_t unread_pos = 0;
  std::optional<Frame> pending;
  bool eof = false;       // the peer closed (or reset) the connection
  bool finished = false;  // the framer's last frame was taken after eof
};

class TcpInput : public SocketInput {
 public:
  TcpInput(BoundSocket socket, const ListenSpec& spec, const InputOptions& options)
      : SocketInput(std::move(socket), spec, "tcp", options) {}

  absl::Status Run(const absl::Notification& stop, LineSink& sink) override;
  void StartDraining(absl::Time deadline) override {
    drain_until_ns_.store(absl::ToUnixNanos(deadline), std::memory_order_relaxed);
  }
  bool Drained() const override { return drained_.load(std::memory_order_relaxed); }

 private:
  using Connections = std::vector<std::unique_ptr<Connection>>;

  absl::Status AcceptAll(Connections& conns);
  void Service(Connection& c, short revents, std::vector<char>& buf, LineSink& sink);
  void Deliver(Connection& c, LineSink& sink);
  bool Offer(const Frame& frame, LineSink& sink) { return Input::Offer(sink, Line(frame.data, frame.truncated)); }

  // Starts a drain: takes the connections already made, closes the listener (new ones
  // are refused) and half-closes each connection (FIN: a relay such as rsyslog sees it
  // before its next write, closes and reconnects elsewhere).
  absl::Status StartDrain(Connections& conns);
  // The drain ends when every sender closed its side, or at the deadline.
  void CheckDrained(Connections& conns);

  uint64_t refused_ = 0;  // connections closed at once for being over kMaxConnections
  std::atomic<int64_t> drain_until_ns_{0};  // 0: not draining
  bool draining_ = false;                    // the drain started (Run's thread only)
  std::atomic<bool> drained_{false};
};

absl::Status TcpInput::StartDrain(Connections& conns) {
  draining_ = true;
  STEWARD_RETURN_IF_ERROR(AcceptAll(conns));
  ::shutdown(fd_.get(), SHUT_RDWR);  // a listening socket: stops listening
  for (const auto& c : conns) ::shutdown(c->fd.get(), SHUT_WR);
  STEWARD_LOG_INFO("{}: draining {} connections", name(), conns.size());
  return absl::OkStatus();
}

void TcpInput::CheckDrained(Connections& conns) {
  if (drained_.load(std::memory_order_relaxed)) return;
  if (!conns.empty() && absl::Now() < absl::FromUnixNanos(drain_until_ns_.load(std::memory_order_relaxed))) return;
  if (!conns.empty()) {
    STEWARD_LOG_WARNING("{}: {} senders did not close their connection in time; closing it (what they send "
                        "from now on is lost)",
                        name(), conns.size());
  }
  drained_.store(true, std::memory_order_relaxed);
}

// One poll loop over the listener and every connection. A connection holding a refused
// frame is not polled; the loop then wakes every kRetryPollMs to offer it again. At
// stop, connections close: frames they still held, and unread kernel data, are lost;
// StartDraining before the stop avoids that (see input.h).
absl::Status TcpInput::Run(const absl::Notification& stop, LineSink& sink) {
  Connections conns;
  std::vector<char> buf(kTcpReadChunk);
  std::vector<pollfd> pfds;
  while (!stop.HasBeenNotified()) {
    if (!draining_ && drain_until_ns_.load(std::memory_order_relaxed) != 0) {
      STEWARD_RETURN_IF_ERROR(StartDrain(conns));
    }
    if (draining_) CheckDrained(conns);
    bool blocked = false;
    pfds.assign(1, pollfd{.fd = draining_ ? -1 : fd_.get(), .events = POLLIN, .revents = 0});
    for (const auto& c : conns) {
      blocked = blocked || c->Blocked();
      // A blocked connection is left out (fd -1): its data waits in the kernel.
      pfds.push_back(pollfd{.fd = c->Blocked() ? -1 : c->fd.get(), .events = POLLIN, .revents = 0});
    }
    const int rc = poll(pfds.data(), pfds.size(), blocked || draining_ ? kRetryPollMs : kPollMs);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "poll " + name());
    }
    for (size_t i = 0; i < conns.size(); ++i) Service(*conns[i], pfds[i + 1].revents, buf, sink);
    std::erase_if(conns, [](const auto& c) { return c->finished && !c->Blocked(); });
    if (pfds[0].revents & POLLIN) STEWARD_RETURN_IF_ERROR(AcceptAll(conns));
  }
  return absl::OkStatus();
}

absl::Status TcpInput::AcceptAll(Connections& conns) {
  for (;;) {
    UniqueFd fd(accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      // EMFILE and the like: let the supervisor decide.
      return absl::ErrnoToStatus(errno, "accept " + name());
    }
    if (conns.size() >= kMaxConnections) {
      if (refused_++ % 100 == 0) {
        STEWARD_LOG_WARNING("{}: {} connections already, refusing more ({} refused so far)",
                            name(), conns.size(), refused_);
      }
      continue;  // fd closes here
    }
    const int one = 1;  // notice peers that vanished, so they free their slot
    setsockopt(fd.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    conns.push_back(std::make_unique<Connection>(std::move(fd), max_));
  }
}

// Reads once from `c` when it is readable and not blocked, then delivers what it can.
void TcpInput::Service(Connection& c, short revents, std::vector<char>& buf, LineSink& sink) {
  if (!c.Blocked() && !c.eof && (revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
    const ssize_t n = recv(c.fd.get(), buf.data(), buf.size(), 0);
    if (n > 0) {
      c.unread.assign(buf.data(), static_cast<size_t>(n));
      c.unread_pos = 0;
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      c.eof = true;  // closed, or reset: what arrived is still delivered
    }
  }
  Deliver(c, sink);
}

// Offers the pending frame, then the frames in c.unread, then (after eof) the last
// unterminated one; stops at the first refusal and keeps that frame pending.
void TcpInput::Deliver(Connection& c, LineSink& sink) {
  if (c.pending) {
    if (!Offer(*c.pending, sink)) return;
    c.pending.reset();
  }
  absl::string_view in(c.unread);
  in.remove_prefix(c.unread_pos);
  Frame frame;
  while (c.framer.Next(in, &frame.data)) {
    c.unread_pos = c.unread.size() - in.size();
    frame.truncated = c.framer.truncated();
    if (!Offer(frame, sink)) {
      c.pending = std::move(frame);
      return;
    }
  }
  c.unread.clear();
  c.unread_pos = 0;
  if (c.eof && !c.finished) {
    c.finished = true;
    if (c.framer.Finish(&frame.data)) {
      frame.truncated = c.framer.truncated();
      if (!Offer(frame, sink)) c.pending = std::move(frame);
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Input>> NewTcpInput(const ListenSpec& spec, const InputOptions& options) {
  return NewSocketInput<TcpInput>(spec, SOCK_STREAM, options);
}

}  // namespace steward::agent::syslog
