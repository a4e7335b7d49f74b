// Station: intake, dispatch with retry/park/expiry, result collection, node monitor.
#include "station/station.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
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

proto::Ack OkReply(const proto::Envelope& req, const std::string& station,
                   const google::protobuf::Message& body) {
  proto::Ack a = NewAck(req.id(), station, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
  a.set_payload(body.SerializeAsString());
  return a;
}

std::string StateFromOutcome(proto::Outcome o) {
  switch (o) {
    case proto::OUTCOME_SUCCEEDED:
      return "succeeded";
    case proto::OUTCOME_TIMED_OUT:
      return "timed_out";
    case proto::OUTCOME_REJECTED:
      return "rejected";
    default:
      return "failed";  // failed, error (could not run)
  }
}

}  // namespace

bool IsTerminalState(absl::string_view state) {
  return state == "succeeded" || state == "failed" || state == "timed_out" ||
         state == "rejected" || state == "canceled" || state == "expired";
}

bool Station::IsTerminal(const std::string& state) const { return IsTerminalState(state); }

absl::StatusOr<std::unique_ptr<Station>> Station::Start(StationOptions options) {
  STEWARD_RETURN_IF_ERROR(subjects::ValidateToken(options.name));
  if (options.nats.name.empty()) options.nats.name = absl::StrCat("steward-station ", options.name);
  std::unique_ptr<Station> s(new Station(std::move(options)));
  STEWARD_RETURN_IF_ERROR(s->Init());
  return s;
}

Station::Station(StationOptions options) : options_(std::move(options)) {}

Station::~Station() { Shutdown(); }

absl::Status Station::Init() {
  STEWARD_ASSIGN_OR_RETURN(conn_, nats::Connect(options_.nats));
  STEWARD_ASSIGN_OR_RETURN(pump_, RequestPump::Create(conn_.get()));
  STEWARD_ASSIGN_OR_RETURN(std::string intake,
                           subjects::KindPattern(options_.name, subjects::Kind::kCommand));
  STEWARD_ASSIGN_OR_RETURN(std::string events,
                           subjects::KindPattern(options_.name, subjects::Kind::kEvent));
  STEWARD_ASSIGN_OR_RETURN(intake_sub_, nats::SubscribeSync(conn_.get(), intake, 65536));
  STEWARD_ASSIGN_OR_RETURN(event_sub_, nats::SubscribeSync(conn_.get(), events, 65536));
  threads_.emplace_back([this] { IntakeLoop(); });
  threads_.emplace_back([this] { EventLoop(); });
  threads_.emplace_back([this] { DispatchLoop(); });
  STEWARD_LOG_INFO("station {} serving {} and {}", options_.name, intake, events);
  return absl::OkStatus();
}

