#include "station/dispatcher.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "station/repeats.h"
#include "station/ledger/log_store.h"
#include "station/operations.h"
#include "subjects/subject.h"

namespace steward::station {
namespace {

constexpr absl::Duration kHousekeeping = absl::Milliseconds(50);
// Probes (one a housekeeping turn) not back for this long are logged.
constexpr absl::Duration kUnheardWarning = absl::Seconds(2);
// A batch carries at most this many commands, and this many bytes of them (a broker's
// payload limit is 1 MiB by default; a command alone may be larger and goes alone).
constexpr size_t kBatchMax = kMaxBatchCommands;
constexpr size_t kBatchBytes = 256 * 1024;

}  // namespace

Gate Dispatcher::GateOf(proto::CommandState& c) {
  // A site station is in control of the node (station/site.h): held, with why, until it
  // hands control back (which unparks the node's commands).
  if (auto it = core_.model.site_held.find(c.node()); it != core_.model.site_held.end()) {
    c.mutable_result()->set_error(absl::StrCat("held: ", it->second));
    return Gate::kPark;
  }
  if (c.has_result() && c.result().outcome() == proto::OUTCOME_UNSPECIFIED &&
      absl::StartsWith(c.result().error(), "held: ")) {
    c.clear_result();  // the hold is over
  }
  // A rollout's batch not released yet, a splayed run's command before its time.
  if (core_.model.jobs.Held(c.id())) return Gate::kPark;
  // Paused, or the node is in maintenance: resume / maintenance off unparks it.
  if (Operations::Parked(core_.model, c)) return Gate::kPark;
  // Secure mode: a node's commands wait until an operator accepted its key (so their
  // results can be verified) and it was heard from (so they are bound to its
  // installation); accepting it, or its next hello, unparks them.
  return core_.BindLocked(c) ? Gate::kSend : Gate::kPark;
}

void Dispatcher::Run(const absl::Notification& stop, const Backlog* events) {
  absl::Time next_prune = absl::Now() + absl::Seconds(5);
  absl::Time next_housekeeping = absl::Now();
  // Past this, nats.c's own pings have closed a half-open link (3 unanswered at the
  // station's ping interval, its default heartbeat unless set; station.cc Connect), and a
  // probe that has not come back is not the link's fault.
  const nats::ConnectOptions& link = core_.options().nats;
  const absl::Duration ping =
      link.ping_interval > absl::ZeroDuration() ? link.ping_interval : core_.options().default_heartbeat;
  const absl::Duration longest_deafness = ping * (link.max_pings_out + 2);
  if (absl::StatusOr<Hearing> h = Hearing::Start(core_.conn(), core_.options().name, longest_deafness, events);
      h.ok()) {
    hearing_.emplace(std::move(*h));
  } else {
    STEWARD_LOG_WARNING(
        "station {}: cannot probe its own broker link ({}); a half-open link goes unseen until "
        "the connection closes",
        core_.options().name, h.status().message());
  }
  while (!stop.HasBeenNotified()) {
    last_turn_.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
    if (absl::Now() >= next_prune) {
      const StationOptions& o = core_.options();
      ledger::PruneLogs(core_.store(), absl::ToUnixMillis(absl::Now() - o.log_retention), o.log_max_lines);
      core_.store().Write(ledger::Store::PruneEvents(absl::ToUnixMillis(absl::Now() - o.event_retention),
                                                     o.event_max_rows));
      core_.store().Write(Repeats::PruneBefore(absl::ToUnixMillis(absl::Now() - Repeats::kWindow)));
      next_prune = absl::Now() + o.log_prune_every;
    }
    std::vector<Dispatch> sends;
    absl::flat_hash_set<std::string> batching;  // nodes of first sends that take batches
    Effects effects;
    std::optional<absl::Time> probe;  // a housekeeping turn's time: a probe follows it
    {
      absl::MutexLock lock(&core_.model.mu);
      const absl::Time due = core_.model.commands.NextDue();
      core_.model.mu.AwaitWithDeadline(absl::Condition(&core_.model.wake), std::min(due, next_housekeeping));
      core_.model.wake = false;
      const absl::Time now = absl::Now();
      Changes changes;
      sends = core_.model.commands.TakeDue(
          now, [this](proto::CommandState& c) ABSL_NO_THREAD_SAFETY_ANALYSIS { return GateOf(c); },
          changes);
      core_.ApplyLocked(changes);
      for (const Dispatch& d : sends) {
        if (!d.first) continue;
        const NodeTable::Node* n = core_.model.nodes.Find(d.command.to_node());
        if (n != nullptr && n->info.takes_batches()) batching.insert(d.command.to_node());
      }
      if (now >= next_housekeeping) {
        HousekeepLocked(now, effects);
        next_housekeeping = now + kHousekeeping;
        probe = now;
      }
    }
    core_.Run(effects);
    // Probes only on a connection that is up: nats.c would keep the others for the
    // reconnect, and they could not vouch for anything then (NodeTable::Listening does).
    if (probe.has_value() && hearing_.has_value() &&
        natsConnection_Status(core_.conn()) == NATS_CONN_STATUS_CONNECTED) {
      if (absl::Status st = hearing_->Probe(*probe); !st.ok()) {
        STEWARD_LOG_WARNING("station {}: probe of its broker link not sent: {}", core_.options().name, st.message());
      }
    }
    SendAll(std::move(sends), batching);
  }
}

void Dispatcher::SendAll(std::vector<Dispatch> sends, const absl::flat_hash_set<std::string>& batching) {
  if (batching.empty()) {
    for (Dispatch& d : sends) Send(std::move(d));
    return;
  }
  // By node, in order: one batch per kBatchMax commands or kBatchBytes.
  std::vector<std::pair<std::string, std::vector<Dispatch>>> groups;
  absl::flat_hash_map<std::string, size_t> group_of;
  for (Dispatch& d : sends) {
    if (!d.first || !batching.contains(d.command.to_node())) {
      Send(std::move(d));
      continue;
    }
    auto [it, added] = group_of.try_emplace(d.command.to_node(), groups.size());
    if (added) groups.emplace_back(d.command.to_node(), std::vector<Dispatch>{});
    groups[it->second].second.push_back(std::move(d));
  }
  for (auto& [node, group] : groups) {
    std::vector<Dispatch> batch;
    size_t bytes = 0;
    auto flush = [&, node = node] {
      if (batch.size() == 1) Send(std::move(batch.front()));
      if (batch.size() > 1) SendBatch(node, std::move(batch));
      batch.clear();
      bytes = 0;
    };
    for (Dispatch& d : group) {
      if (!batch.empty() && (batch.size() == kBatchMax || bytes + d.wire.size() > kBatchBytes)) flush();
      bytes += d.wire.size();
      batch.push_back(std::move(d));
    }
    flush();
  }
}

void Dispatcher::Send(Dispatch d) {
  const std::string node = d.command.to_node();
  absl::StatusOr<subjects::Subject> subject =
      subjects::Make(node, subjects::Kind::kCommand, d.command.method(), d.command.domain());
  if (!subject.ok()) {
    absl::MutexLock lock(&core_.model.mu);
    Changes changes;
    core_.model.commands.Finish(d.id, proto::STATE_REJECTED,
                                RejectAck(d.id, core_.options().name, subject.status().message()), absl::Now(),
                                changes);
    core_.ApplyLocked(changes);
    return;
  }
  const std::string id = d.id;
  const uint64_t gen = d.gen;
  const absl::Time sent = absl::Now();
  absl::Status st = core_.pump().Send(subject->ToString(), d.wire, core_.options().ack_timeout,
                                      [this, id, gen, node, sent](RequestPump::Result r, nats::MsgPtr m) {
                                        if (r == RequestPump::Result::kReply) {
                                          core_.metrics.receipt_latency.Observe(
                                              absl::ToDoubleSeconds(absl::Now() - sent));
                                        }
                                        OnAnswer(id, gen, node, r, std::move(m));
                                      });
  if (!st.ok()) NotSent({{id, gen}}, node, st);
}

void Dispatcher::NotSent(const std::vector<std::pair<std::string, uint64_t>>& commands, const std::string& node,
                         const absl::Status& st) {
  absl::MutexLock lock(&core_.model.mu);
  const absl::Time now = absl::Now();
  for (const auto& [id, gen] : commands) {
    // The station is stopping: left as it is.
    if (absl::IsFailedPrecondition(st)) {
      core_.model.commands.OnShutdown(id, gen);
      continue;
    }
    // Not sent at all: no delivery, and not a timeout of the node's.
    const uint64_t n = ++not_sent_;
    if (n == 1 || n % 1000 == 0) {
      STEWARD_LOG_WARNING("command {} to {} not sent: {}; tried again later ({} dispatches not sent so far)", id,
                          node, st.message(), n);
    }
    core_.metrics.dispatch_answers.Add({"not_sent"});
    core_.model.commands.OnNotSent(id, gen, now);
  }
}

void Dispatcher::SendBatch(const std::string& node, std::vector<Dispatch> batch) {
  const std::string& station = core_.options().name;
  absl::StatusOr<subjects::Subject> subject = subjects::Make(node, subjects::Kind::kCommand, kMethodBatch, station);
  if (!subject.ok()) {
    for (Dispatch& d : batch) Send(std::move(d));
    return;
  }
  // The carrier is no command (nothing in it is run or recorded as it): unsigned; the
  // node checks each command in it as if it came alone. Its answer takes one signature,
  // on the whole (a node from before that signs each ACK in it instead).
  proto::CommandBatch body;
  body.set_answer_signed_once(true);
  std::vector<std::pair<std::string, uint64_t>> commands;
  commands.reserve(batch.size());
  for (Dispatch& d : batch) {
    body.add_commands(std::move(d.wire));
    commands.emplace_back(d.id, d.gen);
  }
  proto::Envelope carrier = NewEnvelope(station, node, proto::KIND_COMMAND, kMethodBatch, station);
  carrier.set_payload(body.SerializeAsString());
  const std::string carrier_id = carrier.id();
  const absl::Time sent = absl::Now();
  absl::Status st = core_.pump().Send(
      subject->ToString(), carrier.SerializeAsString(), core_.options().ack_timeout,
      [this, carrier_id, node, commands, sent](RequestPump::Result r, nats::MsgPtr m) {
        if (r == RequestPump::Result::kReply) {
          const double seconds = absl::ToDoubleSeconds(absl::Now() - sent);
          for (size_t i = 0; i < commands.size(); ++i) core_.metrics.receipt_latency.Observe(seconds);
        }
        OnBatchAnswer(carrier_id, node, commands, r, std::move(m));
      });
  if (!st.ok()) {
    NotSent(commands, node, st);
    return;
  }
  ++core_.counters.batches;
  core_.counters.batched_commands += commands.size();
}

void Dispatcher::OnAnswer(const std::string& id, uint64_t gen, const std::string& node,
                          RequestPump::Result r, nats::MsgPtr msg) {
  Effects effects;
  {
    absl::MutexLock lock(&core_.model.mu);
    const absl::Time now = absl::Now();
    Changes changes;
    if (r == RequestPump::Result::kReply) {
      TakeAnswerLocked(id, gen, node, DecodeAck(nats::Data(msg.get())), now, changes, effects);
    } else {
      if (r == RequestPump::Result::kNoResponders) {
        // Parked: it goes out again when the node is heard from.
        if (std::optional<Transition> t = core_.model.nodes.NoResponders(node, now)) core_.RecordLocked(*t, effects);
      }
      NoAnswerLocked(id, gen, r, now);
    }
    core_.ApplyLocked(changes);
  }
  core_.Run(effects);
}

void Dispatcher::OnBatchAnswer(const std::string& carrier, const std::string& node,
                               const std::vector<std::pair<std::string, uint64_t>>& commands,
                               RequestPump::Result r, nats::MsgPtr msg) {
  // The ACKs in the answer, by the command they answer (a node's answer naming a command
  // that was not in the batch is no answer to anything here).
  absl::flat_hash_map<std::string, absl::StatusOr<proto::Ack>> acks;
  std::string unreadable;
  std::optional<proto::Ack> signed_answer;  // a carrier's Ack with the one signature for all
  std::string answered_by;                  // the installation the carrier's Ack names
  if (r == RequestPump::Result::kReply) {
    absl::StatusOr<proto::Ack> answer = DecodeAck(nats::Data(msg.get()));
    proto::AckBatch batch;
    if (!answer.ok()) {
      unreadable = std::string(answer.status().message());
    } else if (answer->envelope_id() != carrier) {
      unreadable = absl::StrCat("it answers \"", answer->envelope_id(), "\"");
    } else if (answer->outcome() != proto::OUTCOME_SUCCEEDED) {
      unreadable = absl::StrCat("it was refused: ", answer->error());
    } else if (!batch.ParseFromString(answer->payload())) {
      unreadable = "its payload is no AckBatch";
    } else {
      for (proto::Ack& ack : *batch.mutable_acks()) {
        // Each as DecodeAck takes an ACK that came alone.
        std::string id = ack.envelope_id();
        absl::StatusOr<proto::Ack> one = std::move(ack);
        if (one->protocol_version() != kProtocolVersion) {
          one = absl::InvalidArgumentError(absl::StrCat("unsupported ACK protocol version ", one->protocol_version()));
        }
        acks.try_emplace(std::move(id), std::move(one));
      }
      answered_by = answer->instance_id();
      if (!answer->signature().empty()) signed_answer = *std::move(answer);
    }
  }
  Effects effects;
  {
    absl::MutexLock lock(&core_.model.mu);
    const absl::Time now = absl::Now();
    Changes changes;
    // With keys, an answer signed once as a whole (CommandBatch.answer_signed_once) is
    // believed as one ACK alone would be, and then covers every ACK in it; one that is
    // not believed is not taken at all. Unsigned, each ACK in it needs its own signature.
    bool covered = false;
    if (unreadable.empty() && signed_answer.has_value() && core_.options().key.has_value()) {
      if (absl::Status st = CheckAnswer(carrier, node, *signed_answer); st.ok()) {
        covered = true;
      } else {
        ++core_.counters.refused_answers;
        unreadable = absl::StrCat("its signature is not believed: ", st.message());
        acks.clear();
      }
    }
    if (!unreadable.empty()) {
      // Its commands are sent again alone (a batch carries first sends only).
      const uint64_t n = ++bad_batches_;
      if (n == 1 || n % 100 == 0) {
        STEWARD_LOG_WARNING("the answer of {} to batch {} ({} commands) was not taken: {}; they are sent again one "
                            "by one ({} batch answers not taken so far)",
                            node, carrier, commands.size(), unreadable, n);
      }
      // Someone answered; with keys nothing unsigned counts as the node's sign of life.
      if (!core_.options().key.has_value()) core_.HeardFromLocked(node, now, effects);
    }
    if (r == RequestPump::Result::kNoResponders) {
      if (std::optional<Transition> t = core_.model.nodes.NoResponders(node, now)) core_.RecordLocked(*t, effects);
    }
    // A taken answer from the node's current installation (with keys, one its signature
    // covers): what it left out reached that one, not an earlier one (a reinstall's hello
    // may have come while the batch was out).
    const NodeTable::Node* n = core_.model.nodes.Find(node);
    const bool from_current = unreadable.empty() && r == RequestPump::Result::kReply && !answered_by.empty() &&
                              n != nullptr && n->info.instance_id() == answered_by &&
                              (covered || !core_.options().key.has_value());
    for (const auto& [id, gen] : commands) {
      if (r != RequestPump::Result::kReply) {
        NoAnswerLocked(id, gen, r, now);
        continue;
      }
      auto it = acks.find(id);
      if (it == acks.end()) {
        // Left out (it waits behind another command of its subject, or the answer
        // would not fit): as after a lost answer, sent again (alone).
        core_.metrics.dispatch_answers.Add({unreadable.empty() ? "unanswered_in_batch" : "bad_batch"});
        if (from_current) core_.model.commands.ReachedCurrent(id);
        core_.model.commands.OnTimeout(id, gen, now);
        continue;
      }
      TakeAnswerLocked(id, gen, node, std::move(it->second), now, changes, effects, covered);
    }
    core_.ApplyLocked(changes);
  }
  core_.Run(effects);
}

void Dispatcher::NoAnswerLocked(const std::string& id, uint64_t gen, RequestPump::Result r, absl::Time now) {
  switch (r) {
    case RequestPump::Result::kNoResponders:
      core_.metrics.dispatch_answers.Add({"no_responders"});
      core_.model.commands.OnNoResponders(id, gen);  // parked until the node is heard from
      break;
    case RequestPump::Result::kTimeout:
      core_.metrics.dispatch_answers.Add({"timeout"});
      core_.model.commands.OnTimeout(id, gen, now);
      break;
    case RequestPump::Result::kShutdown:
      core_.model.commands.OnShutdown(id, gen);
      break;
    case RequestPump::Result::kReply:
      break;
  }
}

void Dispatcher::TakeAnswerLocked(const std::string& id, uint64_t gen, const std::string& node,
                                  const absl::StatusOr<proto::Ack>& ack, absl::Time now, Changes& changes,
                                  Effects& effects, bool covered) {
  if (!ack.ok() && !core_.options().key.has_value()) {
    // The node answered, but not in a way this station can read (another protocol
    // version, a broken agent): it may have recorded the command and run it, so its
    // outcome cannot be known. Said so, not retried in silence. (With keys only a
    // verified ACK counts: then it is refused below.)
    const uint64_t n = ++core_.counters.bad_acks;
    core_.metrics.dispatch_answers.Add({"bad_ack"});
    const std::string why = absl::StrCat(node, " answered with an ACK this station cannot read (",
                                         ack.status().message(), "): its agent speaks another protocol; "
                                         "the command may have run there, its outcome is unknown");
    STEWARD_LOG_WARNING("command {}: {} ({} unreadable ACKs so far)", id, why, n);
    core_.HeardFromLocked(node, now, effects);
    if (core_.model.commands.Generation(id) != gen) return;  // an older send's answer
    core_.model.commands.OnTimeout(id, gen, now);  // no longer in flight
    core_.model.commands.Finish(id, proto::STATE_LOST, RejectAck(id, core_.options().name, why), now, changes);
    return;
  }
  absl::Status believed = ack.ok() ? CheckAnswer(id, node, *ack, covered) : ack.status();
  if (!believed.ok()) {
    // Not an answer the station can take: sent again later (and said why).
    ++core_.counters.refused_answers;
    core_.metrics.dispatch_answers.Add({"refused"});
    STEWARD_LOG_WARNING("answer of {} for command {} not taken: {}", node, id, believed.message());
    core_.model.commands.OnTimeout(id, gen, now);
    return;
  }
  if (ack->outcome() == proto::OUTCOME_REJECTED && core_.model.commands.BoundElsewhere(id, ack->instance_id())) {
    // Refused by the node's current installation for being bound to an earlier one (the
    // reinstalled unit's hello came while this dispatch was out): it ran nowhere.
    core_.metrics.dispatch_answers.Add({"rebound"});
    core_.HeardFromLocked(node, now, effects);
    core_.model.commands.OnStaleBinding(id, gen, now);
    return;
  }
  if (ack->outcome() == proto::OUTCOME_ERROR && ack->stage() != proto::STAGE_RESULT) {
    // The node could not take the command now (it cannot record it: a full disk).
    STEWARD_LOG_WARNING("node {} could not take command {} now: {}", node, id, ack->error());
    core_.HeardFromLocked(node, now, effects);
    if (!ack->instance_id().empty()) core_.model.commands.ReachedCurrent(id);  // believed: the current one
    core_.model.commands.OnTimeout(id, gen, now);
    return;
  }
  core_.metrics.dispatch_answers.Add({ack->stage() == proto::STAGE_RESULT ? "result" : "received"});
  core_.HeardFromLocked(node, now, effects);
  core_.model.commands.OnReply(id, gen, *ack, now, changes);
}

absl::Status Dispatcher::CheckAnswer(const std::string& id, const std::string& node, const proto::Ack& ack,
                                     bool covered) {
  if (ack.envelope_id() != id) {
    return absl::InvalidArgumentError(absl::StrCat("it answers \"", ack.envelope_id(), "\""));
  }
  const NodeTable::Node* n = core_.model.nodes.Find(node);
  const std::string instance = n == nullptr ? "" : n->info.instance_id();
  if (!instance.empty() && !ack.instance_id().empty() && ack.instance_id() != instance) {
    return absl::FailedPreconditionError(absl::StrCat("it comes from installation ", ack.instance_id(),
                                                      ", not the current one (", instance, ")"));
  }
  if (core_.options().key.has_value()) {
    // Secure mode: the node's own key, the installation named.
    if (n == nullptr || n->info.public_key().empty()) return absl::PermissionDeniedError("the node is not accepted");
    if (ack.instance_id().empty()) return absl::PermissionDeniedError("it names no installation");
    if (covered) return absl::OkStatus();  // by its batch answer's signature, verified
    return signing::VerifyAckWith(ack, n->info.public_key());
  }
  return absl::OkStatus();
}

void Dispatcher::HousekeepLocked(absl::Time now, Effects& effects) {
  for (Waiter& w : core_.model.waiters.Expire(now)) effects.ready.push_back(std::move(w));
  Changes changes;
  core_.model.commands.Housekeep(now, changes);
  core_.ApplyLocked(changes);
  // Node monitor: offline after missed heartbeats, counted while the station can hear
  // them. Before its first turn (a start, a takeover: the ledger's last-heard times are as
  // old as the station's absence) and while its broker connection is down (a start before
  // the broker, a lost link), nobody's silence is the node's: heartbeats count from the
  // turn it hears again (NodeTable::Listening). On a link that looks connected, they
  // count up to the last moment its own probes prove it heard (Hearing: a half-open
  // link returns none).
  if (natsConnection_Status(core_.conn()) != NATS_CONN_STATUS_CONNECTED) {
    deaf_ = true;
    if (proven_ != absl::InfinitePast()) core_.counters.unheard_ms.store(absl::ToInt64Milliseconds(now - proven_));
  } else {
    if (deaf_) {
      deaf_ = false;
      listening_since_ = now;
      core_.model.nodes.Listening(now);
      if (hearing_.has_value()) hearing_->Restart();
    }
    const absl::Time heard = hearing_.has_value() ? hearing_->Heard(now) : now;
    proven_ = std::max(heard, listening_since_);
    core_.counters.unheard_ms.store(absl::ToInt64Milliseconds(now - proven_));
    if (hearing_.has_value()) NoteHearingLocked(now, heard);
    for (const Transition& t : core_.model.nodes.Monitor(now, core_.options().missed_heartbeats, heard)) {
      core_.RecordLocked(t, effects);
    }
  }
  std::vector<std::pair<std::string, std::string>> rows = core_.model.nodes.TakeDirty();
  if (!rows.empty()) core_.store().Write(ledger::Store::PutNodeRows(std::move(rows)));
}

void Dispatcher::NoteHearingLocked(absl::Time now, absl::Time heard) {
  const absl::Duration unheard = now - proven_;
  if (!unheard_warned_ && unheard > kUnheardWarning) {
    unheard_warned_ = true;
    STEWARD_LOG_WARNING(
        "station {}: its probes through the broker have not come back for {} (a half-open link, or "
        "its intake is that far behind): no node's silence after that counts until they do",
        core_.options().name, absl::FormatDuration(unheard));
  } else if (unheard_warned_ && heard >= listening_since_ && unheard < kUnheardWarning / 2) {
    unheard_warned_ = false;
    STEWARD_LOG_INFO("station {}: hears its broker again", core_.options().name);
  }
  if (hearing_->capped() && !capped_logged_) {
    capped_logged_ = true;
    STEWARD_LOG_ERROR(
        "station {}: its probes through the broker have not come back for {}, although its "
        "connection is up (does the broker let it publish and subscribe to _STEWARD.hear.>?): "
        "nodes' silence is judged anyway, that much late",
        core_.options().name, absl::FormatDuration(now - heard));
  } else if (!hearing_->capped() && unheard < kUnheardWarning / 2) {
    capped_logged_ = false;
  }
}

void Dispatcher::Flush() {
  absl::MutexLock lock(&core_.model.mu);
  Changes changes;
  core_.model.commands.FlushRunning(changes);
  core_.ApplyLocked(changes);
  std::vector<std::pair<std::string, std::string>> rows = core_.model.nodes.TakeDirty();
  if (!rows.empty()) core_.store().Write(ledger::Store::PutNodeRows(std::move(rows)));
}

}  // namespace steward::station
