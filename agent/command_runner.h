// CommandRunner: runs one command as argv (never re-parsed by a shell), in its own
// process group, with a working directory and environment, a deadline (SIGTERM to the
// whole group, then SIGKILL after a grace period), stdout and stderr captured
// separately up to a cap, and the exit status or signal. The interface is the seam
// agent tests use to substitute a fake; PosixCommandRunner is the real one.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace steward::agent {

// Where a command's output goes as it is produced (streamed output, agent/output_stream.h),
// besides the result. Called on the thread running the command only.
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  // Bytes just captured on `stream` (1 stdout, 2 stderr): only what the result keeps
  // (within max_output_bytes), so what a sink sees is a prefix of the final output.
  virtual void Add(int stream, absl::string_view data, absl::Time now) = 0;
  // When the sink wants Flush called (InfiniteFuture: nothing waits). The runner
  // wakes for it while the command runs; what is left when it ends comes with the
  // result only.
  virtual absl::Time FlushDue() const = 0;
  virtual void Flush(absl::Time now) = 0;
};

struct CommandSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH
  std::string working_dir;        // empty: the agent's own
  std::vector<std::string> env;   // KEY=VALUE, added to / replacing the agent's environment
  absl::Duration timeout = absl::Minutes(10);
  absl::Duration kill_grace = absl::Seconds(2);   // SIGTERM -> SIGKILL after a timeout
  absl::Duration cancel_grace = absl::Milliseconds(500);  // SIGTERM -> SIGKILL on cancel
  size_t max_output_bytes = size_t{1} << 20;      // per stream
  OutputSink* output = nullptr;                   // borrowed for the Run; may be null
};

struct CommandResult {
  bool exited = false;  // normal exit: exit_code is valid
  int exit_code = -1;
  int term_signal = 0;  // killed by this signal
  bool timed_out = false;
  bool canceled = false;
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  absl::Time started;
  absl::Time finished;
};

// Thread-compatible: one Run per thread at a time; Runs on different threads are fine.
class CommandRunner {
 public:
  virtual ~CommandRunner() = default;

  // Run executes `spec` to completion and reaps the child. When `cancel` (may be null)
  // is notified, the process group gets SIGTERM and, after spec.cancel_grace, SIGKILL;
  // the result then has canceled = true. Errors (the command did not run):
  // InvalidArgument for an empty argv or an env entry without '=', NotFound when the
  // program does not exist, another code (from errno) for other spawn failures.
  virtual absl::StatusOr<CommandResult> Run(const CommandSpec& spec,
                                            const absl::Notification* cancel) = 0;
};

std::unique_ptr<CommandRunner> NewPosixCommandRunner();

}  // namespace steward::agent
