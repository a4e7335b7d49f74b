// Approvals: commands that need a second operator's yes before the station sends them
// (issue 13 part 4). A command sent with --require-approval, or matching an approval
// rule of its node or one of its groups (the ACL's syntax: "method" or
// "method:argv-glob"), is stored "awaiting_approval" and never sent until another
// operator approves it (four eyes: its submitter cannot decide it). The first decision
// wins: approve makes it "queued" (then it goes as any command), deny ends it
// "rejected"; with no decision before its approval expires (--approval-ttl, default 1 h)
// it ends "expired". Every decision, and every refused one, is an operator action in
// the audit; the live feed carries each state change, so every dashboard sees a request
// appear and go.
//
//   approvals       station.command.approvals.cli      ApprovalsRequest -> CommandStates
//   decide          station.command.decide.cli         DecideRequest -> CommandStates
//   approvalrules   station.command.approvalrules.cli  ApprovalRulesRequest -> AclReply
#pragma once

#include "station/core.h"
#include "station/rpc.h"

namespace steward::station {

inline constexpr int64_t kDefaultApprovalTtlMs = 3600 * 1000;

// Holds `s` (just built, not yet stored) for approval when its policy asks for it or a
// rule matches: state awaiting_approval, with why, until when, and who submitted it
// (`submitter`: Call::identity). Commands the station sends itself (setacl, cancel) are
// never held.
void HoldForApprovalLocked(const Model& model, proto::CommandState& s, absl::Time now, const std::string& submitter)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);
// ApplyControlRulesLocked applies the operators' policy rules to `s` (just built, not yet
// stored): an exclusive rule that matches makes it an exclusive job (ControlMarks says
// which rule; its priority and on_busy stay as sent: 0 and reject by default), then
// HoldForApprovalLocked.
void ApplyControlRulesLocked(const Model& model, proto::CommandState& s, absl::Time now,
                             const std::string& submitter) ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu);

class Approvals {
 public:
  Approvals(Core& core, Rpc& rpc);

 private:
  void List(const Call& call, proto::ApprovalsRequest req);
  void Decide(const Call& call, proto::DecideRequest req);
  void Rules(const Call& call, proto::ApprovalRulesRequest req);

  Core& core_;
  Rpc& rpc_;
};

}  // namespace steward::station
