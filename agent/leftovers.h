// Leftovers: the processes a command left running when its agent was killed (-9, OOM,
// power cut of the agent alone). A command runs in its own process group, so it
// outlives the agent; the restarted agent reports the command interrupted and, so that
// nothing keeps running that no one supervises or can cancel, stops what is left of it.
//
// A command's processes are found by the STEWARD_COMMAND_ID=<id> every command gets in
// its environment (agent/shellcommand.cc), which children inherit: the whole tree,
// also what changed its process group, unless it cleared its environment.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace steward::agent {

// The pids whose environment holds STEWARD_COMMAND_ID=`command_id` (the caller's own
// process excluded), read from `proc`.
std::vector<pid_t> ProcessesOfCommand(const std::string& command_id, const std::string& proc = "/proc");

// Stops them: SIGTERM to each one's process group (and to the process), then SIGKILL to
// what is still there after `grace`. Returns how many were found.
int StopLeftovers(const std::string& command_id, absl::Duration grace = absl::Milliseconds(500),
                  const std::string& proc = "/proc");

}  // namespace steward::agent
