// Client: what stewardctl (and the benchmarks) use to talk to the station over NATS.
// Every call is a request to station.command.<method>.cli carrying an envelope; the
// station answers with an ACK whose payload is the reply. Never touches the station's
// database.
//
// Thread-safe: calls may run concurrently from many threads on one Client.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/nats.h"
#include "common/request_pump.h"
#include "common/signing.h"
#include "proto/ha.pb.h"
#include "proto/steward.pb.h"

namespace steward::ctl {

struct ClientOptions {
  std::string station = "station";
  nats::ConnectOptions nats;  // keep_trying is forced off: no broker at start fails at once
  std::string operator_name;  // recorded with each command
  // Signs every request (stations with operator keys accept nothing else).
  std::optional<signing::KeyPair> operator_key;
  // How long a call goes on trying after its first try found no station or got no
  // answer in time: the same request (same envelope id, same signature) is sent again
  // with a short backoff, so that an HA takeover (station/ha/: the lease runs out, a
  // standby becomes active) is ridden through; requests that make something are done
  // once per envelope (station/repeats.h). Zero: fail at once.
  absl::Duration retry_for = absl::ZeroDuration();
  // Told once when a call starts retrying (stewardctl: a line on stderr).
  std::function<void(const std::string&)> on_retry;
};

class Client {
 public:
  // Connect fails with Unavailable("station not reachable at URL ...") when the broker
  // is not there.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(ClientOptions options);

  absl::StatusOr<proto::SubmitReply> Submit(const proto::SubmitRequest& req,
                                            absl::Duration timeout);
  // Wait returns the commands' states once all are terminal or after `wait`. With
  // `any`, it returns as soon as one is terminal, with the terminal ones only.
  absl::StatusOr<proto::CommandStates> Wait(const std::vector<std::string>& ids,
                                            absl::Duration wait, bool any = false);
  // Show: commands by id, or all commands of `request_id`.
  absl::StatusOr<proto::CommandStates> Show(const std::vector<std::string>& ids,
                                            const std::string& request_id,
                                            absl::Duration timeout);
  absl::StatusOr<proto::CommandStates> History(const proto::HistoryRequest& req,
                                               absl::Duration timeout);
  // Accept pins the key `node` announced; `key` (a fingerprint) must name it for a key
  // change or a node the station did not enrol ("" otherwise).
  absl::StatusOr<proto::AclReply> Accept(const std::string& node, const std::string& key,
                                         absl::Duration timeout);
  absl::StatusOr<proto::AclReply> Acl(const proto::AclRequest& req, absl::Duration timeout);
  absl::StatusOr<proto::CommandStates> Audit(const proto::AuditRequest& req, absl::Duration timeout);
  absl::StatusOr<proto::LogsReply> Logs(const proto::LogsRequest& req, absl::Duration timeout);
  // Retry sends finished commands again as new commands (new ids).
  absl::StatusOr<proto::SubmitReply> Retry(const std::vector<std::string>& ids, absl::Duration timeout);
  absl::StatusOr<proto::CommandStates> Cancel(const std::vector<std::string>& ids,
                                              absl::Duration timeout);
  // With `direct`, the node's own ACK answers (the station forwards the ping to an online
  // node): one message less. Without, the station times the round trip and answers.
  absl::StatusOr<proto::PingReply> Ping(const std::string& node, absl::Duration wait, bool direct = true);
  // Nodes: `node`, or every node (taken in pages of at most `page` nodes, 0: as many as
  // fit one reply, when the fleet is too large for one).
  absl::StatusOr<proto::NodesReply> Nodes(const std::string& node, absl::Duration timeout, int page = 0);
  // Forget removes a node from the station's tables (refused while it has unfinished
  // commands, unless `cancel`: then they are canceled first).
  absl::StatusOr<proto::AclReply> Forget(const std::string& node, bool cancel,
                                         absl::Duration timeout);

