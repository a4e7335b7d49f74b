#include "station/core.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "common/status_macros.h"
#include "proto/wire.pb.h"
#include "station/ledger/log_store.h"
#include "station/ledger/surfaces.h"
#include "station/reply_fit.h"
#include "station/site.h"
#include "subjects/subject.h"

namespace steward::station {

proto::Ack OkAck(absl::string_view id, const std::string& station,
                 const google::protobuf::Message& body) {
  proto::Ack a = NewAck(id, station, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
  a.set_payload(body.SerializeAsString());
  return a;
}

namespace {

CommandTableOptions TableOptions(const StationOptions& o) {
  CommandTableOptions t;
  t.initial_backoff = o.initial_backoff;
  t.max_backoff = o.max_backoff;
  t.result_grace = o.result_grace;
  t.keep_finished = o.keep_finished;
  return t;
}

// Set on the ledger's writer thread while AnswerOnCommit answers a waiter that takes
// its answer gathered (Core::Gather).
thread_local bool gathering = false;

}  // namespace

Model::Model(const StationOptions& o)
    : commands(TableOptions(o)), nodes(o.default_heartbeat), jobs(o.name) {}

Core::Core(const StationOptions& options, ledger::Store& store, natsConnection* conn,
           RequestPump& pump)
    : model(options), options_(options), store_(store), conn_(conn), pump_(pump) {
  // The commands one commit made are due together: the dispatcher is woken once for
  // them, after the commit's completions, and sends them in one batch per node (woken
  // by each completion, it sent them one or two at a time).
  store_.AfterGroup([this] {
    SendGathered();
    absl::MutexLock lock(&model.mu);
    if (model.wake_after_group) {
      model.wake_after_group = false;
      model.wake = true;
    }
  });
}

Core::~Core() {
  store_.AfterGroup(nullptr);
  // A group's completions may have held answers that its follow-up, now cleared, did
  // not send (a site station handing back waits for a completion, not the follow-up).
  SendGathered();
}

absl::Status Core::Load() {
  STEWARD_ASSIGN_OR_RETURN(std::vector<proto::NodeInfo> nodes, store_.Nodes());
  std::vector<std::pair<std::string, std::string>> damaged;  // spooled chunks not read back whole
  STEWARD_ASSIGN_OR_RETURN(std::vector<proto::CommandState> active, store_.ActiveCommands(&damaged));
  STEWARD_ASSIGN_OR_RETURN(auto settings, store_.Settings());
  // Errors per minute are counted over 10 minutes: those before the restart too.
  STEWARD_ASSIGN_OR_RETURN(std::vector<ledger::ErrorMinute> errors,
                           ledger::RecentErrors(store_, absl::ToUnixMillis(absl::Now() - absl::Minutes(10))));
  if (!active.empty() || !nodes.empty()) {
    STEWARD_LOG_INFO("ledger: {} nodes, {} unfinished commands", nodes.size(), active.size());
  }
  absl::MutexLock lock(&model.mu);
  model.nodes.Load(std::move(nodes));
  for (const ledger::ErrorMinute& e : errors) model.nodes.RestoreErrors(e.node, e.minute, e.errors);
  STEWARD_RETURN_IF_ERROR(model.access.Load(settings));
  STEWARD_RETURN_IF_ERROR(model.active.Load(settings));
  for (const auto& [key, value] : settings) {
    if (key == kDispatchSetting && !model.dispatch.ParseFromString(value)) {
      return absl::DataLossError("corrupt dispatch setting in the ledger");
    }
  }
  if (model.dispatch.paused()) {
    STEWARD_LOG_WARNING("dispatch is PAUSED (by {}: {}); `stewardctl resume` restarts it", model.dispatch.by(),
                        model.dispatch.reason());
  }
  // Ask every node about its unfinished commands: it answers with what it recorded.
  const absl::Time now = absl::Now();
  Changes changes;
  for (proto::CommandState& s : active) {
    // Its node was reinstalled while its only dispatch was out, and the answer to that
    // dispatch, which said whether the earlier installation may have taken it, went
    // with the station: lost, as when no answer comes (CommandTable::Reinstalled).
    std::string unanswered = s.marks().lost_unless_answered();
    const std::string id = s.id();
    model.commands.Add(std::move(s), now, /*fresh=*/false);
    if (unanswered.empty()) continue;
    STEWARD_LOG_WARNING(
        "command {}: the station stopped before the answer to its dispatch at its node's "
        "reinstall came; it ends lost",
        id);
    proto::Ack r = NewAck(id, options_.name, proto::STAGE_RESULT, proto::OUTCOME_ERROR);
    r.set_error(absl::StrCat(unanswered, " (the station restarted before the answer to its last dispatch came)"));
    r.set_finished_unix_ms(absl::ToUnixMillis(now));
    model.commands.Finish(id, proto::STATE_LOST, std::move(r), now, changes);
  }
  // Never sent without its bytes: lost (the node may have run it before the restart),
  // which stewardctl copy sends again.
  for (const auto& [id, why] : damaged) {
    const proto::CommandState* s = model.commands.Find(id);
    if (s != nullptr && IsTerminal(s->state())) continue;  // ended above (its reinstall wait)
    STEWARD_LOG_ERROR("{}; it is not sent again and ends lost", why);
    proto::Ack r = NewAck(id, options_.name, proto::STAGE_RESULT, proto::OUTCOME_ERROR);
    r.set_error(absl::StrCat("the station cannot send it: ", why));
    r.set_finished_unix_ms(absl::ToUnixMillis(now));
    model.commands.Finish(id, proto::STATE_LOST, std::move(r), now, changes);
  }
  ApplyLocked(changes);
  return absl::OkStatus();
}

size_t Core::ReplyLimit() const { return station::ReplyLimit(conn_); }

absl::Status Core::CheckFits(const proto::Envelope& tmpl) const {
  // What the station adds to the template (ids, addresses, times, operator, signature)
  // and what a state adds to its command (ids, times, the result's fields besides its
  // outputs, which are cut to fit), with slack.
  constexpr size_t kRoom = 512 + 1024;
  const size_t size = tmpl.ByteSizeLong(), limit = ReplyLimit();
  if (size + kRoom <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the command is ", size, " bytes with its arguments and payload; a command may have at most ",
      limit > kRoom ? limit - kRoom : 0,
      " (the broker's max_payload less room for the answers that carry it): nothing was queued "
      "(large data goes with `stewardctl copy`)"));
}

void Core::Reply(const std::string& reply, const proto::Ack& ack) {
  if (reply.empty() || Gather(reply, [&ack] { return ack.SerializeAsString(); })) return;
  if (absl::Status st = nats::Publish(conn_, reply, ack.SerializeAsString()); !st.ok()) {
    STEWARD_LOG_WARNING("reply: {}", st.ToString());
  }
}

void Core::Publish(const std::string& subject, const std::string& data) {
  if (subject.empty()) return;
  if (absl::Status st = nats::Publish(conn_, subject, data); !st.ok()) {
    STEWARD_LOG_WARNING("publish to {}: {}", subject, st.ToString());
  }
}

absl::StatusOr<proto::CommandState> Core::NewCommand(const std::string& target,
                                                     proto::Envelope tmpl,
                                                     const std::string& request_id,
                                                     const std::string& op,
                                                     const std::string& instance) const {
  const StationOptions::Site& site = options_.site;
  if (!site.name.empty() && std::find(site.nodes.begin(), site.nodes.end(), target) == site.nodes.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this is site ", site.name, "'s station: it controls only ", absl::StrJoin(site.nodes, ", "),
        "; a command for ", target, " must go through the central station (the site's link to it is down)"));
  }
  // A shellcommand that could never run (no argv, a NUL byte in it) is refused before
  // it is queued, whichever way it came (stewardctl, HTTP, a job or runbook).
  if (tmpl.method() == kMethodShell) STEWARD_RETURN_IF_ERROR(ValidateShellCommand(tmpl));
  const int64_t now_ms = NowUnixMillis();
  proto::CommandState s;
  proto::Envelope& e = *s.mutable_command();
  e = NewEnvelope(options_.name, target, proto::KIND_COMMAND, tmpl.method(), tmpl.domain());
  e.mutable_argv()->CopyFrom(tmpl.argv());
  e.mutable_shell()->CopyFrom(tmpl.shell());
  e.set_payload(std::move(*tmpl.mutable_payload()));
  e.set_timeout_ms(tmpl.timeout_ms() > 0 ? tmpl.timeout_ms()
                                         : absl::ToInt64Milliseconds(options_.default_timeout));
  e.set_expires_unix_ms(tmpl.expires_unix_ms() > 0
                            ? tmpl.expires_unix_ms()
                            : now_ms + absl::ToInt64Milliseconds(options_.default_ttl));
  e.set_request_id(request_id);
  e.set_operator_(op);
  e.set_target_instance(instance);
  if (options_.key.has_value()) {
    if (absl::Status st = signing::SignEnvelope(e, *options_.key); !st.ok()) {
      return absl::InternalError(absl::StrCat("signing the command for ", target, ": ", st.message()));
    }
  }
  s.set_id(e.id());
  s.set_node(target);
  s.set_request_id(request_id);
  s.set_state(proto::STATE_QUEUED);
  s.set_created_unix_ms(now_ms);
  s.set_updated_unix_ms(now_ms);
  return s;
}

