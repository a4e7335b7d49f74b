// Runbook files (issue 13 part 5): the TOML an operator writes, read into a
// proto::Runbook, and the checks both stewardctl and the station make of one.
//
//   name = "radar-recovery"
//   priority = 5                      # for preemption; on_busy = "reject|queue|preempt"
//   [[step]]
//   name = "restart radar"
//   run = ["systemctl", "restart", "radar"]   # or: shell = "systemctl restart radar"
//   timeout = "60s"                   # the command's execution timeout
//   on_failure = "stop"               # or "continue"
//   [step.check]                      # optional: must succeed after the step
//   shell = "systemctl is-active radar"
//   retries = 5                       # further tries after a failed one
//   interval = "2s"                   # between tries, and between checks while observing
//   observe = "30s"                   # after its first success it must keep succeeding
//
// Unknown keys, wrong types, a step with no command or with both `run` and `shell`, and
// durations that do not parse are errors naming the file and the step.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/steward.pb.h"

namespace steward::runbook {

// The most steps a runbook may have, and tries of a check.
inline constexpr int kMaxSteps = 100;
inline constexpr int kMaxRetries = 1000;

// Parse reads runbook `text` (from `source`, for messages) and checks it (Validate).
absl::StatusOr<proto::Runbook> Parse(const std::string& text, const std::string& source);
// ParseFile reads and parses the file at `path`.
absl::StatusOr<proto::Runbook> ParseFile(const std::string& path);
// Validate says what is wrong with `rb`, for a runbook that did not come through Parse
// (the station checks what it is sent).
absl::Status Validate(const proto::Runbook& rb);

// The command template of a step or a check: method (default shellcommand) in the
// domain `operatingsystem`, argv, shell, timeout.
proto::Envelope ActionTemplate(const proto::RunbookAction& a);

// A run's state as text: "running", "succeeded", ...
const char* RunStateName(proto::RunState s);

// "step 2 (restart radar)", from 0-based `step`.
std::string StepName(const proto::Runbook& rb, int step);

}  // namespace steward::runbook
