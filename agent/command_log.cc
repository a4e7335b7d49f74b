// CommandLog's default two-step writes, and the in-memory CommandLog with FIFO eviction.
#include "agent/command_log.h"

#include <deque>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace steward::agent {

absl::StatusOr<std::optional<proto::Ack>> CommandLog::RecordIfNew(const proto::Ack& received) {
  if (std::optional<proto::Ack> known = Lookup(received.envelope_id())) return known;
  if (absl::Status st = Record(received); !st.ok()) return st;
  return std::nullopt;
}

absl::Status CommandLog::RecordAndSpool(const proto::Ack& ack, Spool& spool,
                                        const OutboxItem& item) {
  if (absl::Status st = Record(ack); !st.ok()) return st;
  return spool.Put(item);
}

absl::Status CommandLog::RecordAll(const std::vector<proto::Ack>& acks) {
  for (const proto::Ack& ack : acks) {
    if (absl::Status st = Record(ack); !st.ok()) return st;
  }
  return absl::OkStatus();
}

namespace {

class MemoryCommandLog final : public CommandLog {
 public:
  explicit MemoryCommandLog(size_t capacity) : capacity_(capacity) {}

  std::optional<proto::Ack> Lookup(const std::string& id) override {
    absl::MutexLock lock(&mu_);
    auto it = acks_.find(id);
    if (it == acks_.end()) return std::nullopt;
    return it->second;
  }

  absl::Status Record(const proto::Ack& ack) override {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = acks_.insert_or_assign(ack.envelope_id(), ack);
    if (inserted) AddedLocked(ack.envelope_id());
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<proto::Ack>> RecordIfNew(const proto::Ack& received) override {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = acks_.try_emplace(received.envelope_id(), received);
    if (!inserted) return std::optional<proto::Ack>(it->second);
    AddedLocked(received.envelope_id());
    return std::nullopt;
  }

 private:
  // FIFO eviction beyond the capacity.
  void AddedLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    order_.push_back(id);
    if (order_.size() > capacity_) {
      acks_.erase(order_.front());
      order_.pop_front();
    }
  }

  const size_t capacity_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, proto::Ack> acks_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<CommandLog> NewMemoryCommandLog(size_t capacity) {
  return std::make_unique<MemoryCommandLog>(capacity);
}

}  // namespace steward::agent
