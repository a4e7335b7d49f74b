// JobTable: the jobs the station follows after it made their commands, and the holds
// that keep some of those commands back.
//
// A job is a send by target (proto::Job; its id is its commands' request id). Most are
// done the moment their commands are stored; three kinds go on:
//
//   - a staged rollout: every target's command is made at submit and all but the first
//     batch's are held. When every command of the released batches has ended (durably:
//     its final state is in the ledger), or the batch timed out, the next batch is
//     released after --batch-wait; when failures reach the abort criteria, nothing more
//     is released and what was not delivered ends canceled ("rollout aborted: 3 of 20
//     failed"). A release is written to the ledger before its commands go out, so a
//     station that restarts resumes where it was and never releases a batch twice.
//   - a splayed run (a schedule's --splay): each command is held until its own time.
//   - a continuous job: the station's job runner gives the command to nodes that match
//     later (AddTargets), once each, until the job is closed or expires.
//
// A held command stays queued in the command table; the dispatcher's gate parks it
// (Held) until its job releases it, and the caller then lets it go (CommandTable::Release).
//
//   JobTable jobs("station");
//   jobs.Add(job, now);                   // before its commands are submitted
//   ... submit ... jobs.Written(id, ok, work);
//   jobs.Tick(now, commands, changes, work);   // every 100 ms
//   for (proto::Job& j : work.writes) write j, then jobs.Written(j.id(), ok, work);
//
// Pure: no I/O and no clock of its own (every call is given `now`); decisions that the
// ledger must hold come back in Work for the caller to write, and take effect (a batch
// released) only once Written says they committed. A job with a write on its way decides
// nothing more until it lands. Not thread-safe: the station calls it under its model
// mutex.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/steward.pb.h"
#include "station/commands.h"

namespace steward::station {

// What became of one command, as a job counts it.
enum class Fate { kPending, kSucceeded, kFailed, kTimedOut, kNotAnswered, kCanceled };
Fate FateOf(proto::State s);
// Adds one command with fate `f` to `counts`.
void CountFate(Fate f, proto::JobCounts& counts);

// The batch sizes of a rollout of `total` targets, in order (the canary first).
std::vector<int> PlanBatches(const proto::RolloutSpec& spec, int total);
// The failures of `counts` as `spec` counts them (timed out and not answered only when
// the operator said so).
int Failures(const proto::RolloutSpec& spec, const proto::JobCounts& counts);
// Whether `failures` of `total` targets reach the abort criteria.
bool ShouldAbort(const proto::RolloutSpec& spec, int failures, int total);

class JobTable {
 public:
  // `station`: the name on the cancellations it makes.
  explicit JobTable(std::string station = "station") : station_(std::move(station)) {}

  // What the caller must do after a call, once it has released the model mutex (the
  // writes may be queued under it).
  struct Work {
    std::vector<std::string> release;  // held commands to let go (CommandTable::Release)
    std::vector<proto::Job> writes;   // records to write; then Written(id, ok)
    // Commands no longer in memory whose end a rollout must count: read their state
    // from the ledger, then Counted(job, id, state).
    std::vector<std::pair<std::string, std::string>> lookups;
    std::vector<std::string> log;  // what happened, for the station's log
  };

  // Whether the dispatcher must hold command `id` back.
  bool Held(const std::string& id) const { return holds_.contains(id); }
  size_t held() const { return holds_.size(); }

  // Add follows `job`, whose commands and record are being written (Written reports the
  // commit): from now on the commands of its batches not yet released, and those with a
  // release time after `now`, are held. A job with nothing to follow is not added.
  void Add(proto::Job job, absl::Time now);
  // Load follows an open job of the ledger at start; `states` are its commands' states.
  void Load(proto::Job job, const std::vector<proto::CommandState>& states, absl::Time now);
  // The record of an open job; null when it is not (finished, or unknown).
  const proto::Job* Find(const std::string& id) const;

  // Continuous jobs that may take nodes now (open, stored, no write on its way).
  std::vector<std::string> Continuous() const;
  // Whether continuous job `id` has given its command to `node` (or is giving it).
  bool Gave(const std::string& id, const std::string& node) const;
  // AddTargets: continuous job `id` gives its command to more nodes (their commands are
  // being submitted with the record returned). Precondition: `id` is in Continuous().
  proto::Job AddTargets(const std::string& id, std::vector<proto::JobTarget> targets);

  // Tick: rollouts count what ended and abort, wait, release or finish; held commands
  // whose time came are released; continuous jobs past their expiry close.
  void Tick(absl::Time now, CommandTable& commands, Changes& changes, Work& work);
  // Written reports the commit (or failure) of the last write of job `id`: a release
  // takes effect, targets added stay (or are taken back), a finished job is forgotten;
  // a failed write is made again by the next Tick.
  void Written(const std::string& id, bool ok, Work& work);
  // Counted: the ledger's state of a command that was not in memory (Work::lookups).
  void Counted(const std::string& job, const std::string& id, proto::State state);
  // Close stops job `id` as operator `by` asked: a continuous job takes no more nodes; a
  // rollout or splayed run releases nothing more and its undelivered commands end
  // canceled. NotFound when it is not open.
  absl::Status Close(const std::string& id, const std::string& by, absl::Time now, CommandTable& commands,
                     Changes& changes, Work& work);

 private:
  struct Entry {
    proto::Job job;
    std::vector<std::vector<std::string>> batches;   // command ids of each batch
    absl::flat_hash_map<std::string, Fate> counted;  // commands of released batches that ended
    absl::flat_hash_set<std::string> looking_up;     // read from the ledger right now
    absl::flat_hash_set<std::string> given;          // continuous: nodes that have the command
    bool stored = false;                             // the launch committed: its commands are in the table
    bool writing = false;                            // a write is on its way
    bool rewrite = false;                            // the last write failed
    bool release_pending = false;                    // the write on its way releases the last batch
    int adding = 0;                                  // the write on its way adds the last `adding` targets
  };
  struct Hold {
    std::string job;
    absl::Time until = absl::InfiniteFuture();  // a batch's hold: until its release
  };

  void Follow(Entry& e, absl::Time now, const std::vector<proto::CommandState>* states);
  void HoldBack(const Entry& e, const proto::JobTarget& t);
  // Release lets held command `id` go (Work::release); Drop forgets its hold.
  void Release(const std::string& id, Work& work);
  void Drop(const std::string& id);
  void Write(Entry& e, Work& work);
  void RolloutTick(Entry& e, absl::Time now, CommandTable& commands, Changes& changes, Work& work);
  // Ends `e` in `state` with `reason`; with `cancel`, its commands not delivered yet end
  // canceled with `reason`.
  void Stop(Entry& e, proto::JobState state, const std::string& reason, bool cancel, absl::Time now,
            CommandTable& commands, Changes& changes, Work& work);

  const std::string station_;
  absl::flat_hash_map<std::string, Entry> jobs_;        // open jobs
  absl::flat_hash_map<std::string, Hold> holds_;        // command id -> why it is held
  std::set<std::pair<absl::Time, std::string>> timed_;  // (until, command id) of timed holds
};

}  // namespace steward::station
