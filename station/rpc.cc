#include "station/rpc.h"

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "common/time_text.h"
#include "station/repeats.h"
#include "station/security.h"
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

namespace {

// How far a signed request's time may run ahead of the station's clock.
constexpr absl::Duration kSignedSkew = absl::Hours(1);
// How long a signed request is good for: while it is, a repeat of it is recognised (the
// station keeps what it answered for Repeats::kWindow), so a captured request played
// again later is refused, never run twice.
const absl::Duration kSignedLife = Repeats::kWindow - kSignedSkew;

absl::Status CheckSignedAge(const proto::Envelope& env, absl::Time now) {
  if (env.created_unix_ms() <= 0) {
    return absl::PermissionDeniedError("a signed request must say when it was made (created_unix_ms)");
  }
  const absl::Time made = absl::FromUnixMillis(env.created_unix_ms());
  if (made > now + kSignedSkew) {
    return absl::PermissionDeniedError(
        absl::StrCat("the request was made ", absl::FormatDuration(absl::Trunc(made - now, absl::Seconds(1))),
                     " ahead of the station's clock (", UtcText(now), "): check the clocks"));
  }
  if (now - made > kSignedLife) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the request was made ", absl::FormatDuration(absl::Trunc(now - made, absl::Minutes(1))),
        " ago; a signed request is good for ", absl::FormatDuration(kSignedLife),
        " (an old one played again is never run twice): make it again"));
  }
  return absl::OkStatus();
}

}  // namespace

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
  if (std::string why = Misaddressed(in->env, nats::Subject(msg.get())); !why.empty()) {
    STEWARD_LOG_WARNING("rejected request on {}: {}", nats::Subject(msg.get()), why);
    core_.Reply(reply, RejectAck(in->env.id(), core_.options().name, why));
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
    if (absl::Status st = CheckSignedAge(call.env, absl::Now()); !st.ok()) {
      STEWARD_LOG_WARNING("refused {} request {} signed by {}: {}", call.env.method(), call.env.id(),
                          call.env.signer(), st.message());
      return Reject(call, absl::StrCat("refused: ", st.message()));
    }
    call.env.set_operator_(absl::StrCat(call.env.operator_(), " ", call.env.signer()));
  }
  auto it = handlers_.find(call.env.method());
  if (it == handlers_.end()) return Reject(call, absl::StrCat("unknown method ", call.env.method()));
  it->second(call);
}

std::string IdentityOfRecorded(const std::string& op, bool keyed) {
  const size_t space = op.rfind(' ');
  if (!keyed || space == std::string::npos || !absl::StartsWith(op.substr(space + 1), "ed25519:")) return op;
  return "key " + op.substr(space + 1);
}

void Rpc::Invoke(const std::string& method, std::string payload, std::string op, std::string via,
                 std::function<void(const proto::Ack&)> respond, const std::string& repeat_key) {
  Call call;
  call.env = NewEnvelope(op, core_.options().name, proto::KIND_COMMAND, method, kCliDomain);
  if (!repeat_key.empty()) call.env.set_id(absl::StrCat(via, ":", repeat_key));
  call.env.set_operator_(std::move(op));
  call.env.set_payload(std::move(payload));
  call.respond = std::move(respond);
  call.via = std::move(via);
  auto it = handlers_.find(method);
  if (it == handlers_.end()) return Reject(call, absl::StrCat("unknown method ", method));
  it->second(call);
}

std::string Rpc::Misaddressed(const proto::Envelope& env, const std::string& subject) const {
  const std::string& station = core_.options().name;
  if (env.kind() != proto::KIND_COMMAND) return absl::StrCat("a request to the station must be a command, not an event");
  if (env.to_node() != station) {
    return absl::StrCat("addressed to \"", env.to_node(), "\", not to this station (\"", station, "\")");
  }
  absl::StatusOr<subjects::Subject> s = subjects::Parse(subject);
  if (env.domain() != kCliDomain || !s.ok() || s->domain != kCliDomain) {
    return absl::StrCat("the station's operator API is in domain \"", kCliDomain, "\" (", subject, ", domain \"",
                        env.domain(), "\")");
  }
  return "";
}

void Rpc::Send(const Call& call, const proto::Ack& ack) {
  if (call.respond) return call.respond(ack);
  core_.Reply(call.reply, ack);
}

bool Rpc::OperatorInbox(const std::string& reply) {
  // "_INBOX.<id>" (no broker users) or "_INBOX_<user>.<id>", where the user is no node.
  if (absl::StartsWith(reply, "_INBOX.")) return true;
  if (!absl::StartsWith(reply, kNodeInboxPrefix)) return false;
  const std::string user = reply.substr(std::strlen(kNodeInboxPrefix), reply.find('.') - std::strlen(kNodeInboxPrefix));
  if (user.empty() || reply.find('.') == std::string::npos) return false;
  // A node is a name the station enrolled or believed (heard from). Anyone's hello can
  // make a row for any name, pending, and such a row must not lock that user (an
  // operator perhaps) out of the station.
  {
    absl::MutexLock lock(&core_.model.mu);
    if (const NodeTable::Node* node = core_.model.nodes.Find(user); node != nullptr) {
      const proto::NodeStatus st = node->info.status();
      if (st != proto::NODE_PENDING && st != proto::NODE_UNKNOWN) return false;
    }
  }
  return !Security::Enrolled(core_, user);
}

void Rpc::Ok(const Call& call, const google::protobuf::Message& body) {
  Send(call, OkAck(call.id(), core_.options().name, body));
}

void Rpc::Reject(const Call& call, absl::string_view reason) {
  Send(call, RejectAck(call.id(), core_.options().name, reason));
}

void Rpc::Error(const Call& call, absl::string_view reason) {
  proto::Ack a = RejectAck(call.id(), core_.options().name, reason);
  a.set_outcome(proto::OUTCOME_ERROR);
  Send(call, a);
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

void Rpc::OkWhenStored(const Call& call, const google::protobuf::Message& body) {
  std::shared_ptr<google::protobuf::Message> out(body.New());
  out->CopyFrom(body);
  core_.AfterWrites([this, call, out](absl::Status st) {
    if (!st.ok()) return Error(call, absl::StrCat("ledger write failed: ", st.message()));
    Ok(call, *out);
  });
}

void Rpc::OkWhenDurable(const Call& call, const google::protobuf::Message& body, std::map<std::string, uint64_t> seqs,
                        absl::string_view what) {
  std::shared_ptr<google::protobuf::Message> out(body.New());
  out->CopyFrom(body);
  core_.AfterWrites([this, call, out, seqs = std::move(seqs), what = std::string(what)](absl::Status) {
    bool durable = true;
    {
      absl::MutexLock lock(&core_.model.mu);
      for (const auto& [id, seq] : seqs) durable = durable && core_.model.commands.Durable(id, seq);
    }
    if (!durable) return Error(call, absl::StrCat("ledger write failed: ", what, " is not stored yet"));
    Ok(call, *out);
  });
}

}  // namespace steward::station
