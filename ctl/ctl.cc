// stewardctl's subcommand table, global options and connection to the station.
#include "ctl/ctl.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include <fmt/format.h>

#include "common/cli.h"
#include "common/creds.h"
#include "common/nats.h"
#include "common/signing.h"
#include "ctl/render_text.h"

namespace steward::ctl {
namespace {

struct Subcommand {
  const char* name;
  const char* summary;  // one line in `stewardctl --help`
  Setup setup;
  bool takes_command = false;  // arguments after "--" are its remote command
};

constexpr Subcommand kSubcommands[] = {
    {"send", "Run a command on nodes and print its output; exits like ssh", SetupSend, true},
    {"ping", "Round trip to a node through the station", SetupPing},
    {"watch", "Follow a command's output as it is produced, from its start, until it ends", SetupWatch},
    {"show", "One command's state, timings and output, or every command of a fan-out", SetupShow},
    {"cancel", "Cancel commands not delivered yet", SetupCancel},
    {"approvals", "Commands awaiting an operator's approval", SetupApprovals},
    {"approve", "Approve commands another operator submitted (four eyes)", SetupApprove},
    {"deny", "Deny commands awaiting approval, with a reason", SetupDeny},
    {"approval-rules", "Set or show what needs approval on a node or @group", SetupApprovalRules},
    {"exclusive-rules", "Set or show what runs as an exclusive job on a node or @group", SetupExclusiveRules},
    {"retry", "Send finished commands again, as new commands (e.g. one lost to a reinstall)", SetupRetry},
    {"targets", "Which nodes a target (names, globs, @groups, --where EXPR) picks now", SetupTargets},
    {"tag", "Set, remove or show operators' tags on nodes (key=value)", SetupTag},
    {"rollout", "A staged rollout (or any job): batches, counts, why it stopped", SetupRollout},
    {"close", "Close a continuous job, or stop a rollout or a runbook job", SetupClose},
    {"run", "Run a runbook (TOML steps) on nodes, one exclusive job per node", SetupRun},
    {"schedule", "Add, list, show, pause, resume or remove schedules", SetupSchedule, true},
    {"history", "Recent commands, newest first", SetupHistory},
    {"nodes", "One row per node: status, since, last heard, last command", SetupNodes},
    {"node", "One node's details and recent commands; `node forget NAME` removes it", SetupNode},
    {"status", "A node's processes, queues, outbox, inputs and resources (live, or --cached)", SetupStatus},
    {"process", "Stop or start one of a node's command handlers", SetupProcess},
    {"debug", "The agent's own log, live, at a chosen level, for a while (--level, --for)", SetupDebug},
    {"copy", "Copy a file to or from a node (chunked, SHA-256 checked, resumable)", SetupCopy},
    {"config", "Show, set or push a node's agent configuration (validated, then reloaded)", SetupConfig},
    {"logs", "Syslog lines the nodes forwarded", SetupLogs},
    {"audit", "Who sent which command", SetupAudit},
    {"pause", "Stop all dispatch (queued commands wait; running ones finish)", SetupPause},
    {"resume", "Restart dispatch after a pause", SetupResume},
    {"maintenance", "Put a node in maintenance (no dispatch, no offline alarm), or take it out", SetupMaintenance},
    {"token", "Create, list or revoke operators' HTTP API tokens", SetupToken},
    {"accept", "Pin the key a node announced", SetupAccept},
    {"acl", "Set or show the methods and commands a node or group accepts", SetupAcl},
    {"group", "Define a group of nodes (ACLs, targets, an active member)", SetupGroup},
    {"keys", "Make the station and operator keys, a CA and the broker certificate", SetupKeys},
    {"enroll", "Make a node's broker user and trust bundle", SetupEnroll},
    {"station", "The station's instances: which is active, since when, the standbys' lag (`station status`)",
     SetupStation},
    {"nats-config", "Print the nats-server configuration: TLS, users, permissions", SetupNatsConfig},
};

void AddGlobals(CLI::App& app, Globals& g) {
  cli::AddNatsFlags(app, &g.nats);
  app.add_option("--station", g.station, "Name of the station")
      ->type_name("NAME")
      ->envname("STEWARD_STATION")
      ->capture_default_str();
  cli::AddDuration(app, "--timeout", &g.timeout,
                   "How long to wait for the station, and for a single node's result");
  cli::AddDuration(app, "--retry-for", &g.retry_for,
                   "When no station answers, send the same request again for this long (an HA "
                   "standby takes over within a lease and a few seconds; 0: fail at once)")
      ->envname("STEWARD_RETRY_FOR");
  app.add_flag("--json", g.json, "Print JSON, one object per line (see README)");
  app.add_option("--keys", g.keys,
                 "Keys directory (stewardctl keys init): signs requests with operator.key and "
                 "uses creds/operator.creds and tls/ca.pem")
      ->type_name("DIR")
      ->envname("STEWARD_KEYS");
  app.add_option("--operator-key", g.operator_key, "Sign requests with this operator key")->type_name("FILE");
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app(
      "stewardctl: sends commands to edge nodes through the station and queries "
      "their state, over NATS.",
      "stewardctl");
  cli::Setup(app);
  app.require_subcommand(1);
  Globals globals;
  AddGlobals(app, globals);
  std::vector<std::pair<CLI::App*, Runner>> runners;
  for (const Subcommand& s : kSubcommands) {
    CLI::App* command = app.add_subcommand(s.name, s.summary);
    command->footer("Global options (--nats, --timeout, --json, --keys, ...): stewardctl --help");
    runners.emplace_back(command, s.setup(*command));
  }
  app.footer("Run `stewardctl SUBCOMMAND --help` for a subcommand's options.");

  std::vector<std::string> args(argv + 1, argv + argc);
  if (auto dashes = std::find(args.begin(), args.end(), "--"); dashes != args.end()) {
    globals.after_dashes.assign(dashes + 1, args.end());
    args.erase(dashes, args.end());
  }
  if (std::optional<int> done = cli::Parse(app, std::move(args))) return *done;
  for (size_t i = 0; i < runners.size(); ++i) {
    auto& [command, run] = runners[i];
    if (!command->parsed()) continue;
    if (!kSubcommands[i].takes_command && !globals.after_dashes.empty()) {
      return cli::UsageError(*command, "takes no arguments after --");
    }
    nats::Library nats_library;
    return run(globals);
  }
  return cli::UsageError(app, "a subcommand is required");
}

int Fail(absl::string_view why) {
  fmt::print(stderr, "stewardctl: {}\n", Escape(why));
  return kExitUnknown;
}

int Fail(const absl::Status& status) { return Fail(status.message()); }

std::string KeysDir(const Globals& globals) { return globals.keys.empty() ? "steward-keys" : globals.keys; }

int WithClient(const Globals& g, const std::function<int(Client&)>& body) {
  ClientOptions opts;
  opts.station = g.station;
  opts.nats.url = g.nats.url;
  opts.nats.tls_ca_file = g.nats.tls_ca;
  opts.retry_for = g.retry_for;
  opts.on_retry = [](const std::string& what) { fmt::print(stderr, "stewardctl: {}\n", Escape(what)); };
  const char* user = std::getenv("USER");
  opts.operator_name = user != nullptr ? user : "unknown";
  std::string creds = g.nats.creds;
  std::string operator_key = g.operator_key;
  if (!g.keys.empty()) {
    if (operator_key.empty()) operator_key = g.keys + "/operator.key";
    if (creds.empty() && std::filesystem::exists(g.keys + "/creds/operator.creds")) {
      creds = g.keys + "/creds/operator.creds";
    }
    if (opts.nats.tls_ca_file.empty() && std::filesystem::exists(g.keys + "/tls/ca.pem")) {
      opts.nats.tls_ca_file = g.keys + "/tls/ca.pem";
    }
  }
  if (!operator_key.empty()) {
    auto key = signing::LoadKeyPair(operator_key);
    if (!key.ok()) return Fail(key.status());
    opts.operator_key = *key;
  }
  if (!creds.empty()) {
    auto c = ReadCreds(creds);
    if (!c.ok()) return Fail(c.status());
    opts.nats.user = c->user;
    opts.nats.password = c->password;
  }
  auto client = Client::Connect(std::move(opts));
  if (!client.ok()) return Fail(client.status());
  return body(**client);
}

}  // namespace steward::ctl
