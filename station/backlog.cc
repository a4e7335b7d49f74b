#include "station/backlog.h"

#include <utility>

#include "absl/time/clock.h"
#include "common/log.h"

namespace steward::station {

Backlog::Backlog(natsSubscription* sub, std::string name, Metrics& metrics)
    : sub_(sub), name_(std::move(name)), metrics_(metrics) {}

uint64_t Backlog::taken() const {
  int pending = 0;
  int64_t delivered = 0;
  if (natsSubscription_GetStats(sub_, &pending, nullptr, nullptr, nullptr, &delivered, nullptr) != NATS_OK) return 0;
  return static_cast<uint64_t>(delivered) + static_cast<uint64_t>(pending);
}

void Backlog::Check(bool force) {
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  if (!force && now - last_look_ < absl::Milliseconds(100)) return;
  last_look_ = now;
  int64_t dropped = 0;
  int msgs = 0, bytes = 0, msg_limit = 0, byte_limit = 0;
  if (natsSubscription_GetDropped(sub_, &dropped) != NATS_OK ||
      natsSubscription_GetPending(sub_, &msgs, &bytes) != NATS_OK ||
      natsSubscription_GetPendingLimits(sub_, &msg_limit, &byte_limit) != NATS_OK) {
    return;  // closed at shutdown
  }
  metrics_.intake_backlog.Set({name_}, static_cast<uint64_t>(msgs));
  if (dropped > dropped_) {
    metrics_.intake_dropped.Add({name_}, static_cast<uint64_t>(dropped - dropped_));
    STEWARD_LOG_ERROR("{} intake fell behind: {} messages dropped since the last look ({} in all; "
                      "backlog {} messages, {} bytes; limits {} and {}): their senders resend them",
                      name_, dropped - dropped_, dropped, msgs, bytes, msg_limit, byte_limit);
    dropped_ = dropped;
  }
  const bool behind = (msg_limit > 0 && msgs > msg_limit / 2) || (byte_limit > 0 && bytes > byte_limit / 2);
  if (behind && !behind_) {
    STEWARD_LOG_WARNING("{} intake is falling behind: backlog {} messages, {} bytes (limits {} and {})",
                        name_, msgs, bytes, msg_limit, byte_limit);
  } else if (!behind && behind_) {
    STEWARD_LOG_INFO("{} intake caught up: backlog {} messages", name_, msgs);
  }
  behind_ = behind;
}

}  // namespace steward::station
