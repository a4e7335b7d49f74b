// Leftovers: the processes a command left running when its agent was killed (-9, OOM,
// power cut of the agent alone). A command runs in its own process group, so it
// outlives the agent; the restarted agent reports the command interrupted and, so that
// nothing keeps running that no one supervises or can cancel, stops what is left of it.
//
// A command's processes are found by the STEWARD_COMMAND_ID=<id> every command gets in
// its environment (agent/shellcommand.cc), which children inherit: the whole tree,
// also what changed its process group, unless it cleared its environment.
//
// A unit reinstalled (its data directory wiped, the same node name) has no command log
// that names what ran: RunningMarks keeps a mark per running command outside the data
// directory, in a run directory that only a reboot clears (/run, tmpfs), and the new
// installation stops what the marks name. A reboot ended those processes anyway.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace steward::agent {

// The pids whose environment holds STEWARD_COMMAND_ID=`command_id` (the caller's own
// process excluded), read from `proc`.
std::vector<pid_t> ProcessesOfCommand(const std::string& command_id, const std::string& proc = "/proc");
// Whether process `pid` is alive and not a zombie (a zombie has ended: only its parent's
// wait is missing).
bool ProcessAlive(pid_t pid, const std::string& proc = "/proc");

// Stops them: SIGTERM to each one's process group (and to the process), then SIGKILL to
// what is still there after `grace`. Returns how many were found.
int StopLeftovers(const std::string& command_id, absl::Duration grace = absl::Milliseconds(500),
                  const std::string& proc = "/proc");

// RunningMarks: an empty file per command whose method runs, named by its id, in
// <run_dir>/<the data directory's path, '/' as '-'> (one agent's marks apart from
// another's on the same host, whatever their node names). When the method returns (its
// process ended) the mark becomes "<id>.ended" until the result is recorded: an agent
// stopped in between (killed, or its disk full) knows the command's process had ended,
// and what it left running it left on purpose (a daemon it started). Marks are best
// effort, failing safe: a command whose mark cannot be written still runs, the first
// failure is logged, and without an ended mark a command counts as still running.
//
// Thread-safe.
class RunningMarks {
 public:
  // Creates the directory (mode 0700) when missing. An error names what failed.
  static absl::StatusOr<std::unique_ptr<RunningMarks>> Open(const std::string& run_dir,
                                                            const std::string& data_dir);
  // Removes the directory when no mark is left in it (a clean stop).
  ~RunningMarks();
  RunningMarks(const RunningMarks&) = delete;
  RunningMarks& operator=(const RunningMarks&) = delete;

  void Mark(const std::string& command_id);
  // Its process ended; its result is not recorded yet.
  void Ended(const std::string& command_id);
  // Its result is recorded: no mark is left.
  void Clear(const std::string& command_id);
  struct Marked {
    std::string id;
    bool ended = false;
  };
  // The commands marked, in no order.
  std::vector<Marked> List() const;
  const std::string& dir() const { return dir_; }

  // The directory's name for `data_dir` (made absolute): "var-lib-steward" for
  // /var/lib/steward; '-' and '%' in a name are written %2D and %25.
  static std::string NameFor(const std::string& data_dir);

 private:
  explicit RunningMarks(std::string dir) : dir_(std::move(dir)) {}
  const std::string dir_;
  absl::Mutex mu_;
  bool warned_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace steward::agent
