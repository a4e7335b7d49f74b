// Station: intake, durable dispatch with retry/park/expiry, result collection, node
// monitor. Every command is in the ledger before it is dispatched; a node is told its
// result is stored only after the ledger committed it.
#include "station/station.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "subjects/subject.h"

namespace steward::station {
namespace {

constexpr absl::Duration kTick = absl::Milliseconds(250);
constexpr int64_t kMaxWaitMs = 3600 * 1000;
// A finished command keeps its output in memory (for waiters and show) up to this
// size; larger ones are read back from the ledger when asked for.
constexpr size_t kKeepOutputBytes = 4096;

proto::Ack OkReply(absl::string_view id, const std::string& station,
                   const google::protobuf::Message& body) {
  proto::Ack a = NewAck(id, station, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
  a.set_payload(body.SerializeAsString());
  return a;
}

proto::State StateFromOutcome(proto::Outcome o) {
  switch (o) {
    case proto::OUTCOME_SUCCEEDED:
      return proto::STATE_SUCCEEDED;
    case proto::OUTCOME_TIMED_OUT:
      return proto::STATE_TIMED_OUT;
    case proto::OUTCOME_REJECTED:
      return proto::STATE_REJECTED;
    default:
      return proto::STATE_FAILED;  // failed, error (could not run)
  }
}

// Bytes a repeated message field element takes besides the message: tag and length.
constexpr size_t kElementOverhead = 6;

size_t StatesBytes(const google::protobuf::RepeatedPtrField<proto::CommandState>& states) {
  size_t total = 0;
  for (const proto::CommandState& s : states) total += s.ByteSizeLong() + kElementOverhead;
  return total;
}

}  // namespace

bool FitStates(google::protobuf::RepeatedPtrField<proto::CommandState>* states, size_t limit,
               bool may_drop) {
  size_t total = StatesBytes(*states);
  if (total <= limit) return false;
  bool dropped = false;
  if (may_drop) {
    // Rows that do not fit even without their outputs go first, so that the rows kept
    // keep what output they can (a long history, a large fan-out's show).
    size_t fixed = 0;  // the rows without outputs, with slack for what capping adds
    for (const proto::CommandState& s : *states) {
      fixed += s.ByteSizeLong() + kElementOverhead + 8 - s.result().stdout().size() -
               s.result().stderr().size();
    }
    while (states->size() > 1 && fixed > limit / 2) {
      const proto::CommandState& last = states->Get(states->size() - 1);
      fixed -= last.ByteSizeLong() + kElementOverhead + 8 - last.result().stdout().size() -
               last.result().stderr().size();
      states->RemoveLast();
      dropped = true;
    }
    total = StatesBytes(*states);
    if (total <= limit) return dropped;
  }
  // Cap every output at the largest size that fits: small outputs stay whole, the
  // large ones share what is left.
  std::vector<size_t> sizes;
  size_t outputs = 0;
  for (const proto::CommandState& s : *states) {
    for (const std::string* out : {&s.result().stdout(), &s.result().stderr()}) {
      sizes.push_back(out->size());
      outputs += out->size();
    }
  }
  // Room for what capping adds: a truncated flag (2 bytes) per output, and slack for
  // length prefixes.
  const size_t rest = total - outputs + 4 * sizes.size();
  size_t cap = 0;
  if (rest < limit) {
    std::sort(sizes.begin(), sizes.end());
    size_t budget = limit - rest;
    cap = sizes.empty() ? 0 : sizes.back();
    for (size_t i = 0; i < sizes.size(); ++i) {
      const size_t left = sizes.size() - i;
      if (sizes[i] * left > budget) {
        cap = budget / left;
        break;
      }
      budget -= sizes[i];
    }
  }
  for (proto::CommandState& s : *states) {
    proto::Ack* r = s.mutable_result();
    if (r->stdout().size() > cap) {
      r->mutable_stdout()->resize(cap);
      r->set_stdout_truncated(true);
    }
    if (r->stderr().size() > cap) {
      r->mutable_stderr()->resize(cap);
      r->set_stderr_truncated(true);
    }
  }
  total = StatesBytes(*states);
  while (may_drop && total > limit && !states->empty()) {
    total -= states->Get(states->size() - 1).ByteSizeLong() + kElementOverhead;
    states->RemoveLast();
    dropped = true;
  }
  return dropped;
}

absl::StatusOr<std::unique_ptr<Station>> Station::Start(StationOptions options) {
  STEWARD_RETURN_IF_ERROR(subjects::ValidateToken(options.name));
  if (options.data_dir.empty()) return absl::InvalidArgumentError("the station needs a data dir");
  if (options.nats.name.empty()) options.nats.name = absl::StrCat("steward-station ", options.name);
  std::unique_ptr<Station> s(new Station(std::move(options)));
  STEWARD_RETURN_IF_ERROR(s->Init());
  return s;
}

Station::Station(StationOptions options) : options_(std::move(options)) {}

Station::~Station() { Shutdown(); }

absl::Status Station::Init() {
  STEWARD_ASSIGN_OR_RETURN(store_, Store::Open(options_.data_dir));
  STEWARD_RETURN_IF_ERROR(Load());
  nats::ConnectOptions copts = options_.nats;
  if (copts.inbox_prefix.empty()) copts.inbox_prefix = "_INBOX_" + options_.name;
  STEWARD_ASSIGN_OR_RETURN(conn_, nats::Connect(copts));
  STEWARD_ASSIGN_OR_RETURN(pump_, RequestPump::Create(conn_.get(), copts.inbox_prefix));
  STEWARD_ASSIGN_OR_RETURN(std::string intake,
                           subjects::KindPattern(options_.name, subjects::Kind::kCommand));
  STEWARD_ASSIGN_OR_RETURN(std::string events,
                           subjects::KindPattern(options_.name, subjects::Kind::kEvent));
  STEWARD_ASSIGN_OR_RETURN(intake_sub_, nats::SubscribeSync(conn_.get(), intake, 65536));
  STEWARD_ASSIGN_OR_RETURN(event_sub_, nats::SubscribeSync(conn_.get(), events, 65536));
  // Two intake threads: operator requests are independent, and checking their
  // signatures is the costliest thing the station does per request.
  threads_.emplace_back([this] { IntakeLoop(); });
  threads_.emplace_back([this] { IntakeLoop(); });
  threads_.emplace_back([this] { EventLoop(); });
  threads_.emplace_back([this] { DispatchLoop(); });
  STEWARD_LOG_INFO("station {} serving {} and {}", options_.name, intake, events);
  return absl::OkStatus();
}

absl::Status Station::Load() {
  STEWARD_ASSIGN_OR_RETURN(std::vector<proto::NodeInfo> nodes, store_->Nodes());
  STEWARD_ASSIGN_OR_RETURN(std::vector<proto::CommandState> active, store_->ActiveCommands());
  absl::MutexLock lock(&mu_);
  for (proto::NodeInfo& info : nodes) {
    Node& n = nodes_[info.name()];
    n.last_heard = info.last_heard_unix_ms() > 0 ? absl::FromUnixMillis(info.last_heard_unix_ms())
                                                 : absl::InfinitePast();
    n.heartbeat = info.heartbeat_ms() > 0 ? absl::Milliseconds(info.heartbeat_ms())
                                          : options_.default_heartbeat;
    n.info = std::move(info);
  }
  STEWARD_ASSIGN_OR_RETURN(auto settings, store_->Settings());
  for (const auto& [key, value] : settings) {
    proto::AclRequest r;
    if (!r.ParseFromString(value)) return absl::DataLossError(absl::StrCat("corrupt setting ", key));
    if (absl::StartsWith(key, "acl:")) acl_rules_[key.substr(4)] = {r.rules().begin(), r.rules().end()};
    if (absl::StartsWith(key, "group:")) groups_[key.substr(6)] = {r.members().begin(), r.members().end()};
  }
  if (!active.empty() || !nodes.empty()) {
    STEWARD_LOG_INFO("ledger: {} nodes, {} unfinished commands", nodes.size(), active.size());
  }
  const absl::Time now = absl::Now();
  // Ask every node about its unfinished commands: it answers with what it recorded.
  for (proto::CommandState& s : active) AddCommandLocked(std::move(s), now);
  return absl::OkStatus();
}

void Station::Shutdown() {
  if (stop_.HasBeenNotified()) return;
  stop_.Notify();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  if (pump_) pump_->Shutdown();
  {
    absl::MutexLock lock(&mu_);
    if (store_) {
      FlushRunningLocked();
      FlushNodesLocked();
    }
  }
  if (store_) store_->Shutdown();  // Commits what is queued; completions may publish.
  intake_sub_.reset();
  event_sub_.reset();
  if (conn_) natsConnection_FlushTimeout(conn_.get(), 500);
}

void Station::IntakeLoop() {
  while (!stop_.HasBeenNotified()) {
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(intake_sub_.get(), kTick);
    if (msg.ok()) {
      Serve(std::move(*msg), /*events=*/false);
    } else if (!absl::IsDeadlineExceeded(msg.status())) {
      STEWARD_LOG_WARNING("intake: {}", msg.status().ToString());
    }
  }
}

void Station::EventLoop() {
  while (!stop_.HasBeenNotified()) {
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(event_sub_.get(), kTick);
    if (msg.ok()) {
      Serve(std::move(*msg), /*events=*/true);
    } else if (!absl::IsDeadlineExceeded(msg.status())) {
      STEWARD_LOG_WARNING("events: {}", msg.status().ToString());
    }
  }
}

void Station::PublishAck(const std::string& reply, const proto::Ack& ack) {
  if (reply.empty()) return;
  if (absl::Status st = nats::Publish(conn_.get(), reply, ack.SerializeAsString()); !st.ok()) {
    STEWARD_LOG_WARNING("reply: {}", st.ToString());
  }
}

void Station::Serve(nats::MsgPtr msg, bool events) {
  const std::string subject_text = nats::Subject(msg.get());
  const std::string reply = nats::Reply(msg.get());
  absl::StatusOr<subjects::Subject> subject = subjects::Parse(subject_text);
  absl::StatusOr<proto::Envelope> env =
      subject.ok() ? DecodeEnvelope(nats::Data(msg.get())) : subject.status();
  if (!env.ok()) {
    STEWARD_LOG_WARNING("rejected message on {}: {}", subject_text, env.status().message());
    PublishAck(reply, RejectAck("", options_.name, env.status().message()));
    return;
  }
  if (env->method() != subject->method) {
    PublishAck(reply, RejectAck(env->id(), options_.name,
                                absl::StrCat("method ", env->method(), " arrived on ", subject_text)));
    return;
  }
  if (events) return HandleEvent(*env, reply);
  if (options_.operators != nullptr && !options_.operators->empty()) {
    if (absl::Status st = signing::VerifyEnvelope(*env, *options_.operators); !st.ok()) {
      STEWARD_LOG_WARNING("refused {} request: {}", env->method(), st.message());
      return PublishAck(reply, RejectAck(env->id(), options_.name,
                                         absl::StrCat("refused: ", st.message(),
                                                      " (this station accepts signed operator requests only)")));
    }
    env->set_operator_(absl::StrCat(env->operator_(), " ", env->signer()));
  }
  const std::string& m = env->method();
  if (m == kStationSubmit) return HandleSubmit(*env, reply);
  if (m == kStationWait) return HandleWait(*env, reply);
  if (m == kStationPing) return HandlePing(*env, reply);
  if (m == kStationNodes) return HandleNodes(*env, reply);
  if (m == kStationShow) return HandleShow(*env, reply);
  if (m == kStationHistory) return HandleHistory(*env, reply);
  if (m == kStationCancel) return HandleCancel(*env, reply);
  if (m == kStationLogs) return HandleLogs(*env, reply);
  if (m == kStationAccept) return HandleAccept(*env, reply);
  if (m == kStationAcl) return HandleAcl(*env, reply);
  if (m == kStationAudit) return HandleAudit(*env, reply);
  PublishAck(reply, RejectAck(env->id(), options_.name, absl::StrCat("unknown method ", m)));
}

void Station::HandleSubmit(const proto::Envelope& req, const std::string& reply) {
  proto::SubmitRequest sr;
  if (!sr.ParseFromString(req.payload())) {
    return PublishAck(reply, RejectAck(req.id(), options_.name, "malformed submit request"));
  }
  const proto::Envelope& tmpl = sr.command();
  if (tmpl.method() == kMethodSetAcl) {
    return PublishAck(reply, RejectAck(req.id(), options_.name, "setacl is sent by the station (stewardctl acl)"));
  }
  std::vector<std::string> targets(sr.nodes().begin(), sr.nodes().end());
  for (const std::string* token : {&tmpl.method(), &tmpl.domain()}) {
    if (absl::Status st = subjects::ValidateToken(*token); !st.ok()) {
      return PublishAck(reply, RejectAck(req.id(), options_.name, st.message()));
    }
  }
  for (const std::string& n : targets) {
    if (absl::Status st = subjects::ValidateToken(n); !st.ok()) {
      return PublishAck(reply, RejectAck(req.id(), options_.name, st.message()));
    }
  }
  std::vector<proto::CommandState> states;
  proto::SubmitReply out;
  out.set_request_id(NewId());
  {
    absl::MutexLock lock(&mu_);
    if (sr.all_nodes()) {
      for (const auto& [name, node] : nodes_) targets.push_back(name);
      std::sort(targets.begin(), targets.end());
    }
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  }
  if (targets.empty()) return PublishAck(reply, RejectAck(req.id(), options_.name, "no target nodes"));
  for (const std::string& target : targets) {
    proto::CommandState s = NewCommand(target, tmpl, out.request_id(), req.operator_());
    proto::CommandRef* ref = out.add_commands();
    ref->set_node(target);
    ref->set_id(s.id());
    states.push_back(std::move(s));
  }
  const int64_t wait_ms = std::clamp<int64_t>(sr.wait_ms(), 0, kMaxWaitMs);
  SubmitCommands(std::move(states), [this, out, reply, wait_ms, id = req.id()](absl::Status st) {
    if (!st.ok()) {
      return PublishAck(reply, RejectAck(id, options_.name, absl::StrCat("ledger write failed: ", st.message())));
    }
    if (wait_ms == 0) return PublishAck(reply, OkReply(id, options_.name, out));
    Waiter w;
    for (const proto::CommandRef& c : out.commands()) w.ids.push_back(c.id());
    w.reply = reply;
    w.deadline = absl::Now() + absl::Milliseconds(wait_ms);
    w.submit = out;
    w.request_id = id;
    std::vector<Outgoing> answers;
    {
      absl::MutexLock lock(&mu_);
      AddWaiterLocked(std::move(w), answers);
    }
    Publish(answers);
  });
}

proto::CommandState Station::NewCommand(const std::string& target, const proto::Envelope& tmpl,
                                        const std::string& request_id, const std::string& op) {
  const int64_t now_ms = NowUnixMillis();
  proto::CommandState s;
  proto::Envelope& e = *s.mutable_command();
  e = NewEnvelope(options_.name, target, proto::KIND_COMMAND, tmpl.method(), tmpl.domain());
  e.mutable_argv()->CopyFrom(tmpl.argv());
  e.mutable_shell()->CopyFrom(tmpl.shell());
  e.set_payload(tmpl.payload());
  e.set_timeout_ms(tmpl.timeout_ms() > 0 ? tmpl.timeout_ms()
                                         : absl::ToInt64Milliseconds(options_.default_timeout));
  e.set_expires_unix_ms(tmpl.expires_unix_ms() > 0
                            ? tmpl.expires_unix_ms()
                            : now_ms + absl::ToInt64Milliseconds(options_.default_ttl));
  e.set_request_id(request_id);
  e.set_operator_(op);
  if (options_.key.has_value()) {
    if (absl::Status st = signing::SignEnvelope(e, *options_.key); !st.ok()) {
      STEWARD_LOG_ERROR("signing {}: {}", e.id(), st.ToString());
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

void Station::SubmitCommands(std::vector<proto::CommandState> states,
                             std::function<void(absl::Status)> done) {
  auto ops = std::make_shared<std::vector<Store::Op>>();
  for (const proto::CommandState& s : states) ops->push_back(Store::PutCommand(s));
  store_->Write(
      [ops](sqlite::Database& db) -> absl::Status {
        for (Store::Op& op : *ops) STEWARD_RETURN_IF_ERROR(op(db));
        return absl::OkStatus();
      },
      [this, states = std::move(states), done = std::move(done)](absl::Status st) mutable {
        if (st.ok()) {
          absl::MutexLock lock(&mu_);
          const absl::Time now = absl::Now();
          for (proto::CommandState& s : states) {
            Node& node = NodeLocked(s.node());
            node.info.set_last_command_id(s.id());
            node.info.set_last_command_state(StateName(s.state()));
            NodeChangedLocked(node);
            AddCommandLocked(std::move(s), now);
          }
        }
        if (done) done(st);
      });
}

std::optional<proto::CommandState> Station::LookupLocked(const std::string& id) {
  auto it = commands_.find(id);
  if (it != commands_.end() && !it->second.output_in_ledger_only) {
    proto::CommandState s = it->second.s;
    return s;
  }
  absl::StatusOr<std::optional<proto::CommandState>> stored = store_->GetCommand(id);
  if (!stored.ok()) {
    STEWARD_LOG_ERROR("ledger read {}: {}", id, stored.status().ToString());
    return std::nullopt;
  }
  return *stored;
}

void Station::AddCommandLocked(proto::CommandState s, absl::Time next_attempt) {
  std::string id = s.id();
  NodeLocked(s.node()).active.insert(id);
  auto [it, inserted] = commands_.try_emplace(id);
  it->second = Command{std::move(s), next_attempt, false, absl::InfiniteFuture()};
  RescheduleLocked(id, it->second);
}

void Station::RescheduleLocked(const std::string& id, Command& c) {
  absl::Time due = absl::InfiniteFuture();
  const proto::State state = c.s.state();
  if (!c.in_flight && !IsTerminal(state)) {
    due = c.next_attempt;
    const int64_t expires_ms = c.s.command().expires_unix_ms();
    if ((state == proto::STATE_QUEUED || state == proto::STATE_SENT) && expires_ms != 0) {
      due = std::min(due, absl::FromUnixMillis(expires_ms + 1));  // Expired() is strict
    }
  }
  if (due == c.due) return;
  if (c.due != absl::InfiniteFuture()) schedule_.erase({c.due, id});
  c.due = due;
  if (due == absl::InfiniteFuture()) return;
  auto [it, inserted] = schedule_.emplace(due, id);
  if (it == schedule_.begin()) wake_ = true;  // sooner than the dispatcher sleeps
}

void Station::UnparkLocked(Node& node) {
  const absl::Time now = absl::Now();
  for (const std::string& id : node.active) {
    auto it = commands_.find(id);
    if (it == commands_.end()) continue;
    Command& c = it->second;
    if (!c.in_flight && c.next_attempt == absl::InfiniteFuture()) {
      c.next_attempt = now;
      RescheduleLocked(id, c);
    }
  }
}

size_t Station::ReplyLimit() const {
  const int64_t max = natsConnection_GetMaxPayload(conn_.get());
  // Room for the reply's ACK fields around the states.
  return static_cast<size_t>(max > 0 ? max : int64_t{1} << 20) - 1024;
}

Station::Outgoing Station::WaiterAnswerLocked(const Waiter& w) {
  const size_t limit = ReplyLimit();
  std::vector<const std::string*> ids;
  if (w.any) {
    // Choose the finished commands that fit before copying or reading any: a fan-out
    // of large outputs is collected one reply at a time, each with what fits.
    absl::flat_hash_set<std::string> seen;
    size_t room = limit;
    for (const std::string& id : w.ids) {
      if (!seen.insert(id).second) continue;
      auto it = commands_.find(id);
      size_t size = 0;  // out of memory: finished long ago, size unknown (FitStates cuts)
      if (it != commands_.end()) {
        if (!IsTerminal(it->second.s.state())) continue;
        size = it->second.s.ByteSizeLong() + it->second.ledger_output_bytes;
      }
      if (!ids.empty() && size > room) continue;  // the next wait gets it
      ids.push_back(&id);
      room -= std::min(size, room);
    }
  } else {
    for (const std::string& id : w.ids) ids.push_back(&id);
  }
  proto::CommandStates states;
  for (const std::string* id : ids) {
    std::optional<proto::CommandState> s = LookupLocked(*id);
    if (!s.has_value()) continue;
    if (!w.any || IsTerminal(s->state())) *states.add_commands() = std::move(*s);
  }
  // Several nodes' large outputs at once: an "any" waiter takes what fits (at least
  // one) and asks again for the rest, which are terminal and answered at once.
  while (w.any && states.commands_size() > 1 && states.ByteSizeLong() > limit) {
    states.mutable_commands()->RemoveLast();
  }
  // Still too large: outputs are cut (flagged truncated; the ledger keeps them whole).
  FitStates(states.mutable_commands(), limit, /*may_drop=*/false);
  if (w.submit.has_value()) {
    proto::SubmitReply out = *w.submit;
    out.mutable_states()->Swap(states.mutable_commands());
    return Outgoing{w.reply, OkReply(w.request_id, options_.name, out).SerializeAsString()};
  }
  return Outgoing{w.reply, OkReply("", options_.name, states).SerializeAsString()};
}

void Station::AddWaiterLocked(Waiter w, std::vector<Outgoing>& out) {
  // Commands out of memory are finished; the ones in memory may still run.
  std::vector<std::string> open;
  for (const std::string& id : w.ids) {
    auto it = commands_.find(id);
    if (it != commands_.end() && !IsTerminal(it->second.s.state())) open.push_back(id);
  }
  std::sort(open.begin(), open.end());
  open.erase(std::unique(open.begin(), open.end()), open.end());
  w.open = open.size();
  absl::flat_hash_set<std::string> distinct(w.ids.begin(), w.ids.end());
  const bool ready = w.any ? open.size() < distinct.size() : open.empty();
  if (ready || w.deadline <= absl::Now()) {
    out.push_back(WaiterAnswerLocked(w));
    return;
  }
  const uint64_t n = next_waiter_++;
  for (const std::string& id : open) waiting_on_[id].push_back(n);
  w.open_ids = std::move(open);
  waiters_.emplace(n, std::move(w));
}

void Station::CommandEndedLocked(const std::string& id, std::vector<Outgoing>& out) {
  auto it = waiting_on_.find(id);
  if (it == waiting_on_.end()) return;
  const std::vector<uint64_t> waiting = std::move(it->second);
  waiting_on_.erase(it);
  for (uint64_t n : waiting) {
    auto w = waiters_.find(n);
    if (w == waiters_.end()) continue;  // answered already (its time was up)
    if (w->second.open > 0) --w->second.open;
    if (!w->second.any && w->second.open > 0) continue;
    AnswerWaiterLocked(n, out);
  }
}

void Station::AnswerWaiterLocked(uint64_t n, std::vector<Outgoing>& out) {
  auto it = waiters_.find(n);
  if (it == waiters_.end()) return;
  out.push_back(WaiterAnswerLocked(it->second));
  // Unregistered from its commands, so that a command that never ends (a node gone
  // for good) does not collect the numbers of every wait that gave up on it.
  for (const std::string& id : it->second.open_ids) {
    auto w = waiting_on_.find(id);
    if (w == waiting_on_.end()) continue;
    std::vector<uint64_t>& v = w->second;
    v.erase(std::remove(v.begin(), v.end(), n), v.end());
    if (v.empty()) waiting_on_.erase(w);
  }
  waiters_.erase(it);
}

void Station::ExpireWaitersLocked(absl::Time now, std::vector<Outgoing>& out) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    const uint64_t n = (it++)->first;
    AnswerWaiterLocked(n, out);
  }
}

void Station::HandleWait(const proto::Envelope& req, const std::string& reply) {
  proto::WaitRequest wr;
  if (!wr.ParseFromString(req.payload())) {
    return PublishAck(reply, RejectAck(req.id(), options_.name, "malformed wait request"));
  }
  std::vector<Outgoing> out;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& id : wr.ids()) {
      if (!LookupLocked(id).has_value()) {
        out.push_back({reply, RejectAck(req.id(), options_.name, absl::StrCat("unknown command ", id))
                                  .SerializeAsString()});
        break;
      }
    }
    if (out.empty()) {
      Waiter w;
      w.ids.assign(wr.ids().begin(), wr.ids().end());
      w.any = wr.any();
      w.reply = reply;
      w.deadline = absl::Now() + absl::Milliseconds(std::clamp<int64_t>(wr.wait_ms(), 0, kMaxWaitMs));
      AddWaiterLocked(std::move(w), out);
    }
  }
  Publish(out);
}

void Station::HandlePing(const proto::Envelope& req, const std::string& reply) {
  proto::PingRequest pr;
  if (!pr.ParseFromString(req.payload())) {
    return PublishAck(reply, RejectAck(req.id(), options_.name, "malformed ping request"));
  }
  absl::StatusOr<subjects::Subject> subject =
      subjects::Make(pr.node(), subjects::Kind::kCommand, kMethodPing, options_.name);
  if (!subject.ok()) return PublishAck(reply, RejectAck(req.id(), options_.name, subject.status().message()));
  proto::Envelope ping =
      NewEnvelope(options_.name, pr.node(), proto::KIND_COMMAND, kMethodPing, options_.name);
  const absl::Duration wait =
      absl::Milliseconds(std::clamp<int64_t>(pr.wait_ms() > 0 ? pr.wait_ms() : 5000, 1, kMaxWaitMs));
  ping.set_expires_unix_ms(NowUnixMillis() + absl::ToInt64Milliseconds(wait));
  if (options_.key.has_value()) (void)signing::SignEnvelope(ping, *options_.key);
  const absl::Time sent = absl::Now();
  auto on_answer = [this, sent, node = pr.node(), req_id = req.id(), reply, wait](
                       RequestPump::Result r, nats::MsgPtr msg) {
    proto::Ack a;
    if (r == RequestPump::Result::kReply) {
      absl::StatusOr<proto::Ack> ack = DecodeAck(nats::Data(msg.get()));
      if (ack.ok() && ack->outcome() == proto::OUTCOME_SUCCEEDED) {
        proto::PingReply pong;
        pong.set_node(node);
        pong.set_station_rtt_us(absl::ToInt64Microseconds(absl::Now() - sent));
        a = OkReply(req_id, options_.name, pong);
        absl::MutexLock lock(&mu_);
        HeardFromLocked(node);
      } else {
        a = RejectAck(req_id, options_.name,
                      absl::StrCat("rejected by ", node, ": ",
                                   ack.ok() ? absl::string_view(ack->error()) : ack.status().message()));
      }
    } else {
      a = RejectAck(req_id, options_.name,
                    r == RequestPump::Result::kNoResponders
                        ? absl::StrCat("node ", node, " is offline (no responders)")
                        : absl::StrCat("node ", node, " did not answer within ", absl::FormatDuration(wait)));
      a.set_outcome(proto::OUTCOME_ERROR);
    }
    PublishAck(reply, a);
  };
  if (absl::Status st = pump_->Send(subject->ToString(), ping.SerializeAsString(), wait, on_answer); !st.ok()) {
    PublishAck(reply, RejectAck(req.id(), options_.name, st.message()));
  }
}

void Station::HandleNodes(const proto::Envelope& req, const std::string& reply) {
  proto::NodesRequest nr;
  if (!nr.ParseFromString(req.payload())) {
    return PublishAck(reply, RejectAck(req.id(), options_.name, "malformed nodes request"));
  }
  proto::NodesReply out;
  {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> names;
    for (const auto& [name, node] : nodes_) {
      if (nr.node().empty() || nr.node() == name) names.push_back(name);
    }
    if (!nr.node().empty() && names.empty()) {
      return PublishAck(reply, RejectAck(req.id(), options_.name, absl::StrCat("unknown node ", nr.node())));
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      proto::NodeInfo* info = out.add_nodes();
      const Node& node = nodes_[name];
      *info = node.info;
      info->set_pending(static_cast<int>(node.active.size()));
      const int64_t minute = NowUnixMillis() / 60000;
      int64_t recent_errors = 0;
      for (const auto& [m, n] : node.error_minutes) {
        if (m > minute - 10) recent_errors += n;
      }
      info->set_log_errors_per_min(static_cast<double>(recent_errors) / 10.0);
    }
  }
  if (!nr.node().empty()) {
    absl::StatusOr<std::vector<proto::CommandState>> recent = store_->History(nr.node(), "", 10);
    if (recent.ok()) {
      for (proto::CommandState& s : *recent) *out.add_recent() = std::move(s);
    }
    // The node row comes first; the recent commands get the room that is left.
    proto::NodesReply without_recent = out;
    without_recent.clear_recent();
    const size_t others = without_recent.ByteSizeLong();
    const size_t limit = ReplyLimit();
    FitStates(out.mutable_recent(), limit > others ? limit - others : 0, /*may_drop=*/true);
  }
  PublishAck(reply, OkReply(req.id(), options_.name, out));
}

void Station::HandleShow(const proto::Envelope& req, const std::string& reply) {
  proto::ShowRequest sr;
  if (!sr.ParseFromString(req.payload())) {
    return PublishAck(reply, RejectAck(req.id(), options_.name, "malformed show request"));
  }
  std::vector<std::string> ids(sr.ids().begin(), sr.ids().end());
  if (!sr.request_id().empty()) {
    absl::StatusOr<std::vector<proto::CommandState>> group = store_->ByRequest(sr.request_id());
    if (!group.ok()) return PublishAck(reply, RejectAck(req.id(), options_.name, group.status().message()));
    if (group->empty()) {
      return PublishAck(reply, RejectAck(req.id(), options_.name,
                                         absl::StrCat("unknown request ", sr.request_id())));
    }
    for (const proto::CommandState& s : *group) ids.push_back(s.id());
  }
  proto::CommandStates out;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& id : ids) {
      std::optional<proto::CommandState> s = LookupLocked(id);
      if (!s.has_value()) {
        return PublishAck(reply, RejectAck(req.id(), options_.name, absl::StrCat("unknown command ", id)));
      }
      *out.add_commands() = std::move(*s);
    }
  }
  out.set_incomplete(FitStates(out.mutable_commands(), ReplyLimit(), /*may_drop=*/true));
  PublishAck(reply, OkReply(req.id(), options_.name, out));
}

