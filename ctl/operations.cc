// stewardctl pause, resume, maintenance and token: the station's switches and the
// operators' HTTP tokens.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "ctl/ctl.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"

namespace steward::ctl {
namespace {

int Switch(const Globals& g, bool pause, const std::string& reason) {
  return WithClient(g, [&](Client& client) {
    proto::PauseRequest req;
    req.set_pause(pause);
    req.set_reason(reason);
    auto sw = client.Pause(req, g.timeout);
    if (!sw.ok()) return Fail(sw.status());
    if (g.json) {
      PrintJson(*sw);
    } else {
      fmt::print("{}\n", DispatchLine(*sw));
    }
    return 0;
  });
}

}  // namespace

Runner SetupPause(CLI::App& cmd) {
  auto reason = std::make_shared<std::string>();
  cmd.add_option("--reason", *reason, "Why (shown with the switch and in the audit)");
  return [reason](const Globals& g) { return Switch(g, true, *reason); };
}

Runner SetupResume(CLI::App& cmd) {
  auto reason = std::make_shared<std::string>();
  cmd.add_option("--reason", *reason, "Why (in the audit)");
  return [reason](const Globals& g) { return Switch(g, false, *reason); };
}

Runner SetupMaintenance(CLI::App& cmd) {
  struct Options {
    std::string mode;
    std::string node;
    std::string reason;
  };
  auto o = std::make_shared<Options>();
  cmd.add_option("MODE", o->mode, "on or off")->required()->check(CLI::IsMember({"on", "off"}));
  cmd.add_option("NODE", o->node, "The node")->required();
  cmd.add_option("--reason", o->reason, "Why (shown with the node and in the audit)");
  return [o](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      proto::MaintenanceRequest req;
      req.set_node(o->node);
      req.set_on(o->mode == "on");
      req.set_reason(o->reason);
      auto nodes = client.Maintenance(req, g.timeout);
      if (!nodes.ok()) return Fail(nodes.status());
      if (g.json) {
        for (const proto::NodeInfo& n : nodes->nodes()) PrintJson(n);
        return 0;
      }
      for (const proto::NodeInfo& n : nodes->nodes()) {
        fmt::print("{}: {}\n", Escape(n.name()), MaintenanceText(n.maintenance()));
      }
      return 0;
    });
  };
}

Runner SetupToken(CLI::App& cmd) {
  struct Options {
    std::string name;
    bool read_only = false;
    absl::Duration ttl = absl::Hours(24 * 90);
    std::string revoke;
  };
  auto o = std::make_shared<Options>();
  cmd.require_subcommand(1);
  CLI::App* create = cmd.add_subcommand("create", "Make a token for an operator; its secret is printed once");
  create->add_option("--name", o->name, "The operator the token acts for")->required();
  create->add_flag("--read-only", o->read_only, "The token may read only");
  cli::AddDuration(*create, "--ttl", &o->ttl, "The token expires after this long (0: never)")->default_str("2160h");
  CLI::App* list = cmd.add_subcommand("list", "List the tokens (never their secrets)");
  CLI::App* revoke = cmd.add_subcommand("revoke", "Remove a token (by id), or every token of an operator");
  revoke->add_option("ID_OR_NAME", o->revoke, "A token id (t...) or an operator name")->required();
  return [o, create, list](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      proto::TokenRequest req;
      if (create->parsed()) {
        req.set_action(proto::TokenRequest::CREATE);
        req.set_name(o->name);
        req.set_read_only(o->read_only);
        req.set_ttl_ms(absl::ToInt64Milliseconds(o->ttl));
      } else if (list->parsed()) {
        req.set_action(proto::TokenRequest::LIST);
      } else {
        req.set_action(proto::TokenRequest::REVOKE);
        req.set_name(o->revoke);
      }
      auto reply = client.Token(req, g.timeout);
      if (!reply.ok()) return Fail(reply.status());
      if (g.json) {
        PrintJson(*reply);
        return 0;
      }
      if (!reply->secret().empty()) {
        fmt::print("{}\n", reply->secret());
        fmt::print(stderr,
                   "stewardctl: the token above is shown once; the station keeps only its hash. Use it as\n"
                   "  curl -H 'Authorization: Bearer <token>' ...\n");
        return 0;
      }
      fmt::print("{}", TokenTable(reply->tokens(), req.action() == proto::TokenRequest::REVOKE ? "revoked " : ""));
      return 0;
    });
  };
}

}  // namespace steward::ctl
