// JobRunner: makes jobs and follows them (station/jobs.h says what a job is).
//
// Launch is a send by target: the TargetSpec is resolved now, every target's command
// is made (signed when the station has a key), the commands a rollout or a splay keeps
// back are held, and the commands and the job's record are committed in one
// transaction before anything is answered or dispatched.
//
// Its thread, every 100 ms: ticks the JobTable (rollouts count, abort, wait and release;
// splayed commands go out at their time) and writes what it decided; gives continuous
// jobs' command to nodes that match later (every second, and at once when tags change);
// and makes the runs of schedules that are due (station/schedules.h), each an ordinary
// job grouped under its schedule.
//
// Load, at start and before the dispatcher runs, brings back tags, open jobs (with
// their holds) and schedules (runs missed while the station was down follow each
// schedule's policy).
//
// Thread-safe; follows Core's rule (tables under model.mu, I/O after).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "station/core.h"
#include "station/ledger/store.h"
#include "station/rpc.h"
#include "station/targeting.h"

namespace steward::station {

class JobRunner {
 public:
  explicit JobRunner(Core& core) : core_(core) {}
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // Load fills the tables from the ledger (after Core::Load, before dispatching).
  absl::Status Load() ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // Run is the runner thread's body; it returns once `stop` is notified.
  void Run(const absl::Notification& stop) ABSL_LOCKS_EXCLUDED(core_.model.mu);

  struct LaunchSpec {
    Target target;
    proto::Envelope command;  // the template
    int64_t command_ttl_ms = 0;
    std::optional<proto::RolloutSpec> rollout;
    bool continuous = false;
    int64_t expires_unix_ms = 0;
    bool allow_empty = false;
    std::string op;  // who sends it
    std::string identity;  // who sends it, as approvals compare operators (Call::identity); "" = op
    std::string id;  // the job's id ("": a new one)
    // A schedule's run.
    proto::ControlPolicy control;  // each command's (exclusive, priority, approval)
    std::optional<proto::Runbook> runbook;  // a runbook: its steps, made one by one on each target
    std::string schedule;
    absl::Time scheduled;
    bool catch_up = false;
    absl::Duration splay;
  };
  // Launch makes the job; `done` gets the reply once its commands and record are stored,
  // or why not (FailedPrecondition: nothing matches; others: could not store). `also`
  // joins the transaction.
  void Launch(LaunchSpec spec, std::function<void(absl::StatusOr<proto::LaunchReply>)> done,
              std::vector<ledger::Store::Op> also = {}) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // Close stops job `id` for `call`'s operator (JobTable::Close), audited; `done` once
  // it is stored.
  void Close(const std::string& id, const Call& call, std::function<void(absl::Status)> done)
      ABSL_LOCKS_EXCLUDED(core_.model.mu);

 private:
  // Whether the station takes signed operator requests only (IdentityOfRecorded).
  bool Keyed() const { return core_.options().operators != nullptr && !core_.options().operators->empty(); }
  void Tick(absl::Time now) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // Runbook jobs: makes their next commands, writes the ones that ended (runbooks.h).
  void TickRunbooks(absl::Time now) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  void FinishRunbooks(RunbookTable::Work work) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  void OfferContinuous(absl::Time now) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  void RunSchedules(absl::Time now) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // Lets go the held commands `work` released.
  void ReleaseLocked(const JobTable::Work& work, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);
  // Does the rest of `work` (writes, ledger reads, logs); never under model.mu.
  void Finish(JobTable::Work work) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // Reports the commit of job `id`'s write to the table (and finishes what follows).
  void Written(const std::string& id, bool ok) ABSL_LOCKS_EXCLUDED(core_.model.mu);
  // A continuous job's target, compiled once (its spec was checked at launch).
  const Target* TargetOf(const proto::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);

  Core& core_;
  std::map<std::string, Target> compiled_ ABSL_GUARDED_BY(core_.model.mu);
  // Jobs whose stored target is refused (logged once each).
  std::set<std::string> refused_targets_ ABSL_GUARDED_BY(core_.model.mu);
  // Catch-up runs Load found owed, made by the thread's first round.
  std::vector<ScheduleTable::Run> owed_ ABSL_GUARDED_BY(core_.model.mu);
  // Offering continuous jobs: the tags' version last looked at, and when to look again.
  uint64_t tags_seen_ = 0;
  absl::Time next_offer_ = absl::InfinitePast();
};

}  // namespace steward::station
