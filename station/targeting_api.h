// TargetingApi: the operator methods of fleet targeting (README: "Targeting, rollouts
// and schedules").
//
//   targets   who a TargetSpec picks now, online and offline, with facts and tags
//   tag       set or remove operators' tags (audited), or show them and their history
//   launch    a send by target: recorded as a job with the expression and the nodes it
//             resolved to; optionally a staged rollout or a continuous job. Once per
//             request envelope: a repeat (its answer lost) gets the job it made
//             (station/repeats.h)
//   job       a job and what became of its commands (per batch for a rollout)
//   close     stop a job: a continuous job takes no more nodes; a rollout releases no
//             more batches
//   schedule  add, list, show, pause, resume, remove schedules (audited)
//
// Changes are answered once they are in the ledger.
#pragma once

#include "absl/status/statusor.h"
#include "station/core.h"
#include "station/job_runner.h"
#include "station/repeats.h"
#include "station/rpc.h"

namespace steward::station {

class TargetingApi {
 public:
  TargetingApi(Core& core, Rpc& rpc, JobRunner& runner);

  // A job's record with the counts of its commands (memory first, then the ledger).
  static absl::StatusOr<proto::JobReply> JobReplyOf(Core& core, proto::Job job);

 private:
  void Targets(const Call& call, proto::TargetsRequest req);
  void Tag(const Call& call, proto::TagRequest req);
  void Launch(const Call& call, proto::LaunchRequest req);
  // The answer to a repeated launch: the job `id` and the commands it made.
  void AnswerLaunched(const Call& call, const std::string& id);
  void Job(const Call& call, proto::JobRequest req);
  void Close(const Call& call, proto::CloseRequest req);
  void Schedule(const Call& call, proto::ScheduleRequest req);
  void AddSchedule(const Call& call, proto::Schedule s);
  void ShowSchedule(const Call& call, const std::string& name);

  Core& core_;
  Rpc& rpc_;
  JobRunner& runner_;
  Repeats repeats_;
};

}  // namespace steward::station
