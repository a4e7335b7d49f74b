// Rpc: the station's operator API, <station>.command.<method>.cli. A request is an
// envelope whose payload is the method's request message; the answer is an ACK:
// SUCCEEDED with the method's reply message as payload, REJECTED with the reason (the
// request was wrong: do not repeat it as is), or ERROR (the station could not do it
// now, e.g. a ledger write failed: try again).
//
// Serve does what every method needs in one place: the subject and envelope are
// decoded and checked, the operator's signature verified (when the station has
// operator keys), and the payload parsed as the handler's request type; anything wrong
// is answered here, so handlers see only well-formed calls.
//
//   rpc.Handle<proto::HistoryRequest>(kStationHistory, [&](const Call& call, proto::HistoryRequest req) {
//     ...
//     rpc.Ok(call, reply);
//   });
//
// Thread-safe once the handlers are registered (before Serve is first called).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/nats.h"
#include "proto/steward.pb.h"
#include "station/core.h"

namespace steward::station {

// One operator request, checked.
struct Call {
  proto::Envelope env;
  std::string reply;
  // An in-process call (the HTTP API, Rpc::Invoke): the answer goes here, not to `reply`.
  std::function<void(const proto::Ack&)> respond;
  std::string via = "cli";  // "cli" (NATS) or "http": recorded with operator actions
  // What the request asked for, when it is one done once (station/repeats.h): recorded
  // with its reply, so that a repeat asking for something else is refused.
  std::string repeat_digest;
  const std::string& id() const { return env.id(); }
  // Who asked: the operator's name, and with operator keys the key id that signed.
  const std::string& op() const { return env.operator_(); }
  // Who asked, as the four-eyes rule compares operators: the key that signed the request
  // when there is one (a verified identity), else the operator's name.
  std::string identity() const { return env.signer().empty() ? env.operator_() : "key " + env.signer(); }
};

// The identity (Call::identity) of whoever made a request, from the operator text
// recorded with what it made (a job, a schedule): on a station with operator keys
// (`keyed`) the station appended the signer's key id to the name ("alice ed25519:0123"),
// and that key is the identity; else the name is.
std::string IdentityOfRecorded(const std::string& op, bool keyed);

// A message as it arrived on one of the station's subjects, decoded: its envelope and
// where to answer. An error names what is wrong with it (the subject, the bytes, a
// method that is not the subject's).
struct Incoming {
  proto::Envelope env;
  std::string reply;
};
absl::StatusOr<Incoming> Decode(natsMsg* msg);

class Rpc {
 public:
  explicit Rpc(Core& core) : core_(core) {}

  // Handle registers `fn` for `method`; the payload is parsed as Req first (a
  // malformed one is rejected: "malformed <method> request").
  template <typename Req>
  void Handle(const std::string& method, std::function<void(const Call&, Req)> fn) {
    handlers_[method] = [this, method, fn = std::move(fn)](Call& call) {
      Req req;
      if (!req.ParseFromString(call.env.payload())) {
        return Reject(call, absl::StrCat("malformed ", method, " request"));
      }
      // Parsed, the request's bytes are in `req`: the call that a handler keeps to answer
      // later (a copy in each such callback) need not hold them again (a copy chunk's
      // request is 896 KiB).
      call.env.clear_payload();
      fn(call, std::move(req));
    };
  }

  // Serve answers one message from <station>.command.*.cli.
  void Serve(nats::MsgPtr msg);
  // Invoke calls `method` in-process, as operator `op` (authenticated by the caller:
  // no signature is checked), with the serialized request `payload`; `respond` gets
  // the ACK (on this thread or later on another). `repeat_key`, when set, stands for
  // the request's envelope id: a call with the same key from the same operator is the
  // same request (an HTTP client's Idempotency-Key; station/repeats.h).
  void Invoke(const std::string& method, std::string payload, std::string op, std::string via,
              std::function<void(const proto::Ack&)> respond, const std::string& repeat_key = "");

  void Ok(const Call& call, const google::protobuf::Message& body);
  void Reject(const Call& call, absl::string_view reason);
  // Error answers with OUTCOME_ERROR: the station could not do it now (retry).
  void Error(const Call& call, absl::string_view reason);
  // Answers a failed Status: InvalidArgument, NotFound, FailedPrecondition,
  // PermissionDenied and AlreadyExists reject; the rest are errors.
  void Fail(const Call& call, const absl::Status& st);
  // OkWhenStored answers `body` once every ledger write queued so far committed, or an
  // error when one failed: nothing is acknowledged before it is durable.
  void OkWhenStored(const Call& call, const google::protobuf::Message& body);
  // OkWhenDurable answers `body` once write `seq` of each command of `seqs` (id -> seq)
  // committed; else an error saying `what` is not stored yet. (Writes of those commands
  // queued meanwhile, a killed command's result, do not count.)
  void OkWhenDurable(const Call& call, const google::protobuf::Message& body, std::map<std::string, uint64_t> seqs,
                     absl::string_view what);

 private:
  // Whether `reply` is where an operator reads answers (not a node's inbox, nor any
  // other subject a sender might point the station at).
  bool OperatorInbox(const std::string& reply);
  // Why a request's envelope is not one for this station's operator API ("" if it is):
  // addressed to another node, not a command, not in the cli domain.
  std::string Misaddressed(const proto::Envelope& env, const std::string& subject) const;
  void Send(const Call& call, const proto::Ack& ack);

  Core& core_;
  absl::flat_hash_map<std::string, std::function<void(Call&)>> handlers_;
};

}  // namespace steward::station
