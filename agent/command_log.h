// CommandLog: what the agent knows about each command id it has seen, so a redelivered
// command is never run twice and is answered with what was recorded. The memory
// implementation forgets on restart and keeps the newest `capacity` ids.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/outbox.h"
#include "proto/steward.pb.h"

namespace steward::agent {

// Implementations are thread-safe.
class CommandLog {
 public:
  virtual ~CommandLog() = default;
  // The latest ACK recorded for `id` (RECEIVED while running, then the RESULT).
  virtual std::optional<proto::Ack> Lookup(const std::string& id) = 0;
  virtual absl::Status Record(const proto::Ack& ack) = 0;
  // RecordIfNew records `received` unless its id is in the log already, and then
  // returns what was recorded instead (the command must not run again). The default
  // is Lookup, then Record; implementations do it in one step.
  virtual absl::StatusOr<std::optional<proto::Ack>> RecordIfNew(const proto::Ack& received);
  // RecordAndSpool records a RESULT `ack` and puts `item` (the event carrying it) in
  // `spool`. A log and spool of one AgentStore do both in one transaction: cheaper,
  // and a crash cannot leave the result recorded but never sent. The default records,
  // then puts (a failed put leaves the result recorded: a redelivery gets it).
  virtual absl::Status RecordAndSpool(const proto::Ack& ack, Spool& spool, const OutboxItem& item);
  // RecordAll records each of `acks`, in order. An error means some may not be
  // recorded. The AgentStore's log writes them in one transaction (all or none), one
  // commit for a batch's quick results; the default records them one by one.
  virtual absl::Status RecordAll(const std::vector<proto::Ack>& acks);
};

std::unique_ptr<CommandLog> NewMemoryCommandLog(size_t capacity = 100000);

}  // namespace steward::agent
