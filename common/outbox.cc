// Outbox: spool-backed retrying sender for node-to-station messages.
#include "common/outbox.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
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
  absl::MutexLock spool_lock(&spool_mu_);
  absl::StatusOr<std::vector<OutboxItem>> loaded = spool_->LoadAll();
  if (!loaded.ok()) return loaded.status();
  // Items an older program spooled that the connection cannot carry are refitted now.
  std::vector<OutboxItem> items;
  uint64_t dropped = 0;
  const size_t limit = MaxItemBytes();
  for (OutboxItem& item : *loaded) {
    if (item.data.size() <= limit) {
      items.push_back(std::move(item));
      continue;
    }
    for (OutboxItem& part : RefitInSpool(item, limit, &dropped)) items.push_back(std::move(part));
  }
  if (!options_.station.empty()) {
    // Spooled for another station: to this one (only the subject: the envelope, signed,
    // is the same event). Not rewritten in the spool: each start does it again.
    size_t moved = 0;
    std::string from;
    for (OutboxItem& item : items) {
      const size_t dot = item.subject.find('.');
      if (dot == std::string::npos || !absl::StartsWith(item.subject.substr(dot), ".event.")) continue;
      if (item.subject.compare(0, dot, options_.station) == 0) continue;
      from = item.subject.substr(0, dot);
      item.subject = options_.station + item.subject.substr(dot);
      ++moved;
    }
    if (moved > 0) {
      STEWARD_LOG_WARNING("outbox: {} spooled messages were for station \"{}\"{}: sent to \"{}\" now", moved, from,
                          moved > 1 ? " (or another)" : "", options_.station);
    }
  }
  absl::MutexLock lock(&mu_);
  dropped_ += dropped;
  const absl::Time now = absl::Now();
  for (OutboxItem& item : items) {
    std::string id = item.id;
    bytes_ += item.data.size();
    schedule_.emplace(now, id);
    entries_.emplace(std::move(id), Entry{std::move(item), 0, now, false});
  }
  if (!entries_.empty()) STEWARD_LOG_INFO("outbox: {} spooled messages to deliver", entries_.size());
  started_ = true;
  sender_ = std::thread([this] { SendLoop(); });
  return absl::OkStatus();
}

absl::Status Outbox::Enqueue(OutboxItem item) {
  return Enqueue(std::move(item), [](Spool& spool, const OutboxItem& i) { return spool.Put(i); });
}

absl::Status Outbox::Enqueue(OutboxItem item, PutFn put) {
  // One Enqueue at a time, from the capacity check to the schedule, so items enter the
  // spool and the schedule in the same order; mu_ is released around the spool calls.
  absl::ReleasableMutexLock spool_lock(&spool_mu_);
  std::vector<std::string> dropped;
  absl::Status room = absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::FailedPreconditionError("outbox is shut down");
    while (FullLocked(item.data.size())) {
      std::optional<std::string> oldest =
          options_.drop_oldest ? DropOldestLocked() : std::nullopt;
      if (!oldest.has_value()) {
        room = absl::ResourceExhaustedError(absl::StrCat(
            "outbox full (", entries_.size(), " undelivered messages, ", bytes_, " bytes)"));
        break;
      }
      dropped.push_back(*std::move(oldest));
    }
  }
  RemoveFromSpool(dropped, "drop");
  if (!room.ok()) return room;
  if (absl::Status st = put(*spool_, item); !st.ok()) return st;

  std::string id, subject, data;  // to send from here, when `send_now`
  const uint32_t inbox = item.inbox;
  bool send_now = false;
  {
    absl::MutexLock lock(&mu_);
    bytes_ += item.data.size();
    const absl::Time now = absl::Now();
    // Sending from this thread saves waking the sender. Only when nothing older is
    // waiting for the sender (due, or in the batch it is publishing), so that first
    // attempts keep their order.
    send_now = started_ && !stopping_ && !sender_busy_ && in_flight_ < options_.max_in_flight &&
               (schedule_.empty() || schedule_.begin()->first > now);
    id = item.id;
    if (send_now) {
      ++in_flight_;
      subject = item.subject;
      data = item.data;
    } else {
      ScheduleLocked(now, id);
    }
    entries_.emplace(id, Entry{std::move(item), 0, now, send_now});
  }
  spool_lock.Release();
  if (send_now) Send(id, subject, data, inbox);
  return absl::OkStatus();
}

