// UDP input: recvmmsg batches, one datagram one frame; drops counted, the kernel's too.
#include "agent/syslog/udp_input.h"

#include <linux/sock_diag.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace steward::agent::syslog {
namespace {

// The loop wakes this often (ms) to look at `stop`.
constexpr int kPollMs = 250;
// Datagrams per recvmmsg, and batches per wake-up before `stop` is looked at.
constexpr unsigned kUdpBatch = 64;
constexpr int kUdpBatchesPerWake = 16;
// No UDP datagram is larger than this.
constexpr size_t kMaxDatagram = 65536;
// Room for the SO_RXQ_OVFL control message of one datagram.
constexpr size_t kControlBytes = CMSG_SPACE(sizeof(uint32_t));

// Sizes the socket's receive buffer: SO_RCVBUFFORCE where the agent may (CAP_NET_ADMIN),
// else SO_RCVBUF, which the kernel caps at net.core.rmem_max. Says so when capped.
void SetReceiveBuffer(int fd, size_t bytes, const std::string& name) {
  const int want = static_cast<int>(std::min<size_t>(bytes, std::numeric_limits<int>::max() / 2));
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
  }
  int got = 0;
  socklen_t len = sizeof(got);
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len);
  got /= 2;  // the kernel doubles what it grants, for its own bookkeeping
  if (got < want) {
    STEWARD_LOG_WARNING("{}: receive buffer is {} bytes, not the {} asked for: net.core.rmem_max caps it "
                        "(raise it with sysctl, or run the agent with CAP_NET_ADMIN)",
                        name, got, want);
  }
}

class UdpInput : public SocketInput {
 public:
  UdpInput(BoundSocket socket, const ListenSpec& spec, const InputOptions& options)
      : SocketInput(std::move(socket), spec, "udp", options) {
    SetReceiveBuffer(fd_.get(), options.udp_buffer_bytes, name());
    // Each datagram then carries the socket's drop counter (SO_RXQ_OVFL).
    const int one = 1;
    setsockopt(fd_.get(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
  }

  absl::Status Run(const absl::Notification& stop, LineSink& sink) override;
  uint64_t dropped() const override {
    return refused_.load(std::memory_order_relaxed) + KernelDrops();
  }
  uint64_t kernel_dropped() const override { return KernelDrops(); }

 private:
  // Receive buffers for one recvmmsg call.
  struct Batch {
    explicit Batch(size_t slot_bytes);
    void Rearm();
    size_t slot;
    std::vector<char> bytes;
    std::vector<char> control;
    std::vector<iovec> iov;
    std::vector<mmsghdr> msgs;
  };

  absl::Status Drain(Batch& batch, LineSink& sink);
  void Deliver(absl::string_view datagram, bool cut, LineSink& sink);
  // The socket's drop counter from a datagram's SO_RXQ_OVFL message (drops before it).
  void NoteOverflow(msghdr& hdr);
  // Datagrams the kernel dropped: the highest SO_RXQ_OVFL count seen, or the socket's
  // current count (SO_MEMINFO) when drops happened after the last datagram read.
  uint64_t KernelDrops() const;

  std::atomic<uint64_t> refused_{0};   // the sink was full
  std::atomic<uint64_t> overflow_{0};  // the highest SO_RXQ_OVFL count seen (wraps carried)
};

UdpInput::Batch::Batch(size_t slot_bytes)
    : slot(slot_bytes),
      bytes(slot_bytes * kUdpBatch),
      control(kControlBytes * kUdpBatch),
      iov(kUdpBatch),
      msgs(kUdpBatch) {
  Rearm();
}

void UdpInput::Batch::Rearm() {
  for (size_t i = 0; i < kUdpBatch; ++i) {
    iov[i] = iovec{.iov_base = bytes.data() + i * slot, .iov_len = slot};
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_control = control.data() + i * kControlBytes;
    msgs[i].msg_hdr.msg_controllen = kControlBytes;
  }
}

absl::Status UdpInput::Run(const absl::Notification& stop, LineSink& sink) {
  // +2: room for a "\r\n" after a frame of exactly max_ bytes; +1 more tells a longer
  // datagram (cut) from one of exactly that size.
  Batch batch(std::min(max_ + 3, kMaxDatagram));
  while (!stop.HasBeenNotified()) {
    pollfd pfd{.fd = fd_.get(), .events = POLLIN, .revents = 0};
    const int rc = poll(&pfd, 1, kPollMs);
    if (rc < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "poll " + name());
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
      return absl::ErrnoToStatus(errno, "recvmmsg " + name());
    }
    for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
      msghdr& hdr = batch.msgs[i].msg_hdr;
      NoteOverflow(hdr);
      const size_t len = std::min<size_t>(batch.msgs[i].msg_len, batch.slot);
      Deliver(absl::string_view(batch.bytes.data() + i * batch.slot, len), (hdr.msg_flags & MSG_TRUNC) != 0,
              sink);
    }
    if (static_cast<unsigned>(n) < kUdpBatch) return absl::OkStatus();
  }
  return absl::OkStatus();
}

void UdpInput::NoteOverflow(msghdr& hdr) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&hdr); c != nullptr; c = CMSG_NXTHDR(&hdr, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL) continue;
    uint32_t count = 0;
    std::memcpy(&count, CMSG_DATA(c), sizeof(count));
    uint64_t seen = overflow_.load(std::memory_order_relaxed);
    // The kernel's counter is 32 bits: carry its wraps into ours.
    uint64_t now = (seen & ~uint64_t{0xffffffff}) | count;
    if (now < seen) now += uint64_t{1} << 32;
    overflow_.store(now, std::memory_order_relaxed);
  }
}

uint64_t UdpInput::KernelDrops() const {
  const uint64_t seen = overflow_.load(std::memory_order_relaxed);
  uint32_t meminfo[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof(meminfo);
  if (getsockopt(fd_.get(), SOL_SOCKET, SO_MEMINFO, meminfo, &len) != 0 ||
      len < sizeof(uint32_t) * (SK_MEMINFO_DROPS + 1)) {
    return seen;
  }
  const uint64_t current = (seen & ~uint64_t{0xffffffff}) | meminfo[SK_MEMINFO_DROPS];
  return std::max(seen, current);
}

void UdpInput::Deliver(absl::string_view datagram, bool cut, LineSink& sink) {
  if (absl::ConsumeSuffix(&datagram, "\n")) absl::ConsumeSuffix(&datagram, "\r");
  if (datagram.size() > max_) {
    datagram = datagram.substr(0, max_);
    cut = true;
  }
  if (datagram.empty()) return;
  if (!Offer(sink, Line(datagram, cut))) refused_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Input>> NewUdpInput(const ListenSpec& spec, const InputOptions& options) {
  return NewSocketInput<UdpInput>(spec, SOCK_DGRAM, options);
}

}  // namespace steward::agent::syslog