bool Core::BindLocked(proto::CommandState& c) {
  const NodeTable::Node* node = model.nodes.Find(c.node());
  const std::string instance = node == nullptr ? "" : node->info.instance_id();
  if (options_.key.has_value()) {
    // Secure mode: only to a node whose key is accepted (its results can be verified)
    // and whose installation is known (the command is bound to it).
    if (node == nullptr || node->info.public_key().empty() || instance.empty()) return false;
  }
  proto::Envelope& e = *c.mutable_command();
  if (instance.empty() || e.target_instance() == instance) return true;
  e.set_target_instance(instance);
  if (options_.key.has_value()) {
    if (absl::Status st = signing::SignEnvelope(e, *options_.key); !st.ok()) {
      STEWARD_LOG_ERROR("signing {} for {}: {}", c.id(), c.node(), st.ToString());
      return false;
    }
  }
  return true;
}

void Core::Submit(std::vector<proto::CommandState> states, std::function<void(absl::Status)> done,
                  std::vector<ledger::Store::Op> also) {
  auto ops = std::make_shared<std::vector<ledger::Store::Op>>(std::move(also));
  // The write and then its completion, both on the writer thread, share the states: the
  // write reads them, the completion moves them into the table (a command's payload,
  // a copy chunk's 896 KiB, is not copied for the ledger).
  auto shared = std::make_shared<std::vector<proto::CommandState>>(std::move(states));
  store_.Write(
      [this, ops, shared](sqlite::Database& db) -> absl::Status {
        for (size_t i = 0; i < ops->size(); ++i) {
          // Only a failure of the first has nothing of this write before it.
          if (absl::Status st = (*ops)[i](db); !st.ok()) return i == 0 ? st : ledger::Store::ClearWroteNothing(st);
        }
        for (proto::CommandState& s : *shared) {
          STEWARD_RETURN_IF_ERROR(store_.WriteCommand(db, s, /*fresh=*/true));
          // A site station in control records what it accepted, in order, for the
          // hand-back (station/site.h); it serves only while in control.
          if (!options_.site.name.empty()) {
            STEWARD_RETURN_IF_ERROR(AppendSiteJournal(db, "command", s.id(), s.SerializeAsString()));
          }
        }
        return absl::OkStatus();
      },
      [this, shared, done = std::move(done)](absl::Status st) mutable {
        if (st.ok()) {
          absl::MutexLock lock(&model.mu);
          const absl::Time now = absl::Now();
          for (proto::CommandState& s : *shared) {
            NodeTable::Node& node = model.nodes.Get(s.node());
            node.info.set_last_command_id(s.id());
            node.info.set_last_command_state(StateName(s.state()));
            model.nodes.Changed(s.node());
            FeedEvent e = FeedEvent::Command(s.node(), s.id(), s.request_id(), s.state(), 0);
            model.commands.Add(std::move(s), now);
            e.pending = static_cast<int32_t>(model.commands.Pending(e.node));
            feed.Publish(std::move(e));
          }
          if (model.commands.TakeSooner()) model.wake_after_group = true;
        }
        if (done) done(st);
      });
}

