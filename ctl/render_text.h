// Text output of stewardctl for a terminal: tables and detail blocks of the station's
// records.
//
// Everything that comes from a node or the station (names, hostnames, argv, error texts,
// log messages, reply lines) goes through Escape: a control character (C0, DEL, C1)
// shows as \xNN, and so does every byte >= 0x80 of text that is not valid UTF-8, so
// remote data can neither move the cursor nor rewrite the screen. The exception is a
// command's output (stdout and stderr as printed by `send` and `show`): it is written
// byte for byte, as ssh does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "proto/steward.pb.h"

namespace steward::ctl {

// Escape makes remote text safe to print on one line (see above).
std::string Escape(absl::string_view text);

// "never", "just now", or "1m5s ago".
std::string Ago(int64_t unix_ms, absl::Time now = absl::Now());

// Table: rows of cells in columns as wide as their widest cell, two spaces apart;
// the last column is not padded. Cells are printed as given: escape remote text first.
class Table {
 public:
  // `header` is the first row when not empty.
  explicit Table(std::vector<std::string> header = {});
  void AddRow(std::vector<std::string> cells);
  void AlignRight(size_t column);
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_;
};

// A node's status: NodeInfo.status by name, or online/offline from the online flag
// when the station did not fill the status in.
std::string NodeStatus(const proto::NodeInfo& node);

// One row per node: NODE STATUS SINCE LAST-HEARD VERSION PENDING LAST-COMMAND.
std::string NodeTable(const proto::NodesReply& nodes);
// "config drift: pushed sha256:..., running sha256:..." when the node's hello carries
// another configuration hash than the last `config set`/`push` installed; else "".
std::string ConfigDrift(const proto::NodeInfo& node);
// One line per node whose configuration drifted ("NODE  config drift: ...").
std::string ConfigDrifts(const proto::NodesReply& nodes);
// One line per node whose key waits for `stewardctl accept`.
std::string PendingKeys(const proto::NodesReply& nodes);
// The indented detail lines of one node (hostname, OS, methods, logs, key, ACL).
std::string NodeDetails(const proto::NodeInfo& node);

// One row per command: ID NODE OUTCOME AGE WHAT (no header).
std::string CommandTable(const google::protobuf::RepeatedPtrField<proto::CommandState>& commands);
// One command's state, timings, outcome and output (raw).
std::string CommandDetails(const proto::CommandState& command);
// One row per command: WHEN OPERATOR NODE STATE WHAT (no header).
std::string AuditTable(const google::protobuf::RepeatedPtrField<proto::CommandState>& commands);
// What operators did and the station decided (stewardctl audit), newest first.
std::string ActionTable(const google::protobuf::RepeatedPtrField<proto::OperatorAction>& actions);

// The station's reply lines (accept, acl, group, forget), one per line.
std::string ReplyLines(const proto::AclReply& reply);

// "dispatch is running", or "dispatch PAUSED since ... by ...: reason".
std::string DispatchLine(const proto::DispatchSwitch& sw);
// The station's health: one line, said above the node table when it is degraded.
std::string StationLine(const proto::StationStatus& st);
// "in maintenance since ... by ...: reason", or "not in maintenance".
std::string MaintenanceText(const proto::Maintenance& m);
// One row per HTTP token: id, operator, access, created, expires, by; `verb` before each
// ("revoked ").
std::string TokenTable(const google::protobuf::RepeatedPtrField<proto::TokenInfo>& tokens, absl::string_view verb);

}  // namespace steward::ctl
