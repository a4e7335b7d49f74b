#include "agent/output_stream.h"

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "common/protocol.h"
#include "proto/steward.pb.h"

namespace steward::agent {
namespace {

// Room for the envelope, its signature and the chunk's own fields around the output.
constexpr size_t kEnvelopeRoom = 4096;

}  // namespace

ChunkPublisher::ChunkPublisher(natsConnection* conn, const EventWriter& events, std::string domain,
                               std::string command_id, size_t max_payload)
    : conn_(conn),
      events_(events),
      domain_(std::move(domain)),
      command_id_(std::move(command_id)),
      chunk_limit_(max_payload > 2 * kEnvelopeRoom ? std::min(kMaxChunkBytes, max_payload - kEnvelopeRoom)
                                                   : kMaxChunkBytes) {}

void ChunkPublisher::Add(int stream, absl::string_view data, absl::Time now) {
  if (data.empty() || (stream != 1 && stream != 2)) return;
  if (pending_[0].empty() && pending_[1].empty()) oldest_ = now;
  pending_[stream - 1].append(data.data(), data.size());
  while (pending_[0].size() + pending_[1].size() >= kFlushBytes) PublishOne(now);
}

absl::Time ChunkPublisher::FlushDue() const {
  return oldest_ == absl::InfiniteFuture() ? oldest_ : oldest_ + kFlushAfter;
}

void ChunkPublisher::Flush(absl::Time now) {
  while (!pending_[0].empty() || !pending_[1].empty()) PublishOne(now);
}

void ChunkPublisher::PublishOne(absl::Time now) {
  proto::OutputChunk chunk;
  chunk.set_command_id(command_id_);
  chunk.set_seq(++seq_);
  chunk.set_at_unix_ms(absl::ToUnixMillis(now));
  size_t room = chunk_limit_;
  const auto take = [&room](std::string& from, std::string* to) {
    const size_t n = std::min(room, from.size());
    to->assign(from, 0, n);
    from.erase(0, n);
    room -= n;
    return n;
  };
  chunk.set_stdout_offset(sent_[0]);
  sent_[0] += take(pending_[0], chunk.mutable_stdout());
  chunk.set_stderr_offset(sent_[1]);
  sent_[1] += take(pending_[1], chunk.mutable_stderr());
  if (pending_[0].empty() && pending_[1].empty()) oldest_ = absl::InfiniteFuture();
  absl::StatusOr<OutboxItem> item = events_.Make(kEventOutput, domain_, chunk.SerializeAsString());
  absl::Status st = item.ok() ? nats::Publish(conn_, item->subject, item->data) : item.status();
  if (!st.ok() && errors_++ == 0) {  // best effort: said once per command, never retried
    STEWARD_LOG_WARNING("output of {}: chunk {} not published: {}", command_id_, seq_, st.ToString());
  }
}

}  // namespace steward::agent