absl::StatusOr<std::vector<proto::CommandState>> Core::States(const std::vector<std::string>& ids) {
  std::vector<std::optional<proto::CommandState>> found(ids.size());
  {
    absl::MutexLock lock(&model.mu);
    for (size_t i = 0; i < ids.size(); ++i) {
      const proto::CommandState* s = model.commands.Find(ids[i]);
      if (s != nullptr && !model.commands.OutputInLedgerOnly(ids[i])) found[i] = *s;
    }
  }
  std::vector<proto::CommandState> out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!found[i].has_value()) {
      STEWARD_ASSIGN_OR_RETURN(found[i], store_.GetCommand(ids[i]));
      if (!found[i].has_value()) return absl::NotFoundError(absl::StrCat("unknown command ", ids[i]));
    }
    out.push_back(*std::move(found[i]));
  }
  return out;
}

void Core::ApplyLocked(Changes& changes) {
  const absl::Time now = absl::Now();
  for (const StateChange& c : changes.states) {
    NodeTable::Node* node = model.nodes.Find(c.node);
    if (node != nullptr && node->info.last_command_id() == c.id) {
      node->info.set_last_command_state(StateName(c.state));
      model.nodes.Changed(c.node);
    }
    if (IsTerminal(c.state)) output.Ended(c.id);  // its output is the result's now
    const proto::CommandState* s = model.commands.Find(c.id);
    if (s != nullptr) {
      const double age = absl::ToDoubleSeconds(now - absl::FromUnixMillis(s->created_unix_ms()));
      if (c.state == proto::STATE_SENT && s->attempts() == 1) metrics.dispatch_latency.Observe(age);
      if (IsTerminal(c.state)) {
        metrics.result_latency.Observe(age);
        metrics.finished.Add({StateName(c.state), s->command().method()});
      }
    }
    feed.Publish(FeedEvent::Command(c.node, c.id, s != nullptr ? s->request_id() : "", c.state,
                                    static_cast<int32_t>(model.commands.Pending(c.node))));
  }
  for (CommandWrite& w : changes.writes) {
    const std::string id = w.record.id();
    store_.Write(store_.PutCommand(std::move(w.record)),
                 [this, id, seq = w.seq, then = std::move(w.then)](absl::Status st) {
                   if (!st.ok()) {
                     const uint64_t n = ++failed_command_writes_;
                     if (n == 1 || n % 100 == 0) {
                       STEWARD_LOG_ERROR("ledger write of {}: {} ({} command writes failed in a row; said at the "
                                         "first and every 100th)",
                                         id, st.ToString(), n);
                     }
                   } else if (const uint64_t n = failed_command_writes_.exchange(0); n > 0) {
                     STEWARD_LOG_INFO("ledger writes of commands work again, after {} failed", n);
                   }
                   if (then) then(st);
                   std::vector<Waiter> ready;
                   {
                     absl::MutexLock lock(&model.mu);
                     if (model.commands.Committed(id, seq, st.ok())) ready = model.waiters.Ended(id);
                   }
                   AnswerOnCommit(std::move(ready));
                 });
  }
  for (const KillRequest& k : changes.kills) SendCancelLocked(k);
  changes = Changes{};
  if (model.commands.TakeSooner()) model.wake = true;
}

