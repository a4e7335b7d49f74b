// Targeting: nodes as target expressions see them (targets/expression.h), and what a
// TargetSpec (names, globs, @groups, every node; narrowed by --where) resolves to now.
//
// Names given as such are targets whatever the station knows of them (a command to a
// unit not installed yet waits for it, as a send to a list of names always did). Globs
// and "every node" pick among the nodes heard from and not pending (as --all does);
// @group picks the group's members (the ACL groups, station/access.h). The expression
// then keeps the nodes it matches.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/steward.pb.h"
#include "station/core.h"
#include "targets/expression.h"

namespace steward::station {

// Whether `node` is in maintenance (`stewardctl maintenance on NODE`: station/operations.h).
bool InMaintenance(const Model& model, const std::string& node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);

// A TargetSpec checked: its selectors valid, its expression parsed.
struct Target {
  proto::TargetSpec spec;
  targets::Expression where;
};
// CompileTarget checks `spec`; InvalidArgument says what is wrong ("--where: at column
// 5: ..."; "bad target \"a.b\": ...").
// What an operator launches on must be chosen: names, globs, @groups, --where, or
// --all alone. InvalidArgument for --all with names (--all takes every node), and for
// no choice at all (an empty list would mean every node).
absl::Status CheckChosenTarget(const proto::TargetSpec& spec);
absl::StatusOr<Target> CompileTarget(const proto::TargetSpec& spec);
// Both: for what launches on a stored target (a schedule's run, a continuous job).
absl::StatusOr<Target> CompileChosenTarget(const proto::TargetSpec& spec);

// Every node `target` names now, sorted.
std::vector<std::string> ResolveLocked(const Model& model, const Target& target)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);
// Whether a node that was heard from (not pending) is one `target` picks now. Names
// given as such are not asked (they are targets from the start).
bool PicksLocked(const Model& model, const Target& target, const std::string& node)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);

// `name` as targeting shows it: status, facts, tags, groups.
proto::TargetRow RowLocked(const Model& model, const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);

// "ship* where os == \"debian\"", "every node", for messages.
std::string Describe(const proto::TargetSpec& spec);

}  // namespace steward::station
