// Client: request/reply calls to the station's cli methods.
#include "ctl/client.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "subjects/subject.h"

namespace steward::ctl {

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  STEWARD_RETURN_IF_ERROR(subjects::ValidateToken(options.station));
  options.nats.keep_trying = false;
  if (options.nats.name.empty()) options.nats.name = "stewardctl";
  // Replies come to the operator's own inboxes (the broker confines them there).
  if (options.nats.inbox_prefix.empty() && !options.nats.user.empty()) {
    options.nats.inbox_prefix = "_INBOX_" + options.nats.user;
  }
  std::unique_ptr<Client> c(new Client(std::move(options)));
  absl::StatusOr<nats::ConnectionPtr> conn = nats::Connect(c->options_.nats);
  if (!conn.ok()) {
    return absl::UnavailableError(absl::StrCat("station not reachable at ", nats::RedactUrl(c->options_.nats.url),
                                               ": ", conn.status().message()));
  }
  c->conn_ = *std::move(conn);
  STEWARD_ASSIGN_OR_RETURN(c->pump_, RequestPump::Create(c->conn_.get(), c->options_.nats.inbox_prefix));
  return c;
}

size_t Client::MaxPayload() const { return static_cast<size_t>(nats::MaxPayload(conn_.get())); }

absl::StatusOr<std::string> Client::Request(const char* method, std::string payload) const {
  proto::Envelope env =
      NewEnvelope("stewardctl", options_.station, proto::KIND_COMMAND, method, kCliDomain);
  env.set_operator_(options_.operator_name);
  env.set_payload(std::move(payload));
  if (options_.operator_key.has_value()) {
    STEWARD_RETURN_IF_ERROR(signing::SignEnvelope(env, *options_.operator_key));
  }
  return env.SerializeAsString();
}

absl::StatusOr<std::string> Client::AckPayload(absl::string_view data) {
  STEWARD_ASSIGN_OR_RETURN(proto::Ack ack, DecodeAck(data));
  if (ack.outcome() == proto::OUTCOME_REJECTED) return absl::FailedPreconditionError(ack.error());
  if (ack.outcome() != proto::OUTCOME_SUCCEEDED) return absl::UnavailableError(ack.error());
  return std::move(*ack.mutable_payload());
}

absl::StatusOr<nats::MsgPtr> Client::PumpRequest(const std::string& subject, const std::string& request,
                                                 absl::Duration timeout) {
  struct Outcome {
    absl::Mutex mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    RequestPump::Result result ABSL_GUARDED_BY(mu) = RequestPump::Result::kTimeout;
    nats::MsgPtr msg ABSL_GUARDED_BY(mu);
  };
  // Shared with the callback, which the pump calls after this returns when the
  // connection closed first (then its timeout ends the request in the pump).
  auto out = std::make_shared<Outcome>();
  STEWARD_RETURN_IF_ERROR(pump_->Send(subject, request, timeout, [out](RequestPump::Result r, nats::MsgPtr m) {
    absl::MutexLock lock(&out->mu);
    out->result = r;
    out->msg = std::move(m);
    out->done = true;
  }));
  const std::string what = "request " + subject;
  absl::MutexLock lock(&out->mu);
  // A connection that closes (its brokers gone, or reconnecting given up) ends the wait
  // at once, as nats.c's own request does; a reply cannot come on it.
  while (!out->mu.AwaitWithTimeout(absl::Condition(&out->done), absl::Milliseconds(200))) {
    if (natsConnection_IsClosed(conn_.get())) return nats::ToStatus(NATS_CONNECTION_CLOSED, what);
  }
  switch (out->result) {
    case RequestPump::Result::kReply:
      return std::move(out->msg);
    case RequestPump::Result::kNoResponders:
      return nats::ToStatus(NATS_NO_RESPONDERS, what);
    case RequestPump::Result::kTimeout:
      return nats::ToStatus(NATS_TIMEOUT, what);
    case RequestPump::Result::kShutdown:
      break;
  }
  return absl::CancelledError(absl::StrCat(what, ": the client is closing"));
}

