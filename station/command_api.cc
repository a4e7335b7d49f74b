#include "station/command_api.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "common/protocol.h"
#include "station/approvals.h"
#include "station/ledger/targeting_store.h"
#include "station/operations.h"
#include "subjects/subject.h"

namespace steward::station {
namespace {

constexpr int64_t kMaxWaitMs = 3600 * 1000;

}  // namespace

absl::Status CheckControl(const proto::ControlPolicy& p) {
  if (!p.exclusive() && (p.on_busy() != proto::ON_BUSY_REJECT || p.priority() != 0)) {
    return absl::InvalidArgumentError("--on-busy and --priority apply to --exclusive commands only");
  }
  if (!proto::OnBusy_IsValid(p.on_busy())) return absl::InvalidArgumentError("unknown --on-busy policy");
  if (!p.slot_job().empty()) return absl::InvalidArgumentError("slot_job is the station's own (runbook steps)");
  if (p.approval_ttl_ms() < 0 || (p.approval_ttl_ms() > 0 && !p.require_approval())) {
    return absl::InvalidArgumentError("--approval-ttl applies to --require-approval commands only, and is positive");
  }
  return absl::OkStatus();
}

CommandApi::CommandApi(Core& core, Rpc& rpc) : core_(core), rpc_(rpc), repeats_(core) {
  rpc.Handle<proto::SubmitRequest>(kStationSubmit, [this](const Call& c, proto::SubmitRequest r) {
    // What it asks to run, where and how: not how long its client waits for the answer,
    // nor its expiry (the HTTP API counts a ttl from each try's arrival), nor the
    // command's payload bytes (a copy chunk's 896 KiB would cost milliseconds to hash,
    // and its argv names their SHA-256 already).
    // answers_gathered stays in it: a repeat that joins the first one is answered with it
    // (Core::AnswerOnCommit gathers the joined ones' answers too), so it must have asked
    // the same.
    proto::SubmitRequest asked = r;
    asked.clear_wait_ms();
    asked.mutable_command()->clear_expires_unix_ms();
    asked.mutable_command()->clear_payload();
    // A repeat is found by the write of its record (most submits are new).
    absl::StatusOr<Repeats::Begun> b = repeats_.Begin(c, Repeats::Digest(asked), Repeats::Lookup::kAtWrite);
    if (!b.ok()) return rpc_.Error(c, absl::StrCat("ledger read failed: ", b.status().message()));
    if (b->what == Repeats::Begun::kJoined) return;
    if (b->what == Repeats::Begun::kOther) return rpc_.Reject(c, b->why);
    Submit(b->first, std::move(r));
  });
  rpc.Handle<proto::WaitRequest>(kStationWait, [this](const Call& c, proto::WaitRequest r) {
    Wait(c, std::move(r));
  });
  rpc.Handle<proto::CancelRequest>(kStationCancel, [this](const Call& c, proto::CancelRequest r) {
    Cancel(c, std::move(r));
  });
  rpc.Handle<proto::RetryRequest>(kStationRetry, [this](const Call& c, proto::RetryRequest r) {
    absl::StatusOr<Repeats::Begun> b = repeats_.Begin(c, Repeats::Digest(r));
    if (!b.ok()) return rpc_.Error(c, absl::StrCat("ledger read failed: ", b.status().message()));
    if (b->what == Repeats::Begun::kJoined) return;
    if (b->what == Repeats::Begun::kOther) return rpc_.Reject(c, b->why);
    if (b->what == Repeats::Begun::kNew) return Retry(b->first, std::move(r));
    proto::SubmitReply out;
    if (!out.ParseFromString(b->stored)) return rpc_.Error(b->first, "damaged record of this request in the ledger");
    rpc_.Ok(b->first, out);
  });
}

bool CommandApi::FromRecord(const Call& call, int64_t wait_ms) {
  absl::StatusOr<Repeats::Begun> b = repeats_.Recorded(call);
  if (!b.ok()) {
    rpc_.Error(call, absl::StrCat("ledger read failed: ", b.status().message()));
    return true;
  }
  if (b->what == Repeats::Begun::kOther) {
    rpc_.Reject(call, b->why);
    return true;
  }
  if (b->what != Repeats::Begun::kStored) return false;
  proto::SubmitReply out;
  if (!out.ParseFromString(b->stored)) {
    rpc_.Error(call, "damaged record of this request in the ledger");
    return true;
  }
  // Held for approval: said at once (as the first answer did).
  Answer(call, out, out.states().empty() ? wait_ms : 0);
  return true;
}

void CommandApi::Submit(const Call& call, proto::SubmitRequest req) {
  const proto::Envelope& tmpl = req.command();
  const int64_t asked_wait_ms = std::clamp<int64_t>(req.wait_ms(), 0, kMaxWaitMs);
  // What is refused before the record's write may repeat a request that was done: the
  // repeat gets the first answer instead (Repeats::Lookup::kAtWrite).
  auto refuse = [&](absl::string_view why) {
    if (!FromRecord(call, asked_wait_ms)) rpc_.Reject(call, why);
  };
  if (absl::Status st = CheckNotStationOnly(tmpl.method()); !st.ok()) return refuse(st.message());
  if (absl::Status st = CheckControl(req.control()); !st.ok()) return refuse(st.message());
  if (absl::Status st = core_.CheckFits(tmpl); !st.ok()) return refuse(st.message());
  if (Expired(tmpl, NowUnixMillis())) {
    return refuse(absl::StrCat("already expired (expires_unix_ms ", tmpl.expires_unix_ms(),
                               " is in the past): nothing was queued"));
  }
  if (req.all_nodes() && req.nodes_size() > 0) {
    return refuse(absl::StrCat("all nodes takes every node: name no nodes with it (", req.nodes(0),
                               req.nodes_size() > 1 ? ", ..." : "", "); nothing was queued"));
  }
  std::vector<std::string> targets(req.nodes().begin(), req.nodes().end());
  for (const std::string* token : {&tmpl.method(), &tmpl.domain()}) {
    if (absl::Status st = subjects::ValidateToken(*token); !st.ok()) return refuse(st.message());
  }
  for (const std::string& n : targets) {
    if (absl::Status st = subjects::ValidateToken(n); !st.ok()) return refuse(st.message());
  }
  std::vector<std::string> instances;
  {
    absl::MutexLock lock(&core_.model.mu);
    // Every node heard from: a name never heard from (a typo) is not a target.
    if (req.all_nodes()) {
      for (std::string& n : core_.model.nodes.Names(/*heard_only=*/true)) targets.push_back(std::move(n));
    }
    std::sort(targets.begin(), targets.end());
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    for (const std::string& t : targets) instances.push_back(core_.model.nodes.Instance(t));
  }
  if (targets.empty()) return refuse("no target nodes");
  proto::SubmitReply out;
  out.set_request_id(NewId());
  std::vector<proto::CommandState> states;
  for (size_t i = 0; i < targets.size(); ++i) {
    const std::string& target = targets[i];
    // The last target takes the template itself: its payload (a copy chunk) is moved.
    const bool last = i + 1 == targets.size();
    absl::StatusOr<proto::CommandState> s =
        last ? core_.NewCommand(target, std::move(*req.mutable_command()), out.request_id(), call.op(), instances[i])
             : core_.NewCommand(target, tmpl, out.request_id(), call.op(), instances[i]);
    if (!s.ok()) {
      if (!FromRecord(call, asked_wait_ms)) rpc_.Fail(call, s.status());
      return;
    }
    *s->mutable_control() = req.control();
    {
      absl::MutexLock lock(&core_.model.mu);
      ApplyControlRulesLocked(core_.model, *s, absl::Now(), call.identity());
    }
    proto::CommandRef* ref = out.add_commands();
    ref->set_node(target);
    ref->set_id(s->id());
    states.push_back(*std::move(s));
  }
  int64_t wait_ms = asked_wait_ms;
  for (const proto::CommandState& s : states) {
    // Held for approval: said at once, whatever the wait (it waits for a human).
    if (s.state() == proto::STATE_AWAITING_APPROVAL) {
      *out.add_states() = s;
      wait_ms = 0;
    }
  }
  // The record of this request: its reply without the held commands' payloads (a copy
  // chunk's bytes are not kept twice; a repeat's answer says their states).
  proto::SubmitReply recorded = out;
  for (proto::CommandState& s : *recorded.mutable_states()) s.mutable_command()->clear_payload();
  std::vector<ledger::Store::Op> record = {Repeats::Record(call, out.request_id(), recorded.SerializeAsString())};
  core_.Submit(
      std::move(states),
      [this, call, out, wait_ms, asked_wait_ms, gathered = req.answers_gathered()](absl::Status st) {
        // A repeat of a request that was done: its commands were not made again.
        if (Repeats::IsRecorded(st) && FromRecord(call, asked_wait_ms)) return;
        if (!st.ok()) return rpc_.Error(call, absl::StrCat("ledger write failed: ", st.message()));
        Answer(call, out, wait_ms, gathered);
      },
      std::move(record));
}

void CommandApi::Answer(const Call& call, const proto::SubmitReply& out, int64_t wait_ms, bool gathered) {
  if (wait_ms == 0) return rpc_.Ok(call, out);
  Waiter w;
  w.gathered = gathered;
  for (const proto::CommandRef& c : out.commands()) w.ids.push_back(c.id());
  w.reply = call.reply;
  if (call.respond) {
    w.deliver = [respond = call.respond](const std::string& ack) {
      proto::Ack a;
      a.ParseFromString(ack);
      respond(a);
    };
  }
  w.deadline = absl::Now() + absl::Milliseconds(wait_ms);
  w.submit = out;
  w.request_id = call.id();
  core_.AddWaiter(std::move(w));
}

void CommandApi::Wait(const Call& call, proto::WaitRequest req) {
  std::vector<std::string> ids(req.ids().begin(), req.ids().end());
  // Every id must be known: in memory, or in the ledger.
  std::vector<std::string> unseen;
  {
    absl::MutexLock lock(&core_.model.mu);
    for (const std::string& id : ids) {
      if (core_.model.commands.Find(id) == nullptr) unseen.push_back(id);
    }
  }
  for (const std::string& id : unseen) {
    absl::StatusOr<std::optional<proto::CommandState>> s = core_.store().GetCommand(id);
    if (!s.ok()) return rpc_.Error(call, s.status().message());
    if (!s->has_value()) return rpc_.Reject(call, absl::StrCat("unknown command ", id));
  }
  Waiter w;
  w.ids = std::move(ids);
  w.any = req.any();
  w.reply = call.reply;
  w.deadline = absl::Now() + absl::Milliseconds(std::clamp<int64_t>(req.wait_ms(), 0, kMaxWaitMs));
  core_.AddWaiter(std::move(w));
}

void CommandApi::Cancel(const Call& call, proto::CancelRequest req) {
  std::vector<std::string> ids(req.ids().begin(), req.ids().end());
  if (ids.empty()) return rpc_.Reject(call, "no command to cancel");
  // Every id is checked before any is stopped: a cancel is all or nothing.
  std::vector<std::string> not_in_memory;
  {
    absl::MutexLock lock(&core_.model.mu);
    for (const std::string& id : ids) {
      if (core_.model.commands.Find(id) == nullptr) not_in_memory.push_back(id);
    }
  }
  for (const std::string& id : not_in_memory) {
    absl::StatusOr<std::optional<proto::CommandState>> s = core_.store().GetCommand(id);
    if (!s.ok()) return rpc_.Error(call, s.status().message());
    if (!s->has_value()) return rpc_.Reject(call, absl::StrCat("unknown command ", id));
    if (IsTerminal((*s)->state())) {
      return rpc_.Reject(call, absl::StrCat("command ", id, " already finished: ", StateName((*s)->state())));
    }
    // In the ledger but not yet in memory: its submit is committing right now.
    return rpc_.Reject(call, absl::StrCat("command ", id, " is being stored; try again"));
  }
  proto::CommandStates out;
  std::string refused;
  std::vector<std::pair<std::string, bool>> stopped;  // id, whether its node was asked
  std::map<std::string, uint64_t> seqs;                // id -> the write that records it
  {
    absl::MutexLock lock(&core_.model.mu);
    // Checked again under this lock, where they are stopped: none may have ended meanwhile.
    for (const std::string& id : ids) {
      const proto::CommandState* s = core_.model.commands.Find(id);
      if (s == nullptr || IsTerminal(s->state())) {
        refused = s == nullptr ? absl::StrCat("command ", id, " changed meanwhile; look again (stewardctl show ", id, ")")
                               : absl::StrCat("command ", id, " already finished: ", StateName(s->state()));
        break;
      }
    }
    if (refused.empty()) {
      Changes changes;
      const absl::Time now = absl::Now();
      for (const std::string& id : ids) {
        absl::StatusOr<bool> asked = core_.model.commands.Stop(id, call.op(), now, changes);
        if (!asked.ok()) continue;  // listed twice: stopped already
        stopped.emplace_back(id, *asked);
        *out.add_commands() = *core_.model.commands.Find(id);
      }
      for (const CommandWrite& w : changes.writes) seqs[w.record.id()] = w.seq;
      core_.ApplyLocked(changes);
    }
  }
  if (!refused.empty()) return rpc_.Reject(call, refused);
  for (const auto& [id, asked] : stopped) {
    RecordAction(core_, call, "cancel", id,
                 asked ? "its node may run it: a cancel went to the node" : "canceled before delivery", "ok");
  }
  // Answered once every cancellation is in the ledger (writes complete in order).
  // (A killed command's result may be queued meanwhile: only the cancel's own write counts.)
  rpc_.OkWhenDurable(call, out, std::move(seqs), "the cancellation");
}

void CommandApi::Retry(const Call& call, proto::RetryRequest req) {
  if (req.ids().empty()) return rpc_.Reject(call, "no command to retry");
  // An id named twice is retried once (as `send` and `cancel` treat a repeated name).
  std::vector<std::string> ids;
  absl::flat_hash_set<std::string> named;
  for (const std::string& id : req.ids()) {
    if (named.insert(id).second) ids.push_back(id);
  }
  absl::StatusOr<std::vector<proto::CommandState>> old = core_.States(ids);
  if (absl::IsNotFound(old.status())) {
    // A job's id (a runbook, a rollout), open or closed, is no command: say what to
    // retry instead.
    for (const std::string& id : ids) {
      bool job = false;
      {
        absl::MutexLock lock(&core_.model.mu);
        job = core_.model.jobs.Find(id) != nullptr || core_.model.runbooks.Find(id) != nullptr;
      }
      if (!job) {
        absl::StatusOr<std::optional<proto::Job>> stored = ledger::GetJob(core_.store(), id);
        job = stored.ok() && stored->has_value();
      }
      if (job) {
        return rpc_.Reject(call, absl::StrCat(id, " is a job, not a command: retry takes command ids (`stewardctl show ",
                                              id, "` lists its commands)"));
      }
    }
  }
  if (!old.ok()) return rpc_.Fail(call, old.status());
  proto::SubmitReply out;
  out.set_request_id(NewId());
  std::vector<proto::CommandState> states;
  for (const proto::CommandState& s : *old) {
    if (absl::Status st = CheckNotStationOnly(s.command().method()); !st.ok()) {
      return rpc_.Reject(call, st.message());
    }
    if (!IsTerminal(s.state())) {
      return rpc_.Reject(call, absl::StrCat("command ", s.id(), " is ", StateName(s.state()),
                                            ": only a finished command is retried"));
    }
    proto::Envelope tmpl;
    tmpl.set_method(s.command().method());
    tmpl.set_domain(s.command().domain());
    *tmpl.mutable_argv() = s.command().argv();
    *tmpl.mutable_shell() = s.command().shell();
    tmpl.set_payload(s.command().payload());
    tmpl.set_timeout_ms(s.command().timeout_ms());
    std::string instance;
    {
      absl::MutexLock lock(&core_.model.mu);
      instance = core_.model.nodes.Instance(s.node());
    }
    absl::StatusOr<proto::CommandState> retry =
        core_.NewCommand(s.node(), tmpl, out.request_id(), call.op(), instance);
    if (!retry.ok()) return rpc_.Fail(call, retry.status());
    *retry->mutable_control() = s.control();  // an exclusive job is retried as one
    retry->mutable_control()->clear_slot_job();  // a runbook's step retried is a job of its own
    {
      absl::MutexLock lock(&core_.model.mu);
      ApplyControlRulesLocked(core_.model, *retry, absl::Now(), call.identity());  // approved again, if it needs it
    }
    proto::CommandRef* ref = out.add_commands();
    ref->set_node(s.node());
    ref->set_id(retry->id());
    states.push_back(*std::move(retry));
  }
  std::vector<ledger::Store::Op> record = {Repeats::Record(call, out.request_id(), out.SerializeAsString())};
  core_.Submit(
      std::move(states),
      [this, call, out](absl::Status st) {
        if (!st.ok()) return rpc_.Error(call, absl::StrCat("ledger write failed: ", st.message()));
        rpc_.Ok(call, out);
      },
      std::move(record));
}

}  // namespace steward::station
