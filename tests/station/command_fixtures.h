// A queued command for CommandTable tests (commands_test, control_test).
#pragma once

#include <cstdint>
#include <string>

#include "proto/steward.pb.h"

namespace steward::station {

inline proto::CommandState Queued(const std::string& id, const std::string& node = "ship1",
                                   int64_t expires_ms = 0, int64_t timeout_ms = 60'000) {
  proto::CommandState s;
  s.set_id(id);
  s.set_node(node);
  s.set_state(proto::STATE_QUEUED);
  s.mutable_command()->set_id(id);
  s.mutable_command()->set_to_node(node);
  s.mutable_command()->set_expires_unix_ms(expires_ms);
  s.mutable_command()->set_timeout_ms(timeout_ms);
  return s;
}

}  // namespace steward::station
