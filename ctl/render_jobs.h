// Text output of stewardctl's targeting subcommands (targets, tag, rollout, schedule),
// by the rules of render_text.h: remote text is escaped, tables are aligned.
#pragma once

#include <string>

#include "google/protobuf/repeated_ptr_field.h"
#include "proto/steward.pb.h"

namespace steward::ctl {

// "aborted: rollout aborted: 3 of 20 failed", "done", "open".
std::string JobStateText(const proto::Job& job);
// A command's argv as typed ("shellcommand" left out, another method named first).
std::string Argv(const proto::Envelope& cmd);
// A runbook job: each target's run, then each of its commands (step, check tries).
std::string RunbookDetails(const proto::Job& job,
                           const google::protobuf::RepeatedPtrField<proto::CommandState>& states);
// "1 node", "20 nodes".
std::string Nodes(int n);
// "6 succeeded, 1 failed, 13 pending" ("nothing yet" when there are no targets).
std::string CountsText(const proto::JobCounts& counts);

// One row per node: NODE STATUS OS ARCH AGENT TAGS, then how many match.
std::string TargetTable(const proto::TargetsReply& reply);
// One line per node: its tags, then the recorded changes (newest first).
std::string TagLines(const proto::TagReply& reply);
// A job: what it targets and sends, its state, its counts (per batch for a rollout).
std::string JobDetails(const proto::JobReply& reply);
// One row per schedule: NAME STATE CRON ZONE NEXT LAST-RUN TARGET COMMAND.
std::string ScheduleTable(const google::protobuf::RepeatedPtrField<proto::Schedule>& schedules);
// One schedule: its definition, its recent runs and its recorded changes.
std::string ScheduleDetails(const proto::ScheduleReply& reply);

}  // namespace steward::ctl
