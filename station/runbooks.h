// RunbookTable: runbook jobs (proto/runbook.proto) the station is running.
//
// A runbook job runs its steps in order on each of its targets, one run per target,
// as one exclusive job: every step (and every try of a step's check) is a command in
// the ledger under the job's id (request id), exclusive with ControlPolicy.slot_job set
// to the job, so the job keeps the node's slot from its first step's admission to the
// end of the run (CommandTable::SlotJob), between steps too. A run ends:
//   succeeded  every step passed (one that failed with on_failure = continue is noted)
//   failed     a step failed, or its check did not pass, with on_failure = stop
//   busy       the first step found the slot taken (the runbook's on_busy = reject)
//   preempted  a higher-priority exclusive command took the slot (during a step: the
//              step is stopped on the node and ends preempted; between steps: no more
//              step is made)
//   canceled   an operator closed the job (stewardctl cancel JOB / close JOB): the
//              running step is stopped on the node, no more step is made
//
// Where a run is comes from its commands alone (Decide): which were made, and how each
// ended. Nothing else about progress is written; the job's record is written at launch
// and at its end. A station that restarts loads the job's commands and goes on from
// there: a step whose command is in the ledger is never made again, so never runs
// twice; a command is made only after the one before it is terminal.
//
//   RunbookTable runbooks;
//   runbooks.Add(job);                                  // launched: its record is stored
//   runbooks.Tick(now, commands, changes, work);        // every 100 ms
//   for (Make& m : work.make) submit m's command, then runbooks.Made(...)
//   for (proto::Job& j : work.writes) write j, then runbooks.Written(j.id(), ok)
//
// Pure: no I/O, no clock (every call is given `now`). Not thread-safe: the station
// calls it under its model mutex.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/steward.pb.h"
#include "station/commands.h"

namespace steward::station {

// A command a run made, as the run sees it.
struct RunbookCommand {
  std::string id;
  proto::RunbookStepRef ref;
  proto::State state = proto::STATE_QUEUED;
  absl::Time finished = absl::InfiniteFuture();
  std::string error;  // its result's error, when it has one
};

// What a run does next.
struct RunbookNext {
  enum Kind { kWait, kMake, kEnd } kind = kWait;
  proto::RunbookStepRef ref;                 // kMake: the command to make
  absl::Time at = absl::InfinitePast();      // kMake: not before
  proto::RunState state = proto::RUN_RUNNING;  // kEnd
  std::string reason;                        // kEnd: why; else what it is at
  int step = 0;                              // the step it is at
};

// Decide reads where a run is from the commands it made (in the order made) and says
// what comes next. Pure.
RunbookNext Decide(const proto::Runbook& rb, const std::vector<RunbookCommand>& made, absl::Time now);

class RunbookTable {
 public:
  // A command to make for a run: the step's (or its check's) action, exclusive under
  // the job's slot, submitted under the job's id.
  struct Make {
    std::string job;
    std::string node;
    proto::RunbookStepRef ref;
    proto::Envelope command;  // the template (method, argv, shell, timeout)
    proto::ControlPolicy control;
    std::string op;
  };
  struct Work {
    std::vector<Make> make;           // submit each, then Made()
    std::vector<proto::Job> writes;   // write each, then Written()
    std::vector<proto::Job> progress; // write each (a run ended; the job goes on)
    std::vector<std::string> log;     // for the station's log
  };

  // Add follows runbook job `job` (launched: its record is stored).
  void Add(proto::Job job);
  // Load follows an open runbook job of the ledger at start, from its commands'
  // states; a run that has begun keeps its node's slot again.
  void Load(proto::Job job, const std::vector<proto::CommandState>& states, CommandTable& commands);
  // The record of an open runbook job, with each run's progress; null when not open.
  const proto::Job* Find(const std::string& id) const;
  bool empty() const { return jobs_.empty(); }

  // Tick follows each run: reads its commands' states, and makes the next command,
  // ends the run (letting its node's slot go), or waits; a job whose runs all ended is
  // written finished.
  void Tick(absl::Time now, CommandTable& commands, Work& work);
  // Made reports the submit of a Make: committed (`id`), or failed (made again later).
  // A command made for a run that ended meanwhile (closed) is stopped at once.
  void Made(const std::string& job, const std::string& node, const std::string& id,
            const proto::RunbookStepRef& ref, bool ok, absl::Time now, CommandTable& commands, Changes& changes);
  // Written reports the commit of job `id`'s final record: the job is forgotten (or
  // written again by the next Tick when it failed).
  // (Work::progress, a record written while the job goes on, needs no report.)
  void Written(const std::string& id, bool ok);
  // Close stops job `id` for operator `by`: running steps are stopped on their nodes
  // (CommandTable::Stop), no step is made any more, each unfinished run ends canceled.
  // NotFound when it is not an open runbook job.
  absl::Status Close(const std::string& id, const std::string& by, absl::Time now, CommandTable& commands,
                     Changes& changes, Work& work);

 private:
  struct Run {
    std::string node;
    std::vector<RunbookCommand> made;
    bool making = false;  // a Make is on its way
  };
  struct Entry {
    proto::Job job;          // job.runs() says how each run goes
    std::vector<Run> runs;   // as job.targets()
    bool writing = false;          // the final record is on its way
    bool ended_unwritten = false;  // a run ended since the record was last written
  };

  void End(Entry& e, size_t i, proto::RunState state, const std::string& reason, int step, absl::Time now,
           CommandTable& commands, Work& work);
  void MaybeFinish(Entry& e, absl::Time now, Work& work);

  absl::flat_hash_map<std::string, Entry> jobs_;
};

}  // namespace steward::station
