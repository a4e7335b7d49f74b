// Syslog inputs: a UDP listener (one datagram, one frame), a TCP listener with RFC 6587
// framing detected per frame (octet counting when a frame starts with a digit, else
// newline framing), and a tail -F style file follower that survives rotation and
// truncation and keeps its offset in a small state file.
//
// All three hand frames to a LineSink. UDP drops (and counts) what the sink refuses;
// TCP and files keep a refused line and offer it again, and stop reading meanwhile, so
// the sender (TCP flow control) or the file (which simply waits) absorbs the pressure.
// Every loop sleeps at most 250 ms between looks at `stop`.
#include "agent/syslog_inputs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace steward::agent::syslog {
namespace {

// Network loops wake this often (ms) to look at `stop`.
constexpr int kPollMs = 250;
// TCP: while a refused line waits, the sink is asked again this often (ms).
constexpr int kRetryPollMs = 10;
// UDP: datagrams per recvmmsg, and batches per wake-up before `stop` is looked at.
constexpr unsigned kUdpBatch = 64;
constexpr int kUdpBatchesPerWake = 16;
// No UDP datagram is larger than this.
constexpr size_t kMaxDatagram = 65536;
// UDP receive buffer asked for (the kernel caps it at net.core.rmem_max).
constexpr int kUdpRcvBuf = 4 << 20;
// TCP: at most this many connections at once (more are accepted and closed).
constexpr size_t kMaxConnections = 256;
constexpr size_t kTcpReadChunk = 64 * 1024;
// RFC 6587 octet counts: at most this many digits (lengths below 1 GB).
constexpr size_t kMaxCountDigits = 9;
// File tail timings.
constexpr absl::Duration kFilePollInterval = absl::Milliseconds(50);
constexpr absl::Duration kFileRetryInterval = absl::Milliseconds(10);
constexpr absl::Duration kFlushInterval = absl::Milliseconds(100);
constexpr absl::Duration kFlushTimeout = absl::Milliseconds(200);
// After rotation, the old file is read until it has had no new data for this long.
constexpr absl::Duration kRotateGrace = absl::Milliseconds(200);
constexpr size_t kFileReadChunk = 64 * 1024;
// Bytes read per step before the tail looks at `stop` and flushes again.
constexpr size_t kMaxReadPerStep = 4 << 20;

using ::steward::UniqueFd;

absl::Status ErrnoStatus(absl::string_view what) { return absl::ErrnoToStatus(errno, what); }

// "host:port", with brackets around IPv6 hosts.
std::string HostPort(absl::string_view host, uint16_t port) {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::Status BadSpec(absl::string_view spec, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad listen address \"", spec, "\": ", why, " (want host:port)"));
}

// ---------------------------------------------------------------------------------
// Sockets.

struct BoundSocket {
  UniqueFd fd;
  uint16_t port = 0;
};

absl::StatusOr<uint16_t> LocalPort(int fd, absl::string_view what) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return ErrnoStatus(absl::StrCat("getsockname ", what));
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

