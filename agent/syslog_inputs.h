// Syslog inputs on the agent: a UDP listener, a TCP listener (RFC 6587: octet
// counting and newline framing, detected per frame), and file tailing that follows
// rotation and truncation and remembers its offset across restarts. Each input hands
// raw frames to a LineSink (the forwarder), which parses, batches and spools them.
//
// Each input's Run() is a supervised process body: it returns when `stop` is notified
// (within ~250 ms) or with an error status for the error kernel. Inputs are
// thread-compatible: one Run at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace steward::agent::syslog {

struct RawLine {
  std::string data;     // one frame, without framing / trailing newline
  std::string source;   // "udp:127.0.0.1:5514", "tcp:127.0.0.1:5514", "file:/path"
  std::string domain;   // configured domain; "" means: use the message's app-name
  absl::Time received;
};

// Where inputs deliver lines. Thread-safe (several inputs offer concurrently).
class LineSink {
 public:
  virtual ~LineSink() = default;
  // Offer takes a line, or returns false when the forwarder is full: UDP drops (and
  // counts) the line, TCP and files stop reading and offer again shortly (no loss).
  virtual bool Offer(RawLine line) = 0;
  // Flush blocks until every line accepted so far is in the durable spool, or the
  // timeout passes; returns whether it is. File inputs save their offset only after a
  // successful Flush, so a restart neither loses nor repeats lines.
  virtual bool Flush(absl::Duration timeout) = 0;
};

// "host:port" -> the address to bind; InvalidArgument for a bad spec.
// Binds exactly the address given (never a wildcard unless the user wrote 0.0.0.0).
struct ListenSpec {
  std::string host;
  uint16_t port = 0;  // 0: the OS picks (see Input::port())
};
absl::StatusOr<ListenSpec> ParseListenSpec(absl::string_view spec);

class Input {
 public:
  virtual ~Input() = default;
  virtual absl::Status Run(const absl::Notification& stop, LineSink& sink) = 0;
  // The bound port (network inputs), 0 for files.
  virtual uint16_t port() const { return 0; }
  virtual std::string name() const = 0;  // e.g. "syslog-udp:127.0.0.1:5514"
  // Lines dropped by this input (UDP when the sink was full).
  virtual uint64_t dropped() const { return 0; }
};

// Binds at once (so a bad address fails at start-up); frames are datagrams.
absl::StatusOr<std::unique_ptr<Input>> NewUdpInput(const ListenSpec& spec, std::string domain,
                                                   size_t max_frame_bytes);
// Binds at once; serves many connections; a frame over max_frame_bytes is cut (and
// the rest of it skipped), never buffered without bound.
absl::StatusOr<std::unique_ptr<Input>> NewTcpInput(const ListenSpec& spec, std::string domain,
                                                   size_t max_frame_bytes);
// Tails `path` (which may not exist yet). Offsets live in `state_dir`. Starts at the
// saved offset, or at the end of the file when there is none (like tail -F), unless
// `from_start`.
absl::StatusOr<std::unique_ptr<Input>> NewFileTail(const std::string& path, std::string domain,
                                                   const std::string& state_dir,
                                                   size_t max_frame_bytes, bool from_start = false);

}  // namespace steward::agent::syslog