absl::StatusOr<std::string> Client::Try(const std::string& subject, const std::string& request,
                                        absl::Duration timeout) {
  absl::StatusOr<nats::MsgPtr> msg = PumpRequest(subject, request, timeout);
  if (absl::IsUnavailable(msg.status()) && natsConnection_IsClosed(conn_.get())) {
    // Not tried again: a closed connection does not come back (its brokers are gone, or
    // it gave up reconnecting to them).
    return absl::UnavailableError(absl::StrCat("the broker connection to ", nats::RedactUrl(options_.nats.url),
                                               " is lost: ", msg.status().message(),
                                               " (the station may have taken the request before: "
                                               "`stewardctl history` says, before you ask again)"));
  }
  if (absl::IsUnavailable(msg.status())) {
    return absl::UnavailableError(absl::StrCat("station not reachable at ", nats::RedactUrl(options_.nats.url),
                                               " (no station \"", options_.station, "\" is listening)"));
  }
  if (absl::IsDeadlineExceeded(msg.status())) {
    return absl::DeadlineExceededError(absl::StrCat("station \"", options_.station,
                                                    "\" did not answer within ",
                                                    absl::FormatDuration(timeout)));
  }
  if (!msg.ok()) return msg.status();
  return AckPayload(nats::Data(msg->get()));
}

absl::StatusOr<std::string> Client::Call(const char* method, std::string payload, absl::Duration timeout,
                                         bool retry_timeouts) {
  STEWARD_ASSIGN_OR_RETURN(subjects::Subject subject,
                           subjects::Make(options_.station, subjects::Kind::kCommand, method,
                                          kCliDomain));
  // Made and signed once: a repeat is the same request, which the station recognises
  // by its envelope id (a submit whose answer was lost is not made twice).
  STEWARD_ASSIGN_OR_RETURN(std::string request, Request(method, std::move(payload)));
  const std::string to = subject.ToString();
  absl::StatusOr<std::string> out = Try(to, request, timeout);
  auto retryable = [&](const absl::Status& st) {
    // "No responders" comes from the broker, not from a station (whose errors are in
    // its ACK: those are answers, not retried here). A request that found no station
    // was not delivered: sending it again is always safe.
    if (st.ok()) return false;
    if (absl::IsUnavailable(st) && absl::StartsWith(st.message(), "station not reachable")) return true;
    // An HA station that lost its lease refuses what it can no longer store (it rolled
    // it back): the new active one does it.
    if (absl::IsUnavailable(st) && absl::StrContains(st.message(), "lost its lease")) return true;
    return retry_timeouts && absl::IsDeadlineExceeded(st);
  };
  if (options_.retry_for <= absl::ZeroDuration() || !retryable(out.status())) return out;
  const absl::Time until = absl::Now() + options_.retry_for;
  absl::Duration backoff = absl::Milliseconds(100);
  while (retryable(out.status()) && absl::Now() < until) {
    if (options_.on_retry && !told_retrying_.exchange(true)) {
      options_.on_retry(absl::StrCat(out.status().message(), "; trying again for up to ",
                                     absl::FormatDuration(options_.retry_for),
                                     " (a standby station may be taking over; --retry-for)"));
    }
    absl::SleepFor(std::min(backoff, until - absl::Now()));
    backoff = std::min(backoff * 2, absl::Seconds(1));
    // A timeout is tried again with its own length; the budget bounds only the waits
    // between tries for a station to come.
    out = Try(to, request, timeout);
  }
  if (retryable(out.status())) {
    return absl::Status(out.status().code(), absl::StrCat(out.status().message(), " (tried again for ",
                                                           absl::FormatDuration(options_.retry_for), ")"));
  }
  return out;
}

absl::Status Client::Post(const char* method, const std::string& payload, const std::string& reply) {
  STEWARD_ASSIGN_OR_RETURN(subjects::Subject subject,
                           subjects::Make(options_.station, subjects::Kind::kCommand, method,
                                          kCliDomain));
  STEWARD_ASSIGN_OR_RETURN(std::string request, Request(method, payload));
  return nats::Publish(conn_.get(), subject.ToString(), request, reply);
}

std::string Client::NewInbox() const { return nats::NewInbox(options_.nats.inbox_prefix); }

template <typename T>
static absl::StatusOr<T> ParseAs(absl::StatusOr<std::string> bytes) {
  if (!bytes.ok()) return bytes.status();
  T out;
  if (!out.ParseFromString(*bytes)) return absl::InternalError("malformed reply from the station");
  return out;
}

