// Forwarder: the LineSink behind every syslog input. Lines wait in a bounded queue;
// Run() parses them (each as its input says: zone, severity, plain text), batches them
// per domain (up to batch_lines, or batch_delay after the first line of a batch, and
// never more bytes than one NATS message carries: batcher.h) and hands each batch to
// the logs outbox, which spools it on disk until the station confirms it. When the spool is full the oldest batches are
// dropped; the count travels with the next batch and is reported to the error kernel,
// so it is never silent.
//
// Thread-safe: inputs Offer/Flush from their own threads; Run on one thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "agent/events.h"
#include "agent/supervisor.h"
#include "agent/syslog/input.h"
#include "agent/syslog/parser.h"
#include "common/outbox.h"

namespace steward::agent::syslog {

struct ForwarderOptions {
  size_t batch_lines = 500;
  absl::Duration batch_delay = absl::Milliseconds(100);
  size_t queue_lines = 20000;  // accepted but not yet spooled
  size_t queue_bytes = size_t{64} << 20;  // and their bytes
  ParseOptions parse;  // max_message_bytes; the rest comes from each line's input
  // The largest message the broker takes (the connection's max_payload); unset: 1 MiB.
  std::function<size_t()> max_payload;
  // Lines the inputs dropped (UDP: the kernel, or a full queue); added to reports.
  std::function<uint64_t()> input_drops;
};

class Forwarder final : public LineSink {
 public:
  // Batches go to `outbox` as events made by `events` (both must outlive the forwarder).
  Forwarder(ForwarderOptions options, const EventWriter* events, Outbox* outbox);

  // LineSink
  bool Offer(RawLine line) override ABSL_LOCKS_EXCLUDED(mu_);
  bool Flush(absl::Duration timeout) override ABSL_LOCKS_EXCLUDED(mu_);

  // The process body: runs until ctx.stopping(), then spools what it holds.
  absl::Status Run(ProcessContext& ctx) ABSL_LOCKS_EXCLUDED(mu_);

  uint64_t spooled() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Waits for lines: until batch_lines are queued, batch_delay after the first, or stop.
  std::deque<RawLine> Take(ProcessContext& ctx) ABSL_LOCKS_EXCLUDED(mu_);
  // Parses and spools `lines`.
  absl::Status Spool(ProcessContext& ctx, std::deque<RawLine> lines);
  // `line` parsed as its input says.
  proto::LogRecord ParseLine(RawLine& line) const;

  const ForwarderOptions options_;
  const EventWriter* const events_;
  Outbox* const outbox_;
  mutable absl::Mutex mu_;
  std::deque<RawLine> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t offered_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t spooled_ ABSL_GUARDED_BY(mu_) = 0;  // lines through Spool(), in offer order
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Drops already reported (Run thread only).
  uint64_t reported_spool_drops_ = 0;
  uint64_t reported_input_drops_ = 0;
};

}  // namespace steward::agent::syslog