void Station::HandleHistory(const proto::Envelope& req, const std::string& reply) {
  proto::HistoryRequest hr;
  if (!hr.ParseFromString(req.payload())) {
    return PublishAck(reply, RejectAck(req.id(), options_.name, "malformed history request"));
  }
  absl::StatusOr<std::vector<proto::CommandState>> rows =
      store_->History(hr.node(), hr.state(), std::clamp(hr.limit(), 1, 10000));
  if (!rows.ok()) return PublishAck(reply, RejectAck(req.id(), options_.name, rows.status().message()));
  proto::CommandStates out;
  for (proto::CommandState& s : *rows) *out.add_commands() = std::move(s);
  out.set_incomplete(FitStates(out.mutable_commands(), ReplyLimit(), /*may_drop=*/true));
  PublishAck(reply, OkReply(req.id(), options_.name, out));
}

void Station::HandleCancel(const proto::Envelope& req, const std::string& reply) {
  proto::CancelRequest cr;
  if (!cr.ParseFromString(req.payload())) {
    return PublishAck(reply, RejectAck(req.id(), options_.name, "malformed cancel request"));
  }
  absl::MutexLock lock(&mu_);
  std::string refused;
  std::vector<Command*> to_cancel;
  for (const std::string& id : cr.ids()) {
    auto it = commands_.find(id);
    std::optional<proto::CommandState> s = LookupLocked(id);
    if (!s.has_value()) {
      refused = absl::StrCat("unknown command ", id);
    } else if (IsTerminal(s->state())) {
      refused = absl::StrCat("command ", id, " already ", StateName(s->state()));
    } else if (it == commands_.end()) {
      // In the ledger but not yet in memory: its submit is committing right now.
      refused = absl::StrCat("command ", id, " is being stored; try again");
    } else if (s->state() == proto::STATE_RUNNING || it->second.in_flight) {
      refused = absl::StrCat("command ", id, " was already delivered to ", s->node());
    } else {
      to_cancel.push_back(&it->second);
      continue;
    }
    break;
  }
  if (!refused.empty()) return PublishAck(reply, RejectAck(req.id(), options_.name, refused));
  auto remaining = std::make_shared<size_t>(to_cancel.size());
  proto::CommandStates out;
  for (Command* c : to_cancel) *out.add_commands() = c->s;
  for (proto::CommandState& s : *out.mutable_commands()) s.set_state(proto::STATE_CANCELED);
  for (Command* c : to_cancel) {
    // Answer once every cancellation is in the ledger (completions run in order).
    SetStateLocked(*c, proto::STATE_CANCELED, [this, remaining, out, reply, id = req.id()] {
      if (--*remaining == 0) PublishAck(reply, OkReply(id, options_.name, out));
    });
  }
}

