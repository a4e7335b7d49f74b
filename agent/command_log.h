// CommandLog: what the agent knows about each command id it has seen, so a redelivered
// command is never run twice and is answered with what was recorded. The memory
// implementation forgets on restart and keeps the newest `capacity` ids.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "proto/steward.pb.h"

namespace steward::agent {

// Implementations are thread-safe.
class CommandLog {
 public:
  virtual ~CommandLog() = default;
  // The latest ACK recorded for `id` (RECEIVED while running, then the RESULT).
  virtual std::optional<proto::Ack> Lookup(const std::string& id) = 0;
  virtual absl::Status Record(const proto::Ack& ack) = 0;
};

std::unique_ptr<CommandLog> NewMemoryCommandLog(size_t capacity = 100000);

}  // namespace steward::agent
