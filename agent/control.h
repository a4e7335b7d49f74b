// AgentControl: what the agent's operations methods (status, process) may ask of the
// agent around them. The Agent implements it; a method sees it in its ExecContext.
//
// Thread-safe: methods of different subjects call it at once.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "proto/steward.pb.h"

namespace steward::agent {

class ConfigHost;
class DebugStreams;

class AgentControl {
 public:
  virtual ~AgentControl() = default;

  // Everything `stewardctl status` shows: processes, queues, outbox, inputs, resources.
  virtual proto::AgentStatus Status() const = 0;

  // Stops the command handler `name` ("method/domain"): its thread ends, commands for
  // it are rejected "stopped by operator", and it stays stopped across restarts of the
  // agent until started. A handler running a command is refused (FailedPrecondition)
  // unless `cancel_running` (then the command is killed and ends as canceled).
  // Returns a line saying what was done.
  virtual absl::StatusOr<std::string> StopHandler(const std::string& name, bool cancel_running) = 0;
  // Starts a stopped handler again (also one the error kernel stopped).
  virtual absl::StatusOr<std::string> StartHandler(const std::string& name) = 0;
  // The configuration (show, set, push); null when the agent runs without one (tests).
  virtual ConfigHost* config() const = 0;
  // Live streams of the agent's own log (the debug method); null where there are none.
  virtual DebugStreams* debug() const { return nullptr; }
};

}  // namespace steward::agent