// A socket of `type` bound to spec (listening, for TCP), non-blocking.
absl::StatusOr<BoundSocket> BindSocket(const ListenSpec& spec, int type) {
  const std::string what =
      absl::StrCat(type == SOCK_DGRAM ? "udp " : "tcp ", HostPort(spec.host, spec.port));
  STEWARD_ASSIGN_OR_RETURN(addrinfo * ai, Resolve(spec, type, what));
  BoundSocket s;
  s.fd.Reset(socket(ai->ai_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s.fd.valid()) {
    freeaddrinfo(ai);
    return ErrnoStatus(absl::StrCat("socket for ", what));
  }
  const int one = 1;
  if (type == SOCK_STREAM) setsockopt(s.fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (type == SOCK_DGRAM) {  // best effort: bursts wait in the kernel, not on the floor
    setsockopt(s.fd.get(), SOL_SOCKET, SO_RCVBUF, &kUdpRcvBuf, sizeof(kUdpRcvBuf));
  }
  const int rc = bind(s.fd.get(), ai->ai_addr, ai->ai_addrlen);
  const int bind_errno = errno;
  freeaddrinfo(ai);
  if (rc != 0) return absl::ErrnoToStatus(bind_errno, absl::StrCat("bind ", what));
  if (type == SOCK_STREAM && listen(s.fd.get(), SOMAXCONN) != 0) {
    return ErrnoStatus(absl::StrCat("listen ", what));
  }
  STEWARD_ASSIGN_OR_RETURN(s.port, LocalPort(s.fd.get(), what));
  return s;
}

// ---------------------------------------------------------------------------------
// Framing.

// Cuts a byte stream into frames: RFC 6587 octet counting ("LEN SP MSG") when a frame
// starts with a digit and octet counting is on, else lines ended by '\n' (a trailing
// '\r' is dropped). A frame longer than max_bytes keeps its first max_bytes; the rest
// of it is skipped, so at most max_bytes are ever held. Empty frames are skipped.
class Framer {
 public:
  Framer(size_t max_bytes, bool octet_counting)
      : max_(max_bytes), octet_counting_(octet_counting) {}

  // Consumes bytes from the front of `in` until a frame completes (true, the frame in
  // *frame) or `in` is used up (false).
  bool Next(absl::string_view& in, std::string* frame);
  // End of stream: the unterminated rest, if any, is the last frame.
  bool Finish(std::string* frame);
  // Whether nothing of a frame is held (the stream is between frames).
  bool AtBoundary() const { return state_ == State::kStart; }
  void Reset();

 private:
  enum class State { kStart, kCount, kOctets, kLine };

  void ConsumeCount(absl::string_view& in);
  bool ConsumeOctets(absl::string_view& in);
  bool ConsumeLine(absl::string_view& in);
  void Append(absl::string_view bytes);
  bool Emit(std::string* frame);

  const size_t max_;
  const bool octet_counting_;
  State state_ = State::kStart;
  std::string frame_;
  bool cut_ = false;       // frame_ was cut at max_
  std::string digits_;     // kCount: the octet count so far
  uint64_t remaining_ = 0;  // kOctets: bytes of the frame still to come
};

bool Framer::Next(absl::string_view& in, std::string* frame) {
  while (!in.empty()) {
    switch (state_) {
      case State::kStart:
        state_ = octet_counting_ && absl::ascii_isdigit(static_cast<unsigned char>(in[0]))
                     ? State::kCount
                     : State::kLine;
        break;
      case State::kCount:
        ConsumeCount(in);
        break;
      case State::kOctets:
        if (ConsumeOctets(in) && Emit(frame)) return true;
        break;
      case State::kLine:
        if (ConsumeLine(in) && Emit(frame)) return true;
        break;
    }
  }
  return false;
}

void Framer::ConsumeCount(absl::string_view& in) {
  while (!in.empty() && digits_.size() < kMaxCountDigits &&
         absl::ascii_isdigit(static_cast<unsigned char>(in[0]))) {
    digits_.push_back(in[0]);
    in.remove_prefix(1);
  }
  if (in.empty()) return;  // more digits may follow
  if (in[0] == ' ') {
    in.remove_prefix(1);
    uint64_t count = 0;
    (void)absl::SimpleAtoi(digits_, &count);  // at most 9 digits: cannot fail
    digits_.clear();
    remaining_ = count;
    state_ = count == 0 ? State::kStart : State::kOctets;
    return;
  }
  // Not an octet count after all (a 10th digit, or no space): a line starting with digits.
  Append(digits_);
  digits_.clear();
  state_ = State::kLine;
}

bool Framer::ConsumeOctets(absl::string_view& in) {
  const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
  Append(in.substr(0, take));
  in.remove_prefix(take);
  remaining_ -= take;
  if (remaining_ > 0) return false;
  state_ = State::kStart;
  return true;
}

bool Framer::ConsumeLine(absl::string_view& in) {
  const size_t nl = in.find('\n');
  if (nl == absl::string_view::npos) {
    Append(in);
    in = absl::string_view();
    return false;
  }
  Append(in.substr(0, nl));
  in.remove_prefix(nl + 1);
  if (!cut_ && !frame_.empty() && frame_.back() == '\r') frame_.pop_back();
  state_ = State::kStart;
  return true;
}

bool Framer::Finish(std::string* frame) {
  if (state_ == State::kCount) Append(digits_);
  if (state_ == State::kLine && !cut_ && !frame_.empty() && frame_.back() == '\r') {
    frame_.pop_back();
  }
  digits_.clear();
  remaining_ = 0;
  state_ = State::kStart;
  return Emit(frame);
}

void Framer::Reset() {
  state_ = State::kStart;
  frame_.clear();
  cut_ = false;
  digits_.clear();
  remaining_ = 0;
}

void Framer::Append(absl::string_view bytes) {
  const size_t room = max_ - frame_.size();
  if (bytes.size() > room) {
    cut_ = true;
    bytes = bytes.substr(0, room);
  }
  frame_.append(bytes.data(), bytes.size());
}

bool Framer::Emit(std::string* frame) {
  const bool has_frame = !frame_.empty();
  if (has_frame) *frame = std::move(frame_);
  frame_.clear();
  cut_ = false;
  return has_frame;
}

RawLine MakeLine(absl::string_view data, const std::string& source, const std::string& domain) {
  return RawLine{.data = std::string(data),
                 .source = source,
                 .domain = domain,
                 .received = absl::Now()};
}

// ---------------------------------------------------------------------------------
// UDP.

class UdpInput : public Input {
 public:
  UdpInput(BoundSocket socket, const ListenSpec& spec, std::string domain, size_t max_bytes)
      : fd_(std::move(socket.fd)),
        port_(socket.port),
        host_port_(HostPort(spec.host, socket.port)),
        source_("udp:" + host_port_),
        domain_(std::move(domain)),
        max_(max_bytes) {}

  absl::Status Run(const absl::Notification& stop, LineSink& sink) override;
  uint16_t port() const override { return port_; }
  std::string name() const override { return "syslog-udp:" + host_port_; }
  uint64_t dropped() const override { return dropped_.load(std::memory_order_relaxed); }

 private:
  // Receive buffers for one recvmmsg call.
  struct Batch {
    explicit Batch(size_t slot_bytes);
    void Rearm();
    size_t slot;
    std::vector<char> bytes;
    std::vector<iovec> iov;
    std::vector<mmsghdr> msgs;
  };

  absl::Status Drain(Batch& batch, LineSink& sink);
  void Deliver(absl::string_view datagram, LineSink& sink);

  UniqueFd fd_;
  const uint16_t port_;
  const std::string host_port_;
  const std::string source_;
  const std::string domain_;
  const size_t max_;
  std::atomic<uint64_t> dropped_{0};
};

UdpInput::Batch::Batch(size_t slot_bytes)
    : slot(slot_bytes), bytes(slot_bytes * kUdpBatch), iov(kUdpBatch), msgs(kUdpBatch) {
  Rearm();
}

void UdpInput::Batch::Rearm() {
  for (size_t i = 0; i < kUdpBatch; ++i) {
    iov[i] = iovec{.iov_base = bytes.data() + i * slot, .iov_len = slot};
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
}

absl::Status UdpInput::Run(const absl::Notification& stop, LineSink& sink) {
  // +2: room for a "\r\n" after a frame of exactly max_ bytes.
  Batch batch(std::min(max_ + 2, kMaxDatagram));
  while (!stop.HasBeenNotified()) {
    pollfd pfd{.fd = fd_.get(), .events = POLLIN, .revents = 0};
    const int rc = poll(&pfd, 1, kPollMs);
    if (rc < 0 && errno != EINTR) return ErrnoStatus("poll " + name());
    if (rc > 0) STEWARD_RETURN_IF_ERROR(Drain(batch, sink));
  }
  return absl::OkStatus();
}

// Reads what is queued (a bounded number of batches, so `stop` is seen under a flood).
absl::Status UdpInput::Drain(Batch& batch, LineSink& sink) {
  for (int round = 0; round < kUdpBatchesPerWake; ++round) {
    batch.Rearm();
    const int n = recvmmsg(fd_.get(), batch.msgs.data(), kUdpBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
      if (errno == EINTR) continue;
      return ErrnoStatus("recvmmsg " + name());
    }
    for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
      const size_t len = std::min<size_t>(batch.msgs[i].msg_len, batch.slot);
      Deliver(absl::string_view(batch.bytes.data() + i * batch.slot, len), sink);
    }
    if (static_cast<unsigned>(n) < kUdpBatch) return absl::OkStatus();
  }
  return absl::OkStatus();
}

void UdpInput::Deliver(absl::string_view datagram, LineSink& sink) {
  if (absl::ConsumeSuffix(&datagram, "\n")) absl::ConsumeSuffix(&datagram, "\r");
  datagram = datagram.substr(0, max_);
  if (datagram.empty()) return;
  if (!sink.Offer(MakeLine(datagram, source_, domain_))) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
}

// ---------------------------------------------------------------------------------
// TCP.

// One client connection: its framer, the bytes of the last read not framed yet, and a
// frame the sink refused. While either is held the connection is not read from.
struct Connection {
  Connection(UniqueFd socket, size_t max_bytes)
      : fd(std::move(socket)), framer(max_bytes, /*octet_counting=*/true) {}
  bool Blocked() const { return pending.has_value() || unread_pos < unread.size(); }

  UniqueFd fd;
  Framer framer;
  std::string unread;
  size_t unread_pos = 0;
  std::optional<std::string> pending;
  bool eof = false;       // the peer closed (or reset) the connection
  bool finished = false;  // the framer's last frame was taken after eof
};

class TcpInput : public Input {
 public:
  TcpInput(BoundSocket socket, const ListenSpec& spec, std::string domain, size_t max_bytes)
      : listen_fd_(std::move(socket.fd)),
        port_(socket.port),
        host_port_(HostPort(spec.host, socket.port)),
        source_("tcp:" + host_port_),
        domain_(std::move(domain)),
        max_(max_bytes) {}

  absl::Status Run(const absl::Notification& stop, LineSink& sink) override;
  uint16_t port() const override { return port_; }
  std::string name() const override { return "syslog-tcp:" + host_port_; }

 private:
  using Connections = std::vector<std::unique_ptr<Connection>>;

  absl::Status AcceptAll(Connections& conns);
  void Service(Connection& c, short revents, std::vector<char>& buf, LineSink& sink);
  void Deliver(Connection& c, LineSink& sink);
  bool Offer(const std::string& frame, LineSink& sink) {
    return sink.Offer(MakeLine(frame, source_, domain_));
  }

  UniqueFd listen_fd_;
  const uint16_t port_;
  const std::string host_port_;
  const std::string source_;
  const std::string domain_;
  const size_t max_;
  uint64_t refused_ = 0;  // connections closed at once for being over kMaxConnections
};

// One poll loop over the listener and every connection. A connection holding a refused
// frame is not polled; the loop then wakes every kRetryPollMs to offer it again. At
// stop, connections close: frames they still held, and unread kernel data, are lost.
absl::Status TcpInput::Run(const absl::Notification& stop, LineSink& sink) {
  Connections conns;
  std::vector<char> buf(kTcpReadChunk);
  std::vector<pollfd> pfds;
  while (!stop.HasBeenNotified()) {
    bool blocked = false;
    pfds.assign(1, pollfd{.fd = listen_fd_.get(), .events = POLLIN, .revents = 0});
    for (const auto& c : conns) {
      blocked = blocked || c->Blocked();
      // A blocked connection is left out (fd -1): its data waits in the kernel.
      pfds.push_back(pollfd{.fd = c->Blocked() ? -1 : c->fd.get(), .events = POLLIN, .revents = 0});
    }
    const int rc = poll(pfds.data(), pfds.size(), blocked ? kRetryPollMs : kPollMs);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("poll " + name());
    }
    for (size_t i = 0; i < conns.size(); ++i) Service(*conns[i], pfds[i + 1].revents, buf, sink);
    std::erase_if(conns, [](const auto& c) { return c->finished && !c->Blocked(); });
    if (pfds[0].revents & POLLIN) STEWARD_RETURN_IF_ERROR(AcceptAll(conns));
  }
  return absl::OkStatus();
}

absl::Status TcpInput::AcceptAll(Connections& conns) {
  for (;;) {
    UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      return ErrnoStatus("accept " + name());  // EMFILE and the like: let the supervisor decide
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
  std::string frame;
  while (c.framer.Next(in, &frame)) {
    c.unread_pos = c.unread.size() - in.size();
    if (!Offer(frame, sink)) {
      c.pending = std::move(frame);
      return;
    }
  }
  c.unread.clear();
  c.unread_pos = 0;
  if (c.eof && !c.finished) {
    c.finished = true;
    if (c.framer.Finish(&frame) && !Offer(frame, sink)) c.pending = std::move(frame);
  }
}

// ---------------------------------------------------------------------------------
// File tail.

// Where a file was read up to: the file (device, inode) and the byte offset.
struct FilePosition {
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t offset = 0;
  bool operator==(const FilePosition&) const = default;
};

// FNV-1a: a stable hash (absl::Hash is seeded per process), to tell apart paths that
// sanitize alike.
uint64_t Fnv1a(absl::string_view s) {
  uint64_t h = 14695981039346656037ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

// "tail-_var_log_app.log-<hash>.offset": readable, and unique per path.
std::string StateFileName(absl::string_view path) {
  std::string safe(path.substr(0, 100));
  for (char& c : safe) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  return absl::StrCat("tail-", safe, "-", absl::Hex(Fnv1a(path), absl::kZeroPad16), ".offset");
}

absl::Status EnsureDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::ErrnoToStatus(ec.value(), "create state directory " + dir);
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Atomically replaces `path` with "<dev> <ino> <offset>\n".
absl::Status SavePosition(const std::string& path, const FilePosition& pos) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoStatus("create " + tmp);
  STEWARD_RETURN_IF_ERROR(
      WriteAll(fd.get(), absl::StrCat(pos.dev, " ", pos.ino, " ", pos.offset, "\n"), tmp));
  if (fsync(fd.get()) != 0) return ErrnoStatus("fsync " + tmp);
  fd.Reset();
  if (rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("rename to " + path);
  return absl::OkStatus();
}

// The saved position, nullopt when there is none (or it is unreadable garbage).
absl::StatusOr<std::optional<FilePosition>> LoadPosition(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::nullopt;
    return ErrnoStatus("open " + path);
  }
  char buf[128];
  const ssize_t n = read(fd.get(), buf, sizeof(buf));
  if (n < 0) return ErrnoStatus("read " + path);
  const std::vector<absl::string_view> parts = absl::StrSplit(
      absl::StripAsciiWhitespace(absl::string_view(buf, static_cast<size_t>(n))), ' ');
  FilePosition pos;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &pos.dev) ||
      !absl::SimpleAtoi(parts[1], &pos.ino) || !absl::SimpleAtoi(parts[2], &pos.offset) ||
      pos.offset < 0) {
    STEWARD_LOG_WARNING("ignoring unreadable tail state {}", path);
    return std::nullopt;
  }
  return pos;
}

