#include "station/waiters.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"

namespace steward::station {

std::optional<Waiter> WaiterTable::Add(Waiter w, absl::Time now,
                                       const std::function<bool(const std::string&)>& open) {
  std::vector<std::string> open_ids;
  for (const std::string& id : w.ids) {
    if (open(id)) open_ids.push_back(id);
  }
  std::sort(open_ids.begin(), open_ids.end());
  open_ids.erase(std::unique(open_ids.begin(), open_ids.end()), open_ids.end());
  const absl::flat_hash_set<std::string> distinct(w.ids.begin(), w.ids.end());
  const bool ready = w.any ? open_ids.size() < distinct.size() : open_ids.empty();
  if (ready || w.deadline <= now) return w;
  const uint64_t n = next_++;
  for (const std::string& id : open_ids) waiting_on_[id].push_back(n);
  Entry& e = waiters_[n];
  e.open = open_ids.size();
  e.open_ids = std::move(open_ids);
  e.w = std::move(w);
  return std::nullopt;
}

Waiter WaiterTable::Take(uint64_t n) {
  auto it = waiters_.find(n);
  // Unregistered from its commands, so that a command that never ends (a node gone
  // for good) does not collect the numbers of every wait that gave up on it.
  for (const std::string& id : it->second.open_ids) {
    auto w = waiting_on_.find(id);
    if (w == waiting_on_.end()) continue;
    std::vector<uint64_t>& v = w->second;
    v.erase(std::remove(v.begin(), v.end(), n), v.end());
    if (v.empty()) waiting_on_.erase(w);
  }
  Waiter out = std::move(it->second.w);
  waiters_.erase(it);
  return out;
}

std::vector<Waiter> WaiterTable::Ended(const std::string& id) {
  std::vector<Waiter> ready;
  auto it = waiting_on_.find(id);
  if (it == waiting_on_.end()) return ready;
  const std::vector<uint64_t> waiting = std::move(it->second);
  waiting_on_.erase(it);
  for (uint64_t n : waiting) {
    auto w = waiters_.find(n);
    if (w == waiters_.end()) continue;  // answered already
    Entry& e = w->second;
    e.open_ids.erase(std::remove(e.open_ids.begin(), e.open_ids.end(), id), e.open_ids.end());
    if (e.open > 0) --e.open;
    if (!e.w.any && e.open > 0) continue;
    ready.push_back(Take(n));
  }
  return ready;
}

std::vector<Waiter> WaiterTable::Expire(absl::Time now) {
  std::vector<uint64_t> due;
  for (const auto& [n, e] : waiters_) {
    if (e.w.deadline <= now) due.push_back(n);
  }
  std::vector<Waiter> out;
  for (uint64_t n : due) out.push_back(Take(n));
  return out;
}

}  // namespace steward::station
