// Batches of syslog lines that fit one NATS message. The broker refuses a message over
// its max_payload (1 MiB by default), so a batch is cut by bytes as well as by lines:
// every event the agent spools can leave it. A line too large for a message of its own
// is cut (and marked truncated). RefitBatchEvent does the same for a batch spooled by
// an older agent (or before the broker's limit shrank): the outbox replaces it with
// events that fit, never retrying one that cannot leave.
//
//   BatchPacker packer(max_payload);
//   for (proto::LogRecord& r : records) packer.Add(std::move(r));
//   for (proto::LogBatch& batch : packer.Take()) ...
//
// Pure functions and a thread-compatible packer.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/events.h"
#include "common/outbox.h"
#include "proto/steward.pb.h"

namespace steward::agent::syslog {

// Room kept in a message for the event's envelope around its batch (ids, names, times,
// signature): a batch gets max_payload less this.
inline constexpr size_t kEnvelopeReserve = 4096;

// The bytes a batch may take in a message of `max_payload` bytes.
size_t BatchBudget(size_t max_payload);

// Cuts `record`'s message (at a UTF-8 boundary) so that the record serializes to at
// most `max_bytes`, and marks it truncated; a record that fits is left alone.
void FitRecord(proto::LogRecord& record, size_t max_bytes);

// Packs records, in order, into batches of at most max_payload's budget each.
class BatchPacker {
 public:
  explicit BatchPacker(size_t max_payload) : budget_(BatchBudget(max_payload)) {}

  void Add(proto::LogRecord record);
  // The batches so far (the packer is empty afterwards).
  std::vector<proto::LogBatch> Take();

 private:
  const size_t budget_;
  std::vector<proto::LogBatch> batches_;
  size_t bytes_ = 0;  // of the last batch
};

// The syslog events carrying `batch` (lines of one domain) in messages of at most
// `max_payload` bytes: one event when it fits, else several, in order; `dropped`
// travels with the first. Each item's weight is its number of lines.
absl::StatusOr<std::vector<OutboxItem>> BatchEvents(const EventWriter& events, const std::string& domain,
                                                    proto::LogBatch batch, size_t max_payload);

// The logs outbox's refit (OutboxOptions::refit): a syslog batch event larger than
// `max_payload` becomes events that fit, from the same node and domain. What cannot be
// read as one (not a syslog batch) is dropped, counted by its weight.
Refitted RefitBatchEvent(const EventWriter& events, const OutboxItem& item, size_t max_payload);

}  // namespace steward::agent::syslog
