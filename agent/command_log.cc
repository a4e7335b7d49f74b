// In-memory CommandLog with FIFO eviction.
#include "agent/command_log.h"

#include <deque>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace steward::agent {
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
    if (inserted) {
      order_.push_back(ack.envelope_id());
      if (order_.size() > capacity_) {
        acks_.erase(order_.front());
        order_.pop_front();
      }
    }
    return absl::OkStatus();
  }

 private:
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
