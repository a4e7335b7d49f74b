// Forwarder: queue -> parse -> per-domain batches -> logs outbox.
#include "agent/syslog/forwarder.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "subjects/subject.h"

namespace steward::agent::syslog {

Forwarder::Forwarder(ForwarderOptions options, const EventWriter* events, Outbox* outbox)
    : options_(std::move(options)), events_(events), outbox_(outbox) {}

bool Forwarder::Offer(RawLine line) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || queue_.size() >= options_.queue_lines) return false;
  queue_.push_back(std::move(line));
  ++offered_;
  return true;
}

bool Forwarder::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const uint64_t target = offered_;
  auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return spooled_ >= target; };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

uint64_t Forwarder::spooled() const {
  absl::MutexLock lock(&mu_);
  return spooled_;
}

std::deque<RawLine> Forwarder::Take(ProcessContext& ctx) {
  absl::MutexLock lock(&mu_);
  auto any = [this, &ctx]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || ctx.stopping();
  };
  mu_.AwaitWithTimeout(absl::Condition(&any), absl::Milliseconds(250));
  if (queue_.empty()) return {};
  // A batch fills up to batch_lines or waits batch_delay for company.
  const absl::Time until = absl::Now() + options_.batch_delay;
  auto full = [this, &ctx]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.size() >= options_.batch_lines || ctx.stopping();
  };
  mu_.AwaitWithDeadline(absl::Condition(&full), until);
  std::deque<RawLine> out;
  const size_t n = ctx.stopping() ? queue_.size() : std::min(queue_.size(), options_.batch_lines);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return out;
}

absl::Status Forwarder::Spool(ProcessContext& ctx, std::deque<RawLine> lines) {
  const size_t count = lines.size();
  std::map<std::string, proto::LogBatch> batches;  // per domain, each in offer order
  for (RawLine& line : lines) {
    proto::LogRecord r = Parse(line.data, line.received, options_.parse);
    std::string domain = line.domain;
    if (domain.empty()) domain = r.app_name().empty() ? "syslog" : subjects::Sanitize(r.app_name());
    r.set_source(std::move(line.source));
    r.set_domain(domain);
    *batches[domain].add_records() = std::move(r);
  }
  const uint64_t drops = outbox_->dropped() + (options_.input_drops ? options_.input_drops() : 0);
  if (drops > reported_drops_) {
    const uint64_t fresh = drops - reported_drops_;
    ctx.Report(Severity::kWarning,
               absl::ResourceExhaustedError(absl::StrCat(
                   "syslog: ", fresh, " lines dropped (spool or input queue full, oldest first)")));
    batches.begin()->second.set_dropped(fresh);  // travels with the next batch
    reported_drops_ = drops;
  }
  for (auto& [domain, batch] : batches) {
    // Sanitize makes a bad domain impossible.
    STEWARD_ASSIGN_OR_RETURN(OutboxItem item,
                             events_->Make(kEventSyslog, domain, batch.SerializeAsString()));
    item.weight = static_cast<uint64_t>(batch.records_size());
    if (absl::Status st = outbox_->Enqueue(std::move(item)); !st.ok()) {
      // The spool itself failed (disk): these lines are lost, and the kernel hears it.
      ctx.Report(Severity::kError, st);
    }
  }
  absl::MutexLock lock(&mu_);
  spooled_ += count;
  return absl::OkStatus();
}

absl::Status Forwarder::Run(ProcessContext& ctx) {
  while (true) {
    std::deque<RawLine> lines = Take(ctx);
    if (!lines.empty()) {
      if (absl::Status st = Spool(ctx, std::move(lines)); !st.ok()) return st;
      continue;
    }
    if (ctx.stopping()) break;
  }
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  return absl::OkStatus();
}

}  // namespace steward::agent::syslog
