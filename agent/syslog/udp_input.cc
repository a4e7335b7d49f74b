// UDP input: recvmmsg batches, one datagram one frame, drops counted.
#include "agent/syslog/udp_input.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
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

class UdpInput : public SocketInput {
 public:
  UdpInput(BoundSocket socket, const ListenSpec& spec, std::string domain, size_t max_bytes)
      : SocketInput(std::move(socket), spec, "udp", std::move(domain), max_bytes) {}

  absl::Status Run(const absl::Notification& stop, LineSink& sink) override;
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
  if (!sink.Offer(Line(datagram))) dropped_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Input>> NewUdpInput(const ListenSpec& spec, std::string domain,
                                                   size_t max_frame_bytes) {
  return NewSocketInput<UdpInput>(spec, SOCK_DGRAM, std::move(domain), max_frame_bytes);
}

}  // namespace steward::agent::syslog
