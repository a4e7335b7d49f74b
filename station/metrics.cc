#include "station/metrics.h"

#include <algorithm>
#include <utility>

namespace steward::station {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  const size_t bucket =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  absl::MutexLock lock(&mu_);
  ++counts_[bucket];
  ++count_;
  sum_ += value;
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  absl::MutexLock lock(&mu_);
  uint64_t total = 0;
  for (uint64_t c : counts_) {
    total += c;
    s.cumulative.push_back(total);
  }
  s.count = count_;
  s.sum = sum_;
  return s;
}

std::vector<double> Histogram::SecondsBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600};
}

void LabeledCounter::Add(Labels labels, uint64_t n) {
  absl::MutexLock lock(&mu_);
  values_[std::move(labels)] += n;
}

std::map<LabeledCounter::Labels, uint64_t> LabeledCounter::Read() const {
  absl::MutexLock lock(&mu_);
  return values_;
}

}  // namespace steward::station
