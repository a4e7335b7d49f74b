// CommandTable's job slots (issue 13): one exclusive job per node at a time; the
// others are refused (busy), queued by priority, or preempt the holder. Pure, as the
// rest of the table (commands.cc).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/protocol.h"
#include "station/commands.h"

namespace steward::station {
namespace {

// What an operator recognises a command by: its argv (cut), else its method.
std::string Label(const proto::CommandState& s) {
  std::string text;
  for (const std::string& a : s.command().argv()) absl::StrAppend(&text, text.empty() ? "" : " ", a);
  if (text.empty()) text = s.command().method();
  if (text.size() > 60) text = absl::StrCat(text.substr(0, 57), "...");
  return text;
}

}  // namespace

std::string CommandTable::SlotHolder(const std::string& node) const {
  auto it = slots_.find(node);
  return it == slots_.end() ? "" : it->second.holder;
}

std::vector<std::string> CommandTable::SlotQueue(const std::string& node) const {
  std::vector<std::string> out;
  auto it = slots_.find(node);
  if (it == slots_.end()) return out;
  for (const auto& [prio, id] : it->second.queue) out.push_back(id);
  return out;
}

std::string CommandTable::SlotJob(const std::string& node) const {
  auto it = slots_.find(node);
  return it == slots_.end() ? "" : it->second.job;
}

void CommandTable::AllowJob(const std::string& node, const std::string& job) {
  live_jobs_.insert(absl::StrCat(job, "/", node));
}

void CommandTable::Reserve(const std::string& node, const std::string& job, int32_t priority) {
  AllowJob(node, job);
  Slot& slot = slots_[node];
  if (!slot.job.empty() && slot.job != job) return;
  if (!slot.holder.empty()) {
    const Command* h = Get(slot.holder);
    if (h != nullptr && h->s.control().slot_job() != job) return;  // another job's command runs
  }
  slot.job = job;
  slot.job_priority = priority;
}

void CommandTable::ReleaseJob(const std::string& node, const std::string& job, absl::Time now) {
  job_preemptions_.erase(absl::StrCat(job, "/", node));
  live_jobs_.erase(absl::StrCat(job, "/", node));
  auto it = slots_.find(node);
  if (it == slots_.end() || it->second.job != job) return;
  it->second.job.clear();
  Advance(node, now);
}

std::string CommandTable::TakeJobPreemption(const std::string& job, const std::string& node) {
  auto it = job_preemptions_.find(absl::StrCat(job, "/", node));
  if (it == job_preemptions_.end()) return "";
  std::string by = std::move(it->second);
  job_preemptions_.erase(it);
  return by;
}

void CommandTable::PreemptJob(Slot& slot, const std::string& node, const std::string& by) {
  job_preemptions_[absl::StrCat(slot.job, "/", node)] = by;
  live_jobs_.erase(absl::StrCat(slot.job, "/", node));
  slot.job.clear();
}

std::string CommandTable::BusyText(const std::string& node, absl::Time now) const {
  auto it = slots_.find(node);
  if (it == slots_.end()) return absl::StrCat(node, " is busy");
  const Slot& slot = it->second;
  std::string first = slot.holder;
  if (first.empty() && !slot.job.empty()) {  // a runbook between two of its steps
    std::string text = absl::StrCat(node, " is busy with runbook job ", slot.job, " (between steps, priority ",
                                    slot.job_priority, ")");
    if (!slot.queue.empty()) absl::StrAppend(&text, "; ", slot.queue.size(), " more queued");
    return text;
  }
  if (first.empty() && !slot.queue.empty()) first = slot.queue.begin()->second;
  auto c = commands_.find(first);
  if (c == commands_.end()) return absl::StrCat(node, " is busy");
  const proto::CommandState& h = c->second.s;
  const int64_t seconds = std::max<int64_t>(0, (absl::ToUnixMillis(now) - h.updated_unix_ms()) / 1000);
  std::string text = absl::StrCat(node, " is busy with ", h.id(), " (", Label(h), ", ", StateName(h.state()), " ",
                                  seconds, "s, priority ", h.control().priority(), ")");
  if (!h.control().slot_job().empty()) absl::StrAppend(&text, ", a step of runbook job ", h.control().slot_job());
  const size_t waiting = slot.queue.size();
  if (waiting > 0) absl::StrAppend(&text, "; ", waiting, " more queued");
  return text;
}

CommandTable::Admission CommandTable::Admit(Command& c, absl::Time now, Changes& changes) {
  const std::string& id = c.s.id();
  const std::string& node = c.s.node();
  Slot& slot = slots_[node];
  const proto::ControlPolicy& p = c.s.control();
  if (c.admitted) {
    if (slot.holder == id) return Admission::kGo;
    c.next_attempt = absl::InfiniteFuture();  // made due by an Unpark: still waiting
    return Admission::kWait;
  }
  // A runbook's step whose run ended meanwhile (closed, preempted between steps) never
  // runs: its runner made it before it knew.
  if (!p.slot_job().empty() && !live_jobs_.contains(absl::StrCat(p.slot_job(), "/", node))) {
    proto::Ack r = NewAck(id, "", proto::STAGE_RESULT, proto::OUTCOME_REJECTED);
    r.set_error(absl::StrCat("runbook job ", p.slot_job(), " no longer runs on ", node));
    r.set_finished_unix_ms(absl::ToUnixMillis(now));
    *c.s.mutable_result() = std::move(r);
    SetState(c, proto::STATE_BUSY, now, changes);
    return Admission::kEnded;
  }
  // A runbook's next step, into the slot its job keeps.
  if (!p.slot_job().empty() && slot.job == p.slot_job() && slot.holder.empty()) {
    slot.holder = id;
    c.admitted = true;
    return Admission::kGo;
  }
  if (slot.holder.empty() && slot.queue.empty() && slot.job.empty()) {
    slot.holder = id;
    c.admitted = true;
    if (!p.slot_job().empty()) {  // a runbook's first step: its job keeps the slot from now on
      slot.job = p.slot_job();
      slot.job_priority = p.priority();
    }
    return Admission::kGo;
  }
  Command* holder = slot.holder.empty() ? nullptr : Get(slot.holder);
  // What holds the slot: a command, else a runbook between its steps.
  const bool job_between_steps = holder == nullptr && !slot.job.empty();
  const int32_t held_priority = holder != nullptr ? holder->s.control().priority() : slot.job_priority;
  std::string refusal;
  if (p.on_busy() == proto::ON_BUSY_REJECT) {
    refusal = BusyText(node, now);
  } else if (p.on_busy() == proto::ON_BUSY_PREEMPT && (holder != nullptr || job_between_steps) &&
             p.priority() <= held_priority) {
    refusal = absl::StrCat(BusyText(node, now), ": priority ", p.priority(), " does not preempt priority ",
                           held_priority);
  }
  if (!refusal.empty()) {
    proto::Ack r = NewAck(id, "", proto::STAGE_RESULT, proto::OUTCOME_REJECTED);
    r.set_error(std::move(refusal));
    r.set_finished_unix_ms(absl::ToUnixMillis(now));
    *c.s.mutable_result() = std::move(r);
    SetState(c, proto::STATE_BUSY, now, changes);
    return Admission::kEnded;
  }
  if (p.on_busy() == proto::ON_BUSY_PREEMPT && job_between_steps) {
    // No step runs: the runbook loses the slot at once (its runner sees it and ends the run).
    PreemptJob(slot, node, id);
    if (!slot.queue.empty() && slot.queue.begin()->first < -int64_t{p.priority()}) {
      // A higher priority waited behind the runbook: it goes first, this one waits its turn.
      c.admitted = true;
      c.next_attempt = absl::InfiniteFuture();
      slot.queue.emplace(-int64_t{p.priority()}, id);
      Advance(node, now);
      return Admission::kWait;
    }
    slot.holder = id;
    c.admitted = true;
    if (!p.slot_job().empty()) {
      slot.job = p.slot_job();
      slot.job_priority = p.priority();
    }
    return Admission::kGo;
  }
  c.admitted = true;
  c.next_attempt = absl::InfiniteFuture();
  slot.queue.emplace(-int64_t{p.priority()}, id);
  if (p.on_busy() == proto::ON_BUSY_PREEMPT && holder != nullptr) {
    // A runbook's step: the whole job gives the slot up, not just this step.
    if (!slot.job.empty() && holder->s.control().slot_job() == slot.job) PreemptJob(slot, node, id);
    Preempt(*holder, c, now, changes);
  }
  return Admission::kWait;
}

void CommandTable::Preempt(Command& holder, const Command& by, absl::Time now, Changes& changes) {
  if (!holder.s.marks().preempted_by().empty()) return;  // by an earlier one: it goes first
  holder.s.mutable_marks()->set_preempted_by(by.s.id());
  const std::string why = absl::StrCat("preempted by ", by.s.id(), " (priority ", by.s.control().priority(),
                                       " over ", holder.s.control().priority(), ")");
  if (Undelivered(holder.s.state()) && !holder.in_flight) {
    proto::Ack r = NewAck(holder.s.id(), "", proto::STAGE_RESULT, proto::OUTCOME_CANCELED);
    r.set_error(absl::StrCat(why, " before it was delivered to ", holder.s.node()));
    r.set_finished_unix_ms(absl::ToUnixMillis(now));
    *holder.s.mutable_result() = std::move(r);
    AlsoTellNode(holder, absl::StrCat("preemption by ", by.s.id()), now, changes);
    SetState(holder, proto::STATE_PREEMPTED, now, changes);  // the slot goes to `by`
    return;
  }
  RequestKill(holder, absl::StrCat("preemption by ", by.s.id()), now, changes);
}

void CommandTable::LeaveSlot(Command& c, absl::Time now) {
  c.admitted = false;
  auto it = slots_.find(c.s.node());
  if (it == slots_.end()) return;
  Slot& slot = it->second;
  if (slot.holder == c.s.id()) {
    slot.holder.clear();
    // A runbook's step ended: its job keeps the slot for its next step (ReleaseJob ends that).
    if (!slot.job.empty() && c.s.control().slot_job() == slot.job) return;
  } else {
    slot.queue.erase({-int64_t{c.s.control().priority()}, c.s.id()});
  }
  Advance(c.s.node(), now);
}

void CommandTable::Advance(const std::string& node, absl::Time now) {
  auto it = slots_.find(node);
  if (it == slots_.end()) return;
  Slot& slot = it->second;
  if (!slot.holder.empty() || !slot.job.empty()) return;
  while (!slot.queue.empty()) {
    const std::string id = slot.queue.begin()->second;
    slot.queue.erase(slot.queue.begin());
    Command* next = Get(id);
    if (next == nullptr || IsTerminal(next->s.state())) continue;
    slot.holder = id;
    if (!next->s.control().slot_job().empty()) {  // a runbook's first step: its job keeps the slot
      slot.job = next->s.control().slot_job();
      slot.job_priority = next->s.control().priority();
    }
    next->next_attempt = now;
    Reschedule(id, *next);
    return;
  }
  slots_.erase(it);
}

}  // namespace steward::station
