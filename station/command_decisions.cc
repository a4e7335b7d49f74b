// CommandTable's operator decisions: cancel (before delivery), stop (cancel, or ask the
// node to kill it), approve or deny (four eyes), and the station's own final word
// (Finish). Pure, as the rest of the table (commands.cc).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/protocol.h"
#include "common/time_text.h"
#include "station/commands.h"

namespace steward::station {

absl::Status CommandTable::CanCancel(const std::string& id) const {
  auto it = commands_.find(id);
  if (it == commands_.end()) return absl::NotFoundError(absl::StrCat("command ", id, " is not in memory"));
  const Command& c = it->second;
  if (IsTerminal(c.s.state())) {
    return absl::FailedPreconditionError(absl::StrCat("command ", id, " already ", StateName(c.s.state())));
  }
  if (c.s.state() == proto::STATE_RUNNING || c.in_flight) {
    return absl::FailedPreconditionError(
        absl::StrCat("command ", id, " was already delivered to ", c.s.node()));
  }
  return absl::OkStatus();
}

absl::Status CommandTable::Cancel(const std::string& id, absl::Time now, Changes& changes) {
  if (absl::Status st = CanCancel(id); !st.ok()) return st;
  SetState(*Get(id), proto::STATE_CANCELED, now, changes);
  return absl::OkStatus();
}

absl::StatusOr<bool> CommandTable::Stop(const std::string& id, const std::string& by, absl::Time now,
                                        Changes& changes) {
  Command* c = Get(id);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("command ", id, " is not in memory"));
  if (IsTerminal(c->s.state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("command ", id, " already finished: ", StateName(c->s.state())));
  }
  if ((Undelivered(c->s.state()) || AwaitsApproval(c->s)) && !c->in_flight) {
    proto::Ack r = NewAck(id, "", proto::STAGE_RESULT, proto::OUTCOME_CANCELED);
    r.set_error(AwaitsApproval(c->s) ? absl::StrCat("canceled by ", by, " while it awaited approval; never sent")
                               : absl::StrCat("canceled by ", by, " before it was delivered to ", c->s.node()));
    r.set_finished_unix_ms(absl::ToUnixMillis(now));
    *c->s.mutable_result() = std::move(r);
    const bool tell_node = AlsoTellNode(*c, by, now, changes);
    SetState(*c, proto::STATE_CANCELED, now, changes);
    return tell_node;
  }
  RequestKill(*c, by, now, changes);
  return true;
}

absl::Status CommandTable::Decide(const std::string& id, const std::string& by, const std::string& identity,
                                  bool approve, const std::string& comment, absl::Time now, Changes& changes) {
  Command* c = Get(id);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("command ", id, " is not in memory"));
  const proto::ApprovalMarks& a = c->s.marks().approval();
  if (!a.decided_by().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "command ", id, " was already ", a.approved() ? "approved" : "denied", " by ", a.decided_by(), " at ",
        UtcTextMs(a.decided_unix_ms()), a.comment().empty() ? "" : absl::StrCat(" (", a.comment(), ")")));
  }
  if (!AwaitsApproval(c->s)) {
    return absl::FailedPreconditionError(
        absl::StrCat("command ", id, " is not awaiting approval: it is ", StateName(c->s.state())));
  }
  if (identity == a.submitter()) {
    return absl::PermissionDeniedError(absl::StrCat("command ", id, " was submitted by ", by,
                                                    ": another operator must approve or deny it (four eyes)"));
  }
  proto::ApprovalMarks& m = *c->s.mutable_marks()->mutable_approval();
  m.set_decided_by(by);
  m.set_decided_unix_ms(absl::ToUnixMillis(now));
  m.set_approved(approve);
  m.set_comment(comment);
  if (approve) {
    c->next_attempt = now;
    SetState(*c, proto::STATE_QUEUED, now, changes);
    return absl::OkStatus();
  }
  proto::Ack r = NewAck(id, "", proto::STAGE_RESULT, proto::OUTCOME_REJECTED);
  r.set_error(absl::StrCat("denied by ", by, comment.empty() ? "" : absl::StrCat(": ", comment), "; never sent"));
  r.set_finished_unix_ms(absl::ToUnixMillis(now));
  *c->s.mutable_result() = std::move(r);
  SetState(*c, proto::STATE_REJECTED, now, changes);
  return absl::OkStatus();
}

std::vector<const proto::CommandState*> CommandTable::AwaitingApproval(const std::string& node) const {
  std::vector<const proto::CommandState*> out;
  for (const std::string& id : awaiting_) {
    auto it = commands_.find(id);
    if (it == commands_.end() || !AwaitsApproval(it->second.s)) continue;
    if (node.empty() || it->second.s.node() == node) out.push_back(&it->second.s);
  }
  std::sort(out.begin(), out.end(), [](const proto::CommandState* a, const proto::CommandState* b) {
    return std::make_pair(a->created_unix_ms(), a->id()) < std::make_pair(b->created_unix_ms(), b->id());
  });
  return out;
}

bool CommandTable::AlsoTellNode(Command& c, const std::string& by, absl::Time now, Changes& changes) {
  // Dispatched before without an answer (a timeout; one answered "no responders"
  // reached nobody): it may sit in the node's queue behind another command of its domain. The node records it canceled,
  // so it never runs there; the state here is already final.
  if (!c.maybe_delivered || !c.s.marks().cancel_by().empty()) return false;
  proto::ControlMarks& m = *c.s.mutable_marks();
  m.set_cancel_by(by);
  m.set_cancel_unix_ms(absl::ToUnixMillis(now));
  changes.kills.push_back(KillRequest{c.s.node(), c.s.id(), c.s.command().domain(), by});
  return true;
}

void CommandTable::RequestKill(Command& c, const std::string& by, absl::Time now, Changes& changes) {
  if (!c.s.marks().cancel_by().empty()) {  // asked already: its node answers that one
    Write(c, changes);                       // (a preemption mark may be new)
    return;
  }
  proto::ControlMarks& m = *c.s.mutable_marks();
  m.set_cancel_by(by);
  m.set_cancel_unix_ms(absl::ToUnixMillis(now));
  Write(c, changes);
  changes.kills.push_back(KillRequest{c.s.node(), c.s.id(), c.s.command().domain(), by});
}

void CommandTable::Finish(const std::string& id, proto::State state, proto::Ack result,
                          absl::Time now, Changes& changes) {
  Command* c = Get(id);
  if (c == nullptr) return;
  *c->s.mutable_result() = std::move(result);
  SetState(*c, state, now, changes);
}

}  // namespace steward::station
