#include "station/rpc.h"

#include <cstring>

#include "absl/strings/match.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "subjects/subject.h"

namespace steward::station {

absl::StatusOr<Incoming> Decode(natsMsg* msg) {
  Incoming in;
  in.reply = nats::Reply(msg);
  const std::string subject_text = nats::Subject(msg);
  absl::StatusOr<subjects::Subject> subject = subjects::Parse(subject_text);
  if (!subject.ok()) return subject.status();
  absl::StatusOr<proto::Envelope> env = DecodeEnvelope(nats::Data(msg));
  if (!env.ok()) return env.status();
  in.env = *std::move(env);
  if (in.env.method() != subject->method) {
    return absl::InvalidArgumentError(
        absl::StrCat("method ", in.env.method(), " arrived on ", subject_text));
  }
  return in;
}

void Rpc::Serve(nats::MsgPtr msg) {
  const std::string reply = nats::Reply(msg.get());
  if (!OperatorInbox(reply)) {
    const uint64_t n = ++core_.counters.misdirected_replies;
    STEWARD_LOG_WARNING("dropped request on {}: its reply subject {} is not an operator's inbox ({} so far)",
                        nats::Subject(msg.get()), reply, n);
    return;
  }
  absl::StatusOr<Incoming> in = Decode(msg.get());
  if (!in.ok()) {
    STEWARD_LOG_WARNING("rejected request on {}: {}", nats::Subject(msg.get()), in.status().message());
    core_.Reply(reply, RejectAck("", core_.options().name, in.status().message()));
    return;
  }
  Call call{std::move(in->env), std::move(in->reply)};
  const auto& operators = core_.options().operators;
  if (operators != nullptr && !operators->empty()) {
    if (absl::Status st = signing::VerifyEnvelope(call.env, *operators); !st.ok()) {
      STEWARD_LOG_WARNING("refused {} request: {}", call.env.method(), st.message());
      return Reject(call, absl::StrCat("refused: ", st.message(),
                                       " (this station accepts signed operator requests only)"));
    }
    call.env.set_operator_(absl::StrCat(call.env.operator_(), " ", call.env.signer()));
  }
  auto it = handlers_.find(call.env.method());
  if (it == handlers_.end()) return Reject(call, absl::StrCat("unknown method ", call.env.method()));
  it->second(call);
}

bool Rpc::OperatorInbox(const std::string& reply) {
  // "_INBOX.<id>" (no broker users) or "_INBOX_<user>.<id>", where the user is no node.
  if (absl::StartsWith(reply, "_INBOX.")) return true;
  if (!absl::StartsWith(reply, kNodeInboxPrefix)) return false;
  const std::string user = reply.substr(std::strlen(kNodeInboxPrefix), reply.find('.') - std::strlen(kNodeInboxPrefix));
  if (user.empty() || reply.find('.') == std::string::npos) return false;
  absl::MutexLock lock(&core_.model.mu);
  return core_.model.nodes.Find(user) == nullptr;
}

void Rpc::Ok(const Call& call, const google::protobuf::Message& body) {
  core_.Reply(call.reply, OkAck(call.id(), core_.options().name, body));
}

void Rpc::Reject(const Call& call, absl::string_view reason) {
  core_.Reply(call.reply, RejectAck(call.id(), core_.options().name, reason));
}

void Rpc::Error(const Call& call, absl::string_view reason) {
  proto::Ack a = RejectAck(call.id(), core_.options().name, reason);
  a.set_outcome(proto::OUTCOME_ERROR);
  core_.Reply(call.reply, a);
}

void Rpc::Fail(const Call& call, const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kAlreadyExists:
      return Reject(call, st.message());
    default:
      return Error(call, st.message());
  }
}

}  // namespace steward::station
