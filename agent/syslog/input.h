// Syslog inputs on the agent: each one (UDP, TCP, file tail) reads frames from its
// source and hands them as RawLines to a LineSink (the forwarder), which parses,
// batches and spools them.
//
// Each input's Run() is a supervised process body: it returns when `stop` is notified
// (within ~250 ms) or with an error status for the error kernel. Inputs are
// thread-compatible: one Run at a time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace steward::agent::syslog {

// How an input's lines are read, and what they are named: the same for every line of
// one input, shared by them.
struct LineOrigin {
  std::string source;  // "udp:127.0.0.1:5514", "tcp:127.0.0.1:5514", "file:/path"
  std::string domain;  // configured domain; "" means: use the message's app-name
  // RFC 3164 timestamps carry no zone: they are read in this one.
  absl::TimeZone zone = absl::UTCTimeZone();
  // The severity of lines that carry no PRI (RFC 3164 4.3.3: notice).
  int severity = 5;
  // Lines that are not syslog are plain text with `severity` (an application's own log
  // file), not parse errors.
  bool plain_text = false;
};
using OriginPtr = std::shared_ptr<const LineOrigin>;

struct RawLine {
  std::string data;  // one frame, without framing / trailing newline
  OriginPtr origin;  // never null
  absl::Time received;
  bool truncated = false;  // the input cut the frame at its size limit

  const std::string& source() const { return origin->source; }
  const std::string& domain() const { return origin->domain; }
};

// A line received now.
inline RawLine MakeLine(absl::string_view data, const OriginPtr& origin, bool truncated = false) {
  return RawLine{
      .data = std::string(data), .origin = origin, .received = absl::Now(), .truncated = truncated};
}

// What every input is made with.
struct InputOptions {
  std::string domain;  // "" : each line's app-name
  size_t max_frame_bytes = 64 * 1024;  // longer frames are cut and marked truncated
  absl::TimeZone zone = absl::UTCTimeZone();  // for RFC 3164 timestamps
  int severity = 5;  // lines without a PRI
  size_t udp_buffer_bytes = size_t{4} << 20;  // UDP: the socket's receive buffer (SO_RCVBUF)
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

class Input {
 public:
  virtual ~Input() = default;
  virtual absl::Status Run(const absl::Notification& stop, LineSink& sink) = 0;
  // The bound port (network inputs), 0 for files.
  virtual uint16_t port() const { return 0; }
  virtual std::string name() const = 0;  // e.g. "syslog-udp:127.0.0.1:5514"
  // Lines lost at this input: UDP datagrams the kernel dropped (its receive buffer was
  // full) and the ones the sink refused.
  virtual uint64_t dropped() const { return 0; }
  // Of dropped(): the datagrams the kernel dropped (UDP only).
  virtual uint64_t kernel_dropped() const { return 0; }
  // File tails: the file and the offset of the end of the last line the sink took; -1
  // for network inputs.
  virtual std::string file() const { return ""; }
  virtual int64_t offset() const { return -1; }
  // Before a stop that the agent means to survive (a reload, a shutdown): stop taking
  // new sources and finish the open ones until `deadline` (TCP: no more connections,
  // a FIN to each sender, then read each until the sender closes its side). Returns at
  // once; Drained() says when it is done. Run keeps running until `stop`.
  virtual void StartDraining(absl::Time /*deadline*/) {}
  virtual bool Drained() const { return true; }
  // Lines the sink took from this input since it was made (stewardctl status).
  uint64_t lines() const { return lines_.load(std::memory_order_relaxed); }

 protected:
  // Offers `line` to the sink and counts it when taken.
  bool Offer(LineSink& sink, RawLine line) {
    if (!sink.Offer(std::move(line))) return false;
    lines_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

 private:
  std::atomic<uint64_t> lines_{0};
};

// Every input's frame limit must be positive: InvalidArgument otherwise.
inline absl::Status CheckMaxFrameBytes(size_t max_frame_bytes) {
  if (max_frame_bytes == 0) return absl::InvalidArgumentError("max_frame_bytes must be > 0");
  return absl::OkStatus();
}

}  // namespace steward::agent::syslog
