// The command and target options `send`, `schedule add` and runbooks share
// (ctl/command_options.h): adding them to a subcommand, the command template and target
// spec they describe, and the checks made here before anything is sent.
#include "ctl/command_options.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/cli.h"
#include "common/log.h"  // fmt formats absl::string_view
#include "common/protocol.h"
#include "common/utf8.h"
#include "ctl/ctl.h"
#include "ctl/render_text.h"
#include "subjects/subject.h"
#include "targets/expression.h"

namespace steward::ctl {

void AddCommandOptions(CLI::App& cmd, CommandOptions* o) {
  cmd.add_option("--domain", o->domain,
                 "Domain of the command's subject: commands of one domain run one after another, "
                 "different domains in parallel")
      ->capture_default_str();
  cmd.add_option("--method", o->method,
                 "The node's method: shellcommand runs the command; echo runs nothing and answers "
                 "its arguments (tests the whole delivery path to a unit)")
      ->capture_default_str();
  cmd.add_flag("--shell", o->shell, "Run the single argument through /bin/sh -c");
  cmd.add_option("--cwd", o->cwd, "Working directory on the node")->type_name("DIR");
  cli::AddList(cmd, "--env", &o->env, "Added to the command's environment")->type_name("KEY=VALUE,...");
  cli::AddDuration(cmd, "--exec-timeout", &o->exec_timeout,
                   "Kill the command after this long (default: the station's, 10m)");
  cli::AddDuration(cmd, "--ttl", &o->ttl,
                   "Expire the command if not delivered within this long (default 24h; a rollout's "
                   "later batches too: give a rollout that takes longer a longer --ttl)");
}

proto::Envelope CommandTemplate(const CommandOptions& o, const std::vector<std::string>& argv) {
  proto::Envelope cmd;
  cmd.set_method(o.method);
  cmd.set_domain(o.domain);
  for (const std::string& a : argv) cmd.add_argv(a);
  cmd.mutable_shell()->set_use_shell(o.shell);
  cmd.mutable_shell()->set_working_dir(o.cwd);
  for (const std::string& e : o.env) cmd.mutable_shell()->add_env(e);
  cmd.set_timeout_ms(absl::ToInt64Milliseconds(o.exec_timeout));
  return cmd;
}

void AddTargetOptions(CLI::App& cmd, std::string* where, bool* all) {
  cmd.add_flag("--all", *all, "Every node heard from (not pending)");
  cmd.add_option("--where", *where,
                 "Only nodes this expression matches, e.g. 'os == \"debian\" and tag.role == \"radar\" and "
                 "not maintenance' (README: Targeting)")
      ->type_name("EXPR");
}

proto::TargetSpec TargetSpecOf(const std::string& nodes, bool all, const std::string& where) {
  proto::TargetSpec spec;
  for (absl::string_view n : absl::StrSplit(nodes, ',', absl::SkipEmpty())) spec.add_selectors(std::string(n));
  spec.set_all_nodes(all);
  spec.set_where(where);
  return spec;
}

int CheckTargetArgs(const CLI::App& cmd, const std::string& nodes, bool all) {
  if (nodes.empty()) return 0;
  if (all) return cli::UsageError(cmd, absl::StrCat("--all takes every node: give no NODES with it (", Escape(nodes), ")"));
  if (TargetSpecOf(nodes, false, "").selectors().empty()) {
    return cli::UsageError(cmd, absl::StrCat("NODES ", Escape(nodes), " names no node"));
  }
  return 0;
}

int CheckCommand(const CLI::App& cmd, const CommandOptions& o, const std::vector<std::string>& argv) {
  for (const auto& [flag, token] : {std::pair{"--method", &o.method}, std::pair{"--domain", &o.domain}}) {
    if (absl::Status st = subjects::ValidateToken(*token); !st.ok()) {
      return cli::UsageError(cmd, absl::StrCat(flag, " ", Escape(*token), ": ", st.message()));
    }
  }
  auto text = [](const std::string& s) { return SanitizeUtf8(s) == s; };
  for (size_t i = 0; i < argv.size(); ++i) {
    if (!text(argv[i])) {
      return cli::UsageError(cmd, absl::StrCat("argument ", i + 1, " (", Escape(argv[i]),
                                               ") is not UTF-8 text; a command's arguments must be"));
    }
  }
  for (const std::string& e : o.env) {
    if (!text(e)) return cli::UsageError(cmd, absl::StrCat("--env ", Escape(e), " is not UTF-8 text"));
    if (absl::Status st = ValidateEnvEntry(e); !st.ok()) {
      return cli::UsageError(cmd, absl::StrCat("--env ", Escape(e), ": ", st.message()));
    }
  }
  if (!text(o.cwd)) return cli::UsageError(cmd, absl::StrCat("--cwd ", Escape(o.cwd), " is not UTF-8 text"));
  return 0;
}

int CheckWhere(const CLI::App& cmd, const std::string& where) {
  if (where.empty()) return 0;
  absl::StatusOr<targets::Expression> e = targets::Expression::Parse(where);
  if (e.ok()) return 0;
  std::string caret = targets::Caret(where, e.status());
  return cli::UsageError(cmd, absl::StrCat("--where: ", e.status().message(), caret.empty() ? "" : "\n", caret));
}

}  // namespace steward::ctl
