// Metrics: the station's counters and latency histograms, kept where things happen
// (core, dispatcher, ledger, HTTP) and written out in the Prometheus text format by
// station/http/metrics.cc. Gauges (nodes by status, commands by state) are read from
// the model when scraped, not kept here.
//
//   core.metrics.result_latency.Observe(seconds);
//   core.metrics.dispatch_answers.Add({"timeout"});
//
// Thread-safe; every call is a short critical section of its own (callable under
// model.mu).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace steward::station {

class Histogram {
 public:
  // `bounds`: the buckets' upper bounds, ascending (+Inf is implied).
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value) ABSL_LOCKS_EXCLUDED(mu_);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot Read() const ABSL_LOCKS_EXCLUDED(mu_);

  // Latencies from 1 ms to 10 min.
  static std::vector<double> SecondsBuckets();

 private:
  const std::vector<double> bounds_;
  mutable absl::Mutex mu_;
  std::vector<uint64_t> counts_ ABSL_GUARDED_BY(mu_);  // per bucket, not cumulative
  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
};

// Counters with labels: one value per label tuple.
class LabeledCounter {
 public:
  using Labels = std::vector<std::string>;
  void Add(Labels labels, uint64_t n = 1) ABSL_LOCKS_EXCLUDED(mu_);
  std::map<Labels, uint64_t> Read() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::map<Labels, uint64_t> values_ ABSL_GUARDED_BY(mu_);
};

struct Metrics {
  // From a command's creation to its first dispatch (a parked command counts its wait).
  Histogram dispatch_latency{Histogram::SecondsBuckets()};
  // From a dispatch to the node's answer ("received", or the result it recorded).
  Histogram receipt_latency{Histogram::SecondsBuckets()};
  // From a command's creation to its terminal state.
  Histogram result_latency{Histogram::SecondsBuckets()};
  // HTTP request handling time.
  Histogram http_duration{Histogram::SecondsBuckets()};
  // Commands that reached a terminal state: {state, method}.
  LabeledCounter finished;
  // Dispatch answers: {answer} = received, result, timeout, no_responders, refused, bad_ack.
  LabeledCounter dispatch_answers;
  // HTTP requests: {method, route, code}.
  LabeledCounter http_requests;
};

}  // namespace steward::station
