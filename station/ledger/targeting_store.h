// What targeting keeps in the ledger (schema step 6): operators' tags on nodes, jobs
// (a send by target, with what it resolved to and how far a rollout got), schedules.
// Operators' changes to them are operator actions (surfaces.h: ActionsOf), in the audit
// with every other.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/steward.pb.h"
#include "station/ledger/store.h"

namespace steward::station::ledger {

// Replaces every tag of `node` with `tags`.
Store::Op PutTags(std::string node, std::map<std::string, std::string> tags);
absl::StatusOr<std::vector<std::tuple<std::string, std::string, std::string>>> Tags(Store& store);

// Inserts or replaces a job's record (open ones are loaded at start).
Store::Op PutJob(proto::Job job);
absl::StatusOr<std::optional<proto::Job>> GetJob(Store& store, const std::string& id);
absl::StatusOr<std::vector<proto::Job>> OpenJobs(Store& store);
// The runs of schedule `name`, newest first.
absl::StatusOr<std::vector<proto::Job>> Runs(Store& store, const std::string& name, int limit);

Store::Op PutSchedule(proto::Schedule s);
Store::Op DeleteSchedule(std::string name);
// Records that schedule `name` made run `run_id` for `at_ms`, in the stored record (a
// pause or resume written meanwhile stays).
Store::Op ScheduleRan(std::string name, int64_t at_ms, std::string run_id);
absl::StatusOr<std::vector<proto::Schedule>> Schedules(Store& store);

}  // namespace steward::station::ledger
