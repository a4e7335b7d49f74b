// Forwarder: queue -> parse -> per-domain batches -> logs outbox.
#include "agent/syslog/forwarder.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/syslog/batcher.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "subjects/subject.h"

namespace steward::agent::syslog {

Forwarder::Forwarder(ForwarderOptions options, const EventWriter* events, Outbox* outbox)
    : options_(std::move(options)), events_(events), outbox_(outbox) {}

bool Forwarder::Offer(RawLine line) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || queue_.size() >= options_.queue_lines ||
      (!queue_.empty() && queued_bytes_ + line.data.size() > options_.queue_bytes)) {
    return false;
  }
  queued_bytes_ += line.data.size();
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
    queued_bytes_ -= queue_.front().data.size();
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return out;
}

proto::LogRecord Forwarder::ParseLine(RawLine& line) const {
  ParseOptions po = options_.parse;
  po.local_zone = line.origin->zone;
  po.no_pri_severity = line.origin->severity;
  po.plain_text = line.origin->plain_text;
  proto::LogRecord r = Parse(line.data, line.received, po);
  if (line.truncated) r.set_truncated(true);  // cut by the input, before the parser saw it
  std::string domain = line.domain();
  if (domain.empty()) domain = r.app_name().empty() ? "syslog" : subjects::Sanitize(r.app_name());
  r.set_source(line.source());
  r.set_domain(std::move(domain));
  return r;
}

absl::Status Forwarder::Spool(ProcessContext& ctx, std::deque<RawLine> lines) {
  const size_t count = lines.size();
  std::map<std::string, proto::LogBatch> batches;  // per domain, each in offer order
  for (RawLine& line : lines) {
    proto::LogRecord r = ParseLine(line);
    const std::string domain = r.domain();
    *batches[domain].add_records() = std::move(r);
  }
  const uint64_t spool_drops = outbox_->dropped();
  const uint64_t input_drops = options_.input_drops ? options_.input_drops() : 0;
  if (spool_drops + input_drops > reported_spool_drops_ + reported_input_drops_) {
    const uint64_t at_inputs = input_drops - reported_input_drops_;
    const uint64_t from_spool = spool_drops - reported_spool_drops_;
    ctx.Report(Severity::kWarning,
               absl::ResourceExhaustedError(absl::StrCat(
                   "syslog: ", at_inputs + from_spool, " lines dropped: ", at_inputs,
                   " at the inputs (UDP: the kernel's receive buffer or the agent's queue was full), ",
                   from_spool, " from the spool (full: the oldest go; or too large to send)")));
    // Travels with the next batch (one of its own when no line waits).
    batches[batches.empty() ? std::string("syslog") : batches.begin()->first].set_dropped(at_inputs + from_spool);
    reported_spool_drops_ = spool_drops;
    reported_input_drops_ = input_drops;
  }
  const size_t max_payload = options_.max_payload ? options_.max_payload() : size_t{1} << 20;
  for (auto& [domain, batch] : batches) {
    // Sanitize makes a bad domain impossible.
    STEWARD_ASSIGN_OR_RETURN(std::vector<OutboxItem> items,
                             BatchEvents(*events_, domain, std::move(batch), max_payload));
    for (OutboxItem& item : items) {
      if (absl::Status st = outbox_->Enqueue(std::move(item)); !st.ok()) {
        // The spool itself failed (disk): these lines are lost, and the kernel hears it.
        ctx.Report(Severity::kError, st);
      }
    }
  }
  absl::MutexLock lock(&mu_);
  spooled_ += count;
  return absl::OkStatus();
}

absl::Status Forwarder::Run(ProcessContext& ctx) {
  while (true) {
    std::deque<RawLine> lines = Take(ctx);
    const bool idle = lines.empty();
    // Idle: drops still get reported (a flood's last lost datagrams).
    if (absl::Status st = Spool(ctx, std::move(lines)); !st.ok()) return st;
    if (!idle) continue;
    if (ctx.stopping()) break;
  }
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  return absl::OkStatus();
}

}  // namespace steward::agent::syslog
