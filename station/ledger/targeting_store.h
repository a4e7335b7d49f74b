// What targeting keeps in the ledger (schema step 4): operators' tags on nodes, jobs
// (a send by target, with what it resolved to and how far a rollout got), schedules,
// and the audit of operators' changes to them.
//
// Audit events: until the ledger has an audit table of its own (issue 10), they are
// rows of `events` with method "audit", the kind of change as domain ("tag",
// "schedule", "job") and what changed (a node, a schedule, a job id) in `node`; the
// payload is a proto::AuditEvent. AddAudit and Audit are the only code that knows this.
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

// An audit event made now: `op` did `action` ("tag set") to `subject` (a node, a
// schedule, a job); `detail` says how.
proto::AuditEvent NewAudit(std::string op, std::string action, std::string subject, std::string detail = "");
// Records an operator's change of kind `domain` ("tag", "schedule", "job").
Store::Op AddAudit(std::string domain, proto::AuditEvent ev);
// The changes of kind `domain` to `subjects` (all of that kind when empty), newest first.
absl::StatusOr<std::vector<proto::AuditEvent>> Audit(Store& store, const std::string& domain,
                                                     const std::vector<std::string>& subjects, int limit);

}  // namespace steward::station::ledger
