// Protocol helpers: envelope/ACK construction and validated decoding.
#include "common/protocol.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/ids.h"

namespace steward {

const char* StateName(proto::State s) {
  switch (s) {
    case proto::STATE_QUEUED:
      return "queued";
    case proto::STATE_SENT:
      return "sent";
    case proto::STATE_RUNNING:
      return "running";
    case proto::STATE_SUCCEEDED:
      return "succeeded";
    case proto::STATE_FAILED:
      return "failed";
    case proto::STATE_TIMED_OUT:
      return "timed_out";
    case proto::STATE_REJECTED:
      return "rejected";
    case proto::STATE_CANCELED:
      return "canceled";
    case proto::STATE_EXPIRED:
      return "expired";
    case proto::STATE_AWAITING_APPROVAL:
      return "awaiting_approval";
    case proto::STATE_BUSY:
      return "busy";
    case proto::STATE_PREEMPTED:
      return "preempted";
    case proto::STATE_LOST:
      return "lost";
    default:
      return "unspecified";
  }
}

std::optional<proto::State> StateFromName(absl::string_view name) {
  for (int i = proto::State_MIN; i <= proto::State_MAX; ++i) {
    if (!proto::State_IsValid(i) || i == proto::STATE_UNSPECIFIED) continue;
    const auto s = static_cast<proto::State>(i);
    if (name == StateName(s)) return s;
  }
  return std::nullopt;
}

std::string StateNames() {
  std::string out;
  for (int i = proto::State_MIN; i <= proto::State_MAX; ++i) {
    if (!proto::State_IsValid(i) || i == proto::STATE_UNSPECIFIED) continue;
    if (!out.empty()) out += ", ";
    out += StateName(static_cast<proto::State>(i));
  }
  return out;
}

bool IsTerminal(proto::State s) {
  switch (s) {
    case proto::STATE_SUCCEEDED:
    case proto::STATE_FAILED:
    case proto::STATE_TIMED_OUT:
    case proto::STATE_REJECTED:
    case proto::STATE_CANCELED:
    case proto::STATE_EXPIRED:
    case proto::STATE_BUSY:
    case proto::STATE_PREEMPTED:
    case proto::STATE_LOST:
      return true;
    default:
      return false;
  }
}

bool DropsPayload(const proto::CommandState& c) {
  return IsTerminal(c.state()) && c.command().method() == kMethodCopy;
}

const char* JobStateName(proto::JobState s) {
  switch (s) {
    case proto::JOB_RUNNING: return "running";
    case proto::JOB_WAITING: return "waiting";
    case proto::JOB_DONE: return "done";
    case proto::JOB_ABORTED: return "aborted";
    case proto::JOB_OPEN: return "open";
    case proto::JOB_CLOSED: return "closed";
    case proto::JOB_EXPIRED: return "expired";
    default: return "unspecified";
  }
}

bool IsOpenJob(proto::JobState s) {
  return s == proto::JOB_RUNNING || s == proto::JOB_WAITING || s == proto::JOB_OPEN;
}

const char* NodeStatusName(proto::NodeStatus s) {
  switch (s) {
    case proto::NODE_UNKNOWN:
      return "unknown";
    case proto::NODE_ONLINE:
      return "online";
    case proto::NODE_OFFLINE:
      return "offline";
    case proto::NODE_PENDING:
      return "pending";
    default:
      return "unspecified";
  }
}

absl::Status CheckNotStationOnly(absl::string_view method) {
  if (method == kMethodSetAcl) return absl::InvalidArgumentError("setacl is sent by the station (stewardctl acl)");
  if (method == kMethodCancel) {
    return absl::InvalidArgumentError("cancel is sent by the station (stewardctl cancel ID)");
  }
  if (method == kMethodBatch) {
    return absl::InvalidArgumentError("batch is sent by the station (it carries several commands to one node)");
  }
  return absl::OkStatus();
}

const char* OutcomeName(proto::Outcome o) {
  switch (o) {
    case proto::OUTCOME_SUCCEEDED:
      return "succeeded";
    case proto::OUTCOME_FAILED:
      return "failed";
    case proto::OUTCOME_TIMED_OUT:
      return "timed_out";
    case proto::OUTCOME_REJECTED:
      return "rejected";
    case proto::OUTCOME_ERROR:
      return "error";
    case proto::OUTCOME_CANCELED:
      return "canceled";
    default:
      return "unspecified";
  }
}

const char* StageName(proto::Stage s) {
  switch (s) {
    case proto::STAGE_RECEIVED:
      return "received";
    case proto::STAGE_RESULT:
      return "result";
    default:
      return "unspecified";
  }
}

proto::Envelope NewEnvelope(absl::string_view from, absl::string_view to, proto::Kind kind,
                            absl::string_view method, absl::string_view domain) {
  proto::Envelope e;
  e.set_protocol_version(kProtocolVersion);
  e.set_id(NewId());
  e.set_from_node(std::string(from));
  e.set_to_node(std::string(to));
  e.set_kind(kind);
  e.set_method(std::string(method));
  e.set_domain(std::string(domain));
  e.set_created_unix_ms(NowUnixMillis());
  return e;
}

proto::Ack NewAck(absl::string_view envelope_id, absl::string_view node, proto::Stage stage,
                  proto::Outcome outcome) {
  proto::Ack a;
  a.set_protocol_version(kProtocolVersion);
  a.set_envelope_id(std::string(envelope_id));
  a.set_node(std::string(node));
  a.set_stage(stage);
  a.set_outcome(outcome);
  return a;
}

proto::Ack RejectAck(absl::string_view envelope_id, absl::string_view node,
                     absl::string_view reason) {
  proto::Ack a = NewAck(envelope_id, node, proto::STAGE_RESULT, proto::OUTCOME_REJECTED);
  a.set_error(std::string(reason));
  a.set_finished_unix_ms(NowUnixMillis());
  return a;
}

absl::Status ValidateEnvEntry(absl::string_view entry) {
  const size_t eq = entry.find('=');
  if (eq == absl::string_view::npos || eq == 0) return absl::InvalidArgumentError("not KEY=VALUE");
  const absl::string_view key = entry.substr(0, eq);
  if (key == kEnvNode || key == kEnvCommandId) {
    return absl::InvalidArgumentError(absl::StrCat(key, " is set by the agent; a command may not set it"));
  }
  if (entry.find('\0') != absl::string_view::npos) return absl::InvalidArgumentError("contains a NUL byte");
  return absl::OkStatus();
}

absl::Status ValidateShellCommand(const proto::Envelope& cmd) {
  if (cmd.argv().empty()) return absl::InvalidArgumentError("shellcommand needs argv");
  if (cmd.shell().use_shell() && cmd.argv_size() != 1) {
    return absl::InvalidArgumentError("use_shell takes exactly one argv string");
  }
  for (int i = 0; i < cmd.argv_size(); ++i) {
    if (cmd.argv(i).find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("argv[", i, "] contains a NUL byte: a program's arguments cannot hold one"));
    }
  }
  if (cmd.shell().working_dir().find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("the working directory contains a NUL byte");
  }
  for (const std::string& e : cmd.shell().env()) {
    if (absl::Status st = ValidateEnvEntry(e); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("env entry \"", absl::CHexEscape(e), "\": ", st.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<proto::Envelope> DecodeEnvelope(absl::string_view bytes) {
  if (bytes.size() > kMaxMessageBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("message of ", bytes.size(), " bytes exceeds the limit of ", kMaxMessageBytes));
  }
  proto::Envelope e;
  if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("malformed message: not a steward envelope");
  }
  if (e.protocol_version() != kProtocolVersion) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported protocol version ",
                                                   e.protocol_version(), " (want ",
                                                   kProtocolVersion, ")"));
  }
  if (!IsValidId(e.id())) {
    return absl::InvalidArgumentError(absl::StrCat("malformed message: invalid id \"",
                                                   e.id().substr(0, 40), "\""));
  }
  if (e.kind() != proto::KIND_COMMAND && e.kind() != proto::KIND_EVENT) {
    return absl::InvalidArgumentError("malformed message: kind is neither command nor event");
  }
  if (e.method().empty()) return absl::InvalidArgumentError("malformed message: no method");
  return e;
}

absl::StatusOr<proto::Ack> DecodeAck(absl::string_view bytes) {
  proto::Ack a;
  if (bytes.size() > kMaxMessageBytes ||
      !a.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("malformed ACK");
  }
  if (a.protocol_version() != kProtocolVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported ACK protocol version ", a.protocol_version()));
  }
  return a;
}

}  // namespace steward