class FileTail : public Input {
 public:
  FileTail(std::string path, std::string domain, std::string state_dir, size_t max_bytes,
           bool from_start)
      : path_(std::move(path)),
        source_("file:" + path_),
        domain_(std::move(domain)),
        state_dir_(std::move(state_dir)),
        state_path_(state_dir_ + "/" + StateFileName(path_)),
        from_start_(from_start),
        framer_(max_bytes, /*octet_counting=*/false),
        buf_(kFileReadChunk) {}

  absl::Status Run(const absl::Notification& stop, LineSink& sink) override;
  std::string name() const override { return "tail:" + path_; }

 private:
  absl::Status TryOpen(bool at_start, LineSink& sink);
  int64_t StartOffset(const struct stat& st, bool at_start) const;
  absl::Status Step(const absl::Notification& stop, LineSink& sink, bool* progressed);
  absl::StatusOr<size_t> ReadSome(const absl::Notification& stop, LineSink& sink);
  bool OfferChunk(absl::string_view chunk, const absl::Notification& stop, LineSink& sink);
  bool OfferBlocking(const std::string& line, const absl::Notification& stop, LineSink& sink);
  absl::Status CheckRotation(const absl::Notification& stop, LineSink& sink);
  absl::Status MaybeSave(LineSink& sink, bool force);

