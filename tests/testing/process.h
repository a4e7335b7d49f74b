// Process: a child program started with argv, its stdout and stderr sent to files,
// stopped and reaped by its owner. For integration tests that drive the real
// steward-agent / steward-station / stewardctl binaries. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace steward::testing {

// Path of a binary built by this CMake tree, e.g. BinPath("agent/steward-agent").
std::string BinPath(const std::string& relative);

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  int term_signal = 0;
  std::string out;
  std::string err;
};

class Process {
 public:
  // Starts argv with extra environment entries; output goes to temporary files.
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
