// stewardctl's text renderings; see render_text.h.
#include "ctl/render_text.h"

#include <algorithm>

#include <fmt/format.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/json.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "common/time_text.h"

namespace steward::ctl {
namespace {

void AppendHex(std::string& out, unsigned char b) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\x";
  out += kHex[b >> 4];
  out += kHex[b & 0xF];
}

// Characters shown, for column widths: escaped text is ASCII or valid UTF-8, so count
// the bytes that start a character.
size_t Width(absl::string_view cell) {
  return static_cast<size_t>(std::count_if(
      cell.begin(), cell.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string JoinEscaped(const google::protobuf::RepeatedPtrField<std::string>& items, absl::string_view sep) {
  return Escape(absl::StrJoin(items, sep));
}

// "echo: hello" for methods other than shellcommand, else the argv.
std::string What(const proto::CommandState& s) {
  std::string what = absl::StrJoin(s.command().argv(), " ");
  if (s.command().method() != kMethodShell) what = absl::StrCat(s.command().method(), ": ", what);
  return Escape(what);
}

}  // namespace

std::string Escape(absl::string_view text) {
  const bool utf8 = json::IsValidUtf8(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x20 || b == 0x7F || (!utf8 && b >= 0x80)) {
      AppendHex(out, b);
    } else if (b == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) <= 0x9F) {
      // U+0080..U+009F, the C1 controls (valid UTF-8: the next byte is >= 0x80).
      AppendHex(out, b);
      AppendHex(out, static_cast<unsigned char>(text[++i]));
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string Ago(int64_t unix_ms, absl::Time now) {
  if (unix_ms == 0) return "never";
  const absl::Duration d = now - absl::FromUnixMillis(unix_ms);
  if (d < absl::Seconds(1)) return "just now";
  return absl::FormatDuration(absl::Trunc(d, absl::Seconds(1))) + " ago";
}

Table::Table(std::vector<std::string> header) {
  if (!header.empty()) AddRow(std::move(header));
}

void Table::AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

void Table::AlignRight(size_t column) {
  if (right_.size() <= column) right_.resize(column + 1);
  right_[column] = true;
}

std::string Table::Render() const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size());
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], Width(row[c]));
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string pad(widths[c] - Width(row[c]), ' ');
      const bool last = c + 1 == row.size();
      if (c > 0) line += "  ";
      if (c < right_.size() && right_[c]) {
        absl::StrAppend(&line, pad, row[c]);
      } else {
        absl::StrAppend(&line, row[c], last ? "" : pad);
      }
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string NodeStatus(const proto::NodeInfo& node) {
  if (node.status() == proto::NODE_STATUS_UNSPECIFIED) return node.online() ? "online" : "offline";
  return NodeStatusName(node.status());
}

std::string NodeTable(const proto::NodesReply& nodes) {
  Table table({"NODE", "STATUS", "SINCE", "LAST-HEARD", "VERSION", "PENDING", "LAST-COMMAND", "MAINTENANCE"});
  table.AlignRight(5);
  for (const proto::NodeInfo& n : nodes.nodes()) {
    table.AddRow({Escape(n.name()), NodeStatus(n), Ago(n.since_unix_ms()), Ago(n.last_heard_unix_ms()),
                  n.version().empty() ? "-" : Escape(n.version()), std::to_string(n.pending()),
                  n.last_command_id().empty()
                      ? "-"
                      : Escape(absl::StrCat(n.last_command_id(), " ", n.last_command_state())),
                  n.maintenance().on() ? Escape(absl::StrCat("on ", n.maintenance().reason())) : "-"});
  }
  // A degraded station and paused dispatch are said first: they explain what waits below.
  return absl::StrCat(nodes.station().degraded() ? StationLine(nodes.station()) + "\n" : "",
                      nodes.dispatch().paused() ? DispatchLine(nodes.dispatch()) + "\n" : "", table.Render());
}

std::string StationLine(const proto::StationStatus& st) {
  if (!st.degraded()) return absl::StrCat("station ", Escape(st.name()), " is healthy");
  return absl::StrCat("station ", Escape(st.name()), " DEGRADED since ", Ago(st.degraded_since_unix_ms()),
                      ": ledger writes fail (", Escape(st.reason()), "; ", st.failed_writes(),
                      " failed since it started); what the ledger cannot store is not acknowledged until it can");
}

std::string ConfigDrift(const proto::NodeInfo& node) {
  if (!node.config_drift()) return "";
  const std::string& undone = node.agent_stats().config_undone();
  return absl::StrCat("config drift: pushed ", Escape(node.config_pushed_hash()), " ",
                      Ago(node.config_pushed_unix_ms()), ", running ", Escape(node.agent_stats().config_hash()),
                      undone.empty() ? absl::StrCat(" (edited on the node? stewardctl config show ", Escape(node.name()), ")")
                                     : absl::StrCat(" (", Escape(undone), ")"));
}

std::string ConfigDrifts(const proto::NodesReply& nodes) {
  std::string out;
  for (const proto::NodeInfo& n : nodes.nodes()) {
    if (const std::string drift = ConfigDrift(n); !drift.empty()) absl::StrAppend(&out, Escape(n.name()), "  ", drift, "\n");
  }
  return out;
}

std::string DispatchLine(const proto::DispatchSwitch& sw) {
  if (!sw.paused()) return "dispatch is running";
  return absl::StrCat("dispatch PAUSED ", Ago(sw.since_unix_ms()), " by ", Escape(sw.by()),
                      sw.reason().empty() ? "" : ": " + Escape(sw.reason()), " (stewardctl resume)");
}

std::string MaintenanceText(const proto::Maintenance& m) {
  if (!m.on()) return "not in maintenance";
  return absl::StrCat("in maintenance since ", Ago(m.since_unix_ms()), " by ", Escape(m.by()),
                      m.reason().empty() ? "" : ": " + Escape(m.reason()));
}

std::string TokenTable(const google::protobuf::RepeatedPtrField<proto::TokenInfo>& tokens, absl::string_view verb) {
  Table table({"ID", "OPERATOR", "ACCESS", "CREATED", "EXPIRES", "CREATED-BY"});
  for (const proto::TokenInfo& t : tokens) {
    table.AddRow({absl::StrCat(verb, t.id()), Escape(t.name()), t.read_only() ? "read-only" : "read-write",
                  Ago(t.created_unix_ms()), t.expires_unix_ms() == 0 ? "never" : Rfc3339UtcMs(t.expires_unix_ms()),
                  Escape(t.created_by())});
  }
  return table.Render();
}

std::string PendingKeys(const proto::NodesReply& nodes) {
  std::string out;
  for (const proto::NodeInfo& n : nodes.nodes()) {
    if (n.pending_key().empty()) continue;
    const std::string announced = signing::KeyId(n.pending_key());
    // A key change (a reinstalled unit, or someone else's credentials) and a name the
    // station did not enrol are accepted by fingerprint only.
    const bool by_key = !n.public_key().empty() || !n.enrolled() || n.pending_keys_seen() > 1;
    const std::string accept =
        absl::StrCat("stewardctl accept ", Escape(n.name()), by_key ? " --key " + announced : "");
    if (!n.public_key().empty()) {
      absl::StrAppend(&out, Escape(n.name()), "  key change: accepted ", signing::KeyId(n.public_key()),
                      ", announced ", announced, "  (check it on the unit, then: ", accept, ")\n");
    } else {
      absl::StrAppend(&out, Escape(n.name()), "  pending key ", announced,
                      n.enrolled() ? "" : " (not enrolled here)",
                      n.pending_keys_seen() > 1 ? absl::StrCat(" (", n.pending_keys_seen(), " keys announced)") : "",
                      "  (", accept, ")\n");
    }
  }
  return out;
}

std::string NodeDetails(const proto::NodeInfo& n) {
  std::string key = !n.public_key().empty()    ? "accepted " + signing::KeyId(n.public_key())
                    : !n.pending_key().empty() ? "pending " + signing::KeyId(n.pending_key())
                                               : "none";
  if (!n.public_key().empty() && !n.pending_key().empty()) {
    absl::StrAppend(&key, ", key change pending: ", signing::KeyId(n.pending_key()));
  }
  if (n.refused_hellos() > 0) absl::StrAppend(&key, " (", n.refused_hellos(), " hellos refused)");
  if (!n.instance_id().empty()) absl::StrAppend(&key, "\n  installation: ", Escape(n.instance_id()));
  std::string config = n.agent_stats().config_hash().empty() ? "-" : Escape(n.agent_stats().config_hash());
  if (const std::string drift = ConfigDrift(n); !drift.empty()) {
    config = drift;
  } else if (!n.config_pushed_hash().empty() && n.agent_stats().at_unix_ms() > n.config_pushed_unix_ms() &&
             n.agent_stats().config_hash() == n.config_pushed_hash()) {
    absl::StrAppend(&config, " (as pushed ", Ago(n.config_pushed_unix_ms()), ")");
  } else if (!n.config_pushed_hash().empty()) {
    // No hello since the push: what it runs now is not known yet.
    absl::StrAppend(&config, " (before the push of ", Escape(n.config_pushed_hash()), " ",
                    Ago(n.config_pushed_unix_ms()), ": not heard from since)");
  }
  return fmt::format(
      "  hostname: {}\n  os: {}\n  load: {:.2f}\n  methods: {}\n  heartbeat: {} ms\n  configuration: {}\n"
      "  errors reported: {}\n  last log: {}\n  log lines: {} ({} error or worse, {:.1f}/min "
      "over 10 min; {} dropped by the agent)\n  key: {}\n  acl: {}\n  maintenance: {}\n",
      Escape(n.hostname()), Escape(n.os()), n.load1(), JoinEscaped(n.methods(), ", "), n.heartbeat_ms(), config,
      n.errors(), Ago(n.last_log_unix_ms()), n.log_lines(), n.log_errors(), n.log_errors_per_min(),
      n.log_dropped(), key, n.acl().empty() ? "-" : JoinEscaped(n.acl(), " "), MaintenanceText(n.maintenance()));
}

std::string CommandTable(const google::protobuf::RepeatedPtrField<proto::CommandState>& commands) {
  Table table;
  for (const proto::CommandState& s : commands) {
    const proto::Ack& r = s.result();
    std::string outcome = StateName(s.state());
    // How its process ended, when one ran and ended by itself or by a signal; one that
    // never started, was cut off or is lost has no exit status (`show` says why), nor
    // has a method that runs no program (echo, config, copy, ...).
    if (s.has_result() && r.stage() == proto::STAGE_RESULT && s.state() != proto::STATE_REJECTED &&
        s.command().method() == kMethodShell) {
      if (r.term_signal() != 0) {
        absl::StrAppend(&outcome, fmt::format(" (signal {})", r.term_signal()));
      } else if (r.error().empty() &&
                 (r.outcome() == proto::OUTCOME_SUCCEEDED || r.outcome() == proto::OUTCOME_FAILED)) {
        absl::StrAppend(&outcome, fmt::format(" (exit {})", r.exit_code()));
      }
    }
    table.AddRow({Escape(s.id()), Escape(s.node()), outcome, Ago(s.created_unix_ms()), What(s)});
  }
  return table.Render();
}

std::string CommandDetails(const proto::CommandState& s) {
  std::string out = fmt::format(
      "command {}\n  node: {}\n  request: {}\n  state: {}\n  argv: {}\n  operator: {}\n"
      "  attempts: {}\n  created: {}\n  updated: {}\n",
      Escape(s.id()), Escape(s.node()), Escape(s.request_id()), StateName(s.state()),
      JoinEscaped(s.command().argv(), " "), Escape(s.command().operator_()), s.attempts(),
      Ago(s.created_unix_ms()), Ago(s.updated_unix_ms()));
  if (s.control().exclusive()) {
    absl::StrAppend(&out, fmt::format("  exclusive: priority {}, on busy {}\n", s.control().priority(),
                                      s.control().on_busy() == proto::ON_BUSY_QUEUE     ? "queue"
                                      : s.control().on_busy() == proto::ON_BUSY_PREEMPT ? "preempt"
                                                                                        : "reject"));
    if (!s.marks().exclusive_rule().empty()) {
      absl::StrAppend(&out, "  exclusive by rule: ", Escape(s.marks().exclusive_rule()), "\n");
    }
    if (!s.control().slot_job().empty()) {
      absl::StrAppend(&out, "  runbook job: ", Escape(s.control().slot_job()), "\n");
    }
  }
  if (!s.marks().cancel_by().empty()) {
    absl::StrAppend(&out, "  cancel: asked by ", Escape(s.marks().cancel_by()), " ",
                    Ago(s.marks().cancel_unix_ms()), "\n");
  }
  if (const proto::ApprovalMarks& a = s.marks().approval(); a.required()) {
    absl::StrAppend(&out, "  approval: needed (", Escape(a.reason()), ")");
    if (!a.decided_by().empty()) {
      absl::StrAppend(&out, ", ", a.approved() ? "approved" : "denied", " by ", Escape(a.decided_by()), " ",
                      Ago(a.decided_unix_ms()), a.comment().empty() ? "" : absl::StrCat(": ", Escape(a.comment())));
    } else if (s.state() == proto::STATE_AWAITING_APPROVAL) {
      absl::StrAppend(&out, ", awaiting a decision until ", UtcTextMs(a.expires_unix_ms()));
    }
    absl::StrAppend(&out, "\n");
  }
  if (!s.marks().preempted_by().empty()) {
    absl::StrAppend(&out, "  preempted by: ", Escape(s.marks().preempted_by()), "\n");
  }
  if (!s.has_result()) return out;
  const proto::Ack& r = s.result();
  if (r.outcome() != proto::OUTCOME_UNSPECIFIED) absl::StrAppend(&out, "  outcome: ", OutcomeName(r.outcome()), "\n");
  // Only a program that started has an exit code and a signal (echo, config, copy ...
  // run none; one canceled before delivery, or expired, never started).
  if (s.command().method() == kMethodShell && r.started_unix_ms() > 0) {
    absl::StrAppend(&out, fmt::format("  exit code: {}\n  signal: {}\n", r.exit_code(), r.term_signal()));
  }
  if (r.finished_unix_ms() > 0 && r.started_unix_ms() > 0) {
    absl::StrAppend(&out, "  ran: ", r.finished_unix_ms() - r.started_unix_ms(), " ms\n");
  }
  if (!r.error().empty()) absl::StrAppend(&out, "  error: ", Escape(r.error()), "\n");
  absl::StrAppend(&out, "  stdout", r.stdout_truncated() ? " (truncated)" : "", ":\n", r.stdout(), "  stderr",
                  r.stderr_truncated() ? " (truncated)" : "", ":\n", r.stderr());
  return out;
}

std::string AuditTable(const google::protobuf::RepeatedPtrField<proto::CommandState>& commands) {
  Table table;
  for (const proto::CommandState& s : commands) {
    table.AddRow({Rfc3339UtcMs(s.created_unix_ms()), Escape(s.command().operator_()), Escape(s.node()),
                  StateName(s.state()),
                  Escape(absl::StrCat(s.command().method(), " ", absl::StrJoin(s.command().argv(), " ")))});
  }
  return table.Render();
}

std::string ActionTable(const google::protobuf::RepeatedPtrField<proto::OperatorAction>& actions) {
  Table table;
  for (const proto::OperatorAction& a : actions) {
    table.AddRow({Rfc3339UtcMs(a.at_unix_ms()), Escape(a.operator_()), Escape(a.action()), Escape(a.target()),
                  Escape(a.outcome()), Escape(a.detail())});
  }
  return table.Render();
}

std::string ReplyLines(const proto::AclReply& reply) {
  std::string out;
  for (const std::string& line : reply.lines()) absl::StrAppend(&out, Escape(line), "\n");
  return out;
}

}  // namespace steward::ctl
