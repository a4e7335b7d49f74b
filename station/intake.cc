#include "station/intake.h"

#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/protocol.h"
#include "station/ledger/log_store.h"
#include "station/output_api.h"
#include "station/rpc.h"
#include "station/security.h"
#include "subjects/subject.h"

namespace steward::station {

proto::Ack Intake::Stored(const std::string& id) const {
  return NewAck(id, core_.options().name, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
}

proto::Ack Intake::Refused(const std::string& id, absl::string_view why) const {
  return RejectAck(id, core_.options().name, why);
}

proto::Ack Intake::NotNow(const std::string& id, absl::string_view why) const {
  proto::Ack a = RejectAck(id, core_.options().name, why);
  a.set_outcome(proto::OUTCOME_ERROR);
  return a;
}

void Intake::Serve(nats::MsgPtr msg) {
  // A node's requests carry replies to its own inbox, the only place the broker lets
  // it read: an answer published anywhere else would be the station speaking, with its
  // rights, where a sender pointed it (another node's command subject). So the sender
  // is read first, and a message that does not even say who sent it gets no answer.
  const std::string reply = nats::Reply(msg.get());
  proto::Envelope claimed;
  const bool parsed = claimed.ParseFromArray(natsMsg_GetData(msg.get()), natsMsg_GetDataLength(msg.get()));
  if (!reply.empty() && (!parsed || claimed.from_node().empty() ||
                         !absl::StartsWith(reply, absl::StrCat(kNodeInboxPrefix, claimed.from_node(), ".")))) {
    const uint64_t n = ++core_.counters.misdirected_replies;
    STEWARD_LOG_WARNING("dropped event on {} from \"{}\": its reply subject {} is not the node's inbox ({} so far)",
                        nats::Subject(msg.get()), parsed ? claimed.from_node() : "?", reply, n);
    return;
  }
  Respond respond = [this, reply](const proto::Ack& a) { core_.Reply(reply, a); };
  if (!Serves(claimed.from_node())) {
    // NATS hands a leaf's queue member the fleet's events when no member is connected
    // at the hub (the central station restarting): not this site's to store, nor to
    // check.
    return respond(NotNow(claimed.id(), absl::StrCat("the site station of ", site_, " stores only its own nodes' "
                                                     "events; offer it again (to the central station)")));
  }
  absl::StatusOr<Incoming> in = Decode(msg.get());
  if (!in.ok()) {
    STEWARD_LOG_WARNING("rejected event on {}: {}", nats::Subject(msg.get()), in.status().message());
    return respond(Refused(claimed.id(), in.status().message()));
  }
  Handle(in->env, respond);
}

void Intake::Import(absl::string_view bytes, Respond respond) {
  absl::StatusOr<proto::Envelope> env = DecodeEnvelope(bytes);
  if (!env.ok()) return respond(Refused("", env.status().message()));
  Handle(*env, respond);
}

void Intake::Handle(const proto::Envelope& ev, const Respond& reply) {
  const std::string& from = ev.from_node();
  if (ev.method() == kEventNodeState && from == core_.options().name) return;  // our own publication
  if (absl::Status st = subjects::ValidateToken(from); !st.ok()) {
    return reply(Refused(ev.id(), absl::StrCat("bad sender: ", st.message())));
  }
  if (ev.method() == kEventHello) return Hello(ev, reply);
  absl::Status trusted;
  {
    absl::MutexLock lock(&core_.model.mu);
    trusted = Security::CheckEvent(core_, core_.model.nodes.Find(from), ev);
  }
  if (!trusted.ok()) {
    // Not accepted yet: the node keeps the event and offers it again later.
    return reply(absl::IsUnavailable(trusted) ? NotNow(ev.id(), trusted.message())
                                              : Refused(ev.id(), trusted.message()));
  }
  if (ev.method() == kEventResult) return Result(ev, reply);
  if (ev.method() == kEventSyslog) return Syslog(ev, reply);
  if (ev.method() == kEventErrorLog) return ErrorLog(ev, reply);
  if (ev.method() == kEventOutput) return RelayOutput(core_, ev);  // a publish: no answer
  reply(Refused(ev.id(), absl::StrCat("unknown event method ", ev.method())));
}

void Intake::Hello(const proto::Envelope& ev, const Respond& reply) {
  proto::Hello hello;
  if (!hello.ParseFromString(ev.payload())) return reply(Refused(ev.id(), "malformed hello payload"));
  const std::string& from = ev.from_node();
  Effects effects;
  Security::HelloCheck check;
  {
    absl::MutexLock lock(&core_.model.mu);
    const absl::Time now = absl::Now();
    check = Security::CheckNewName(core_, ev, hello);
    if (check.verdict != Security::HelloVerdict::kRefused) {
      check = Security::CheckHello(core_, core_.model.nodes.Get(from), ev, hello);
    }
    if (check.verdict == Security::HelloVerdict::kHeard) {
      const bool previous_online = core_.model.nodes.Get(from).info.online();
      const NodeTable::InstanceChange change = core_.model.nodes.Hello(from, hello, now);
      if (change.changed && !change.previous.empty()) {
        // Another installation under the same name: the unit was reinstalled.
        Changes changes;
        std::vector<std::string> lost =
            core_.model.commands.Reinstalled(from, change.previous, hello.instance_id(), previous_online, now, changes);
        core_.ApplyLocked(changes);
        STEWARD_LOG_WARNING("node {} was reinstalled (installation {} replaced by {}); {} commands sent to the "
                            "previous one end lost",
                            from, change.previous, hello.instance_id(), lost.size());
      }
      if (change.changed) {
        // Its commands can be bound to this installation now.
        core_.model.commands.Unpark(from, now);
        if (core_.model.commands.TakeSooner()) core_.model.wake = true;
      }
      core_.HeardFromLocked(from, now, effects);
    }
  }
  if (check.verdict == Security::HelloVerdict::kRefused) {
    if (!check.logged) STEWARD_LOG_WARNING("hello from {} refused: {}", from, check.why);
    return reply(Refused(ev.id(), check.why));
  }
  // Heartbeats are answered at once (a pending node's too, with why it is pending: its
  // next hello comes at its interval); the node row is written with the next housekeeping.
  proto::Ack ok = Stored(ev.id());
  ok.set_error(check.why);
  reply(ok);
  core_.Run(effects);
}

void Intake::ErrorLog(const proto::Envelope& ev, const Respond& reply) {
  proto::ErrorLog log;
  if (!log.ParseFromString(ev.payload())) return reply(Refused(ev.id(), "malformed errorlog payload"));
  const std::string& from = ev.from_node();
  Effects effects;
  {
    absl::MutexLock lock(&core_.model.mu);
    NodeTable::Node& node = core_.model.nodes.Get(from);
    node.info.set_errors(node.info.errors() + 1);
    core_.model.nodes.Changed(from);
    core_.HeardFromLocked(from, absl::Now(), effects);
  }
  core_.Run(effects);
  STEWARD_LOG_INFO("errorlog {} {}: {} {} -> {}", from, log.process(), log.severity(), log.error(), log.decision());
  core_.store().Write(ledger::Store::AddEvent(ev), [this, reply, id = ev.id()](absl::Status st) {
    reply(st.ok() ? Stored(id) : NotNow(id, absl::StrCat("ledger write failed: ", st.message())));
  });
}

// A succeeded `config set`/`config push` carries the hash of the configuration it
// installed (its payload): remembered for the node, to show drift (nodes.h).
void Intake::NoteConfigPushed(const std::string& cid, const std::string& from, const proto::Ack& ack) {
  if (ack.outcome() != proto::OUTCOME_SUCCEEDED || !absl::StartsWith(ack.payload(), "sha256:")) return;
  const proto::CommandState* s = core_.model.commands.Find(cid);
  if (s == nullptr) return;
  const proto::Envelope& cmd = s->command();
  if (cmd.method() != kMethodConfig || cmd.domain() != kAgentDomain || cmd.argv().empty() ||
      (cmd.argv(0) != "set" && cmd.argv(0) != "push")) {
    return;
  }
  core_.model.nodes.ConfigPushed(from, ack.payload(), ack.finished_unix_ms());
}

void Intake::Result(const proto::Envelope& ev, const Respond& reply) {
  const std::string& from = ev.from_node();
  proto::Ack ack;
  if (!ack.ParseFromString(ev.payload()) || ack.stage() != proto::STAGE_RESULT) {
    return reply(Refused(ev.id(), "malformed result payload"));
  }
  // Answered "stored" only once the ledger holds the result; otherwise the node keeps
  // it and offers it again.
  auto answer = [this, reply, id = ev.id()](absl::Status st) {
    reply(st.ok() ? Stored(id) : NotNow(id, absl::StrCat("ledger write failed: ", st.message())));
  };
  const std::string& cid = ack.envelope_id();
  Effects effects;
  CommandTable::ResultFate fate;
  bool answer_now = false;
  {
    absl::MutexLock lock(&core_.model.mu);
    Changes changes;
    fate = core_.model.commands.OnResult(cid, from, ack, absl::Now(), changes);
    if (fate == CommandTable::ResultFate::kApplied) {
      core_.HeardFromLocked(from, absl::Now(), effects);
      NoteConfigPushed(cid, from, ack);
      changes.writes.back().then = answer;
    } else if (fate == CommandTable::ResultFate::kRepeat) {
      // Stored already, unless its write failed: then it is written again now.
      if (core_.model.commands.Durable(cid)) {
        answer_now = true;
      } else {
        core_.model.commands.Rewrite(cid, changes);
        changes.writes.back().then = answer;
      }
    }
    core_.ApplyLocked(changes);
  }
  core_.Run(effects);
  if (answer_now) return answer(absl::OkStatus());
  if (fate == CommandTable::ResultFate::kWrongNode) {
    return reply(Refused(ev.id(), absl::StrCat("no command ", cid, " sent to ", from)));
  }
  if (fate == CommandTable::ResultFate::kNeverSent) {
    ++core_.counters.refused_answers;
    STEWARD_LOG_WARNING("result of {} for command {} not taken: the command was never sent to it", from, cid);
    return reply(Refused(ev.id(), absl::StrCat("command ", cid, " was never sent to ", from, ": its result is not taken")));
  }
  if (fate != CommandTable::ResultFate::kUnknown) return;
  // Not in memory: finished long ago (a repeat, stored already), or not ours at all.
  absl::StatusOr<std::optional<proto::CommandState>> s = core_.store().GetCommand(cid);
  if (!s.ok()) return answer(s.status());
  if (!s->has_value() || (*s)->node() != from) {
    // A site station in control of the node (station/site.h) sent it: that command comes
    // with the site's journal at hand-back. The node keeps its result until then.
    std::string held;
    {
      absl::MutexLock lock(&core_.model.mu);
      if (auto it = core_.model.site_held.find(from); it != core_.model.site_held.end()) held = it->second;
    }
    if (!held.empty()) return reply(NotNow(ev.id(), absl::StrCat("command ", cid, " unknown here yet: ", held)));
    return reply(Refused(ev.id(), absl::StrCat("no command ", cid, " sent to ", from)));
  }
  answer(absl::OkStatus());
}

void Intake::Syslog(const proto::Envelope& ev, const Respond& reply) {
  proto::LogBatch batch;
  if (!batch.ParseFromString(ev.payload())) return reply(Refused(ev.id(), "malformed syslog batch"));
  const std::string from = ev.from_node();
  const uint64_t dropped = batch.dropped();
  Effects effects;
  {
    absl::MutexLock lock(&core_.model.mu);
    core_.HeardFromLocked(from, absl::Now(), effects);
  }
  core_.Run(effects);
  auto counts = std::make_shared<ledger::LogCounts>();
  core_.store().Write(
      ledger::AddLogs(from, ev.id(), std::move(batch), counts),
      [this, reply, from, dropped, counts, id = ev.id()](absl::Status st) {
        // Not stored: the agent keeps the batch and sends it again.
        if (!st.ok()) return reply(NotNow(id, st.message()));
        // A repeat changes nothing; a batch that only reports drops is counted too.
        if (counts->fresh && (counts->stored > 0 || dropped > 0)) {
          absl::MutexLock lock(&core_.model.mu);
          core_.model.nodes.LogsStored(from, counts->stored, counts->errors, dropped, absl::Now());
        }
        reply(Stored(id));
      });
}

}  // namespace steward::station