absl::StatusOr<proto::SubmitReply> Client::Submit(const proto::SubmitRequest& req,
                                                  absl::Duration timeout) {
  // With wait_ms the station answers by then; allow for the trip.
  if (req.wait_ms() <= 0) return ParseAs<proto::SubmitReply>(Call(kStationSubmit, req.SerializeAsString(), timeout));
  timeout = std::max(timeout, absl::Milliseconds(req.wait_ms()) + absl::Seconds(5));
  // The answer comes through the pump, which takes it gathered with others. The flag is
  // appended as a message of its own: protobuf reads concatenated messages as one
  // (merged, a field set twice takes the last value), and the request, which may carry a
  // copy chunk, is not copied to set it.
  proto::SubmitRequest flag;
  flag.set_answers_gathered(true);
  std::string bytes = req.SerializeAsString();
  flag.AppendToString(&bytes);
  return ParseAs<proto::SubmitReply>(Call(kStationSubmit, std::move(bytes), timeout));
}

absl::StatusOr<proto::CommandStates> Client::Wait(const std::vector<std::string>& ids,
                                                  absl::Duration wait, bool any) {
  proto::WaitRequest req;
  for (const std::string& id : ids) req.add_ids(id);
  req.set_wait_ms(absl::ToInt64Milliseconds(wait));
  req.set_any(any);
  // The station answers by `wait`; allow for the trip.
  return ParseAs<proto::CommandStates>(
      Call(kStationWait, req.SerializeAsString(), wait + absl::Seconds(5)));
}