// Submit only queues a ledger write here (the store never runs its follow-up inline);
// the follow-up takes model.mu on the writer thread.
void Core::SendCancelLocked(const KillRequest& k) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  proto::Envelope tmpl;
  tmpl.set_method(kMethodCancel);
  tmpl.set_domain(k.domain);
  tmpl.add_argv(k.id);
  tmpl.set_timeout_ms(30000);
  absl::StatusOr<proto::CommandState> s = NewCommand(k.node, tmpl, NewId(), k.by, model.nodes.Instance(k.node));
  if (!s.ok()) {
    // Only signing can fail here; the mark is in the record, so a restart asks again.
    STEWARD_LOG_ERROR("cancel of {} on {}: {}", k.id, k.node, s.status().ToString());
    return;
  }
  STEWARD_LOG_INFO("cancel of {} ({}) goes to {} as command {}", k.id, k.by, k.node, s->id());
  std::vector<proto::CommandState> one;
  one.push_back(*std::move(s));
  Submit(std::move(one), nullptr);
}

void Core::AfterWrites(std::function<void(absl::Status)> fn) {
  store_.Write([](sqlite::Database&) { return absl::OkStatus(); }, std::move(fn));
}

std::string Core::AnswerOf(const Waiter& w) {
  const size_t limit = ReplyLimit();
  std::vector<std::string> ids;
  if (w.any) {
    // Choose the finished commands that fit before copying or reading any: a fan-out
    // of large outputs is collected one reply at a time, each with what fits.
    absl::MutexLock lock(&model.mu);
    absl::flat_hash_set<std::string> seen;
    size_t room = limit;
    for (const std::string& id : w.ids) {
      if (!seen.insert(id).second) continue;
      const proto::CommandState* s = model.commands.Find(id);
      size_t size = 0;  // out of memory: finished long ago, size unknown (FitStates cuts)
      if (s != nullptr) {
        if (!IsTerminal(s->state()) || !model.commands.Durable(id)) continue;
        size_t ledger_bytes = 0;
        model.commands.OutputInLedgerOnly(id, &ledger_bytes);
        size = s->ByteSizeLong() + ledger_bytes;
      }
      if (!ids.empty() && size > room) continue;  // the next wait gets it
      ids.push_back(id);
      room -= std::min(size, room);
    }
  } else {
    ids = w.ids;
  }
  proto::CommandStates states;
  // All at once (one lock for a fan-out's thousands); when one fails (an unknown id, a
  // ledger read), one by one, leaving out the ones that cannot be read.
  absl::StatusOr<std::vector<proto::CommandState>> all = States(ids);
  if (all.ok()) {
    states.mutable_commands()->Reserve(static_cast<int>(all->size()));
    for (proto::CommandState& s : *all) {
      if (!w.any || IsTerminal(s.state())) *states.add_commands() = std::move(s);
    }
  } else {
    for (const std::string& id : ids) {
      absl::StatusOr<std::vector<proto::CommandState>> s = States({id});
      if (!s.ok()) {
        if (!absl::IsNotFound(s.status())) STEWARD_LOG_ERROR("ledger read {}: {}", id, s.status().ToString());
        continue;
      }
      if (!w.any || IsTerminal(s->front().state())) *states.add_commands() = std::move(s->front());
    }
  }
  // Several nodes' large outputs at once, or thousands of small ones: an "any" waiter
  // takes what fits whole (at least one) and asks again for the rest, which are
  // terminal and answered at once.
  if (w.any) DropToFitWhole(states.mutable_commands(), limit);
  // Still too large: outputs are cut (flagged truncated; the ledger keeps them whole).
  FitStates(states.mutable_commands(), limit, /*may_drop=*/false);
  if (w.submit.has_value()) {
    proto::SubmitReply out = *w.submit;
    out.mutable_states()->Swap(states.mutable_commands());
    return OkAck(w.request_id, options_.name, out).SerializeAsString();
  }
  return OkAck("", options_.name, states).SerializeAsString();
}

