// stewardctl's approval subcommands: approvals (what waits for a human), approve, deny,
// and approval-rules (what needs approval on a node or @group). See station/approvals.h.
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/command_rule.h"
#include "common/protocol.h"
#include "ctl/ctl.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"

namespace steward::ctl {
namespace {

std::string Until(int64_t unix_ms) {
  const absl::Duration left = absl::FromUnixMillis(unix_ms) - absl::Now();
  if (left <= absl::ZeroDuration()) return "now";
  return absl::StrCat("in ", absl::FormatDuration(absl::Trunc(left, absl::Seconds(1))));
}

int Decide(const Globals& g, const std::vector<std::string>& ids, bool approve, const std::string& comment) {
  return WithClient(g, [&](Client& client) {
    proto::DecideRequest req;
    for (const std::string& id : ids) req.add_ids(id);
    req.set_approve(approve);
    req.set_comment(comment);
    auto decided = client.Decide(req, g.timeout);
    if (!decided.ok()) return Fail(decided.status());
    for (const proto::CommandState& s : decided->commands()) {
      if (g.json) {
        PrintJson(s);
        continue;
      }
      fmt::print("{} {} {}: {}\n", Escape(s.id()), Escape(s.node()), approve ? "approved" : "denied",
                 approve ? "queued, it is sent now" : "rejected, never sent");
    }
    return 0;
  });
}

}  // namespace

Runner SetupApprovals(CLI::App& cmd) {
  auto node = std::make_shared<std::string>();
  cmd.add_option("--node", *node, "Only this node's");
  cmd.footer(
      "One line per command awaiting approval, oldest first: id, node, who submitted it, why it\n"
      "needs approval, when it expires, the command (with the environment variables and working\n"
      "directory it sets). Another operator approves or denies it.");
  return [node](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      proto::ApprovalsRequest req;
      req.set_node(*node);
      auto list = client.Approvals(req, g.timeout);
      if (!list.ok()) return Fail(list.status());
      if (g.json) {
        for (const proto::CommandState& s : list->commands()) PrintJson(s);
        return 0;
      }
      if (list->commands_size() == 0) {
        fmt::print("nothing awaits approval\n");
        return 0;
      }
      for (const proto::CommandState& s : list->commands()) {
        const proto::ApprovalMarks& a = s.marks().approval();
        fmt::print("{} {} by {} {}; {}; expires {}: {}\n", Escape(s.id()), Escape(s.node()),
                   Escape(s.command().operator_()), Ago(s.created_unix_ms()), Escape(a.reason()),
                   Until(a.expires_unix_ms()),
                   Escape(absl::StrCat(s.command().method(), " ", CommandShownText(s.command()))));
      }
      return 0;
    });
  };
}

Runner SetupApprove(CLI::App& cmd) {
  auto ids = std::make_shared<std::vector<std::string>>();
  auto comment = std::make_shared<std::string>();
  cmd.add_option("ID", *ids, "Commands awaiting approval")->required();
  cmd.add_option("--comment", *comment, "A remark kept with the decision");
  cmd.footer(
      "All or nothing. Refused for a command you submitted yourself (four eyes), and for one\n"
      "already decided (the reply names who decided it and when).");
  return [ids, comment](const Globals& g) { return Decide(g, *ids, true, *comment); };
}

Runner SetupDeny(CLI::App& cmd) {
  auto ids = std::make_shared<std::vector<std::string>>();
  auto reason = std::make_shared<std::string>();
  cmd.add_option("ID", *ids, "Commands awaiting approval")->required();
  cmd.add_option("--reason", *reason, "Why (the submitter reads it in the command's result)")->required();
  return [ids, reason](const Globals& g) { return Decide(g, *ids, false, *reason); };
}

namespace {

// approval-rules and exclusive-rules: the same rules (the ACL's syntax), two policies.
Runner SetupPolicyRules(CLI::App& cmd, bool exclusive) {
  struct Options {
    std::string target;
    std::vector<std::string> rules;
  };
  auto o = std::make_shared<Options>();
  const std::string what = exclusive ? "what runs as an exclusive job" : "what needs approval";
  cmd.require_subcommand(1);
  CLI::App* set = cmd.add_subcommand("set", "Replace " + what + " on a node or @group (none: clear)");
  set->add_option("TARGET", o->target, "NODE or @GROUP")->required();
  cli::AddList(*set, "--require", &o->rules,
               "Rules as the ACL's: \"method\" or \"method:argv-glob\" (argv joined by spaces)")
      ->type_name("RULE,...");
  CLI::App* show = cmd.add_subcommand("show", "Print " + what + " on a node or @group");
  show->add_option("TARGET", o->target, "NODE or @GROUP")->required();
  return [o, show, exclusive](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      proto::ApprovalRulesRequest req;
      req.set_target(o->target);
      req.set_exclusive(exclusive);
      req.set_show(show->parsed());
      for (const std::string& r : o->rules) req.add_rules(r);
      auto reply = client.ApprovalRules(req, g.timeout);
      if (!reply.ok()) return Fail(reply.status());
      fmt::print("{}", ReplyLines(*reply));
      return 0;
    });
  };
}

}  // namespace

Runner SetupApprovalRules(CLI::App& cmd) { return SetupPolicyRules(cmd, /*exclusive=*/false); }

Runner SetupExclusiveRules(CLI::App& cmd) {
  cmd.footer(
      "A command that matches a node's (or its groups') exclusive rule runs as an exclusive job, as\n"
      "if sent --exclusive (priority 0, on busy: reject, unless the sender says otherwise):\n"
      "  stewardctl exclusive-rules set @radar --require 'shellcommand:/usr/local/bin/recover-*'");
  return SetupPolicyRules(cmd, /*exclusive=*/true);
}

}  // namespace steward::ctl
