#include "station/approvals.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/command_rule.h"
#include "common/protocol.h"
#include "station/operations.h"
#include "subjects/subject.h"

namespace steward::station {

void HoldForApprovalLocked(const Model& model, proto::CommandState& s, absl::Time now, const std::string& submitter) {
  const proto::Envelope& c = s.command();
  if (c.method() == kMethodSetAcl || c.method() == kMethodCancel) return;
  std::string reason = s.control().require_approval() ? "--require-approval" : "";
  if (reason.empty()) reason = model.access.PolicyRuleFor(AccessRules::Policy::kApproval, s.node(), c);
  if (reason.empty()) return;
  const int64_t ttl = s.control().approval_ttl_ms() > 0 ? s.control().approval_ttl_ms() : kDefaultApprovalTtlMs;
  proto::ApprovalMarks& m = *s.mutable_marks()->mutable_approval();
  m.set_required(true);
  m.set_reason(reason);
  m.set_expires_unix_ms(absl::ToUnixMillis(now) + ttl);
  m.set_submitter(submitter);
  s.set_state(proto::STATE_AWAITING_APPROVAL);
}

void ApplyControlRulesLocked(const Model& model, proto::CommandState& s, absl::Time now,
                             const std::string& submitter) {
  const proto::Envelope& c = s.command();
  if (!s.control().exclusive() && c.method() != kMethodSetAcl && c.method() != kMethodCancel) {
    std::string rule = model.access.PolicyRuleFor(AccessRules::Policy::kExclusive, s.node(), c);
    if (!rule.empty()) {
      s.mutable_control()->set_exclusive(true);
      s.mutable_marks()->set_exclusive_rule(std::move(rule));
    }
  }
  HoldForApprovalLocked(model, s, now, submitter);
}

Approvals::Approvals(Core& core, Rpc& rpc) : core_(core), rpc_(rpc) {
  rpc.Handle<proto::ApprovalsRequest>(kStationApprovals, [this](const Call& c, proto::ApprovalsRequest r) {
    List(c, std::move(r));
  });
  rpc.Handle<proto::DecideRequest>(kStationDecide, [this](const Call& c, proto::DecideRequest r) {
    Decide(c, std::move(r));
  });
  rpc.Handle<proto::ApprovalRulesRequest>(kStationApprovalRules, [this](const Call& c, proto::ApprovalRulesRequest r) {
    Rules(c, std::move(r));
  });
}

void Approvals::List(const Call& call, proto::ApprovalsRequest req) {
  proto::CommandStates out;
  {
    absl::MutexLock lock(&core_.model.mu);
    for (const proto::CommandState* s : core_.model.commands.AwaitingApproval(req.node())) {
      *out.add_commands() = *s;
    }
  }
  rpc_.Ok(call, out);
}

void Approvals::Decide(const Call& call, proto::DecideRequest req) {
  std::vector<std::string> ids(req.ids().begin(), req.ids().end());
  if (ids.empty()) return rpc_.Reject(call, "no command to decide");
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const char* action = req.approve() ? "approve" : "deny";
  if (call.op().empty() || call.op() == "unknown" || absl::StartsWith(call.op(), "http (")) {
    RecordAction(core_, call, action, ids.front(), "", "refused: no named operator");
    return rpc_.Reject(call, "a decision needs a named operator (an HTTP token, or stewardctl with $USER or operator keys)");
  }
  if (!req.approve() && req.comment().empty()) {
    return rpc_.Reject(call, "a denial needs a reason (--reason): the submitter reads it");
  }
  proto::CommandStates out;
  std::string refused;
  std::map<std::string, uint64_t> seqs;
  {
    absl::MutexLock lock(&core_.model.mu);
    // All or nothing: every id is checked before any is decided, under the lock that
    // decides them, so two operators racing get one winner and one clear refusal.
    for (const std::string& id : ids) {
      const proto::CommandState* s = core_.model.commands.Find(id);
      if (s == nullptr) {
        refused = absl::StrCat("command ", id, " is not awaiting approval (unknown, or finished long ago: ",
                               "stewardctl show ", id, ")");
        break;
      }
      const proto::ApprovalMarks& a = s->marks().approval();
      if (!a.decided_by().empty() || s->state() != proto::STATE_AWAITING_APPROVAL) {
        Changes none;
        refused = std::string(
            core_.model.commands.Decide(id, call.op(), call.identity(), req.approve(), "", absl::Now(), none)
                .message());
        break;
      }
      if (a.submitter() == call.identity()) {
        refused = absl::StrCat("command ", id, " was submitted by ", call.op(),
                               ": another operator must approve or deny it (four eyes)");
        break;
      }
    }
    if (refused.empty()) {
      Changes changes;
      const absl::Time now = absl::Now();
      for (const std::string& id : ids) {
        if (absl::Status st =
                core_.model.commands.Decide(id, call.op(), call.identity(), req.approve(), req.comment(), now, changes);
            !st.ok()) {
          refused = std::string(st.message());  // cannot happen: checked above under this lock
          break;
        }
        *out.add_commands() = *core_.model.commands.Find(id);
      }
      for (const CommandWrite& w : changes.writes) seqs[w.record.id()] = w.seq;
      core_.ApplyLocked(changes);
      if (core_.model.commands.TakeSooner()) core_.model.wake = true;
    }
  }
  if (!refused.empty()) {
    for (const std::string& id : ids) RecordAction(core_, call, action, id, req.comment(), refused);
    return rpc_.Reject(call, refused);
  }
  for (const proto::CommandState& s : out.commands()) {
    RecordAction(core_, call, action, s.id(),
                 absl::StrCat(s.node(), " ", CommandShownText(s.command()).substr(0, 1000),
                              req.comment().empty() ? "" : absl::StrCat(": ", req.comment())));
  }
  rpc_.OkWhenDurable(call, out, std::move(seqs), "the decision");
}

void Approvals::Rules(const Call& call, proto::ApprovalRulesRequest req) {
  const bool group = absl::StartsWith(req.target(), "@");
  if (absl::Status st = subjects::ValidateToken(group ? req.target().substr(1) : req.target()); !st.ok()) {
    return rpc_.Reject(call, st.message());
  }
  for (const std::string& r : req.rules()) {
    if (absl::Status st = ValidateCommandRule(r); !st.ok()) return rpc_.Reject(call, st.message());
  }
  const AccessRules::Policy policy = req.exclusive() ? AccessRules::Policy::kExclusive : AccessRules::Policy::kApproval;
  proto::AclReply out;
  {
    absl::MutexLock lock(&core_.model.mu);
    AccessRules& access = core_.model.access;
    if (!req.show()) {
      std::vector<std::string> rules(req.rules().begin(), req.rules().end());
      auto [key, value] = AccessRules::PolicySetting(policy, req.target(), rules);
      core_.store().Write(ledger::Store::PutSetting(std::move(key), std::move(value)));
      access.SetPolicyRules(policy, req.target(), std::move(rules));
    }
    const std::vector<std::string>& rules = access.PolicyRules(policy, req.target());
    if (req.exclusive()) {
      out.add_lines(absl::StrCat(req.target(), " runs as exclusive jobs: ",
                                 rules.empty() ? "only what is sent --exclusive (no exclusive rule)"
                                               : absl::StrJoin(rules, " ")));
    } else {
      out.add_lines(absl::StrCat(req.target(), " needs approval for: ",
                                 rules.empty() ? "nothing (no approval rule)" : absl::StrJoin(rules, " ")));
    }
  }
  if (req.show()) return rpc_.Ok(call, out);
  RecordAction(core_, call, req.exclusive() ? "exclusive-rules" : "approval-rules", req.target(),
               req.rules().empty() ? "cleared" : absl::StrJoin(req.rules(), " "));
  rpc_.OkWhenStored(call, out);
}

}  // namespace steward::station