absl::Status Outbox::EnqueueOrKeep(OutboxItem item, PutFn put, bool* spooled) {
  OutboxItem copy = item;
  bool put_failed = false;
  absl::Status st = Enqueue(std::move(item), [&](Spool& spool, const OutboxItem& i) {
    absl::Status stored = put(spool, i);
    put_failed = !stored.ok();
    return stored;
  });
  *spooled = st.ok();
  if (!put_failed) return st;
  STEWARD_LOG_ERROR("outbox: {} not stored ({}): kept in memory and sent all the same", copy.id, st.ToString());
  return Enqueue(std::move(copy), [](Spool&, const OutboxItem&) { return absl::OkStatus(); });
}

void Outbox::Kick() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  schedule_.clear();
  for (auto& [id, e] : entries_) {
    if (e.in_flight) continue;
    e.next_attempt = now;
    schedule_.emplace(now, id);
  }
  wake_sender_ = true;
}

size_t Outbox::pending() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

std::string Outbox::oldest() const {
  absl::MutexLock lock(&mu_);
  return entries_.empty() ? "" : entries_.begin()->first;
}

size_t Outbox::pending_bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

uint64_t Outbox::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

bool Outbox::FullLocked(size_t adding) const {
  if (entries_.size() >= options_.max_items) return true;
  return options_.max_bytes > 0 && !entries_.empty() && bytes_ + adding > options_.max_bytes;
}

std::optional<std::string> Outbox::DropOldestLocked() {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->second.in_flight) continue;
    schedule_.erase({it->second.next_attempt, it->first});
    dropped_ += it->second.item.weight;
    std::string id = it->first;
    EraseLocked(it);
    return id;
  }
  return std::nullopt;
}

void Outbox::RemoveFromSpool(const std::vector<std::string>& ids, absl::string_view verb) {
  for (const std::string& id : ids) {
    if (absl::Status st = spool_->Remove(id); !st.ok()) {
      STEWARD_LOG_ERROR("outbox: cannot {} {} from the spool: {}", verb, id, st.ToString());
    }
  }
}

void Outbox::EraseLocked(std::map<std::string, Entry>::iterator it) {
  bytes_ -= it->second.item.data.size();
  entries_.erase(it);
}

bool Outbox::WaitEmpty(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return entries_.empty(); };
  return mu_.AwaitWithTimeout(absl::Condition(&empty), timeout);
}

bool Outbox::HasDueLocked() const {
  return in_flight_ < options_.max_in_flight && !schedule_.empty() &&
         schedule_.begin()->first <= absl::Now();
}

bool Outbox::SenderReadyLocked() const { return stopping_ || wake_sender_ || HasDueLocked(); }

void Outbox::ScheduleLocked(absl::Time at, const std::string& id) {
  // The sender sleeps until the earliest entry is due; an earlier one needs a wake-up.
  if (schedule_.empty() || at < schedule_.begin()->first) wake_sender_ = true;
  schedule_.emplace(at, id);
}

void Outbox::ScheduleRetryLocked(const std::string& id, Entry& e) {
  ++e.attempts;
  absl::Duration backoff = options_.initial_backoff;
  for (int i = 1; i < e.attempts && backoff < options_.max_backoff; ++i) backoff *= 2;
  e.next_attempt = absl::Now() + std::min(backoff, options_.max_backoff);
  ScheduleLocked(e.next_attempt, id);
}