absl::StatusOr<proto::CommandStates> Client::Show(const std::vector<std::string>& ids,
                                                  const std::string& request_id,
                                                  absl::Duration timeout) {
  proto::ShowRequest req;
  for (const std::string& id : ids) req.add_ids(id);
  req.set_request_id(request_id);
  return ParseAs<proto::CommandStates>(Call(kStationShow, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::CommandStates> Client::History(const proto::HistoryRequest& req,
                                                     absl::Duration timeout) {
  return ParseAs<proto::CommandStates>(Call(kStationHistory, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::AclReply> Client::Forget(const std::string& node, bool cancel,
                                               absl::Duration timeout) {
  proto::ForgetRequest req;
  req.set_node(node);
  req.set_cancel(cancel);
  return ParseAs<proto::AclReply>(Call(kStationForget, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::AclReply> Client::Accept(const std::string& node, const std::string& key,
                                               absl::Duration timeout) {
  proto::AcceptRequest req;
  req.set_key(key);
  req.set_node(node);
  return ParseAs<proto::AclReply>(Call(kStationAccept, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::AclReply> Client::Acl(const proto::AclRequest& req, absl::Duration timeout) {
  return ParseAs<proto::AclReply>(Call(kStationAcl, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::CommandStates> Client::Approvals(const proto::ApprovalsRequest& req,
                                                       absl::Duration timeout) {
  return ParseAs<proto::CommandStates>(Call(kStationApprovals, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::CommandStates> Client::Decide(const proto::DecideRequest& req, absl::Duration timeout) {
  return ParseAs<proto::CommandStates>(Call(kStationDecide, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::AclReply> Client::ApprovalRules(const proto::ApprovalRulesRequest& req,
                                                      absl::Duration timeout) {
  return ParseAs<proto::AclReply>(Call(kStationApprovalRules, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::CommandStates> Client::Audit(const proto::AuditRequest& req, absl::Duration timeout) {
  return ParseAs<proto::CommandStates>(Call(kStationAudit, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::LogsReply> Client::Logs(const proto::LogsRequest& req, absl::Duration timeout) {
  return ParseAs<proto::LogsReply>(Call(kStationLogs, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::SubmitReply> Client::Retry(const std::vector<std::string>& ids, absl::Duration timeout) {
  proto::RetryRequest req;
  for (const std::string& id : ids) req.add_ids(id);
  return ParseAs<proto::SubmitReply>(Call(kStationRetry, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::CommandStates> Client::Cancel(const std::vector<std::string>& ids,
                                                    absl::Duration timeout) {
  proto::CancelRequest req;
  for (const std::string& id : ids) req.add_ids(id);
  return ParseAs<proto::CommandStates>(Call(kStationCancel, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::PingReply> Client::Ping(const std::string& node, absl::Duration wait, bool direct) {
  proto::PingRequest req;
  req.set_node(node);
  req.set_wait_ms(absl::ToInt64Milliseconds(wait));
  req.set_direct(direct);
  // Answered by the node's own ACK (the station forwarded the ping to an online node
  // with this call's reply subject), or by the station: a refusal, an offline node, or
  // a station that does not forward.
  absl::StatusOr<proto::PingReply> pong =
      ParseAs<proto::PingReply>(Call(kStationPing, req.SerializeAsString(), wait + absl::Seconds(2),
                                    /*retry_timeouts=*/false));
  if (absl::IsDeadlineExceeded(pong.status())) {
    return absl::DeadlineExceededError(absl::StrCat("no answer from node ", node, " (asked through station \"",
                                                    options_.station, "\") within ",
                                                    absl::FormatDuration(wait + absl::Seconds(2))));
  }
  if (!pong.ok()) return pong.status();
  if (pong->node().empty()) {  // the node's own ACK: no PingReply in it
    pong->set_node(node);
    pong->set_direct(true);
  }
  return pong;
}

absl::StatusOr<proto::NodesReply> Client::Nodes(const std::string& node, absl::Duration timeout, int page) {
  proto::NodesRequest req;
  req.set_node(node);
  req.set_paged(node.empty());
  req.set_limit(page);
  proto::NodesReply all;
  while (true) {
    STEWARD_ASSIGN_OR_RETURN(proto::NodesReply reply,
                             ParseAs<proto::NodesReply>(Call(kStationNodes, req.SerializeAsString(), timeout)));
    const bool more = reply.more() && reply.nodes_size() > 0;
    if (more) req.set_after(reply.nodes(reply.nodes_size() - 1).name());
    // The rows of every page; the station's health and switches as of the last one.
    for (proto::NodeInfo& n : *reply.mutable_nodes()) *all.add_nodes() = std::move(n);
    *all.mutable_station() = std::move(*reply.mutable_station());
    *all.mutable_dispatch() = std::move(*reply.mutable_dispatch());
    *all.mutable_recent() = std::move(*reply.mutable_recent());
    if (!more) return all;
  }
}

absl::StatusOr<proto::TargetsReply> Client::Targets(const proto::TargetsRequest& req, absl::Duration timeout) {
  return ParseAs<proto::TargetsReply>(Call(kStationTargets, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::TagReply> Client::Tag(const proto::TagRequest& req, absl::Duration timeout) {
  return ParseAs<proto::TagReply>(Call(kStationTag, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::LaunchReply> Client::Launch(const proto::LaunchRequest& req, absl::Duration timeout) {
  return ParseAs<proto::LaunchReply>(Call(kStationLaunch, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::JobReply> Client::Job(const std::string& id, absl::Duration timeout) {
  proto::JobRequest req;
  req.set_id(id);
  return ParseAs<proto::JobReply>(Call(kStationJob, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::AclReply> Client::Close(const std::string& id, absl::Duration timeout) {
  proto::CloseRequest req;
  req.set_id(id);
  return ParseAs<proto::AclReply>(Call(kStationClose, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::ScheduleReply> Client::Schedule(const proto::ScheduleRequest& req, absl::Duration timeout) {
  return ParseAs<proto::ScheduleReply>(Call(kStationSchedule, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::DispatchSwitch> Client::Pause(const proto::PauseRequest& req, absl::Duration timeout) {
  return ParseAs<proto::DispatchSwitch>(Call(kStationPause, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::NodesReply> Client::Maintenance(const proto::MaintenanceRequest& req,
                                                      absl::Duration timeout) {
  return ParseAs<proto::NodesReply>(Call(kStationMaintenance, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::TokenReply> Client::Token(const proto::TokenRequest& req, absl::Duration timeout) {
  // A token made twice would be two tokens: not sent again after a timeout.
  return ParseAs<proto::TokenReply>(Call(kStationToken, req.SerializeAsString(), timeout, /*retry_timeouts=*/false));
}

absl::StatusOr<proto::OutputReply> Client::Output(const proto::OutputRequest& req, absl::Duration timeout) {
  return ParseAs<proto::OutputReply>(Call(kStationOutput, req.SerializeAsString(), timeout));
}

absl::StatusOr<proto::StationStatusReply> Client::StationStatus(absl::Duration timeout) {
  // The method's name: station/station.cc answers it.
  return ParseAs<proto::StationStatusReply>(
      Call("stations", proto::StationStatusRequest().SerializeAsString(), timeout));
}

}  // namespace steward::ctl
