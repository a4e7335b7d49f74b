// Outbox: spool-backed retrying sender for node-to-station messages.
#include "common/outbox.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/protocol.h"

namespace steward {
namespace {

class MemorySpool final : public Spool {
 public:
  absl::Status Put(const OutboxItem& item) override {
    items_[item.id] = item;
    return absl::OkStatus();
  }
  absl::Status Remove(const std::string& id) override {
    items_.erase(id);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<OutboxItem>> LoadAll() override {
    std::vector<OutboxItem> out;
    for (const auto& [id, item] : items_) out.push_back(item);
    return out;
  }

 private:
  std::map<std::string, OutboxItem> items_;
};

}  // namespace

std::unique_ptr<Spool> NewMemorySpool() { return std::make_unique<MemorySpool>(); }

Outbox::Outbox(RequestPump* pump, std::unique_ptr<Spool> spool, OutboxOptions options)
    : pump_(pump), options_(options), spool_(std::move(spool)) {}

Outbox::~Outbox() { Shutdown(); }

absl::Status Outbox::Start() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<OutboxItem>> items = spool_->LoadAll();
  if (!items.ok()) return items.status();
  const absl::Time now = absl::Now();
  for (OutboxItem& item : *items) {
    std::string id = item.id;
    entries_.emplace(std::move(id), Entry{std::move(item), 0, now, false});
  }
  if (!entries_.empty()) STEWARD_LOG_INFO("outbox: {} spooled messages to deliver", entries_.size());
  sender_ = std::thread([this] { SendLoop(); });
  return absl::OkStatus();
}

absl::Status Outbox::Enqueue(OutboxItem item) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::FailedPreconditionError("outbox is shut down");
  if (entries_.size() >= options_.max_items) {
    return absl::ResourceExhaustedError(
        absl::StrCat("outbox full (", options_.max_items, " undelivered messages)"));
  }
  if (absl::Status st = spool_->Put(item); !st.ok()) return st;
  std::string id = item.id;
  entries_.emplace(std::move(id), Entry{std::move(item), 0, absl::Now(), false});
  return absl::OkStatus();
}

void Outbox::Kick() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  for (auto& [id, e] : entries_) {
    if (!e.in_flight) e.next_attempt = now;
  }
}

size_t Outbox::pending() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

bool Outbox::WaitEmpty(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return entries_.empty(); };
  return mu_.AwaitWithTimeout(absl::Condition(&empty), timeout);
}

bool Outbox::HasDueLocked() const {
  if (stopping_) return true;
  if (in_flight_ >= options_.max_in_flight) return false;
  const absl::Time now = absl::Now();
  for (const auto& [id, e] : entries_) {
    if (!e.in_flight && e.next_attempt <= now) return true;
  }
  return false;
}

void Outbox::ScheduleRetryLocked(Entry& e) {
  ++e.attempts;
  absl::Duration backoff = options_.initial_backoff;
  for (int i = 1; i < e.attempts && backoff < options_.max_backoff; ++i) backoff *= 2;
  e.next_attempt = absl::Now() + std::min(backoff, options_.max_backoff);
}

void Outbox::SendLoop() {
  while (true) {
    std::vector<std::pair<std::string, std::string>> batch;  // subject, data; ids below
    std::vector<std::string> ids;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(this, &Outbox::HasDueLocked), absl::Milliseconds(100));
      if (stopping_) return;
      const absl::Time now = absl::Now();
      for (auto& [id, e] : entries_) {
        if (in_flight_ >= options_.max_in_flight) break;
        if (e.in_flight || e.next_attempt > now) continue;
        e.in_flight = true;
        ++in_flight_;
        ids.push_back(id);
        batch.emplace_back(e.item.subject, e.item.data);
      }
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string id = ids[i];
      absl::Status st = pump_->Send(
          batch[i].first, batch[i].second, options_.ack_timeout,
          [this, id](RequestPump::Result r, nats::MsgPtr m) { OnResult(id, r, std::move(m)); });
      if (!st.ok()) OnResult(id, RequestPump::Result::kTimeout, nullptr);
    }
  }
}

void Outbox::OnResult(const std::string& id, RequestPump::Result result, nats::MsgPtr msg) {
  bool done = false;
  if (result == RequestPump::Result::kReply) {
    absl::StatusOr<proto::Ack> ack = DecodeAck(nats::Data(msg.get()));
    if (!ack.ok()) {
      STEWARD_LOG_WARNING("outbox: bad reply for {}: {}", id, ack.status().ToString());
    } else if (ack->outcome() == proto::OUTCOME_SUCCEEDED) {
      done = true;
    } else if (ack->outcome() == proto::OUTCOME_REJECTED) {
      STEWARD_LOG_ERROR("outbox: station refused {}: {}", id, ack->error());
      done = true;
    }
  }
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  --in_flight_;
  it->second.in_flight = false;
  if (!done) {
    ScheduleRetryLocked(it->second);
    return;
  }
  if (absl::Status st = spool_->Remove(id); !st.ok()) {
    STEWARD_LOG_ERROR("outbox: cannot remove {} from the spool: {}", id, st.ToString());
  }
  entries_.erase(it);
}

void Outbox::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (sender_.joinable()) sender_.join();
}

}  // namespace steward