void Core::Answer(std::vector<Waiter> ready) {
  for (const Waiter& w : ready) AnswerOne(w);
}

void Core::AnswerOne(const Waiter& w) {
  if (w.deliver) {
    w.deliver(AnswerOf(w));
  } else if (!Gather(w.reply, [&] { return AnswerOf(w); })) {
    Publish(w.reply, AnswerOf(w));
  }
}

void Core::AnswerOnCommit(std::vector<Waiter> ready) {
  for (Waiter& w : ready) {
    // Its answer is held whichever way it leaves: to the waiter's reply subject, or
    // through Reply (a submit's answer also answers the repeats that joined it).
    gathering = w.gathered;
    AnswerOne(w);
  }
  gathering = false;
}

bool Core::Gather(const std::string& reply, const std::function<std::string()>& data) {
  if (!gathering) return false;
  std::string bundle = RequestPump::BundleSubject(reply);
  if (bundle.empty()) return false;
  Held held{std::move(bundle), reply, data()};
  absl::MutexLock lock(&gathered_mu_);
  gathered_.push_back(std::move(held));
  return true;
}

void Core::SendGathered() {
  std::vector<Held> held;
  {
    absl::MutexLock lock(&gathered_mu_);
    held.swap(gathered_);
  }
  if (held.empty()) return;
  // By inbox, in the order held; a bundle stays within the broker's max payload (each
  // answer alone does: AnswerOf fits it), so a large group goes as several.
  const size_t limit = static_cast<size_t>(nats::MaxPayload(conn_));
  struct Open {
    proto::ReplyBundle bundle;
    size_t bytes = 0;
  };
  std::vector<std::pair<std::string, Open>> open;  // by bundle subject; few inboxes per group
  auto send = [this](const std::string& subject, Open& o) {
    if (o.bundle.replies_size() == 1) {
      // Alone, to its own subject: a bundle of one saves nothing.
      Publish(o.bundle.replies(0).subject(), o.bundle.replies(0).data());
    } else {
      Publish(subject, o.bundle.SerializeAsString());
    }
    o = Open{};
  };
  for (Held& h : held) {
    auto it = std::find_if(open.begin(), open.end(), [&](const auto& o) { return o.first == h.bundle; });
    if (it == open.end()) it = open.emplace(open.end(), h.bundle, Open{});
    // The reply's field framing: tags and lengths, at most a few bytes each.
    const size_t bytes = h.reply.size() + h.data.size() + 16;
    if (it->second.bytes > 0 && it->second.bytes + bytes > limit) send(h.bundle, it->second);
    proto::BundledReply* r = it->second.bundle.add_replies();
    r->set_subject(std::move(h.reply));
    r->set_data(std::move(h.data));
    it->second.bytes += bytes;
  }
  for (auto& [subject, o] : open) {
    if (o.bundle.replies_size() > 0) send(subject, o);
  }
}