void Station::HandleEvent(const proto::Envelope& ev, const std::string& reply) {
  const std::string& from = ev.from_node();
  if (ev.method() == kEventNodeState && from == options_.name) return;  // our own publication
  if (absl::Status st = subjects::ValidateToken(from); !st.ok()) {
    return PublishAck(reply, RejectAck(ev.id(), options_.name, absl::StrCat("bad sender: ", st.message())));
  }
  if (ev.method() != kEventHello) {
    absl::Status st;
    {
      absl::MutexLock lock(&mu_);
      st = CheckNodeSignatureLocked(ev);
    }
    if (!st.ok()) {
      proto::Ack a = RejectAck(ev.id(), options_.name, st.message());
      // Not accepted yet: the node keeps the event and offers it again later.
      if (absl::IsUnavailable(st)) a.set_outcome(proto::OUTCOME_ERROR);
      return PublishAck(reply, a);
    }
  }
  if (ev.method() == kEventResult) return HandleResult(ev, reply);
  if (ev.method() == kEventSyslog) return HandleSyslog(ev, reply);
  proto::Ack stored = NewAck(ev.id(), options_.name, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
  absl::MutexLock lock(&mu_);
  if (ev.method() == kEventHello) {
    proto::Hello hello;
    if (!hello.ParseFromString(ev.payload())) {
      return PublishAck(reply, RejectAck(ev.id(), options_.name, "malformed hello payload"));
    }
    Node& node = NodeLocked(from);
    if (options_.key.has_value()) {
      // A node proves it holds the key it announces; a pinned node must use its pinned key.
      const std::string& pinned = node.info.public_key();
      absl::Status st = signing::VerifyEnvelopeWith(ev, pinned.empty() ? hello.public_key() : pinned);
      if (!st.ok()) {
        STEWARD_LOG_WARNING("hello from {} refused: {}", from, st.message());
        return PublishAck(reply, RejectAck(ev.id(), options_.name,
                                           absl::StrCat("hello refused: ", st.message(),
                                                        pinned.empty() ? "" : " (not the pinned key)")));
      }
      if (pinned.empty() && node.info.pending_key() != hello.public_key()) {
        node.info.set_pending_key(hello.public_key());
        STEWARD_LOG_WARNING("node {} announced key {}: accept it with `stewardctl accept {}`", from,
                            signing::KeyId(hello.public_key()), from);
      }
    }
    node.info.set_version(hello.version());
    node.info.set_hostname(hello.hostname());
    node.info.set_os(hello.os());
    node.info.set_load1(hello.load1());
    node.info.set_agent_started_unix_ms(hello.started_unix_ms());
    node.info.mutable_methods()->CopyFrom(hello.methods());
    if (hello.heartbeat_ms() > 0) {
      node.heartbeat = absl::Milliseconds(hello.heartbeat_ms());
      node.info.set_heartbeat_ms(hello.heartbeat_ms());
    }
    HeardFromLocked(from);
    // Heartbeats are answered at once; the node row is rewritten in the background.
    NodeChangedLocked(node);
    return PublishAck(reply, stored);
  }
  if (ev.method() == kEventErrorLog) {
    proto::ErrorLog log;
    if (!log.ParseFromString(ev.payload())) {
      return PublishAck(reply, RejectAck(ev.id(), options_.name, "malformed errorlog payload"));
    }
    Node& node = NodeLocked(from);
    node.info.set_errors(node.info.errors() + 1);
    HeardFromLocked(from);
    STEWARD_LOG_INFO("errorlog {} {}: {} {} -> {}", from, log.process(), log.severity(), log.error(),
                     log.decision());
    store_->Write(Store::AddEvent(ev));
    store_->Write(Store::PutNode(node.info), [this, reply, stored](absl::Status st) {
      PublishAck(reply, st.ok() ? stored : RejectAck(stored.envelope_id(), options_.name, st.message()));
    });
    return;
  }
  PublishAck(reply, RejectAck(ev.id(), options_.name, absl::StrCat("unknown event method ", ev.method())));
}

void Station::HandleResult(const proto::Envelope& ev, const std::string& reply) {
  const std::string& from = ev.from_node();
  proto::Ack ack;
  if (!ack.ParseFromString(ev.payload())) {
    return PublishAck(reply, RejectAck(ev.id(), options_.name, "malformed result payload"));
  }
  proto::Ack stored = NewAck(ev.id(), options_.name, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
  auto answer = [this, reply, stored] { PublishAck(reply, stored); };
  absl::MutexLock lock(&mu_);
  auto it = commands_.find(ack.envelope_id());
  if (it == commands_.end()) {
    std::optional<proto::CommandState> s = LookupLocked(ack.envelope_id());
    if (!s.has_value() || s->node() != from) {
      // Not a command we sent to this node: refused for good.
      return PublishAck(reply, RejectAck(ev.id(), options_.name,
                                         absl::StrCat("no command ", ack.envelope_id(), " sent to ", from)));
    }
    // Already final and out of memory: a repeat. Stored already.
    return PublishAck(reply, stored);
  }
  if (it->second.s.node() != from) {
    return PublishAck(reply, RejectAck(ev.id(), options_.name,
                                       absl::StrCat("no command ", ack.envelope_id(), " sent to ", from)));
  }
  HeardFromLocked(from);
  ApplyAckLocked(it->second, ack, answer);
}

void Station::HandleSyslog(const proto::Envelope& ev, const std::string& reply) {
  proto::LogBatch batch;
  if (!batch.ParseFromString(ev.payload())) {
    return PublishAck(reply, RejectAck(ev.id(), options_.name, "malformed syslog batch"));
  }
  const std::string from = ev.from_node();
  const uint64_t dropped = batch.dropped();
  {
    absl::MutexLock lock(&mu_);
    HeardFromLocked(from);
  }
  auto counts = std::make_shared<Store::LogCounts>();
  store_->Write(
      Store::AddLogs(from, ev.id(), std::move(batch), counts),
      [this, reply, from, dropped, counts, id = ev.id()](absl::Status st) {
        if (!st.ok()) {
          // Not stored: the agent keeps the batch and sends it again.
          proto::Ack a = NewAck(id, options_.name, proto::STAGE_RESULT, proto::OUTCOME_ERROR);
          a.set_error(std::string(st.message()));
          return PublishAck(reply, a);
        }
        if (counts->stored > 0) {
          absl::MutexLock lock(&mu_);
          Node& node = NodeLocked(from);
          const int64_t now_ms = NowUnixMillis();
          node.info.set_last_log_unix_ms(now_ms);
          node.info.set_log_lines(node.info.log_lines() + counts->stored);
          node.info.set_log_errors(node.info.log_errors() + counts->errors);
          node.info.set_log_dropped(node.info.log_dropped() + dropped);
          const int64_t minute = now_ms / 60000;
          if (node.error_minutes.empty() || node.error_minutes.back().first != minute) {
            node.error_minutes.emplace_back(minute, 0);
          }
          node.error_minutes.back().second += counts->errors;
          while (node.error_minutes.front().first <= minute - 10) node.error_minutes.pop_front();
          NodeChangedLocked(node);
        }
        PublishAck(reply, NewAck(id, options_.name, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED));
      });
}

void Station::HandleLogs(const proto::Envelope& req, const std::string& reply) {
  proto::LogsRequest lr;
  if (!lr.ParseFromString(req.payload())) {
    return PublishAck(reply, RejectAck(req.id(), options_.name, "malformed logs request"));
  }
  absl::StatusOr<proto::LogsReply> out = store_->QueryLogs(lr);
  if (!out.ok()) return PublishAck(reply, RejectAck(req.id(), options_.name, out.status().message()));
  PublishAck(reply, OkReply(req.id(), options_.name, *out));
}

absl::Status Station::CheckNodeSignatureLocked(const proto::Envelope& ev) {
  if (!options_.key.has_value()) return absl::OkStatus();
  auto it = nodes_.find(ev.from_node());
  if (it == nodes_.end() || it->second.info.public_key().empty()) {
    return absl::UnavailableError(absl::StrCat("node ", ev.from_node(),
                                               " is not accepted yet (stewardctl accept ", ev.from_node(), ")"));
  }
  return signing::VerifyEnvelopeWith(ev, it->second.info.public_key());
}

void Station::HandleAccept(const proto::Envelope& req, const std::string& reply) {
  proto::AcceptRequest ar;
  if (!ar.ParseFromString(req.payload())) {
    return PublishAck(reply, RejectAck(req.id(), options_.name, "malformed accept request"));
  }
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(ar.node());
  if (it == nodes_.end() || it->second.info.pending_key().empty()) {
    return PublishAck(reply, RejectAck(req.id(), options_.name,
                                       absl::StrCat("node ", ar.node(), " has announced no key to accept")));
  }
  Node& node = it->second;
  node.info.set_public_key(node.info.pending_key());
  node.info.clear_pending_key();
  UnparkLocked(node);  // its waiting commands go out now
  STEWARD_LOG_INFO("node {} accepted with key {} by {}", ar.node(), signing::KeyId(node.info.public_key()),
                   req.operator_());
  proto::AclReply out;
  out.add_lines(absl::StrCat("accepted ", ar.node(), " with key ", signing::KeyId(node.info.public_key())));
  store_->Write(Store::PutNode(node.info), [this, reply, out, id = req.id()](absl::Status st) {
    PublishAck(reply, st.ok() ? OkReply(id, options_.name, out) : RejectAck(id, options_.name, st.message()));
  });
}

std::vector<std::string> Station::EffectiveAclLocked(const std::string& node) {
  std::vector<std::string> rules;
  auto add = [&](const std::string& target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = acl_rules_.find(target);
    if (it == acl_rules_.end()) return;
    for (const std::string& r : it->second) {
      if (std::find(rules.begin(), rules.end(), r) == rules.end()) rules.push_back(r);
    }
  };
  add(node);
  for (const auto& [group, members] : groups_) {
    if (std::find(members.begin(), members.end(), node) != members.end()) add("@" + group);
  }
  return rules;
}

void Station::PushAclLocked(const std::string& node, std::vector<proto::CommandState>& out) {
  std::vector<std::string> rules = EffectiveAclLocked(node);
  Node& n = NodeLocked(node);
  n.info.mutable_acl()->Assign(rules.begin(), rules.end());
  store_->Write(Store::PutNode(n.info));
  proto::AclDoc doc;
  doc.mutable_rules()->Assign(rules.begin(), rules.end());
  doc.set_version_unix_ms(NowUnixMillis());
  proto::Envelope tmpl;
  tmpl.set_method(kMethodSetAcl);
  tmpl.set_domain("security");
  tmpl.set_payload(doc.SerializeAsString());
  out.push_back(NewCommand(node, tmpl, NewId(), "station"));
}

void Station::HandleAcl(const proto::Envelope& req, const std::string& reply) {
  proto::AclRequest ar;
  if (!ar.ParseFromString(req.payload())) {
    return PublishAck(reply, RejectAck(req.id(), options_.name, "malformed acl request"));
  }
  const bool group = absl::StartsWith(ar.target(), "@");
  if (absl::Status st = subjects::ValidateToken(group ? ar.target().substr(1) : ar.target()); !st.ok()) {
    return PublishAck(reply, RejectAck(req.id(), options_.name, st.message()));
  }
  for (const std::string& r : ar.rules()) {
    const size_t colon = r.find(':');
    if (absl::Status st = subjects::ValidateToken(r.substr(0, colon)); !st.ok()) {
      return PublishAck(reply, RejectAck(req.id(), options_.name, absl::StrCat("rule \"", r, "\": ", st.message())));
    }
  }
  for (const std::string& m : ar.members()) {
    if (absl::Status st = subjects::ValidateToken(m); !st.ok()) {
      return PublishAck(reply, RejectAck(req.id(), options_.name, st.message()));
    }
  }
  proto::AclReply out;
  std::vector<proto::CommandState> pushes;
  {
    absl::MutexLock lock(&mu_);
    std::set<std::string> affected;
    if (ar.define_group()) {
      if (group) return PublishAck(reply, RejectAck(req.id(), options_.name, "name the group without '@'"));
      for (const std::string& m : groups_[ar.target()]) affected.insert(m);
      groups_[ar.target()] = {ar.members().begin(), ar.members().end()};
      for (const std::string& m : ar.members()) affected.insert(m);
      proto::AclRequest saved;
      saved.mutable_members()->CopyFrom(ar.members());
      store_->Write(Store::PutSetting("group:" + ar.target(), saved.SerializeAsString()));
    } else if (!ar.show()) {
      acl_rules_[ar.target()] = {ar.rules().begin(), ar.rules().end()};
      proto::AclRequest saved;
      saved.mutable_rules()->CopyFrom(ar.rules());
      store_->Write(Store::PutSetting("acl:" + ar.target(), saved.SerializeAsString()));
      if (group) {
        for (const std::string& m : groups_[ar.target().substr(1)]) affected.insert(m);
      } else {
        affected.insert(ar.target());
      }
    }
    for (const std::string& n : affected) PushAclLocked(n, pushes);
    std::vector<std::string> nodes;
    if (group || ar.define_group()) {
      const std::string g = group ? ar.target().substr(1) : ar.target();
      out.add_lines(absl::StrCat("group ", g, ": ", absl::StrJoin(groups_[g], ", ")));
      out.add_lines(absl::StrCat("rules of @", g, ": ", absl::StrJoin(acl_rules_["@" + g], " ")));
      nodes = groups_[g];
    } else {
      nodes = {ar.target()};
    }
    for (const std::string& n : nodes) {
      const std::vector<std::string> eff = EffectiveAclLocked(n);
      out.add_lines(absl::StrCat(n, " accepts: ",
                                 eff.empty() && acl_rules_.count(n) == 0 ? "everything (no ACL set)"
                                                                          : absl::StrJoin(eff, " ")));
    }
  }
  if (pushes.empty()) return PublishAck(reply, OkReply(req.id(), options_.name, out));
  for (const proto::CommandState& c : pushes) out.add_lines(absl::StrCat("sending the ACL to ", c.node(), " as command ", c.id()));
  SubmitCommands(std::move(pushes), [this, reply, out, id = req.id()](absl::Status st) {
    PublishAck(reply, st.ok() ? OkReply(id, options_.name, out) : RejectAck(id, options_.name, st.message()));
  });
}

void Station::HandleAudit(const proto::Envelope& req, const std::string& reply) {
  proto::AuditRequest ar;
  if (!ar.ParseFromString(req.payload())) {
    return PublishAck(reply, RejectAck(req.id(), options_.name, "malformed audit request"));
  }
  const int limit = std::clamp(ar.limit() > 0 ? ar.limit() : 50, 1, 10000);
  absl::StatusOr<std::vector<proto::CommandState>> rows = store_->History(ar.node(), "", 100000);
  if (!rows.ok()) return PublishAck(reply, RejectAck(req.id(), options_.name, rows.status().message()));
  proto::CommandStates out;
  for (proto::CommandState& c : *rows) {
    if (!ar.operator_().empty() && c.command().operator_().find(ar.operator_()) == std::string::npos) continue;
    *out.add_commands() = std::move(c);
    if (out.commands_size() >= limit) break;
  }
  out.set_incomplete(FitStates(out.mutable_commands(), ReplyLimit(), /*may_drop=*/true));
  PublishAck(reply, OkReply(req.id(), options_.name, out));
}

Station::Node& Station::NodeLocked(const std::string& name) {
  auto [it, inserted] = nodes_.try_emplace(name);
  if (inserted) {
    it->second.info.set_name(name);
    it->second.heartbeat = options_.default_heartbeat;
  }
  return it->second;
}

void Station::TransitionLocked(Node& node, bool online, const std::string& reason) {
  const int64_t now_ms = NowUnixMillis();
  node.info.set_online(online);
  node.info.set_since_unix_ms(now_ms);
  const std::string& name = node.info.name();
  STEWARD_LOG_INFO("node {} is {} ({})", name, online ? "online" : "offline", reason);
  store_->Write(Store::AddTransition(name, online, now_ms, reason));
  store_->Write(Store::PutNode(node.info));
  proto::NodeState ns;
  ns.set_node(name);
  ns.set_online(online);
  ns.set_at_unix_ms(now_ms);
  ns.set_reason(reason);
  proto::Envelope ev = NewEnvelope(options_.name, options_.name, proto::KIND_EVENT, kEventNodeState, name);
  ev.set_payload(ns.SerializeAsString());
  if (absl::StatusOr<subjects::Subject> subject =
          subjects::Make(options_.name, subjects::Kind::kEvent, kEventNodeState, name);
      subject.ok()) {
    (void)nats::Publish(conn_.get(), subject->ToString(), ev.SerializeAsString());
  }
}

void Station::HeardFromLocked(const std::string& name) {
  Node& node = NodeLocked(name);
  const absl::Time now = absl::Now();
  node.last_heard = now;
  node.info.set_last_heard_unix_ms(absl::ToUnixMillis(now));
  if (node.info.online()) return;
  TransitionLocked(node, true, "heard from");
  UnparkLocked(node);  // parked commands go out at once
}

void Station::ScheduleRetryLocked(Command& c) {
  absl::Duration backoff = options_.initial_backoff;
  for (int i = 1; i < c.s.attempts() && backoff < options_.max_backoff; ++i) backoff *= 2;
  c.next_attempt = absl::Now() + std::min(backoff, options_.max_backoff);
}

void Station::OnNodeAck(const std::string& id, RequestPump::Result r, nats::MsgPtr msg) {
  absl::MutexLock lock(&mu_);
  auto it = commands_.find(id);
  if (it == commands_.end()) return;
  Command& c = it->second;
  c.in_flight = false;
  const std::string node = c.s.node();
  switch (r) {
    case RequestPump::Result::kReply: {
      absl::StatusOr<proto::Ack> ack = DecodeAck(nats::Data(msg.get()));
      if (!ack.ok() || (!ack->envelope_id().empty() && ack->envelope_id() != id)) {
        ScheduleRetryLocked(c);
        break;
      }
      HeardFromLocked(node);
      ack->set_envelope_id(id);
      ApplyAckLocked(c, *ack, nullptr);
      break;
    }
    case RequestPump::Result::kNoResponders: {
      // Parked: it goes out again when the node is heard from.
      Node& n = NodeLocked(node);
      if (n.info.online() || n.info.since_unix_ms() == 0) TransitionLocked(n, false, "no responders");
      c.next_attempt = absl::InfiniteFuture();
      break;
    }
    case RequestPump::Result::kTimeout:
      ScheduleRetryLocked(c);
      break;
    case RequestPump::Result::kShutdown:
      break;
  }
  RescheduleLocked(id, c);
}

void Station::ApplyAckLocked(Command& c, const proto::Ack& ack, std::function<void()> after_commit) {
  // A late ACK overrides proto::STATE_CANCELED/proto::STATE_EXPIRED: the node did get it, and the truth wins.
  const proto::State state = c.s.state();
  const bool overridable = state == proto::STATE_CANCELED || state == proto::STATE_EXPIRED;
  if (IsTerminal(state) && !overridable) {
    if (after_commit) store_->Write([](sqlite::Database&) { return absl::OkStatus(); },
                                    [after_commit](absl::Status) { after_commit(); });
    return;
  }
  if (ack.stage() == proto::STAGE_RECEIVED) {
    if (state == proto::STATE_RUNNING) {
      if (after_commit) after_commit();
    } else if (after_commit) {
      SetStateLocked(c, proto::STATE_RUNNING, std::move(after_commit));
    } else {
      MarkRunningLocked(c);
    }
    // Ask again if no result has come by the end of its run time.
    c.next_attempt = absl::Now() + absl::Milliseconds(c.s.command().timeout_ms()) + options_.result_grace;
    RescheduleLocked(c.s.id(), c);
    return;
  }
  if (ack.stage() == proto::STAGE_RESULT) {
    *c.s.mutable_result() = ack;
    c.output_in_ledger_only = false;
    c.ledger_output_bytes = 0;
    SetStateLocked(c, StateFromOutcome(ack.outcome()), std::move(after_commit));
  }
}

void Station::SetStateLocked(Command& c, proto::State state, std::function<void()> after_commit) {
  c.s.set_state(state);
  c.s.set_updated_unix_ms(NowUnixMillis());
  const bool terminal = IsTerminal(state);
  Node& node = NodeLocked(c.s.node());
  if (terminal) {
    c.finished = absl::Now();
    finished_.emplace_back(c.finished, c.s.id());
    node.active.erase(c.s.id());
  } else {
    node.active.insert(c.s.id());  // e.g. a late "received" after proto::STATE_EXPIRED
  }
  RescheduleLocked(c.s.id(), c);
  if (node.info.last_command_id() == c.s.id()) {
    node.info.set_last_command_state(StateName(state));
    NodeChangedLocked(node);
  }
  const uint64_t write = ++c.writes;
  store_->Write(Store::PutCommand(c.s), [this, terminal, write, id = c.s.id(),
                                         after_commit = std::move(after_commit)](absl::Status st) {
    if (!st.ok()) STEWARD_LOG_ERROR("ledger: {}", st.ToString());
    if (after_commit) after_commit();
    if (!terminal) return;
    std::vector<Outgoing> out;
    {
      absl::MutexLock lock(&mu_);
      CommandEndedLocked(id, out);
      // Committed and its waiters answered: a large output now lives in the ledger only.
      auto it = commands_.find(id);
      // Only when this write is the command's last: a newer state (a late result over
      // proto::STATE_EXPIRED) is not in the ledger yet.
      if (st.ok() && it != commands_.end() && it->second.writes == write &&
          IsTerminal(it->second.s.state())) {
        proto::Ack* r = it->second.s.mutable_result();
        const size_t bytes = r->stdout().size() + r->stderr().size();
        if (bytes > kKeepOutputBytes) {
          r->clear_stdout();
          r->clear_stderr();
          it->second.output_in_ledger_only = true;
          it->second.ledger_output_bytes = bytes;
        }
      }
    }
    Publish(out);
  });
}

void Station::Publish(std::vector<Outgoing>& out) {
  for (Outgoing& o : out) {
    if (o.subject.empty()) continue;
    if (absl::Status st = nats::Publish(conn_.get(), o.subject, o.data); !st.ok()) {
      STEWARD_LOG_WARNING("publish to {}: {}", o.subject, st.ToString());
    }
  }
  out.clear();
}

void Station::DispatchDueLocked(absl::Time now, std::vector<Dispatch>& sends) {
  const int64_t now_ms = absl::ToUnixMillis(now);
  std::vector<std::string> later;  // not sendable yet: filed again after the sweep
  while (!schedule_.empty() && schedule_.begin()->first <= now) {
    const std::string id = schedule_.begin()->second;
    schedule_.erase(schedule_.begin());
    auto it = commands_.find(id);
    if (it == commands_.end()) continue;
    Command& c = it->second;
    c.due = absl::InfiniteFuture();
    if (IsTerminal(c.s.state()) || c.in_flight) continue;
    const proto::State state = c.s.state();
    if ((state == proto::STATE_QUEUED || state == proto::STATE_SENT) && Expired(c.s.command(), now_ms)) {
      SetStateLocked(c, proto::STATE_EXPIRED, nullptr);
      continue;
    }
    if (c.next_attempt > now) {
      later.push_back(id);
      continue;
    }
    if (options_.key.has_value() && c.s.command().method() != kMethodSetAcl) {
      // Secure mode: a node's commands wait until an operator accepted its key, so
      // their results can be verified and recorded. Accepting it unparks them.
      auto n = nodes_.find(c.s.node());
      if (n == nodes_.end() || n->second.info.public_key().empty()) {
        c.next_attempt = absl::InfiniteFuture();
        later.push_back(id);
        continue;
      }
    }
    absl::StatusOr<subjects::Subject> subject = subjects::Make(
        c.s.node(), subjects::Kind::kCommand, c.s.command().method(), c.s.command().domain());
    if (!subject.ok()) {
      *c.s.mutable_result() = RejectAck(id, options_.name, subject.status().message());
      SetStateLocked(c, proto::STATE_REJECTED, nullptr);
      continue;
    }
    c.in_flight = true;
    c.s.set_attempts(c.s.attempts() + 1);
    if (state == proto::STATE_QUEUED) c.s.set_state(proto::STATE_SENT);
    sends.push_back(Dispatch{id, subject->ToString(), c.s.command().SerializeAsString()});
  }
  for (const std::string& id : later) {
    auto it = commands_.find(id);
    if (it != commands_.end()) RescheduleLocked(id, it->second);
  }
}

void Station::NodeChangedLocked(const Node& node) { dirty_nodes_.insert(node.info.name()); }

void Station::MarkRunningLocked(Command& c) {
  c.s.set_state(proto::STATE_RUNNING);
  c.s.set_updated_unix_ms(NowUnixMillis());
  Node& node = NodeLocked(c.s.node());
  node.active.insert(c.s.id());  // e.g. a late "received" after proto::STATE_EXPIRED
  if (node.info.last_command_id() == c.s.id()) {
    node.info.set_last_command_state(StateName(proto::STATE_RUNNING));
    NodeChangedLocked(node);
  }
  unsaved_running_.insert(c.s.id());
}

void Station::FlushRunningLocked() {
  for (const std::string& id : unsaved_running_) {
    auto it = commands_.find(id);
    // Ended meanwhile: its final state is queued already and says more.
    if (it != commands_.end() && it->second.s.state() == proto::STATE_RUNNING) {
      store_->Write(Store::PutCommand(it->second.s));
    }
  }
  unsaved_running_.clear();
}

void Station::FlushNodesLocked() {
  for (const std::string& name : dirty_nodes_) {
    auto it = nodes_.find(name);
    if (it != nodes_.end()) store_->Write(Store::PutNode(it->second.info));
  }
  dirty_nodes_.clear();
}

void Station::HousekeepLocked(absl::Time now, std::vector<Outgoing>& out) {
  ExpireWaitersLocked(now, out);
  FlushRunningLocked();
  FlushNodesLocked();
  while (!finished_.empty() && now - finished_.front().first > options_.keep_finished) {
    const auto [at, id] = std::move(finished_.front());
    finished_.pop_front();
    auto it = commands_.find(id);
    // A later state (a late ACK overriding proto::STATE_EXPIRED) filed a newer entry: keep it.
    if (it != commands_.end() && IsTerminal(it->second.s.state()) && it->second.finished == at) {
      commands_.erase(it);
    }
  }
  // Node monitor: offline after missed heartbeats.
  for (auto& [name, node] : nodes_) {
    if (node.info.online() && now - node.last_heard > node.heartbeat * options_.missed_heartbeats) {
      TransitionLocked(node, false, "missed heartbeats");
    }
  }
}

void Station::DispatchLoop() {
  constexpr absl::Duration kHousekeeping = absl::Milliseconds(50);
  absl::Time next_prune = absl::Now() + absl::Seconds(5);
  absl::Time next_housekeeping = absl::Now();
  while (!stop_.HasBeenNotified()) {
    if (absl::Now() >= next_prune) {
      store_->Write(Store::PruneLogs(
          absl::ToUnixMillis(absl::Now() - options_.log_retention), options_.log_max_lines));
      next_prune = absl::Now() + options_.log_prune_every;
    }
    std::vector<Dispatch> sends;
    std::vector<Outgoing> out;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time due = schedule_.empty() ? absl::InfiniteFuture() : schedule_.begin()->first;
      mu_.AwaitWithDeadline(absl::Condition(&wake_), std::min(due, next_housekeeping));
      wake_ = false;
      const absl::Time now = absl::Now();
      DispatchDueLocked(now, sends);
      if (now >= next_housekeeping) {
        HousekeepLocked(now, out);
        next_housekeeping = now + kHousekeeping;
      }
    }
    Publish(out);
    for (Dispatch& s : sends) {
      const std::string id = s.id;
      absl::Status st = pump_->Send(s.subject, s.data, options_.ack_timeout,
                                    [this, id](RequestPump::Result r, nats::MsgPtr m) {
                                      OnNodeAck(id, r, std::move(m));
                                    });
      if (!st.ok()) OnNodeAck(id, RequestPump::Result::kTimeout, nullptr);
    }
  }
}

}  // namespace steward::station
