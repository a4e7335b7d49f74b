// Spawning child programs the one way steward does it (the agent's commands, the
// station's openssl): posix_spawnp with argv only (never a shell; argv[0] is looked
// up in PATH), stdin from /dev/null, stdout and stderr on descriptors the caller
// gives, an empty signal mask and default dispositions for the signals the daemons
// block or ignore (SIGINT, SIGTERM, SIGPIPE, SIGCHLD), optionally in a process group of
// its own and another working directory. The caller waits for the child.
//
//   STEWARD_ASSIGN_OR_RETURN(SpawnPipe out, MakeSpawnPipe());
//   STEWARD_ASSIGN_OR_RETURN(pid_t pid, SpawnProcess({.argv = {"openssl", "version"},
//                                                     .stdout_fd = out.write.get(),
//                                                     .stderr_fd = out.write.get()},
//                                                    "cannot run openssl"));
//   out.write.Reset();  // then read out.read to EOF, and waitpid(pid)
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"

namespace steward {

struct SpawnOptions {
  std::vector<std::string> argv;  // not empty; argv[0] is looked up in PATH
  // KEY=VALUE entries, the whole environment; nullopt: this process's.
  std::optional<std::vector<std::string>> env;
  int stdout_fd = -1;  // -1: this process's
  int stderr_fd = -1;
  std::string working_dir;  // "": this process's
  // In a process group of its own (pgid = its pid), so the group can be signalled.
  bool new_process_group = false;
};

// Starts the child and returns its pid. When it cannot start (the program or the
// working directory does not exist: NotFound, and the like) the error is
// ErrnoToStatus(errno, what).
absl::StatusOr<pid_t> SpawnProcess(const SpawnOptions& options, absl::string_view what);

// A pipe for a child's output: both ends close-on-exec, and above 2, so the spawn's
// own redirections of 0 to 2 cannot clobber them when this process runs with a
// standard descriptor closed.
struct SpawnPipe {
  UniqueFd read;
  UniqueFd write;
};
absl::StatusOr<SpawnPipe> MakeSpawnPipe();

}  // namespace steward