void Core::AddWaiter(Waiter w) {
  std::optional<Waiter> now;
  {
    absl::MutexLock lock(&model.mu);
    // Open: not yet terminal, or its final state is not durable yet (then its commit
    // answers the waiter). Commands out of memory are finished and in the ledger.
    auto open = [this](const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu) {
      const proto::CommandState* s = model.commands.Find(id);
      return s != nullptr && !(IsTerminal(s->state()) && model.commands.Durable(id));
    };
    if (model.closing) w.deadline = absl::InfinitePast();  // its time is up: serving ends
    now = model.waiters.Add(std::move(w), absl::Now(), open);
  }
  if (now.has_value()) Answer({*std::move(now)});
}

void Core::HeardFromLocked(const std::string& node, absl::Time now, Effects& effects) {
  std::optional<Transition> t = model.nodes.HeardFrom(node, now);
  if (!t.has_value()) return;
  RecordLocked(*t, effects);
  model.commands.Unpark(node, now);  // parked commands go out at once
  if (model.commands.TakeSooner()) model.wake = true;
}

void Core::RecordLocked(const Transition& t, Effects& effects) {
  const NodeTable::Node* n = model.nodes.Find(t.node);
  const bool maintenance = n != nullptr && n->info.maintenance().on();
  STEWARD_LOG_INFO("node {} is {} ({}){}", t.node, t.online ? "online" : "offline", t.reason,
                   maintenance ? " in maintenance: no alarm" : "");
  store_.Write(ledger::Store::AddTransition(t.node, t.online, t.at_ms, t.reason));
  if (n != nullptr) store_.Write(ledger::Store::PutNode(n->info));
  feed.Publish(FeedEvent::Node(t.node, t.online, t.reason, maintenance));
  for (const std::string& g : model.access.GroupsOf(t.node)) {
    if (std::optional<ActiveMembers::Change> c = model.active.Recompute(g, model.access.Members(g), OnlineLocked(),
                                                                        t.at_ms)) {
      ActiveChangedLocked(*c, "station");
    }
  }
  effects.transitions.push_back(t);
  if (maintenance) effects.transitions.back().maintenance = true;
}