  const std::string path_;
  const std::string source_;
  const std::string domain_;
  const std::string state_dir_;
  const std::string state_path_;
  const bool from_start_;
  Framer framer_;
  std::vector<char> buf_;

  // Per Run.
  UniqueFd fd_;               // the file being read (maybe no longer at path_)
  uint64_t dev_ = 0;
  uint64_t ino_ = 0;
  int64_t read_pos_ = 0;      // next byte to read from fd_
  int64_t committed_ = 0;     // end of the last line the sink took
  std::optional<FilePosition> saved_;  // what the state file says
  absl::Time last_flush_ = absl::InfinitePast();
  std::optional<absl::Time> rotated_since_;  // path_ names another file (or none) since
};

absl::Status FileTail::Run(const absl::Notification& stop, LineSink& sink) {
  STEWARD_RETURN_IF_ERROR(EnsureDir(state_dir_));
  STEWARD_ASSIGN_OR_RETURN(saved_, LoadPosition(state_path_));
  fd_.Reset();
  framer_.Reset();
  rotated_since_.reset();
  bool at_start = true;
  while (!stop.HasBeenNotified()) {
    bool progressed = false;
    if (!fd_.valid()) STEWARD_RETURN_IF_ERROR(TryOpen(at_start, sink));
    at_start = false;
    if (fd_.valid()) STEWARD_RETURN_IF_ERROR(Step(stop, sink, &progressed));
    STEWARD_RETURN_IF_ERROR(MaybeSave(sink, /*force=*/false));
    if (!progressed) stop.WaitForNotificationWithTimeout(kFilePollInterval);
  }
  absl::Status status = MaybeSave(sink, /*force=*/true);
  fd_.Reset();
  return status;
}

