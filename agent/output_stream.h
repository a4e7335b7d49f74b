// ChunkPublisher: a running command's output, streamed to the station as it is
// produced (issue 13 part 3). The command runner hands it the bytes it captures
// (OutputSink); it coalesces them and publishes OutputChunk events
// (<station>.event.output.<domain>) numbered 1, 2, 3, ... per command:
//
//   - a flush when kFlushBytes are waiting, or kFlushAfter after the oldest waiting
//     byte came: at most ~10 timer flushes a second plus one per kFlushBytes, and never
//     more bytes than the result keeps (the output cap), so the rate is bounded;
//   - each chunk at most kMaxChunkBytes of output and within the broker's max_payload;
//   - a plain publish: live data, never spooled or retried. A lost chunk costs a
//     follower its live view (it completes from the result), never the record: the
//     result ACK still carries the whole output. What is still waiting when the command
//     ends is not sent at all (the result, sent at once, carries it): a quick command
//     costs no extra message.
//
// Thread-compatible: the thread running the command calls it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/command_runner.h"
#include "agent/events.h"
#include "common/nats.h"

namespace steward::agent {

class ChunkPublisher final : public OutputSink {
 public:
  static constexpr size_t kFlushBytes = 16 * 1024;
  static constexpr size_t kMaxChunkBytes = 32 * 1024;
  static constexpr absl::Duration kFlushAfter = absl::Milliseconds(100);

  // `conn` and `events` must outlive it; `max_payload` is the broker's (0: unknown).
  ChunkPublisher(natsConnection* conn, const EventWriter& events, std::string domain,
                 std::string command_id, size_t max_payload);

  void Add(int stream, absl::string_view data, absl::Time now) override;
  absl::Time FlushDue() const override;
  void Flush(absl::Time now) override;

  uint64_t chunks_sent() const { return seq_; }
  uint64_t publish_errors() const { return errors_; }

 private:
  // Publishes up to kMaxChunkBytes of what waits, as the next chunk.
  void PublishOne(absl::Time now);

  natsConnection* const conn_;
  const EventWriter& events_;
  const std::string domain_;
  const std::string command_id_;
  const size_t chunk_limit_;
  std::string pending_[2];      // stdout, stderr: captured, not yet sent
  uint64_t sent_[2] = {0, 0};   // bytes of each stream sent: the next chunk's offsets
  absl::Time oldest_ = absl::InfiniteFuture();  // when the oldest pending byte came
  uint64_t seq_ = 0;
  uint64_t errors_ = 0;
};

}  // namespace steward::agent