ActiveMembers::IsOnline Core::OnlineLocked() const {
  return [this](const std::string& node) ABSL_NO_THREAD_SAFETY_ANALYSIS {  // called under model.mu
    const NodeTable::Node* n = model.nodes.Find(node);
    return n != nullptr && n->info.status() == proto::NODE_ONLINE;
  };
}

void Core::ActiveChangedLocked(const ActiveMembers::Change& c, const std::string& by) {
  auto [key, value] = model.active.Setting(c.group);
  store_.Write(ledger::Store::PutSetting(std::move(key), std::move(value)));
  STEWARD_LOG_INFO("group {}: active member {} -> {} ({})", c.group, c.from.empty() ? "none" : c.from,
                   c.to.empty() ? "none" : c.to, c.reason);
  FeedEvent e;
  e.type = FeedEvent::Type::kActive;
  e.node = c.to;
  e.request = c.group;
  e.command = c.from;
  e.text = c.reason;
  e.by = by;
  feed.Publish(std::move(e));
  proto::OperatorAction a;
  a.set_at_unix_ms(NowUnixMillis());
  a.set_operator_(by);
  a.set_via(by == "station" ? "station" : "cli");
  a.set_action("active");
  a.set_target("@" + c.group);
  a.set_detail(absl::StrCat(c.from.empty() ? "none" : c.from, " -> ", c.to.empty() ? "none" : c.to, ": ", c.reason));
  a.set_outcome("ok");
  store_.Write(ledger::AddAction(std::move(a)));
}

void Core::Run(Effects& effects) {
  for (const auto& [reply, ack] : effects.replies) Reply(reply, ack);
  for (const Transition& t : effects.transitions) {
    proto::NodeState ns;
    ns.set_node(t.node);
    ns.set_online(t.online);
    ns.set_at_unix_ms(t.at_ms);
    ns.set_reason(t.reason);
    ns.set_maintenance(t.maintenance);
    proto::Envelope ev =
        NewEnvelope(options_.name, options_.name, proto::KIND_EVENT, kEventNodeState, t.node);
    ev.set_payload(ns.SerializeAsString());
    absl::StatusOr<subjects::Subject> subject =
        subjects::Make(options_.name, subjects::Kind::kEvent, kEventNodeState, t.node);
    if (subject.ok()) Publish(subject->ToString(), ev.SerializeAsString());
  }
  Answer(std::move(effects.ready));
  effects = Effects{};
}

}  // namespace steward::station
