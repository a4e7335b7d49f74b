// The ledger's tables of the operator surfaces (schema step 4): the operator actions
// (pause, maintenance, tokens, HTTP writes; the audit besides commands) and the HTTP
// tokens (by the SHA-256 of their secret; the secret itself is never stored). Also
// the errorlog events of a node, for its HTTP page.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/steward.pb.h"
#include "station/ledger/store.h"

namespace steward::station::ledger {

Store::Op AddAction(proto::OperatorAction action);
// The kind of an action: its first word ("tag" of "tag set", "schedule" of "schedule add").
std::string ActionKind(absl::string_view action);
// Newest first: the actions of `kind` on `targets` (every target when empty), at most
// `limit` (the audit of tags, schedules and jobs).
absl::StatusOr<std::vector<proto::OperatorAction>> ActionsOf(Store& store, const std::string& kind,
                                                             const std::vector<std::string>& targets, int limit);
// Newest first: actions older than `before_ms` (0: any), by `op` (substring, "" any),
// on `target` ("" any), at most `limit`.
absl::StatusOr<std::vector<proto::OperatorAction>> Actions(Store& store, int64_t before_ms,
                                                           const std::string& op,
                                                           const std::string& target, int limit);

Store::Op PutToken(std::string hash, proto::TokenInfo info);
Store::Op DeleteToken(std::string id);
// Every token: (SHA-256 of the secret, its record).
absl::StatusOr<std::vector<std::pair<std::string, proto::TokenInfo>>> Tokens(Store& store);

// The node's last `limit` events of `method` (e.g. errorlog), newest first: their
// payloads, with when they were created.
absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> NodeEvents(Store& store, const std::string& node,
                                                                       const std::string& method, int limit);

}  // namespace steward::station::ledger