// Opens path_ when it exists and decides where reading starts.
absl::Status FileTail::TryOpen(bool at_start, LineSink& sink) {
  UniqueFd fd(open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return absl::OkStatus();  // not there yet: wait for it
    return ErrnoStatus("open " + path_);
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat " + path_);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(path_ + " is not a regular file");
  fd_ = std::move(fd);
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  read_pos_ = committed_ = StartOffset(st, at_start);
  framer_.Reset();
  rotated_since_.reset();
  STEWARD_LOG_INFO("{}: reading from offset {}", name(), read_pos_);
  return MaybeSave(sink, /*force=*/true);
}

int64_t FileTail::StartOffset(const struct stat& st, bool at_start) const {
  if (saved_ && saved_->dev == st.st_dev && saved_->ino == st.st_ino) {
    return saved_->offset <= st.st_size ? saved_->offset : 0;  // shorter: truncated meanwhile
  }
  // A saved position for another file means the file was rotated while we were down:
  // the new one is read from 0. Lines the old file got after the last saved offset are
  // missed (we cannot tell where it went). A reused inode number would fool us too.
  if (at_start && !saved_ && !from_start_) return st.st_size;  // tail -F: only new lines
  return 0;
}

// Reads what is new in the open file; when there is nothing, looks for rotation.
absl::Status FileTail::Step(const absl::Notification& stop, LineSink& sink, bool* progressed) {
  struct stat st {};
  if (fstat(fd_.get(), &st) != 0) return ErrnoStatus("fstat " + path_);
  if (st.st_size < read_pos_) {  // copytruncate
    STEWARD_LOG_INFO("{}: truncated, reading from 0", name());
    read_pos_ = committed_ = 0;
    framer_.Reset();
  }
  STEWARD_ASSIGN_OR_RETURN(const size_t n, ReadSome(stop, sink));
  if (n > 0) {
    *progressed = true;
    rotated_since_.reset();  // the old file is still being written: keep reading it
    return absl::OkStatus();
  }
  return CheckRotation(stop, sink);
}

// Reads and offers up to kMaxReadPerStep bytes; returns how many were read.
absl::StatusOr<size_t> FileTail::ReadSome(const absl::Notification& stop, LineSink& sink) {
  size_t total = 0;
  while (total < kMaxReadPerStep) {
    const ssize_t n = pread(fd_.get(), buf_.data(), buf_.size(), static_cast<off_t>(read_pos_));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + path_);
    }
    if (n == 0) break;
    if (!OfferChunk(absl::string_view(buf_.data(), static_cast<size_t>(n)), stop, sink)) break;
    total += static_cast<size_t>(n);
  }
  return total;
}