void Outbox::SendLoop() {
  while (true) {
    std::vector<std::string> ids;
    struct Attempt {
      std::string subject, data;
      uint32_t inbox;
    };
    std::vector<Attempt> batch;  // of ids[i]
    {
      absl::MutexLock lock(&mu_);
      sender_busy_ = false;
      // Sleep until the earliest entry is due; with none, or with the window full,
      // until Enqueue, Kick, a reply or Shutdown changes that (SenderReadyLocked).
      const absl::Time next = schedule_.empty() || in_flight_ >= options_.max_in_flight
                                  ? absl::InfiniteFuture()
                                  : schedule_.begin()->first;
      mu_.AwaitWithDeadline(absl::Condition(this, &Outbox::SenderReadyLocked), next);
      wake_sender_ = false;
      if (stopping_) return;
      const absl::Time now = absl::Now();
      while (!schedule_.empty() && in_flight_ < options_.max_in_flight &&
             schedule_.begin()->first <= now) {
        const std::string id = schedule_.begin()->second;
        schedule_.erase(schedule_.begin());
        Entry& e = entries_.at(id);
        e.in_flight = true;
        ++in_flight_;
        ids.push_back(id);
        batch.push_back({e.item.subject, e.item.data, e.item.inbox});
      }
      sender_busy_ = !ids.empty();
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      Send(ids[i], batch[i].subject, batch[i].data, batch[i].inbox);
    }
  }
}

void Outbox::Send(const std::string& id, const std::string& subject, const std::string& data,
                  uint32_t inbox) {
  const size_t limit = MaxItemBytes();
  if (data.size() > limit) return RefitInFlight(id, limit);
  absl::Status st = pump_->Send(
      subject, data, options_.ack_timeout,
      [this, id](RequestPump::Result r, nats::MsgPtr m) { OnResult(id, r, std::move(m)); }, inbox);
  if (absl::IsResourceExhausted(st) && options_.max_item_bytes) {
    // The broker's limit is lower than the connection said a moment ago.
    return RefitInFlight(id, std::min(limit, data.size() - 1));
  }
  if (!st.ok()) OnResult(id, RequestPump::Result::kTimeout, nullptr);
}

size_t Outbox::MaxItemBytes() const {
  return options_.max_item_bytes ? options_.max_item_bytes() : std::numeric_limits<size_t>::max();
}

std::vector<OutboxItem> Outbox::RefitInSpool(const OutboxItem& item, size_t limit, uint64_t* dropped) {
  Refitted refitted = options_.refit ? options_.refit(item, limit) : Refitted{{}, item.weight};
  std::vector<OutboxItem> kept;
  for (OutboxItem& part : refitted.parts) {
    absl::Status st = part.data.size() > limit
                          ? absl::InternalError(absl::StrCat("part ", part.id, " does not fit either"))
                          : spool_->Put(part);
    if (!st.ok()) {
      STEWARD_LOG_ERROR("outbox: part of {} not spooled: {}", item.id, st.ToString());
      refitted.dropped += part.weight;
      continue;
    }
    kept.push_back(std::move(part));
  }
  RemoveFromSpool({item.id}, "replace");
  STEWARD_LOG_WARNING("outbox: {} is {} bytes, more than the {} the broker takes: sent as {} parts, {} dropped",
                      item.id, item.data.size(), limit, kept.size(), refitted.dropped);
  *dropped += refitted.dropped;
  return kept;
}

void Outbox::RefitInFlight(const std::string& id, size_t limit) {
  absl::MutexLock spool_lock(&spool_mu_);
  OutboxItem item;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    item = it->second.item;  // in flight: nothing else removes it meanwhile
  }
  uint64_t dropped = 0;
  std::vector<OutboxItem> parts = RefitInSpool(item, limit, &dropped);
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (in_flight_-- == options_.max_in_flight) wake_sender_ = true;
  EraseLocked(it);
  dropped_ += dropped;
  const absl::Time now = absl::Now();
  for (OutboxItem& part : parts) {
    std::string part_id = part.id;
    bytes_ += part.data.size();
    ScheduleLocked(now, part_id);
    entries_.emplace(std::move(part_id), Entry{std::move(part), 0, now, false});
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
  if (done) {
    // Out of the spool before out of the outbox, so WaitEmpty means both. Nothing else
    // removes an item while it is in flight.
    absl::MutexLock spool_lock(&spool_mu_);
    RemoveFromSpool({id}, "remove");
  }
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  // A full window kept the sender from computing a deadline; it has room now.
  if (in_flight_-- == options_.max_in_flight) wake_sender_ = true;
  it->second.in_flight = false;
  if (!done) {
    ScheduleRetryLocked(id, it->second);
    return;
  }
  EraseLocked(it);
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