  // Targeting (README: Targeting, rollouts and schedules).
  absl::StatusOr<proto::TargetsReply> Targets(const proto::TargetsRequest& req, absl::Duration timeout);
  absl::StatusOr<proto::TagReply> Tag(const proto::TagRequest& req, absl::Duration timeout);
  absl::StatusOr<proto::LaunchReply> Launch(const proto::LaunchRequest& req, absl::Duration timeout);
  absl::StatusOr<proto::JobReply> Job(const std::string& id, absl::Duration timeout);
  absl::StatusOr<proto::AclReply> Close(const std::string& id, absl::Duration timeout);
  absl::StatusOr<proto::ScheduleReply> Schedule(const proto::ScheduleRequest& req, absl::Duration timeout);
  // Pause (pause = true) or resume dispatch; the switch as it is then.
  absl::StatusOr<proto::DispatchSwitch> Pause(const proto::PauseRequest& req, absl::Duration timeout);
  absl::StatusOr<proto::NodesReply> Maintenance(const proto::MaintenanceRequest& req, absl::Duration timeout);
  absl::StatusOr<proto::TokenReply> Token(const proto::TokenRequest& req, absl::Duration timeout);

  // Output: the chunks the station holds of a running command's output after
  // req.after_seq, and with req.deliver, the later ones relayed there (stream.proto).
  absl::StatusOr<proto::OutputReply> Output(const proto::OutputRequest& req, absl::Duration timeout);
  // StationStatus: the station's instances (HA) as the active one knows them.
  absl::StatusOr<proto::StationStatusReply> StationStatus(absl::Duration timeout);
  // Post sends request `method` without waiting: its answer comes to `reply` (an
  // inbox of NewInbox's, subscribed first); AckPayload reads it.
  absl::Status Post(const char* method, const std::string& payload, const std::string& reply);
  static absl::StatusOr<std::string> AckPayload(absl::string_view data);
  // A fresh subject in this client's own inbox space (the broker lets it read there).
  std::string NewInbox() const;
  natsConnection* conn() const { return conn_.get(); }
  // Approvals (station/approvals.h).
  absl::StatusOr<proto::CommandStates> Approvals(const proto::ApprovalsRequest& req, absl::Duration timeout);
  absl::StatusOr<proto::CommandStates> Decide(const proto::DecideRequest& req, absl::Duration timeout);
  absl::StatusOr<proto::AclReply> ApprovalRules(const proto::ApprovalRulesRequest& req, absl::Duration timeout);

  const ClientOptions& options() const { return options_; }
  // The largest message the broker takes (its max_payload), as the connection knows it.
  size_t MaxPayload() const;
  // The connection, for what reads the broker directly (a debug stream, ctl/debug.cc).
  natsConnection* connection() const { return conn_.get(); }

 private:
  explicit Client(ClientOptions options) : options_(std::move(options)) {}
  // The signed envelope of request `method` carrying `payload`, serialized. The payload
  // is taken by value: a copy chunk's submit (896 KiB) is moved in, not copied again.
  absl::StatusOr<std::string> Request(const char* method, std::string payload) const;
  // Call sends one request and returns the ACK's payload. A REJECTED ACK becomes
  // FailedPrecondition with the station's reason; an ERROR one, Unavailable. Within
  // options_.retry_for it sends the request again while no station listens, and after
  // a timeout unless `retry_timeouts` is false (a ping: the node did not answer).
  absl::StatusOr<std::string> Call(const char* method, std::string payload, absl::Duration timeout,
                                   bool retry_timeouts = true);
  // A request and its reply through pump_: the statuses of nats::Request.
  absl::StatusOr<nats::MsgPtr> PumpRequest(const std::string& subject, const std::string& request,
                                           absl::Duration timeout);
  // One try of a request.
  absl::StatusOr<std::string> Try(const std::string& subject, const std::string& request,
                                  absl::Duration timeout);

  const ClientOptions options_;
  nats::ConnectionPtr conn_;
  // Every call's reply comes through it, alone or gathered with others
  // (SubmitRequest.answers_gathered). Declared after conn_: it goes first.
  std::unique_ptr<RequestPump> pump_;
  std::atomic<bool> told_retrying_{false};
};

}  // namespace steward::ctl