// Offers the lines of `chunk` (read at read_pos_); false when `stop` came first.
bool FileTail::OfferChunk(absl::string_view chunk, const absl::Notification& stop,
                          LineSink& sink) {
  absl::string_view in = chunk;
  std::string line;
  while (framer_.Next(in, &line)) {
    if (!OfferBlocking(line, stop, sink)) return false;
    committed_ = read_pos_ + static_cast<int64_t>(chunk.size() - in.size());
  }
  read_pos_ += static_cast<int64_t>(chunk.size());
  if (framer_.AtBoundary()) committed_ = read_pos_;
  return true;
}

// Offers `line` until the sink takes it (true) or `stop` comes (false).
bool FileTail::OfferBlocking(const std::string& line, const absl::Notification& stop,
                             LineSink& sink) {
  while (!sink.Offer(MakeLine(line, source_, domain_))) {
    if (stop.WaitForNotificationWithTimeout(kFileRetryInterval)) return false;
  }
  return true;
}

// Once path_ names another file (or none) and the old one has been quiet for
// kRotateGrace, delivers the old file's unterminated last line and lets go of it.
absl::Status FileTail::CheckRotation(const absl::Notification& stop, LineSink& sink) {
  struct stat st {};
  if (stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    rotated_since_.reset();
    return absl::OkStatus();
  }
  const absl::Time now = absl::Now();
  if (!rotated_since_) rotated_since_ = now;
  if (now - *rotated_since_ < kRotateGrace) return absl::OkStatus();
  std::string line;
  if (framer_.Finish(&line) && !OfferBlocking(line, stop, sink)) return absl::OkStatus();
  committed_ = read_pos_;
  STEWARD_RETURN_IF_ERROR(MaybeSave(sink, /*force=*/true));
  STEWARD_LOG_INFO("{}: rotated, done with the old file at offset {}", name(), read_pos_);
  fd_.Reset();
  rotated_since_.reset();
  return absl::OkStatus();
}