void Station::Shutdown() {
  if (stop_.HasBeenNotified()) return;
  stop_.Notify();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  if (pump_) pump_->Shutdown();
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

void Station::Serve(nats::MsgPtr msg, bool events) {
  const std::string subject_text = nats::Subject(msg.get());
  const std::string reply = nats::Reply(msg.get());
  auto answer = [&](const proto::Ack& ack) {
    if (reply.empty()) return;
    if (absl::Status st = nats::Publish(conn_.get(), reply, ack.SerializeAsString()); !st.ok()) {
      STEWARD_LOG_WARNING("reply to {}: {}", subject_text, st.ToString());
    }
  };
  absl::StatusOr<subjects::Subject> subject = subjects::Parse(subject_text);
  absl::StatusOr<proto::Envelope> env =
      subject.ok() ? DecodeEnvelope(nats::Data(msg.get())) : subject.status();
  if (!env.ok()) {
    STEWARD_LOG_WARNING("rejected message on {}: {}", subject_text, env.status().message());
    answer(RejectAck("", options_.name, env.status().message()));
    return;
  }
  if (env->method() != subject->method) {
    answer(RejectAck(env->id(), options_.name,
                     absl::StrCat("method ", env->method(), " arrived on ", subject_text)));
    return;
  }
  if (events) {
    answer(HandleEvent(*env));
    return;
  }
  const std::string& m = env->method();
  if (m == kStationSubmit) {
    answer(HandleSubmit(*env));
  } else if (m == kStationWait) {
    if (auto a = HandleWait(*env, reply)) answer(*a);
  } else if (m == kStationPing) {
    if (auto a = HandlePing(*env, reply)) answer(*a);
  } else if (m == kStationNodes) {
    answer(HandleNodes(*env));
  } else if (m == kStationShow) {
    answer(HandleShow(*env));
  } else {
    answer(RejectAck(env->id(), options_.name, absl::StrCat("unknown method ", m)));
  }
}

proto::Ack Station::HandleSubmit(const proto::Envelope& req) {
  proto::SubmitRequest sr;
  if (!sr.ParseFromString(req.payload())) {
    return RejectAck(req.id(), options_.name, "malformed submit request");
  }
  const proto::Envelope& tmpl = sr.command();
  for (const std::string* token : {&tmpl.method(), &tmpl.domain()}) {
    if (absl::Status st = subjects::ValidateToken(*token); !st.ok()) {
      return RejectAck(req.id(), options_.name, st.message());
    }
  }
  std::vector<std::string> targets(sr.nodes().begin(), sr.nodes().end());
  for (const std::string& n : targets) {
    if (absl::Status st = subjects::ValidateToken(n); !st.ok()) {
      return RejectAck(req.id(), options_.name, st.message());
    }
  }
  absl::MutexLock lock(&mu_);
  if (sr.all_nodes()) {
    for (const auto& [name, node] : nodes_) targets.push_back(name);
  }
  if (targets.empty()) return RejectAck(req.id(), options_.name, "no target nodes");
  proto::SubmitReply out;
  out.set_request_id(NewId());
  const absl::Time now = absl::Now();
  const int64_t now_ms = absl::ToUnixMillis(now);
  for (const std::string& target : targets) {
    Command c;
    c.env = NewEnvelope(options_.name, target, proto::KIND_COMMAND, tmpl.method(), tmpl.domain());
    c.env.mutable_argv()->CopyFrom(tmpl.argv());
    c.env.mutable_shell()->CopyFrom(tmpl.shell());
    c.env.set_payload(tmpl.payload());
    c.env.set_timeout_ms(tmpl.timeout_ms() > 0 ? tmpl.timeout_ms()
                                               : absl::ToInt64Milliseconds(options_.default_timeout));
    c.env.set_expires_unix_ms(tmpl.expires_unix_ms() > 0
                                  ? tmpl.expires_unix_ms()
                                  : now_ms + absl::ToInt64Milliseconds(options_.default_ttl));
    c.env.set_request_id(out.request_id());
    c.env.set_operator_(req.operator_());
    c.created = c.updated = c.next_attempt = now;
    Node& node = NodeLocked(target);
    node.info.set_last_command_id(c.env.id());
    node.info.set_last_command_state(c.state);
    proto::CommandRef* ref = out.add_commands();
    ref->set_node(target);
    ref->set_id(c.env.id());
    commands_.emplace(c.env.id(), std::move(c));
  }
  wake_ = true;
  return OkReply(req, options_.name, out);
}

std::optional<proto::Ack> Station::HandleWait(const proto::Envelope& req, const std::string& reply) {
  proto::WaitRequest wr;
  if (!wr.ParseFromString(req.payload())) {
    return RejectAck(req.id(), options_.name, "malformed wait request");
  }
  absl::MutexLock lock(&mu_);
  Waiter w{{wr.ids().begin(), wr.ids().end()}, reply,
           absl::Now() + absl::Milliseconds(std::clamp<int64_t>(wr.wait_ms(), 0, kMaxWaitMs))};
  bool all_done = true;
  for (const std::string& id : w.ids) {
    auto it = commands_.find(id);
    if (it == commands_.end()) {
      return RejectAck(req.id(), options_.name, absl::StrCat("unknown command ", id));
    }
    all_done = all_done && IsTerminal(it->second.state);
  }
  if (all_done || wr.wait_ms() <= 0 || reply.empty()) {
    Outgoing o = WaiterReplyLocked(w);
    proto::Ack a;
    a.ParseFromString(o.data);
    return a;
  }
  waiters_.push_back(std::move(w));
  return std::nullopt;
}

std::optional<proto::Ack> Station::HandlePing(const proto::Envelope& req, const std::string& reply) {
  proto::PingRequest pr;
  if (!pr.ParseFromString(req.payload())) {
    return RejectAck(req.id(), options_.name, "malformed ping request");
  }
  absl::StatusOr<subjects::Subject> subject =
      subjects::Make(pr.node(), subjects::Kind::kCommand, kMethodPing, options_.name);
  if (!subject.ok()) return RejectAck(req.id(), options_.name, subject.status().message());
  proto::Envelope ping =
      NewEnvelope(options_.name, pr.node(), proto::KIND_COMMAND, kMethodPing, options_.name);
  const absl::Duration wait =
      absl::Milliseconds(std::clamp<int64_t>(pr.wait_ms() > 0 ? pr.wait_ms() : 5000, 1, kMaxWaitMs));
  ping.set_expires_unix_ms(NowUnixMillis() + absl::ToInt64Milliseconds(wait));
  const absl::Time sent = absl::Now();
  const std::string node = pr.node();
  const std::string req_id = req.id();
  absl::Status st = pump_->Send(
      subject->ToString(), ping.SerializeAsString(), wait,
      [this, sent, node, req_id, reply, wait](RequestPump::Result r, nats::MsgPtr msg) {
        proto::Ack a;
        if (r == RequestPump::Result::kReply) {
          absl::StatusOr<proto::Ack> ack = DecodeAck(nats::Data(msg.get()));
          if (ack.ok() && ack->outcome() == proto::OUTCOME_SUCCEEDED) {
            proto::PingReply pong;
            pong.set_node(node);
            pong.set_station_rtt_us(absl::ToInt64Microseconds(absl::Now() - sent));
            proto::Envelope fake;
            fake.set_id(req_id);
            a = OkReply(fake, options_.name, pong);
            absl::MutexLock lock(&mu_);
            HeardFromLocked(node);
          } else {
            a = RejectAck(req_id, options_.name,
                          absl::StrCat("rejected by ", node, ": ",
                                       ack.ok() ? ack->error() : ack.status().message()));
          }
        } else if (r == RequestPump::Result::kNoResponders) {
          a = RejectAck(req_id, options_.name, absl::StrCat("node ", node, " is offline (no responders)"));
          a.set_outcome(proto::OUTCOME_ERROR);
        } else {
          a = RejectAck(req_id, options_.name,
                        absl::StrCat("node ", node, " did not answer within ", absl::FormatDuration(wait)));
          a.set_outcome(proto::OUTCOME_ERROR);
        }
        if (!reply.empty()) (void)nats::Publish(conn_.get(), reply, a.SerializeAsString());
      });
  if (!st.ok()) return RejectAck(req.id(), options_.name, st.message());
  return std::nullopt;
}

proto::Ack Station::HandleNodes(const proto::Envelope& req) {
  proto::NodesRequest nr;
  if (!nr.ParseFromString(req.payload())) {
    return RejectAck(req.id(), options_.name, "malformed nodes request");
  }
  proto::NodesReply out;
  absl::MutexLock lock(&mu_);
  absl::flat_hash_map<std::string, int> pending;
  for (const auto& [id, c] : commands_) {
    if (!IsTerminal(c.state)) ++pending[c.env.to_node()];
  }
  std::vector<std::string> names;
  for (const auto& [name, node] : nodes_) {
    if (nr.node().empty() || nr.node() == name) names.push_back(name);
  }
  if (!nr.node().empty() && names.empty()) {
    return RejectAck(req.id(), options_.name, absl::StrCat("unknown node ", nr.node()));
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    proto::NodeInfo* info = out.add_nodes();
    *info = nodes_[name].info;
    info->set_pending(pending[name]);
  }
  return OkReply(req, options_.name, out);
}

proto::Ack Station::HandleShow(const proto::Envelope& req) {
  proto::WaitRequest wr;  // ids only
  if (!wr.ParseFromString(req.payload())) {
    return RejectAck(req.id(), options_.name, "malformed show request");
  }
  proto::CommandStates out;
  absl::MutexLock lock(&mu_);
  for (const std::string& id : wr.ids()) {
    auto it = commands_.find(id);
    if (it == commands_.end()) {
      return RejectAck(req.id(), options_.name, absl::StrCat("unknown command ", id));
    }
    *out.add_commands() = StateOfLocked(it->second);
  }
  return OkReply(req, options_.name, out);
}

proto::Ack Station::HandleEvent(const proto::Envelope& ev) {
  const std::string& from = ev.from_node();
  if (absl::Status st = subjects::ValidateToken(from); !st.ok()) {
    return RejectAck(ev.id(), options_.name, absl::StrCat("bad sender: ", st.message()));
  }
  proto::Ack stored = NewAck(ev.id(), options_.name, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
  std::vector<Outgoing> out;
  {
    absl::MutexLock lock(&mu_);
    if (ev.method() == kEventResult) {
      proto::Ack ack;
      if (!ack.ParseFromString(ev.payload())) {
        return RejectAck(ev.id(), options_.name, "malformed result payload");
      }
      auto it = commands_.find(ack.envelope_id());
      if (it == commands_.end() || it->second.env.to_node() != from) {
        // Not ours (or not from the node we sent it to): refuse for good.
        return RejectAck(ev.id(), options_.name,
                         absl::StrCat("no command ", ack.envelope_id(), " sent to ", from));
      }
      HeardFromLocked(from);
      ApplyAckLocked(it->second, ack, out);
    } else if (ev.method() == kEventHello) {
      proto::Hello hello;
      if (!hello.ParseFromString(ev.payload())) {
        return RejectAck(ev.id(), options_.name, "malformed hello payload");
      }
      Node& node = NodeLocked(from);
      node.info.set_version(hello.version());
      node.info.set_hostname(hello.hostname());
      node.info.set_os(hello.os());
      node.info.mutable_methods()->CopyFrom(hello.methods());
      if (hello.heartbeat_ms() > 0) node.heartbeat = absl::Milliseconds(hello.heartbeat_ms());
      HeardFromLocked(from);
    } else if (ev.method() == kEventErrorLog) {
      proto::ErrorLog log;
      if (!log.ParseFromString(ev.payload())) {
        return RejectAck(ev.id(), options_.name, "malformed errorlog payload");
      }
      Node& node = NodeLocked(from);
      node.info.set_errors(node.info.errors() + 1);
      HeardFromLocked(from);
      STEWARD_LOG_INFO("errorlog {} {}: {} {} -> {}", from, log.process(), log.severity(),
                       log.error(), log.decision());
    } else {
      return RejectAck(ev.id(), options_.name, absl::StrCat("unknown event method ", ev.method()));
    }
  }
  Publish(out);
  return stored;
}

Station::Node& Station::NodeLocked(const std::string& name) {
  auto [it, inserted] = nodes_.try_emplace(name);
  if (inserted) {
    it->second.info.set_name(name);
    it->second.heartbeat = options_.default_heartbeat;
  }
  return it->second;
}

void Station::HeardFromLocked(const std::string& name) {
  Node& node = NodeLocked(name);
  const absl::Time now = absl::Now();
  node.last_heard = now;
  node.info.set_last_heard_unix_ms(absl::ToUnixMillis(now));
  if (!node.info.online()) {
    node.info.set_online(true);
    node.info.set_since_unix_ms(absl::ToUnixMillis(now));
    STEWARD_LOG_INFO("node {} is online", name);
    // Parked commands go out at once.
    for (auto& [id, c] : commands_) {
      if (c.env.to_node() == name && !IsTerminal(c.state) && !c.in_flight &&
          c.next_attempt == absl::InfiniteFuture()) {
        c.next_attempt = now;
      }
    }
    wake_ = true;
  }
}

void Station::MarkOfflineLocked(const std::string& name, const char* why) {
  Node& node = NodeLocked(name);
  if (!node.info.online() && node.info.since_unix_ms() != 0) return;
  node.info.set_online(false);
  node.info.set_since_unix_ms(NowUnixMillis());
  STEWARD_LOG_INFO("node {} is offline ({})", name, why);
}

void Station::ScheduleRetryLocked(Command& c) {
  absl::Duration backoff = options_.initial_backoff;
  for (int i = 1; i < c.attempts && backoff < options_.max_backoff; ++i) backoff *= 2;
  c.next_attempt = absl::Now() + std::min(backoff, options_.max_backoff);
}

void Station::OnNodeAck(const std::string& id, RequestPump::Result r, nats::MsgPtr msg) {
  std::vector<Outgoing> out;
  {
    absl::MutexLock lock(&mu_);
    auto it = commands_.find(id);
    if (it == commands_.end()) return;
    Command& c = it->second;
    c.in_flight = false;
    if (IsTerminal(c.state)) return;
    const std::string& node = c.env.to_node();
    switch (r) {
      case RequestPump::Result::kReply: {
        absl::StatusOr<proto::Ack> ack = DecodeAck(nats::Data(msg.get()));
        if (!ack.ok()) {
          ScheduleRetryLocked(c);
          break;
        }
        HeardFromLocked(node);
        ApplyAckLocked(c, *ack, out);
        break;
      }
      case RequestPump::Result::kNoResponders:
        // Parked: it goes out again when the node is heard from.
        MarkOfflineLocked(node, "no responders");
        c.next_attempt = absl::InfiniteFuture();
        break;
      case RequestPump::Result::kTimeout:
        ScheduleRetryLocked(c);
        break;
      case RequestPump::Result::kShutdown:
        break;
    }
  }
  Publish(out);
}

void Station::ApplyAckLocked(Command& c, const proto::Ack& ack, std::vector<Outgoing>& out) {
  if (IsTerminal(c.state)) return;
  c.updated = absl::Now();
  if (ack.stage() == proto::STAGE_RECEIVED) {
    c.state = "running";
    // Ask again if no result has come by the end of its run time.
    c.next_attempt = c.updated + absl::Milliseconds(c.env.timeout_ms()) + options_.result_grace;
    NodeLocked(c.env.to_node()).info.set_last_command_state(c.state);
    return;
  }
  if (ack.stage() == proto::STAGE_RESULT) {
    c.result = ack;
    FinishLocked(c, StateFromOutcome(ack.outcome()), out);
  }
}

void Station::FinishLocked(Command& c, const std::string& state, std::vector<Outgoing>& out) {
  c.state = state;
  c.updated = absl::Now();
  Node& node = NodeLocked(c.env.to_node());
  if (node.info.last_command_id() == c.env.id()) node.info.set_last_command_state(state);
  AnswerWaitersLocked(c.env.id(), out);
}

proto::CommandState Station::StateOfLocked(const Command& c) const {
  proto::CommandState s;
  s.set_id(c.env.id());
  s.set_node(c.env.to_node());
  s.set_request_id(c.env.request_id());
  s.set_state(c.state);
  *s.mutable_command() = c.env;
  if (c.result.stage() != proto::STAGE_UNSPECIFIED) *s.mutable_result() = c.result;
  s.set_created_unix_ms(absl::ToUnixMillis(c.created));
  s.set_updated_unix_ms(absl::ToUnixMillis(c.updated));
  s.set_attempts(c.attempts);
  return s;
}

Station::Outgoing Station::WaiterReplyLocked(const Waiter& w) const {
  proto::CommandStates states;
  for (const std::string& id : w.ids) {
    auto it = commands_.find(id);
    if (it != commands_.end()) *states.add_commands() = StateOfLocked(it->second);
  }
  proto::Ack a = NewAck("", options_.name, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
  a.set_payload(states.SerializeAsString());
  return Outgoing{w.reply, a.SerializeAsString()};
}

void Station::AnswerWaitersLocked(const std::string& id, std::vector<Outgoing>& out) {
  auto done = [&](const Waiter& w) {
    if (std::find(w.ids.begin(), w.ids.end(), id) == w.ids.end()) return false;
    for (const std::string& other : w.ids) {
      auto it = commands_.find(other);
      if (it != commands_.end() && !IsTerminal(it->second.state)) return false;
    }
    out.push_back(WaiterReplyLocked(w));
    return true;
  };
  waiters_.erase(std::remove_if(waiters_.begin(), waiters_.end(), done), waiters_.end());
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

void Station::DispatchLoop() {
  while (!stop_.HasBeenNotified()) {
    struct Send {
      std::string id;
      std::string subject;
      std::string data;
    };
    std::vector<Send> sends;
    std::vector<Outgoing> out;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&wake_), absl::Milliseconds(50));
      wake_ = false;
      const absl::Time now = absl::Now();
      const int64_t now_ms = absl::ToUnixMillis(now);
      for (auto& [id, c] : commands_) {
        if (IsTerminal(c.state) || c.in_flight) continue;
        if ((c.state == "queued" || c.state == "sent") && Expired(c.env, now_ms)) {
          FinishLocked(c, "expired", out);
          continue;
        }
        if (c.next_attempt > now) continue;
        absl::StatusOr<subjects::Subject> subject = subjects::Make(
            c.env.to_node(), subjects::Kind::kCommand, c.env.method(), c.env.domain());
        if (!subject.ok()) {
          c.result = RejectAck(id, options_.name, subject.status().message());
          FinishLocked(c, "rejected", out);
          continue;
        }
        c.in_flight = true;
        ++c.attempts;
        if (c.state == "queued") c.state = "sent";
        sends.push_back(Send{id, subject->ToString(), c.env.SerializeAsString()});
      }
      // Waiters whose time is up get the states as they are.
      auto expired = [&](const Waiter& w) {
        if (w.deadline > now) return false;
        out.push_back(WaiterReplyLocked(w));
        return true;
      };
      waiters_.erase(std::remove_if(waiters_.begin(), waiters_.end(), expired), waiters_.end());
      // Node monitor: offline after missed heartbeats.
      for (auto& [name, node] : nodes_) {
        if (node.info.online() && now - node.last_heard > node.heartbeat * options_.missed_heartbeats) {
          MarkOfflineLocked(name, "missed heartbeats");
        }
      }
    }
    Publish(out);
    for (Send& s : sends) {
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
