// What the agent-operation verbs share (ctl/agentops.cc, ctl/copy.cc, ctl/debug.cc): one command to
// one node's agent method, through the station, waited for.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ctl/ctl.h"
#include "proto/steward.pb.h"

namespace steward::ctl {

// Submits `method` (domain "agent") with `argv` to one node through the station,
// waiting up to `wait` for its end (zero: only until the station stored it); the
// command expires unrun 30 s after --timeout.
absl::StatusOr<proto::SubmitReply> SubmitToNode(Client& client, const Globals& g, const std::string& node,
                                                const std::string& method, const std::vector<std::string>& argv,
                                                std::string payload, absl::Duration wait);

// Runs `method` (domain "agent") with `argv` on one node through the station and waits
// for its end (up to --timeout). Not terminal by then: DeadlineExceeded saying what it
// is doing. The command expires unrun shortly after the wait.
absl::StatusOr<proto::CommandState> RunOnNode(Client& client, const Globals& g, const std::string& node,
                                              const std::string& method, const std::vector<std::string>& argv,
                                              std::string payload = "");

// The node's refusal or failure as one line; "" when the command succeeded.
std::string Failure(const proto::CommandState& s);

// "1.5 MiB": a size for people.
std::string Bytes(uint64_t n);

}  // namespace steward::ctl