// Flushes the sink and saves the committed position when it moved (at most every
// kFlushInterval unless forced). Nothing is saved when the flush fails.
absl::Status FileTail::MaybeSave(LineSink& sink, bool force) {
  if (!fd_.valid()) return absl::OkStatus();
  const FilePosition pos{.dev = dev_, .ino = ino_, .offset = committed_};
  if (saved_ == pos) return absl::OkStatus();
  const absl::Time now = absl::Now();
  if (!force && now - last_flush_ < kFlushInterval) return absl::OkStatus();
  last_flush_ = now;
  if (!sink.Flush(kFlushTimeout)) return absl::OkStatus();  // try again later
  STEWARD_RETURN_IF_ERROR(SavePosition(state_path_, pos));
  saved_ = pos;
  return absl::OkStatus();
}

absl::Status CheckMaxBytes(size_t max_frame_bytes) {
  if (max_frame_bytes == 0) return absl::InvalidArgumentError("max_frame_bytes must be > 0");
  return absl::OkStatus();
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

absl::StatusOr<std::unique_ptr<Input>> NewUdpInput(const ListenSpec& spec, std::string domain,
                                                   size_t max_frame_bytes) {
  STEWARD_RETURN_IF_ERROR(CheckMaxBytes(max_frame_bytes));
  STEWARD_ASSIGN_OR_RETURN(BoundSocket socket, BindSocket(spec, SOCK_DGRAM));
  return std::make_unique<UdpInput>(std::move(socket), spec, std::move(domain), max_frame_bytes);
}

absl::StatusOr<std::unique_ptr<Input>> NewTcpInput(const ListenSpec& spec, std::string domain,
                                                   size_t max_frame_bytes) {
  STEWARD_RETURN_IF_ERROR(CheckMaxBytes(max_frame_bytes));
  STEWARD_ASSIGN_OR_RETURN(BoundSocket socket, BindSocket(spec, SOCK_STREAM));
  return std::make_unique<TcpInput>(std::move(socket), spec, std::move(domain), max_frame_bytes);
}

absl::StatusOr<std::unique_ptr<Input>> NewFileTail(const std::string& path, std::string domain,
                                                   const std::string& state_dir,
                                                   size_t max_frame_bytes, bool from_start) {
  STEWARD_RETURN_IF_ERROR(CheckMaxBytes(max_frame_bytes));
  if (path.empty()) return absl::InvalidArgumentError("empty path to tail");
  if (state_dir.empty()) return absl::InvalidArgumentError("empty state directory for " + path);
  STEWARD_RETURN_IF_ERROR(EnsureDir(state_dir));  // a bad directory fails at start-up
  return std::make_unique<FileTail>(path, std::move(domain), state_dir, max_frame_bytes,
                                    from_start);
}

}  // namespace steward::agent::syslog
