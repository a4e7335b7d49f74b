// stewardctl: the operator's command line. Talks to the station over NATS only.
//
//   stewardctl send ship1 -- uname -a        exits like ssh: remote status, 128+signal,
//   stewardctl send ship1,ship2 -- uptime    or 255 when the command did not run (yet)
//   stewardctl nodes | node NAME | show ID | history | logs | ...   (stewardctl --help)
//
// Each file of ctl/ holds one group of subcommands; each subcommand is a Setup function
// that adds its options to its CLI11 app and returns what runs it (the table is in
// ctl.cc). Exit status: what the subcommand returns; cli::kUsageExit (2) for a usage
// error; kExitUnknown (255) when the command did not run or its fate is not known.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/cli.h"
#include "ctl/client.h"

namespace steward::ctl {

inline constexpr int kExitUnknown = 255;

// The options every subcommand takes (before or after its name).
struct Globals {
  cli::NatsFlags nats;  // --nats, --creds, --tls-ca
  std::string station = "station";
  absl::Duration timeout = absl::Seconds(10);
  // How long a call goes on trying while no station answers (ClientOptions::retry_for):
  // more than an HA lease (5 s by default) and a takeover.
  absl::Duration retry_for = absl::Seconds(15);
  bool json = false;
  std::string keys;  // keys init / enroll / nats-config: "steward-keys" when empty
  std::string operator_key;
  // Arguments after a lone "--" (the remote command of `send`).
  std::vector<std::string> after_dashes;
};

// What a subcommand does once the command line is read: returns the exit status.
using Runner = std::function<int(const Globals&)>;
// Setup adds a subcommand's options and positionals to `command` and returns its runner.
using Setup = Runner (*)(CLI::App& command);

// The subcommands, one setup each (ctl/send.cc, ctl/queries.cc, ctl/logs.cc,
// ctl/security.cc, ctl/targeting.cc).
Runner SetupSend(CLI::App& command);
Runner SetupPing(CLI::App& command);
Runner SetupCancel(CLI::App& command);
Runner SetupWatch(CLI::App& command);
Runner SetupRetry(CLI::App& command);
Runner SetupShow(CLI::App& command);
Runner SetupRun(CLI::App& command);
Runner SetupHistory(CLI::App& command);
Runner SetupNodes(CLI::App& command);
Runner SetupNode(CLI::App& command);
Runner SetupAudit(CLI::App& command);
Runner SetupLogs(CLI::App& command);
Runner SetupAccept(CLI::App& command);
Runner SetupAcl(CLI::App& command);
Runner SetupGroup(CLI::App& command);
Runner SetupKeys(CLI::App& command);
Runner SetupEnroll(CLI::App& command);
Runner SetupNatsConfig(CLI::App& command);
Runner SetupTargets(CLI::App& command);
Runner SetupTag(CLI::App& command);
Runner SetupRollout(CLI::App& command);
Runner SetupClose(CLI::App& command);
Runner SetupSchedule(CLI::App& command);
Runner SetupPause(CLI::App& command);
Runner SetupResume(CLI::App& command);
Runner SetupMaintenance(CLI::App& command);
Runner SetupToken(CLI::App& command);
Runner SetupStatus(CLI::App& command);   // ctl/agentops.cc
Runner SetupProcess(CLI::App& command);
Runner SetupConfig(CLI::App& command);
Runner SetupCopy(CLI::App& command);
Runner SetupStation(CLI::App& command);  // ctl/station.cc
Runner SetupDebug(CLI::App& command);  // ctl/debug.cc
Runner SetupApprovals(CLI::App& command);  // ctl/approvals.cc
Runner SetupApprove(CLI::App& command);
Runner SetupDeny(CLI::App& command);
Runner SetupApprovalRules(CLI::App& command);
Runner SetupExclusiveRules(CLI::App& command);

// Main runs stewardctl with its command line; returns the exit status.
int Main(int argc, char** argv);

// Fail prints "stewardctl: why" (remote text escaped) on stderr; returns kExitUnknown.
int Fail(absl::string_view why);
int Fail(const absl::Status& status);

// WithClient connects to the station as the global options say (--keys supplies the
// operator key, broker creds and CA) and runs `body`; Fail if it cannot connect.
int WithClient(const Globals& globals, const std::function<int(Client&)>& body);

// KeysDir: --keys, or "steward-keys".
std::string KeysDir(const Globals& globals);

}  // namespace steward::ctl
