// Error kernel: decisions, backoff and rate limits for supervised process threads.
#include "agent/supervisor.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace steward::agent {

const char* SeverityName(Severity s) {
  switch (s) {
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      return "error";
    case Severity::kFatal:
      return "fatal";
  }
  return "unknown";
}

const char* DecisionName(Decision d) {
  switch (d) {
    case Decision::kContinue:
      return "continue";
    case Decision::kRestart:
      return "restart";
    case Decision::kStop:
      return "stop";
  }
  return "unknown";
}

Decision ProcessContext::Report(Severity severity, const absl::Status& status) {
  const Decision d = sup_->Decide(name_, severity, status);
  if (d != Decision::kContinue) decided_ = d;
  return d;
}

Supervisor::Supervisor(RestartPolicy policy, DecisionSink sink)
    : policy_(policy), sink_(std::move(sink)) {}

Supervisor::~Supervisor() { Shutdown(); }

absl::Status Supervisor::Start(const std::string& name, ProcessBody body) {
  absl::MutexLock lock(&mu_);
  return StartLocked(name, std::move(body), /*again=*/false);
}

absl::Status Supervisor::StartAgain(const std::string& name, ProcessBody body) {
  absl::MutexLock lock(&mu_);
  return StartLocked(name, std::move(body), /*again=*/true);
}

absl::Status Supervisor::StartLocked(const std::string& name, ProcessBody body, bool again) {
  if (shut_down_) return absl::FailedPreconditionError("supervisor is shut down");
  if (auto it = processes_.find(name); it != processes_.end() && (it->second.running || !again)) {
    return absl::AlreadyExistsError(absl::StrCat("process ", name, " exists"));
  }
  // New, or ended (its thread sets running = false as its last act): run it afresh.
  Process& p = processes_[name];
  p.running = true;
  p.recent_restarts.clear();
  p.next_backoff = policy_.initial_backoff;
  threads_.emplace_back([this, name, body = std::move(body)]() mutable {
    RunSupervised(name, std::move(body));
  });
  return absl::OkStatus();
}

bool Supervisor::IsRunning(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = processes_.find(name);
  return it != processes_.end() && it->second.running;
}

bool Supervisor::Exists(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  return processes_.contains(name);
}

int Supervisor::Restarts(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = processes_.find(name);
  return it == processes_.end() ? 0 : it->second.restarts;
}

std::vector<ProcessInfo> Supervisor::Processes() const {
  absl::MutexLock lock(&mu_);
  std::vector<ProcessInfo> out;
  out.reserve(processes_.size());
  for (const auto& [name, p] : processes_) {
    out.push_back(ProcessInfo{.name = name,
                              .running = p.running,
                              .backing_off = p.backing_off,
                              .restarts = p.restarts,
                              .last_error = p.last_error,
                              .last_error_at = p.last_error_at});
  }
  std::sort(out.begin(), out.end(), [](const ProcessInfo& a, const ProcessInfo& b) { return a.name < b.name; });
  return out;
}

Decision Supervisor::Decide(const std::string& name, Severity severity,
                            const absl::Status& status) {
  DecisionRecord rec{name, severity, status.ToString(), Decision::kContinue, absl::Now(), {}};
  {
    absl::MutexLock lock(&mu_);
    Process& p = processes_[name];
    if (severity == Severity::kFatal) {
      rec.decision = Decision::kStop;
    } else if (severity == Severity::kError) {
      const absl::Time now = rec.at;
      auto& recent = p.recent_restarts;
      recent.erase(std::remove_if(recent.begin(), recent.end(),
                                  [&](absl::Time t) { return now - t > policy_.window; }),
                   recent.end());
      if (recent.empty()) p.next_backoff = policy_.initial_backoff;  // Healthy for a window.
      if (static_cast<int>(recent.size()) >= policy_.max_restarts) {
        rec.decision = Decision::kStop;
      } else {
        recent.push_back(now);
        rec.decision = Decision::kRestart;
        rec.backoff = p.next_backoff;
        p.last_backoff = p.next_backoff;
        p.next_backoff = std::min(p.next_backoff * 2, policy_.max_backoff);
      }
    }
    if (rec.decision != Decision::kContinue) {
      p.last_error = rec.error;
      p.last_error_at = rec.at;
    }
  }
  const LogLevel level = rec.decision == Decision::kContinue ? LogLevel::kWarning
                                                             : LogLevel::kError;
  Log(level, "process {}: {} {} -> {}", name, SeverityName(severity), rec.error,
      DecisionName(rec.decision));
  if (sink_) sink_(rec);
  return rec.decision;
}

std::vector<std::string> Supervisor::Stalled(absl::Duration quiet) const {
  const int64_t limit = absl::ToUnixNanos(absl::Now() - quiet);
  std::vector<std::string> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, p] : processes_) {
    const int64_t beat = p.last_beat->load(std::memory_order_relaxed);
    if (p.running && beat != 0 && beat < limit) out.push_back(name);
  }
  return out;
}

void Supervisor::RunSupervised(const std::string& name, ProcessBody body) {
  std::atomic<int64_t>* beat = nullptr;
  {
    absl::MutexLock lock(&mu_);
    beat = processes_[name].last_beat.get();
  }
  while (!stop_.HasBeenNotified()) {
    ProcessContext ctx(this, name, &stop_, beat);
    // A restarted body is as fresh as a new one; the backoff before it counts as quiet.
    if (beat->load() != 0) ctx.Beat();
    absl::Status status;
    try {
      status = body(ctx);
    } catch (const std::exception& e) {  // The only catch-all in the agent.
      status = absl::InternalError(absl::StrCat("uncaught exception: ", e.what()));
    } catch (...) {
      status = absl::InternalError("uncaught non-standard exception");
    }
    if (stop_.HasBeenNotified()) break;
    if (status.ok() && !ctx.decided_.has_value()) break;  // Finished on its own.
    Decision d = ctx.decided_.has_value() ? *ctx.decided_ : Decide(name, Severity::kError, status);
    if (d == Decision::kStop) break;
    absl::Duration backoff;
    {
      absl::MutexLock lock(&mu_);
      Process& p = processes_[name];
      ++p.restarts;
      p.backing_off = true;
      backoff = p.last_backoff;
    }
    const bool stopping = stop_.WaitForNotificationWithTimeout(backoff);  // Interruptible sleep.
    {
      absl::MutexLock lock(&mu_);
      processes_[name].backing_off = false;
    }
    if (stopping) break;
  }
  absl::MutexLock lock(&mu_);
  processes_[name].running = false;
}

void Supervisor::Shutdown() {
  std::vector<std::thread> to_join;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    if (!stop_.HasBeenNotified()) stop_.Notify();
    to_join.swap(threads_);
  }
  for (std::thread& t : to_join) t.join();
}

}  // namespace steward::agent
