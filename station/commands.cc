#include "station/commands.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/protocol.h"
#include "common/time_text.h"

namespace steward::station {

proto::State StateFromOutcome(proto::Outcome o) {
  switch (o) {
    case proto::OUTCOME_SUCCEEDED:
      return proto::STATE_SUCCEEDED;
    case proto::OUTCOME_TIMED_OUT:
      return proto::STATE_TIMED_OUT;
    case proto::OUTCOME_REJECTED:
      return proto::STATE_REJECTED;
    case proto::OUTCOME_CANCELED:
      return proto::STATE_CANCELED;
    default:
      return proto::STATE_FAILED;  // failed, error (could not run)
  }
}

namespace {

// States a late truth from the node overrides: it did get the command after all.
bool Overridable(proto::State s) { return s == proto::STATE_CANCELED || s == proto::STATE_EXPIRED; }

bool Exclusive(const proto::CommandState& s) { return s.control().exclusive(); }

// When a command awaiting approval ends "expired": its approval's deadline, or its own
// expiry when sooner.
int64_t ApprovalDeadlineMs(const proto::CommandState& s) {
  int64_t ms = s.marks().approval().expires_unix_ms();
  if (s.command().expires_unix_ms() != 0 && (ms == 0 || s.command().expires_unix_ms() < ms)) {
    ms = s.command().expires_unix_ms();
  }
  return ms;
}

absl::Time ApprovalDeadline(const proto::CommandState& s) {
  const int64_t ms = ApprovalDeadlineMs(s);
  return ms == 0 ? absl::InfiniteFuture() : absl::FromUnixMillis(ms);
}

}  // namespace

CommandTable::CommandTable(CommandTableOptions options) : options_(std::move(options)) {}

CommandTable::Command* CommandTable::Get(const std::string& id) {
  auto it = commands_.find(id);
  return it == commands_.end() ? nullptr : &it->second;
}

void CommandTable::Add(proto::CommandState s, absl::Time next_attempt, bool fresh) {
  const std::string id = s.id();
  if (!IsTerminal(s.state())) active_[s.node()].insert(id);
  Command& c = commands_[id];
  if (c.due != absl::InfiniteFuture()) schedule_.erase({c.due, id});
  c = Command{};
  c.s = std::move(s);
  c.next_attempt = next_attempt;
  if (fresh) {
    c.envelope_row = true;
    c.ledger_instance = c.s.command().target_instance();
    c.ledger_signature = c.s.command().signature();
  }
  // Awaiting approval: never sent, looked at again when its approval expires.
  const bool awaiting = AwaitsApproval(c.s) && c.s.attempts() == 0;
  if (AwaitsApproval(c.s)) {
    awaiting_.insert(id);
    c.next_attempt = ApprovalDeadline(c.s);
  }
  c.maybe_delivered = !awaiting && (!fresh || c.s.attempts() > 0 || c.s.state() != proto::STATE_QUEUED);
  const bool unfinished = !IsTerminal(c.s.state());
  // Loaded at start: one that may be on its node holds the slot again (the others are
  // admitted again when due, in order); a cancel asked for is asked again.
  const bool delivered = !awaiting && !fresh && (c.s.attempts() > 0 || c.s.state() != proto::STATE_QUEUED);
  if (unfinished && Exclusive(c.s) && delivered) {
    Slot& slot = slots_[c.s.node()];
    if (slot.holder.empty()) slot.holder = id;
    c.admitted = slot.holder == id;
    // A runbook's step: its job keeps the slot again only when the job is open
    // (RunbookTable::Load calls Reserve); a closed job's step just ends.
  }
  if (unfinished && delivered && !c.s.marks().cancel_by().empty()) {
    reload_kills_.push_back(KillRequest{c.s.node(), id, c.s.command().domain(), c.s.marks().cancel_by()});
  }
  Reschedule(id, c);
}

const proto::CommandState* CommandTable::Find(const std::string& id) const {
  auto it = commands_.find(id);
  return it == commands_.end() ? nullptr : &it->second.s;
}

bool CommandTable::OutputInLedgerOnly(const std::string& id, size_t* bytes) const {
  auto it = commands_.find(id);
  if (it == commands_.end() || !it->second.output_in_ledger_only) return false;
  if (bytes != nullptr) *bytes = it->second.ledger_output_bytes;
  return true;
}

std::vector<std::string> CommandTable::Unfinished(const std::string& node) const {
  auto it = active_.find(node);
  if (it == active_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

uint64_t CommandTable::Generation(const std::string& id) const {
  auto it = commands_.find(id);
  return it == commands_.end() ? 0 : it->second.gen;
}

size_t CommandTable::Pending(const std::string& node) const {
  auto it = active_.find(node);
  return it == active_.end() ? 0 : it->second.size();
}

std::map<std::pair<proto::State, std::string>, int64_t> CommandTable::CountUnfinished() const {
  std::map<std::pair<proto::State, std::string>, int64_t> out;
  for (const auto& [node, ids] : active_) {
    for (const std::string& id : ids) {
      auto it = commands_.find(id);
      if (it != commands_.end()) ++out[{it->second.s.state(), it->second.s.command().method()}];
    }
  }
  return out;
}

absl::Time CommandTable::NextDue() const {
  return schedule_.empty() ? absl::InfiniteFuture() : schedule_.begin()->first;
}

void CommandTable::Reschedule(const std::string& id, Command& c) {
  absl::Time due = absl::InfiniteFuture();
  const proto::State state = c.s.state();
  if (!c.in_flight && !IsTerminal(state)) {
    due = c.next_attempt;
    const int64_t expires_ms = c.s.command().expires_unix_ms();
    if (Undelivered(state) && expires_ms != 0) {
      due = std::min(due, absl::FromUnixMillis(expires_ms + 1));  // Expired() is strict
    }
  }
  if (due == c.due) return;
  if (c.due != absl::InfiniteFuture()) schedule_.erase({c.due, id});
  c.due = due;
  if (due == absl::InfiniteFuture()) return;
  auto [it, inserted] = schedule_.emplace(due, id);
  if (it == schedule_.begin()) sooner_ = true;
}

void CommandTable::Write(Command& c, Changes& changes) {
  if (!unwritten_marks_.empty()) unwritten_marks_.erase(c.s.id());  // this write carries the marks
  proto::Envelope& e = *c.s.mutable_command();
  if (DropsPayload(c.s) && !e.payload().empty()) {
    // A copy chunk at its end: its payload moves to the write, which drops it from the
    // ledger (ledger/command_rows.cc), and the table keeps none either. Nothing resends a
    // finished command, and answers about it (the sender's wait) need not carry the
    // chunk back: 896 KiB less per chunk through the broker, and no chunk held here
    // until the command leaves memory.
    std::string payload = std::move(*e.mutable_payload());
    e.clear_payload();
    CommandWrite w{c.s, ++c.writes, nullptr};
    w.record.mutable_command()->set_payload(std::move(payload));
    changes.writes.push_back(std::move(w));
    return;
  }
  if (c.envelope_row && e.method() != kMethodCopy && e.target_instance() == c.ledger_instance &&
      e.signature() == c.ledger_signature) {
    // The ledger holds this very envelope (written with the submit, bound as it is
    // now): the write carries the record alone, and the ledger keeps its envelope row.
    // (Copying the envelope for every state change, only for the ledger to look up its
    // row and find it unchanged, cost a fan-out about a tenth of the station's CPU.)
    // A copy chunk always goes whole (the write at its end drops its bytes).
    std::unique_ptr<proto::Envelope> envelope(c.s.release_command());
    changes.writes.push_back(CommandWrite{c.s, ++c.writes, nullptr});
    c.s.set_allocated_command(envelope.release());
    return;
  }
  changes.writes.push_back(CommandWrite{c.s, ++c.writes, nullptr});
}

void CommandTable::SetState(Command& c, proto::State state, absl::Time now, Changes& changes) {
  const std::string& id = c.s.id();
  c.s.set_state(state);
  c.s.set_updated_unix_ms(absl::ToUnixMillis(now));
  unsaved_running_.erase(id);
  if (state != proto::STATE_AWAITING_APPROVAL) awaiting_.erase(id);
  if (IsTerminal(state)) {
    // Its end settles any wait for an answer (Reinstalled); the write below carries that.
    if (AwaitsAnswer(c)) c.s.mutable_marks()->clear_lost_unless_answered();
    c.finished = now;
    finished_.emplace_back(now, id);
    if (c.admitted) LeaveSlot(c, now);
    auto a = active_.find(c.s.node());
    if (a != active_.end()) {
      a->second.erase(id);
      if (a->second.empty()) active_.erase(a);
    }
  } else {
    active_[c.s.node()].insert(id);  // e.g. a late "received" after "expired"
  }
  Reschedule(id, c);
  changes.states.push_back(StateChange{c.s.node(), id, state});
  Write(c, changes);
}

void CommandTable::MarkRunning(Command& c, absl::Time now, Changes& changes) {
  // Nobody waits on this write, and a quick command's result usually replaces it: the
  // ledger gets it with the next Housekeep unless the command ended first. After a
  // crash in between the ledger says "queued", and the node, asked again, answers
  // with what it recorded.
  c.s.set_state(proto::STATE_RUNNING);
  c.s.set_updated_unix_ms(absl::ToUnixMillis(now));
  active_[c.s.node()].insert(c.s.id());
  unsaved_running_.insert(c.s.id());
  changes.states.push_back(StateChange{c.s.node(), c.s.id(), proto::STATE_RUNNING});
}

void CommandTable::RetryLater(Command& c, absl::Time now) {
  absl::Duration backoff = options_.initial_backoff;
  for (int i = 1; i < c.s.attempts() && backoff < options_.max_backoff; ++i) backoff *= 2;
  c.next_attempt = now + std::min(backoff, options_.max_backoff);
}

std::vector<Dispatch> CommandTable::TakeDue(absl::Time now,
                                            const std::function<Gate(proto::CommandState&)>& gate,
                                            Changes& changes) {
  const int64_t now_ms = absl::ToUnixMillis(now);
  std::vector<Dispatch> sends;
  for (KillRequest& k : reload_kills_) changes.kills.push_back(std::move(k));
  reload_kills_.clear();
  std::vector<std::string> later;  // not sendable yet: filed again after the sweep
  while (!schedule_.empty() && schedule_.begin()->first <= now) {
    const std::string id = schedule_.begin()->second;
    schedule_.erase(schedule_.begin());
    Command* c = Get(id);
    if (c == nullptr) continue;
    c->due = absl::InfiniteFuture();
    if (IsTerminal(c->s.state()) || c->in_flight) continue;
    if (AwaitsAnswer(*c)) {
      // The dispatch that was out when its node was reinstalled got no answer that
      // rules out the earlier installation.
      Lose(*c, c->s.marks().lost_unless_answered(), now, changes);
      continue;
    }
    if (AwaitsApproval(c->s)) {
      const int64_t deadline = ApprovalDeadlineMs(c->s);
      if (deadline != 0 && now_ms >= deadline) {
        proto::Ack r = NewAck(id, "", proto::STAGE_RESULT, proto::OUTCOME_ERROR);
        r.set_error(absl::StrCat("not approved in time: nobody approved or denied it before ", UtcTextMs(deadline),
                                 "; it was never sent"));
        r.set_finished_unix_ms(now_ms);
        *c->s.mutable_result() = std::move(r);
        SetState(*c, proto::STATE_EXPIRED, now, changes);
      } else {
        c->next_attempt = ApprovalDeadline(c->s);
        later.push_back(id);
      }
      continue;
    }
    if (Undelivered(c->s.state()) && Expired(c->s.command(), now_ms)) {
      ExpireUndelivered(*c, now, changes);
      continue;
    }
    if (Exclusive(c->s) && Undelivered(c->s.state()) && !c->in_flight) {
      const Admission a = Admit(*c, now, changes);
      if (a == Admission::kEnded) continue;
      if (a == Admission::kWait) {
        later.push_back(id);
        continue;
      }
    }
    if (c->next_attempt > now) {
      later.push_back(id);
      continue;
    }
    if (gate && gate(c->s) == Gate::kPark) {
      c->next_attempt = absl::InfiniteFuture();
      later.push_back(id);
      continue;
    }
    c->in_flight = true;
    c->delivered_before = c->maybe_delivered;
    c->maybe_delivered = true;
    c->s.set_attempts(c->s.attempts() + 1);
    if (c->s.state() == proto::STATE_QUEUED) {
      // In memory only: a crash before the next write leaves "queued", and the
      // command is sent again (the node answers a repeat from its record).
      c->s.set_state(proto::STATE_SENT);
      changes.states.push_back(StateChange{c->s.node(), id, proto::STATE_SENT});
    }
    // Serialized here, and the envelope copied without its payload: a copy chunk's
    // 896 KiB are copied once on their way out, not twice.
    Dispatch d{id, ++c->gen, {}, c->s.command().SerializeAsString(), c->s.attempts() == 1};
    proto::Envelope& e = *c->s.mutable_command();
    std::string payload;  // lent out and back
    e.mutable_payload()->swap(payload);
    d.command = e;
    e.mutable_payload()->swap(payload);
    sends.push_back(std::move(d));
  }
  for (const std::string& id : later) {
    if (Command* c = Get(id)) Reschedule(id, *c);
  }
  return sends;
}

void CommandTable::ExpireUndelivered(Command& c, absl::Time now, Changes& changes) {
  const std::string& node = c.s.node();
  const std::string at = UtcTextMs(c.s.command().expires_unix_ms());
  // Why it was held back, when it was (a site station in control: GateOf's note).
  const std::string held = c.s.result().outcome() == proto::OUTCOME_UNSPECIFIED ? c.s.result().error() : "";
  proto::Ack r = NewAck(c.s.id(), "", proto::STAGE_RESULT, proto::OUTCOME_ERROR);
  if (!c.maybe_delivered) {
    r.set_error(absl::StrCat("expired at ", at, " before it reached ", node, held.empty() ? "" : " (",
                             held, held.empty() ? "" : ")", ": it did not run"));
  } else {
    // Sent, never answered: the node may have taken it before its expiry and its answer
    // be on the way (a node refuses an expired command it did not take in time).
    // (After a station restart the count of sends may be behind: said only when known.)
    const std::string sent = c.s.attempts() == 0 ? ""
                             : absl::StrCat(" (sent ", c.s.attempts(), c.s.attempts() == 1 ? " time)" : " times)");
    r.set_error(absl::StrCat("expired at ", at, " with no answer from ", node, sent, ": it did not run unless ", node,
                             " took it before then and its answer is still on the way (a late answer replaces "
                             "this)"));
  }
  r.set_finished_unix_ms(absl::ToUnixMillis(now));
  *c.s.mutable_result() = std::move(r);
  SetState(c, proto::STATE_EXPIRED, now, changes);
}

void CommandTable::ApplyReceived(Command& c, absl::Time now, Changes& changes) {
  // A late "received" for a command the station gave up on: what it said then is no
  // longer the word on it.
  if (IsTerminal(c.s.state())) c.s.clear_result();
  if (c.s.state() != proto::STATE_RUNNING) MarkRunning(c, now, changes);
  // Ask again if no result has come by the end of its run time.
  c.next_attempt = now + absl::Milliseconds(c.s.command().timeout_ms()) + options_.result_grace;
  Reschedule(c.s.id(), c);
}

void CommandTable::ApplyResult(Command& c, const proto::Ack& ack, absl::Time now, Changes& changes) {
  *c.s.mutable_result() = ack;
  c.output_in_ledger_only = false;
  c.ledger_output_bytes = 0;
  proto::State state = StateFromOutcome(ack.outcome());
  if (state == proto::STATE_CANCELED && !c.s.marks().preempted_by().empty()) state = proto::STATE_PREEMPTED;
  SetState(c, state, now, changes);
}

void CommandTable::OnReply(const std::string& id, uint64_t gen, const proto::Ack& ack, absl::Time now,
                           Changes& changes) {
  Command* c = Get(id);
  if (c == nullptr) return;
  const bool latest = gen == c->gen;
  if (latest) c->in_flight = false;
  EndWait(*c);  // believed: it reached the current installation
  if (IsTerminal(c->s.state()) && !Overridable(c->s.state())) {
    Reschedule(id, *c);
    return;
  }
  if (ack.stage() == proto::STAGE_RECEIVED) {
    ApplyReceived(*c, now, changes);
  } else if (ack.stage() == proto::STAGE_RESULT) {
    ApplyResult(*c, ack, now, changes);
  } else if (latest) {
    RetryLater(*c, now);
    Reschedule(id, *c);
  }
}

void CommandTable::OnTimeout(const std::string& id, uint64_t gen, absl::Time now) {
  Command* c = Get(id);
  if (c == nullptr || gen != c->gen) return;
  c->in_flight = false;
  RetryLater(*c, now);
  if (AwaitsAnswer(*c)) c->next_attempt = now;  // ends lost (TakeDue)
  Reschedule(id, *c);
}

CommandTable::Command* CommandTable::ReachedNobody(const std::string& id, uint64_t gen) {
  Command* c = Get(id);
  if (c == nullptr || gen != c->gen) return nullptr;
  c->in_flight = false;
  c->maybe_delivered = c->delivered_before;
  EndWait(*c);
  return c;
}

void CommandTable::OnNotSent(const std::string& id, uint64_t gen, absl::Time now) {
  Command* c = ReachedNobody(id, gen);
  if (c == nullptr) return;
  RetryLater(*c, now);
  Reschedule(id, *c);
}

void CommandTable::OnNoResponders(const std::string& id, uint64_t gen) {
  // The broker had nobody to give it to: this dispatch reached no installation (a
  // reinstalled unit's new one runs it).
  Command* c = ReachedNobody(id, gen);
  if (c == nullptr) return;
  c->next_attempt = absl::InfiniteFuture();
  Reschedule(id, *c);
}

void CommandTable::OnShutdown(const std::string& id, uint64_t gen) {
  Command* c = Get(id);
  if (c == nullptr || gen != c->gen) return;
  c->in_flight = false;
  Reschedule(id, *c);
}

void CommandTable::Unpark(const std::string& node, absl::Time now) {
  auto it = active_.find(node);
  if (it == active_.end()) return;
  for (const std::string& id : it->second) {
    Command* c = Get(id);
    if (c == nullptr || !Undelivered(c->s.state())) continue;
    // The answer to the dispatch that is out decides where it went (Reinstalled).
    if (c->in_flight && AwaitsAnswer(*c)) continue;
    if (c->in_flight || c->next_attempt > now) {
      c->in_flight = false;  // what becomes of that dispatch no longer matters
      c->next_attempt = now;
      Reschedule(id, *c);
    }
  }
}

void CommandTable::Release(const std::string& id, absl::Time now) {
  Command* c = Get(id);
  if (c == nullptr || !Undelivered(c->s.state()) || c->in_flight || c->next_attempt <= now) return;
  c->next_attempt = now;
  Reschedule(id, *c);
}

CommandTable::ResultFate CommandTable::OnResult(const std::string& id, const std::string& from,
                                                const proto::Ack& ack, absl::Time now,
                                                Changes& changes) {
  Command* c = Get(id);
  if (c == nullptr) return ResultFate::kUnknown;
  if (c->s.node() != from) return ResultFate::kWrongNode;
  if (IsTerminal(c->s.state()) && !Overridable(c->s.state())) return ResultFate::kRepeat;
  // Its node cannot have it: a "result" for it (a node's cancel of an id it never got,
  // say) is no word on it.
  if (!c->maybe_delivered && !IsTerminal(c->s.state())) return ResultFate::kNeverSent;
  ApplyResult(*c, ack, now, changes);
  return ResultFate::kApplied;
}

bool CommandTable::BoundElsewhere(const std::string& id, const std::string& instance) const {
  auto it = commands_.find(id);
  if (it == commands_.end() || instance.empty()) return false;
  const std::string& bound = it->second.s.command().target_instance();
  return !bound.empty() && bound != instance;
}

void CommandTable::OnStaleBinding(const std::string& id, uint64_t gen, absl::Time now) {
  Command* c = ReachedNobody(id, gen);
  if (c == nullptr) return;
  c->next_attempt = now;
  Reschedule(id, *c);
}

void CommandTable::ReachedCurrent(const std::string& id) {
  if (Command* c = Get(id)) EndWait(*c);
}

std::vector<std::string> CommandTable::Reinstalled(const std::string& node, const std::string& previous,
                                                   const std::string& current, bool previous_online, absl::Time now,
                                                   Changes& changes) {
  std::vector<std::string> lost;
  for (const std::string& id : Unfinished(node)) {
    Command* c = Get(id);
    if (c == nullptr || !c->maybe_delivered) continue;
    std::string why =
        absl::StrCat("node ", node, " was reinstalled (installation ", previous, " replaced by ", current,
                     "): the outcome of this command is unknown; `stewardctl retry ", id, "` sends it again");
    if (c->in_flight && !c->delivered_before && !previous_online) {
      // Its only dispatch is still out, perhaps sent after the earlier installation was
      // gone: the answer to it decides. Written, so a restart meanwhile ends it lost.
      c->s.mutable_marks()->set_lost_unless_answered(std::move(why));
      Write(*c, changes);
      continue;
    }
    Lose(*c, std::move(why), now, changes);
    lost.push_back(id);
  }
  return lost;
}

void CommandTable::EndWait(Command& c) {
  if (!AwaitsAnswer(c)) return;
  c.s.mutable_marks()->clear_lost_unless_answered();
  unwritten_marks_.insert(c.s.id());
}

void CommandTable::Lose(Command& c, std::string why, absl::Time now, Changes& changes) {
  proto::Ack r = NewAck(c.s.id(), "", proto::STAGE_RESULT, proto::OUTCOME_ERROR);
  r.set_error(std::move(why));
  r.set_finished_unix_ms(absl::ToUnixMillis(now));
  *c.s.mutable_result() = std::move(r);
  SetState(c, proto::STATE_LOST, now, changes);
}

bool CommandTable::Committed(const std::string& id, uint64_t seq, bool ok) {
  Command* c = Get(id);
  if (c == nullptr) return false;
  if (ok) c->committed = std::max(c->committed, seq);
  if (seq == c->writes) {
    if (ok) {
      failed_writes_.erase(id);
    } else {
      failed_writes_.insert(id);
    }
  }
  // Only the command's last write says its final word: a newer state (a late result
  // over "expired") may still be on its way to the ledger.
  if (!ok || seq != c->writes || !IsTerminal(c->s.state())) return false;
  // Committed and about to be answered: a large output now lives in the ledger only.
  proto::Ack* r = c->s.mutable_result();
  const size_t bytes = r->stdout().size() + r->stderr().size();
  if (bytes > options_.keep_output_bytes) {
    r->clear_stdout();
    r->clear_stderr();
    c->output_in_ledger_only = true;
    c->ledger_output_bytes = bytes;
  }
  return true;
}

bool CommandTable::Durable(const std::string& id) const {
  auto it = commands_.find(id);
  return it != commands_.end() && it->second.committed == it->second.writes;
}

bool CommandTable::Durable(const std::string& id, uint64_t seq) const {
  auto it = commands_.find(id);
  return it == commands_.end() || it->second.committed >= seq;
}

void CommandTable::Rewrite(const std::string& id, Changes& changes) {
  if (Command* c = Get(id)) {
    failed_writes_.erase(id);
    Write(*c, changes);
  }
}

void CommandTable::FlushRunning(Changes& changes) {
  for (const std::string& id : unsaved_running_) {
    Command* c = Get(id);
    // Ended meanwhile: its final state is queued already and says more.
    if (c != nullptr && c->s.state() == proto::STATE_RUNNING) Write(*c, changes);
  }
  unsaved_running_.clear();
  // Write erases from the set: walk a copy. A finished command's last write carried
  // the cleared mark, and is not written again (a committed record may have moved its
  // output to the ledger alone: another write would drop it there).
  absl::flat_hash_set<std::string> marks;
  marks.swap(unwritten_marks_);
  for (const std::string& id : marks) {
    Command* c = Get(id);
    if (c != nullptr && !IsTerminal(c->s.state())) Write(*c, changes);
  }
}

void CommandTable::Housekeep(absl::Time now, Changes& changes) {
  FlushRunning(changes);
  for (const std::string& id : failed_writes_) {
    if (Command* c = Get(id)) Write(*c, changes);
  }
  failed_writes_.clear();
  while (!finished_.empty() && now - finished_.front().first > options_.keep_finished) {
    const auto [at, id] = std::move(finished_.front());
    finished_.pop_front();
    auto it = commands_.find(id);
    // A later state (a late ACK overriding "expired") filed a newer entry: keep it.
    // So is a command whose final word is not in the ledger yet.
    if (it != commands_.end() && IsTerminal(it->second.s.state()) && it->second.finished == at &&
        it->second.committed == it->second.writes) {
      commands_.erase(it);
    } else if (it != commands_.end() && it->second.finished == at) {
      it->second.finished = now;  // look again later
      finished_.emplace_back(now, id);
    }
  }
}

}  // namespace steward::station
