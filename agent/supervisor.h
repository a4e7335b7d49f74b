// The error kernel. A Supervisor owns one thread per process (a named handler loop),
// hears the errors each process reports with a severity, answers each with a decision
// (continue, restart, stop), restarts failed processes with exponential backoff, stops
// a process that restarts too often, and hands every decision to a sink (the agent
// sends them to the station as errorlog events).
//
//   Supervisor sup(RestartPolicy{}, [](const DecisionRecord& d) { ... });
//   sup.Start("ship1.command.ping.default", [](ProcessContext& ctx) -> absl::Status {
//     while (!ctx.stopping()) { ... if (bad) return absl::InternalError("..."); }
//     return absl::OkStatus();
//   });
//
// Thread-safe. The destructor calls Shutdown(), which notifies every process and joins
// every thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace steward::agent {

enum class Severity { kInfo, kWarning, kError, kFatal };
enum class Decision { kContinue, kRestart, kStop };

const char* SeverityName(Severity s);
const char* DecisionName(Decision d);

struct RestartPolicy {
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(10);
  // More restarts than this within `window` stops the process instead.
  int max_restarts = 5;
  absl::Duration window = absl::Minutes(1);
};

struct DecisionRecord {
  std::string process;
  Severity severity = Severity::kError;
  std::string error;
  Decision decision = Decision::kContinue;
  absl::Time at;
  absl::Duration backoff;  // before the restart, when decision == kRestart
};

using DecisionSink = std::function<void(const DecisionRecord&)>;

class Supervisor;

// What a running process sees of its supervisor. Owned by the supervisor; valid for
// the duration of one run of the body.
class ProcessContext {
 public:
  const std::string& name() const { return name_; }
  // True once the supervisor is shutting down: the body should return soon.
  bool stopping() const { return stop_->HasBeenNotified(); }
  const absl::Notification& stop() const { return *stop_; }

  // Report an error and get the decision. kContinue (info, warning): carry on.
  // kRestart or kStop (error, fatal, or too many restarts): return from the body;
  // the supervisor acts on the decision already given.
  Decision Report(Severity severity, const absl::Status& status);

  // Beat says the body's loop made progress. A process that beats once is watched from
  // then on: Supervisor::Stalled names it when it goes quiet (the service watchdog).
  void Beat() { beat_->store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed); }

 private:
  friend class Supervisor;
  ProcessContext(Supervisor* sup, std::string name, const absl::Notification* stop,
                 std::atomic<int64_t>* beat)
      : sup_(sup), name_(std::move(name)), stop_(stop), beat_(beat) {}

  Supervisor* sup_;
  std::string name_;
  const absl::Notification* stop_;
  std::atomic<int64_t>* beat_;  // the Process's last_beat
  // A restart/stop decision already given by Report during this run.
  std::optional<Decision> decided_;
};

using ProcessBody = std::function<absl::Status(ProcessContext&)>;

// What the supervisor knows of one process (the agent's status).
struct ProcessInfo {
  std::string name;
  bool running = false;      // its thread runs the body, or waits to restart it
  bool backing_off = false;  // waiting out a backoff before a restart
  int restarts = 0;
  std::string last_error;    // of the latest restart or stop decision
  absl::Time last_error_at = absl::InfinitePast();
};

class Supervisor {
 public:
  Supervisor(RestartPolicy policy, DecisionSink sink);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Start runs `body` on a new thread under supervision. AlreadyExists when a process
  // of that name exists (running or stopped); FailedPrecondition after Shutdown.
  absl::Status Start(const std::string& name, ProcessBody body) ABSL_LOCKS_EXCLUDED(mu_);
  // StartAgain is Start for a process whose body has ended (returned, or stopped by the
  // error kernel): an operator's `process start`. It runs afresh under its old name,
  // keeping its restart count. AlreadyExists while it still runs.
  absl::Status StartAgain(const std::string& name, ProcessBody body) ABSL_LOCKS_EXCLUDED(mu_);

  // State of a named process: running (including waiting to restart) or not.
  bool IsRunning(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);
  bool Exists(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);
  int Restarts(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);
  // Every process, by name.
  std::vector<ProcessInfo> Processes() const ABSL_LOCKS_EXCLUDED(mu_);
  // The running processes that beat (ProcessContext::Beat) but not within `quiet`: hung.
  std::vector<std::string> Stalled(absl::Duration quiet) const ABSL_LOCKS_EXCLUDED(mu_);

  // Notify every process to stop and join every thread. Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);
  const absl::Notification& stopping() const { return stop_; }

 private:
  friend class ProcessContext;
  struct Process {
    bool running = true;
    int restarts = 0;
    std::vector<absl::Time> recent_restarts;
    absl::Duration next_backoff;
    absl::Duration last_backoff;  // handed out with the latest restart decision
    bool backing_off = false;
    std::string last_error;
    absl::Time last_error_at = absl::InfinitePast();
    // Unix ns of the latest Beat, 0: never (not watched). Boxed: contexts point at it.
    std::unique_ptr<std::atomic<int64_t>> last_beat = std::make_unique<std::atomic<int64_t>>(0);
  };

  void RunSupervised(const std::string& name, ProcessBody body);
  absl::Status StartLocked(const std::string& name, ProcessBody body, bool again)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Decide computes (and records) the decision for an error of `severity`.
  Decision Decide(const std::string& name, Severity severity, const absl::Status& status)
      ABSL_LOCKS_EXCLUDED(mu_);

  const RestartPolicy policy_;
  const DecisionSink sink_;
  absl::Notification stop_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Process> processes_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace steward::agent
