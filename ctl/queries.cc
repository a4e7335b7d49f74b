// stewardctl nodes, node, show, history and audit: what the station's ledger knows.
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "absl/strings/str_cat.h"
#include "common/cli.h"
#include "common/protocol.h"
#include "ctl/ctl.h"
#include "ctl/render_jobs.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"

namespace steward::ctl {
namespace {

// The most rows the station gives one history or audit query.
constexpr int kMaxListLimit = 10000;

using proto::CommandState;
using proto::CommandStates;

// The station left rows out so that its reply fits one message: say so.
void NoteIncomplete(const CommandStates& states) {
  if (!states.incomplete()) return;
  fmt::print(stderr,
             "stewardctl: only the first {} commands fit in one reply; ask for fewer "
             "(--limit, fewer ids)\n",
             states.commands_size());
}

// Prints `states` as JSON lines or with `render`, then whether rows were left out.
int PrintCommands(const Globals& g, const CommandStates& states,
                  std::string (*render)(const google::protobuf::RepeatedPtrField<CommandState>&)) {
  if (g.json) {
    for (const CommandState& s : states.commands()) PrintJson(s);
  } else {
    fmt::print("{}", render(states.commands()));
  }
  NoteIncomplete(states);
  return 0;
}

std::string AllDetails(const google::protobuf::RepeatedPtrField<CommandState>& commands) {
  std::string out;
  for (const CommandState& s : commands) out += CommandDetails(s);
  return out;
}

// Nodes: the table of every node (or of `name` with its details and recent commands).
int Nodes(const Globals& g, const std::string& name, bool pending_only, bool drift_only = false) {
  return WithClient(g, [&](Client& client) {
    auto nodes = client.Nodes(name, g.timeout);
    if (!nodes.ok()) return Fail(nodes.status());
    if (g.json) {
      for (const proto::NodeInfo& n : nodes->nodes()) PrintJson(n);
      for (const CommandState& c : nodes->recent()) PrintJson(c);
      return 0;
    }
    if (pending_only) {
      fmt::print("{}", PendingKeys(*nodes));
      return 0;
    }
    if (drift_only) {
      fmt::print("{}", ConfigDrifts(*nodes));
      return 0;
    }
    fmt::print("{}", NodeTable(*nodes));
    // Nodes whose configuration differs from what was last pushed, under the table.
    if (name.empty()) {
      fmt::print("{}", ConfigDrifts(*nodes));
      return 0;
    }
    for (const proto::NodeInfo& n : nodes->nodes()) fmt::print("{}", NodeDetails(n));
    if (nodes->recent_size() > 0) fmt::print("recent commands:\n{}", CommandTable(nodes->recent()));
    return 0;
  });
}

// Validates --state against the states' names.
CLI::Validator KnownState() {
  return CLI::Validator(
      [](std::string& name) -> std::string {
        if (StateFromName(name).has_value()) return "";
        return absl::StrCat("unknown state \"", name, "\"; the states are ", StateNames());
      },
      "");
}

}  // namespace

Runner SetupNodes(CLI::App& cmd) {
  auto pending = std::make_shared<bool>(false);
  auto drift = std::make_shared<bool>(false);
  cmd.add_flag("--pending", *pending, "Only nodes whose key waits for `stewardctl accept`");
  cmd.add_flag("--config-drift", *drift,
               "Only nodes whose running configuration differs from the last `config set`/`config push`");
  return [pending, drift](const Globals& g) { return Nodes(g, "", *pending, *drift); };
}

Runner SetupNode(CLI::App& cmd) {
  struct Options {
    std::string name;
    std::string forget;
    bool cancel = false;
  };
  auto o = std::make_shared<Options>();
  cmd.add_option("NAME", o->name, "The node");
  CLI::App* forget = cmd.add_subcommand("forget", "Remove a node from the station's tables");
  forget->add_option("NAME", o->forget, "The node")->required();
  forget->add_flag("--cancel", o->cancel, "Cancel its unfinished commands first (else forget refuses)");
  return [o, &cmd, forget](const Globals& g) {
    if (forget->parsed()) {
      return WithClient(g, [&](Client& client) {
        auto reply = client.Forget(o->forget, o->cancel, g.timeout);
        if (!reply.ok()) return Fail(reply.status());
        fmt::print("{}", ReplyLines(*reply));
        return 0;
      });
    }
    if (o->name.empty()) return cli::UsageError(cmd, "a NAME is required (node NAME, or node forget NAME)");
    return Nodes(g, o->name, false);
  };
}

Runner SetupShow(CLI::App& cmd) {
  auto ids = std::make_shared<std::vector<std::string>>();
  cmd.add_option("ID", *ids, "Command ids, or one fan-out's request id")
      ->required()
      ->check(CLI::Validator([](std::string& id) { return id.empty() ? std::string("an ID may not be empty") : ""; },
                             "", "non-empty"));
  return [ids](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      auto states = client.Show(*ids, "", g.timeout);
      if (!states.ok() && ids->size() == 1) states = client.Show({}, ids->front(), g.timeout);
      if (!states.ok()) return Fail(states.status());
      // A runbook job: its runs and steps.
      if (!g.json && ids->size() == 1 && states->commands_size() > 0 && states->commands(0).has_runbook() &&
          states->commands(0).request_id() == ids->front()) {
        auto job = client.Job(ids->front(), g.timeout);
        if (job.ok() && job->job().has_runbook()) {
          fmt::print("{}", RunbookDetails(job->job(), states->commands()));
          return 0;
        }
      }
      return PrintCommands(g, *states, AllDetails);
    });
  };
}

