// Batches cut by bytes, records cut to fit, and spooled batches refitted.
#include "agent/syslog/batcher.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "common/log.h"
#include "common/protocol.h"
#include "common/utf8.h"

namespace steward::agent::syslog {
namespace {

// What a record adds to a batch besides itself: its field tag and length prefix.
constexpr size_t kElementOverhead = 6;
// Room for the batch's `dropped` field.
constexpr size_t kBatchOverhead = 16;

size_t RecordBytes(const proto::LogRecord& r) { return r.ByteSizeLong() + kElementOverhead; }

}  // namespace

size_t BatchBudget(size_t max_payload) {
  // A tiny limit (a test's broker) still leaves room for a small line.
  return max_payload > 2 * kEnvelopeReserve ? max_payload - kEnvelopeReserve : max_payload / 2;
}

void FitRecord(proto::LogRecord& record, size_t max_bytes) {
  size_t size = record.ByteSizeLong();
  if (size <= max_bytes) return;
  record.set_truncated(true);
  std::string* message = record.mutable_message();
  // +8: the message's length prefix may shrink by less than its bytes do.
  const size_t excess = size - max_bytes + 8;
  message->resize(excess < message->size() ? Utf8CutPoint(*message, message->size() - excess) : 0);
  if (record.ByteSizeLong() > max_bytes) {  // the rest of it is too large: its structured data
    record.clear_sd();
    record.clear_structured_data();
  }
}

void BatchPacker::Add(proto::LogRecord record) {
  FitRecord(record, budget_ - kBatchOverhead - kElementOverhead);
  const size_t bytes = RecordBytes(record);
  if (batches_.empty() || bytes_ + bytes > budget_ - kBatchOverhead) {
    batches_.emplace_back();
    bytes_ = 0;
  }
  *batches_.back().add_records() = std::move(record);
  bytes_ += bytes;
}

std::vector<proto::LogBatch> BatchPacker::Take() {
  bytes_ = 0;
  return std::exchange(batches_, {});
}

absl::StatusOr<std::vector<OutboxItem>> BatchEvents(const EventWriter& events, const std::string& domain,
                                                    proto::LogBatch batch, size_t max_payload) {
  BatchPacker packer(max_payload);
  const uint64_t dropped = batch.dropped();
  for (proto::LogRecord& r : *batch.mutable_records()) packer.Add(std::move(r));
  std::deque<proto::LogBatch> todo;
  for (proto::LogBatch& b : packer.Take()) todo.push_back(std::move(b));
  if (todo.empty()) todo.emplace_back();  // a batch that only reports drops
  todo.front().set_dropped(dropped);
  std::vector<OutboxItem> out;
  while (!todo.empty()) {
    proto::LogBatch b = std::move(todo.front());
    todo.pop_front();
    absl::StatusOr<OutboxItem> item = events.Make(kEventSyslog, domain, b.SerializeAsString());
    if (!item.ok()) return item.status();
    if (item->data.size() > max_payload) {
      // The envelope took more than the reserve: halve the batch, or cut its one line.
      const size_t over = item->data.size() - max_payload;
      if (b.records_size() > 1) {
        proto::LogBatch second;
        const int half = b.records_size() / 2;
        for (int i = half; i < b.records_size(); ++i) *second.add_records() = std::move(*b.mutable_records(i));
        b.mutable_records()->DeleteSubrange(half, b.records_size() - half);
        todo.push_front(std::move(second));
      } else if (b.records_size() == 1) {
        proto::LogRecord* r = b.mutable_records(0);
        const size_t before = r->ByteSizeLong();
        FitRecord(*r, before > over + 64 ? before - over - 64 : 0);
        if (r->ByteSizeLong() >= before) return absl::InternalError("a syslog line does not fit one message");
      } else {
        return absl::InternalError("an empty syslog batch does not fit one message");
      }
      todo.push_front(std::move(b));
      continue;
    }
    item->weight = static_cast<uint64_t>(b.records_size());
    out.push_back(*std::move(item));
  }
  return out;
}

Refitted RefitBatchEvent(const EventWriter& events, const OutboxItem& item, size_t max_payload) {
  proto::Envelope ev;
  proto::LogBatch batch;
  if (!ev.ParseFromString(item.data) || ev.method() != kEventSyslog || !batch.ParseFromString(ev.payload())) {
    STEWARD_LOG_ERROR("logs outbox: {} ({} bytes) is not a syslog batch: dropped", item.id, item.data.size());
    return Refitted{{}, item.weight};
  }
  const uint64_t lines = static_cast<uint64_t>(batch.records_size());
  absl::StatusOr<std::vector<OutboxItem>> parts = BatchEvents(events, ev.domain(), std::move(batch), max_payload);
  if (!parts.ok()) {
    STEWARD_LOG_ERROR("logs outbox: cannot refit {}: {}", item.id, parts.status().ToString());
    return Refitted{{}, std::max<uint64_t>(lines, item.weight)};
  }
  return Refitted{*std::move(parts), 0};
}

}  // namespace steward::agent::syslog
