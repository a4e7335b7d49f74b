// Protocol constants and small helpers shared by every program: the protocol version,
// well-known method names, outcome/state names, and envelope/ACK construction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "proto/steward.pb.h"

namespace steward {

inline constexpr uint32_t kProtocolVersion = 1;
// Largest message any steward program accepts or sends (a broker may be set to less; the agent fits results to the broker's max_payload).
inline constexpr size_t kMaxMessageBytes = size_t{8} << 20;

// Methods on nodes.
inline constexpr char kMethodPing[] = "ping";
inline constexpr char kMethodShell[] = "shellcommand";
inline constexpr char kMethodEcho[] = "echo";  // durable, runs nothing: answers its argv
inline constexpr char kMethodStatus[] = "status";    // the agent's status (agentops.proto)
inline constexpr char kMethodProcess[] = "process";  // stop/start a command handler
inline constexpr char kMethodConfig[] = "config";    // show/set/push the agent's configuration
inline constexpr char kMethodCopy[] = "copy";        // files to and from the node, in chunks
inline constexpr char kMethodDebug[] = "debug";      // the agent's own log, live (agent/debug_streams.h)
inline constexpr char kAgentDomain[] = "agent";      // the domain of the agent's own methods
// What every shellcommand's environment holds, set by the agent: an operator's --env
// may not name them (the agent finds a command's processes by STEWARD_COMMAND_ID).
inline constexpr char kEnvNode[] = "STEWARD_NODE";
inline constexpr char kEnvCommandId[] = "STEWARD_COMMAND_ID";
// Sent by the station only (stewardctl cancel, preemption): argv = {command id}; stops
// that command on the node, or makes sure it never runs there.
inline constexpr char kMethodCancel[] = "cancel";
// Sent by the station only, to an agent whose hello says it takes batches: a carrier of
// several commands for the node (CommandBatch), answered with their ACKs (AckBatch).
inline constexpr char kMethodBatch[] = "batch";
// Most commands one batch carries: a station sends no more, an agent refuses more.
inline constexpr int kMaxBatchCommands = 64;
// Events nodes send to the station.
inline constexpr char kEventResult[] = "result";
inline constexpr char kEventHello[] = "hello";
inline constexpr char kEventErrorLog[] = "errorlog";
inline constexpr char kEventSyslog[] = "syslogforwarding";
// A running command's output as it is produced (stream.proto): published, never spooled.
inline constexpr char kEventOutput[] = "output";
// Methods of the station that stewardctl calls.
inline constexpr char kStationSubmit[] = "submit";
inline constexpr char kStationWait[] = "wait";
inline constexpr char kStationPing[] = "ping";
inline constexpr char kStationNodes[] = "nodes";
inline constexpr char kStationShow[] = "show";
inline constexpr char kStationHistory[] = "history";
inline constexpr char kStationCancel[] = "cancel";
inline constexpr char kStationLogs[] = "logs";
inline constexpr char kStationAccept[] = "accept";
inline constexpr char kStationAcl[] = "acl";
inline constexpr char kStationAudit[] = "audit";
inline constexpr char kStationForget[] = "forget";
inline constexpr char kStationRetry[] = "retry";
// Targeting, rollouts and schedules (station/targeting_api.h).
inline constexpr char kStationTargets[] = "targets";
inline constexpr char kStationTag[] = "tag";
inline constexpr char kStationLaunch[] = "launch";
inline constexpr char kStationJob[] = "job";
inline constexpr char kStationClose[] = "close";
inline constexpr char kStationSchedule[] = "schedule";
inline constexpr char kStationPause[] = "pause";              // PauseRequest: pause or resume dispatch
inline constexpr char kStationMaintenance[] = "maintenance";  // MaintenanceRequest
inline constexpr char kStationToken[] = "token";              // TokenRequest: HTTP tokens
inline constexpr char kStationOutput[] = "output";            // OutputRequest: watch, send --follow
// Approvals (station/approvals.h).
inline constexpr char kStationApprovals[] = "approvals";
inline constexpr char kStationDecide[] = "decide";
inline constexpr char kStationApprovalRules[] = "approvalrules";
// The station's command that sets a node's ACL.
inline constexpr char kMethodSetAcl[] = "setacl";
// Published by the station when a node goes online or offline.
inline constexpr char kEventNodeState[] = "nodestate";
inline constexpr char kCliDomain[] = "cli";
// Every broker user (node, station, operator) reads replies on its own inbox,
// "_INBOX_<name>.>"; the broker allows it no other.
inline constexpr char kNodeInboxPrefix[] = "_INBOX_";

inline int64_t NowUnixMillis() { return absl::ToUnixMillis(absl::Now()); }

// Refuses (InvalidArgument, saying which stewardctl command sends it) a method only the
// station sends: `setacl`, and `cancel`, which a node takes unchecked by its ACL (sent by
// target it would cancel, unaudited, commands never sent to that node). Every way an
// operator's template becomes commands asks: a submit, a retry, a launch, a schedule, a
// runbook's step, and the stored jobs and schedules an older station accepted.
absl::Status CheckNotStationOnly(absl::string_view method);

const char* OutcomeName(proto::Outcome o);
// "queued", "timed_out", ...: the name operators see and the ledger stores.
const char* StateName(proto::State s);
// The state named `name` (as StateName writes it); nullopt for any other text.
std::optional<proto::State> StateFromName(absl::string_view name);
// Every state's name, in enum order, for usage messages ("queued, sent, ...").
std::string StateNames();
// A terminal state is final: nothing changes it but a late truth from the node
// (a result that arrives after "expired" or "canceled").
bool IsTerminal(proto::State s);
// A copy chunk that reached its end: its payload is no longer needed (nothing resends a
// finished command), so neither the station's table nor its ledger keeps it; argv keeps
// the chunk's SHA-256.
bool DropsPayload(const proto::CommandState& c);
const char* StageName(proto::Stage s);
// "unknown", "online", "offline", "pending".
const char* NodeStatusName(proto::NodeStatus s);
// A job's state: "running", "waiting", "done", "aborted", "open", "closed", "expired".
const char* JobStateName(proto::JobState s);
// Whether the station still follows a job in state `s` (running, waiting, open).
bool IsOpenJob(proto::JobState s);

// NewEnvelope fills version, a fresh id, from/to, kind, method, domain and creation time.
proto::Envelope NewEnvelope(absl::string_view from, absl::string_view to, proto::Kind kind,
                            absl::string_view method, absl::string_view domain);

// An ACK for `envelope_id` from `node`.
proto::Ack NewAck(absl::string_view envelope_id, absl::string_view node, proto::Stage stage,
                  proto::Outcome outcome);
proto::Ack RejectAck(absl::string_view envelope_id, absl::string_view node,
                     absl::string_view reason);

// One entry of a command's environment (--env): KEY=VALUE without a NUL byte, and not
// one of the agent's own (kEnvNode, kEnvCommandId). InvalidArgument says which.
absl::Status ValidateEnvEntry(absl::string_view entry);
// What a shellcommand needs to run at all: an argv (exactly one string with use_shell),
// no NUL byte in argv or the working directory (a program's arguments cannot hold one),
// valid env entries. The station refuses such a command before it is queued; the agent
// refuses it too (from an older station or another client). InvalidArgument says why.
absl::Status ValidateShellCommand(const proto::Envelope& cmd);

// DecodeEnvelope parses bytes and checks the fields every receiver relies on: size,
// protocol version, a valid id, kind, non-empty method. InvalidArgument names the problem.
absl::StatusOr<proto::Envelope> DecodeEnvelope(absl::string_view bytes);
absl::StatusOr<proto::Ack> DecodeAck(absl::string_view bytes);

// Expired: past a non-zero expiry at `now_ms`.
inline bool Expired(const proto::Envelope& e, int64_t now_ms) {
  return e.expires_unix_ms() != 0 && now_ms > e.expires_unix_ms();
}

}  // namespace steward