Runner SetupHistory(CLI::App& cmd) {
  auto req = std::make_shared<proto::HistoryRequest>();
  req->set_limit(20);
  cmd.add_option_function<std::string>(
         "--node", [req](const std::string& n) { req->set_node(n); }, "Only this node's commands")
      ->type_name("NAME")
      ->check(cli::Text());
  cmd.add_option_function<std::string>(
         "--state", [req](const std::string& s) { req->set_state(s); }, "Only commands in this state")
      ->type_name("STATE")
      ->check(KnownState());
  cmd.add_option_function<int>(
         "--limit", [req](int n) { req->set_limit(n); }, "At most this many commands")
      ->default_str("20")
      ->check(CLI::Range(1, kMaxListLimit));
  return [req](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      auto states = client.History(*req, g.timeout);
      if (!states.ok()) return Fail(states.status());
      return PrintCommands(g, *states, CommandTable);
    });
  };
}

Runner SetupAudit(CLI::App& cmd) {
  auto req = std::make_shared<proto::AuditRequest>();
  cmd.add_option_function<std::string>(
         "--node", [req](const std::string& n) { req->set_node(n); }, "Only commands to (and actions about) this node")
      ->type_name("NAME")
      ->check(cli::Text());
  cmd.add_option_function<std::string>(
         "--by", [req](const std::string& op) { req->set_operator_(op); },
         "Only commands sent and actions taken by this operator (name or key id; \"station\": the station's own decisions)")
      ->type_name("OPERATOR");
  cmd.add_option_function<int>(
         "--limit", [req](int n) { req->set_limit(n); }, "At most this many commands, and as many actions")
      ->check(CLI::Range(1, kMaxListLimit));
  return [req](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      auto states = client.Audit(*req, g.timeout);
      if (!states.ok()) return Fail(states.status());
      if (g.json) {
        for (const proto::OperatorAction& a : states->actions()) PrintJson(a);
      } else if (states->actions_size() > 0) {
        fmt::print("{}\n", ActionTable(states->actions()));
      }
      return PrintCommands(g, *states, AuditTable);
    });
  };
}

}  // namespace steward::ctl
