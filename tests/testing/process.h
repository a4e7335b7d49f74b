// Child programs for tests and benchmarks (no Catch2 here: bench/ links it too).
//
// StartChild is the one fork/exec: argv[0] looked up in PATH first, stdin from
// /dev/null, stdout and stderr to files (or inherited), extra environment entries, an
// empty signal mask, and optionally death with the parent (PR_SET_PDEATHSIG). The
// child runs only async-signal-safe calls before exec, so it is safe from a process
// with threads.
//
// Process: a child started with argv, its stdout and stderr sent to files, stopped and
// reaped by its owner. For integration tests that drive the real steward-agent /
// steward-station / stewardctl binaries. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace steward::testing {

// Path of a binary built by this CMake tree, e.g. BinPath("agent/steward-agent").
std::string BinPath(const std::string& relative);

// `name` as execvp would find it: itself when it holds a '/', else the first
// executable of that name in PATH. NotFound otherwise.
absl::StatusOr<std::string> FindProgram(const std::string& name);

struct ChildOptions {
  std::vector<std::string> argv;            // argv[0]: a path, or a name looked up in PATH
  std::map<std::string, std::string> env;   // added to (or replacing in) this environment
  std::string stdout_path;                  // "": this process's stdout
  std::string stderr_path;                  // "": this process's stderr; may equal stdout_path
  bool append = false;                      // append to the files instead of truncating them
  bool die_with_parent = false;             // SIGKILL when this process dies, however it dies
};

// Starts the child; the caller reaps it. NotFound when the program is not there. A
// child that cannot open its files or exec writes why to its stderr and exits 127.
absl::StatusOr<pid_t> StartChild(const ChildOptions& options);

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  int term_signal = 0;
  std::string out;
  std::string err;
};

class Process {
 public:
  // Starts argv with extra environment entries; output goes to temporary files.
  // Throws std::runtime_error when it cannot start.
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env = {});
  ~Process();  // SIGKILL and reap if still running.
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Wait up to `timeout` for exit; nullopt if still running.
  std::optional<RunResult> Wait(absl::Duration timeout);
  std::string Stdout() const;
  std::string Stderr() const;
  // Waits until stderr or stdout contains `text`; false on timeout.
  bool WaitForOutput(const std::string& text, absl::Duration timeout);

 private:
  pid_t pid_ = -1;
  std::string out_path_;
  std::string err_path_;
  std::optional<RunResult> result_;
};

// Run a program to completion (killing it after `timeout`) and return its output.
RunResult RunProgram(std::vector<std::string> argv, absl::Duration timeout = absl::Seconds(30),
                     std::map<std::string, std::string> env = {});

}  // namespace steward::testing
