// stewardctl targets, tag, rollout, close and schedule: fleet targeting through the
// station (README: Targeting, rollouts and schedules).
#include <fmt/format.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/cli.h"
#include "common/log.h"  // fmt formats absl::string_view
#include "ctl/command_options.h"
#include "ctl/ctl.h"
#include "ctl/render_jobs.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"

namespace steward::ctl {
namespace {

// Where a list of nodes is given: NODES, --where and --all.
struct TargetArgs {
  std::string nodes;
  std::string where;
  bool all = false;

  proto::TargetSpec Spec() const { return TargetSpecOf(nodes, all, where); }
};

void AddTargets(CLI::App& cmd, TargetArgs* t, const char* what) {
  cmd.add_option("NODES", t->nodes, what)->type_name("NODE[,NODE...]");
  AddTargetOptions(cmd, &t->where, &t->all);
}

}  // namespace

Runner SetupTargets(CLI::App& cmd) {
  auto t = std::make_shared<TargetArgs>();
  AddTargets(cmd, t.get(), "Names, globs ('ship*') and @groups; none: every node");
  cmd.footer(
      "Shows who a target picks now, before anything is sent. Exit status 1 when no node matches.\n"
      "Global options (--nats, --timeout, --json, --keys, ...): stewardctl --help");
  return [t, &cmd](const Globals& g) {
    if (int rc = CheckTargetArgs(cmd, t->nodes, t->all); rc != 0) return rc;
    if (int rc = CheckWhere(cmd, t->where); rc != 0) return rc;
    return WithClient(g, [&](Client& client) {
      proto::TargetsRequest req;
      *req.mutable_target() = t->Spec();
      auto reply = client.Targets(req, g.timeout);
      if (!reply.ok()) return Fail(reply.status());
      if (g.json) {
        for (const proto::TargetRow& row : reply->nodes()) PrintJson(row);
      } else {
        fmt::print("{}", TargetTable(*reply));
      }
      return reply->matched() > 0 ? 0 : 1;
    });
  };
}

Runner SetupTag(CLI::App& cmd) {
  struct Options {
    TargetArgs target;
    std::vector<std::string> tags;
    bool history = false;
  };
  auto o = std::make_shared<Options>();
  cmd.require_subcommand(1);
  CLI::App* set = cmd.add_subcommand("set", "Set tags (KEY=VALUE ...) on nodes");
  AddTargets(*set, &o->target, "Names, globs and @groups (or --where, --all)");
  set->add_option("TAGS", o->tags, "KEY=VALUE ...");
  CLI::App* unset = cmd.add_subcommand("unset", "Remove tags (KEY ...) from nodes");
  AddTargets(*unset, &o->target, "Names, globs and @groups (or --where, --all)");
  unset->add_option("KEYS", o->tags, "KEY ...");
  CLI::App* show = cmd.add_subcommand("show", "Print nodes' tags");
  AddTargets(*show, &o->target, "Names, globs and @groups; none: every node");
  show->add_flag("--history", o->history, "Also the recorded changes (who, when)");
  return [o, set, unset, show](const Globals& g) {
    CLI::App& at = set->parsed() ? *set : unset->parsed() ? *unset : *show;
    if (int rc = CheckWhere(at, o->target.where); rc != 0) return rc;
    if (!show->parsed()) {
      // With --all or --where the first word may have been taken for NODES: it is a tag
      // when it says KEY=VALUE (set), or with --all, or when no KEY follows (unset).
      if (!o->target.nodes.empty() && (o->target.all || !o->target.where.empty())) {
        const bool tag = set->parsed() ? absl::StrContains(o->target.nodes, '=') : (o->target.all || o->tags.empty());
        if (tag) o->tags.insert(o->tags.begin(), std::exchange(o->target.nodes, ""));
      }
      if (o->tags.empty()) return cli::UsageError(at, set->parsed() ? "KEY=VALUE is required" : "KEY is required");
    }
    if (int rc = CheckTargetArgs(at, o->target.nodes, o->target.all); rc != 0) return rc;
    proto::TagRequest req;
    *req.mutable_target() = o->target.Spec();
    req.set_history(o->history);
    for (const std::string& t : o->tags) {
      if (unset->parsed()) {
        req.add_unset(t);
        continue;
      }
      const size_t eq = t.find('=');
      if (eq == std::string::npos || eq == 0) return cli::UsageError(at, absl::StrCat("\"", t, "\" is not KEY=VALUE"));
      (*req.mutable_set())[t.substr(0, eq)] = t.substr(eq + 1);
    }
    if (!show->parsed() && o->target.nodes.empty() && o->target.where.empty() && !o->target.all) {
      return cli::UsageError(at, "NODES, --where or --all is required");
    }
    return WithClient(g, [&](Client& client) {
      auto reply = client.Tag(req, g.timeout);
      if (!reply.ok()) return Fail(reply.status());
      if (g.json) {
        for (const proto::TargetRow& row : reply->nodes()) PrintJson(row);
        for (const proto::OperatorAction& e : reply->history()) PrintJson(e);
      } else {
        fmt::print("{}", TagLines(*reply));
      }
      return 0;
    });
  };
}

Runner SetupRollout(CLI::App& cmd) {
  auto id = std::make_shared<std::string>();
  cmd.require_subcommand(1);
  CLI::App* show = cmd.add_subcommand("show", "A rollout (or any job): batches, counts, why it stopped");
  show->add_option("ID", *id, "The job id (the request id send printed)")->required();
  return [id](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      auto reply = client.Job(*id, g.timeout);
      if (!reply.ok()) return Fail(reply.status());
      if (g.json) {
        PrintJson(*reply);
      } else {
        fmt::print("{}", JobDetails(*reply));
      }
      return 0;
    });
  };
}

Runner SetupClose(CLI::App& cmd) {
  auto id = std::make_shared<std::string>();
  cmd.add_option("ID", *id, "The job: a continuous job takes no more nodes; a rollout releases no more batches")
      ->required();
  return [id](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      auto reply = client.Close(*id, g.timeout);
      if (!reply.ok()) return Fail(reply.status());
      fmt::print("{}", ReplyLines(*reply));
      return 0;
    });
  };
}

Runner SetupSchedule(CLI::App& cmd) {
  struct Options {
    std::string name;
    std::string cron;
    std::string zone;
    std::string missed = "skip";
    absl::Duration splay;
    TargetArgs target;
    CommandOptions command;
  };
  auto o = std::make_shared<Options>();
  cmd.require_subcommand(1);
  CLI::App* add = cmd.add_subcommand("add", "Add a schedule: NAME --cron '...' TARGETS -- COMMAND");
  add->add_option("NAME", o->name, "The schedule's name")->required();
  add->add_option("NODES", o->target.nodes, "Names, globs and @groups (or --where, --all)")
      ->type_name("NODE[,NODE...]");
  AddTargetOptions(*add, &o->target.where, &o->target.all);
  add->add_option("--cron", o->cron,
                  "When: 'minute hour day month weekday' (6 fields: seconds first), or @hourly, @daily, ...")
      ->required();
  add->add_option("--tz", o->zone, "Time zone of the cron line (IANA, e.g. Europe/Oslo; default UTC)");
  add->add_option("--missed", o->missed, "Runs missed while the station was down: skip, or run-once at start")
      ->check(CLI::IsMember({"skip", "run-once"}))
      ->capture_default_str();
  cli::AddDuration(*add, "--splay", &o->splay, "Spread each run's commands over this long");
  AddCommandOptions(*add, &o->command);
  std::vector<CLI::App*> by_name;
  for (const char* action : {"show", "pause", "resume", "remove"}) {
    CLI::App* sub = cmd.add_subcommand(action, absl::StrCat(action == std::string("show")     ? "Show"
                                                            : action == std::string("pause")  ? "Pause"
                                                            : action == std::string("resume") ? "Resume"
                                                                                              : "Remove",
                                                            " a schedule"));
    sub->add_option("NAME", o->name, "The schedule")->required();
    by_name.push_back(sub);
  }
  CLI::App* list = cmd.add_subcommand("list", "Every schedule: next run, last run");
  return [o, add, list, by_name](const Globals& g) {
    proto::ScheduleRequest req;
    req.set_name(o->name);
    if (add->parsed()) {
      if (g.after_dashes.empty())
        return cli::UsageError(*add, "a COMMAND is required: schedule add NAME --cron ... -- COMMAND");
      if (o->target.nodes.empty() && o->target.where.empty() && !o->target.all) {
        return cli::UsageError(*add, "NODES, --where or --all is required");
      }
      if (int rc = CheckTargetArgs(*add, o->target.nodes, o->target.all); rc != 0) return rc;
      if (int rc = CheckWhere(*add, o->target.where); rc != 0) return rc;
      if (int rc = CheckCommand(*add, o->command, g.after_dashes); rc != 0) return rc;
      req.set_action("add");
      proto::Schedule* s = req.mutable_schedule();
      s->set_name(o->name);
      s->set_cron(o->cron);
      s->set_time_zone(o->zone);
      *s->mutable_target() = o->target.Spec();
      *s->mutable_command() = CommandTemplate(o->command, g.after_dashes);
      s->set_command_ttl_ms(absl::ToInt64Milliseconds(o->command.ttl));
      s->set_missed(o->missed == "run-once" ? proto::MISSED_RUN_ONCE : proto::MISSED_SKIP);
      s->set_splay_ms(absl::ToInt64Milliseconds(o->splay));
    } else if (list->parsed()) {
      req.set_action("list");
    } else {
      for (CLI::App* sub : by_name) {
        if (sub->parsed()) req.set_action(sub->get_name());
      }
    }
    return WithClient(g, [&](Client& client) {
      auto reply = client.Schedule(req, g.timeout);
      if (!reply.ok()) return Fail(reply.status());
      if (g.json) {
        if (req.action() == "show") {
          PrintJson(*reply);
        } else {
          for (const proto::Schedule& s : reply->schedules()) PrintJson(s);
        }
        return 0;
      }
      if (req.action() == "show") {
        fmt::print("{}", ScheduleDetails(*reply));
      } else if (req.action() == "list" || req.action() == "add") {
        fmt::print("{}", ScheduleTable(reply->schedules()));
        for (const proto::Schedule& s : reply->schedules()) {
          if (s.problem().empty()) continue;
          fmt::print(stderr, "stewardctl: schedule {} is broken: {} (it makes no runs: remove it and add it again)\n",
                     Escape(s.name()), Escape(s.problem()));
        }
      } else {
        for (const std::string& line : reply->lines()) fmt::print("{}\n", Escape(line));
      }
      return 0;
    });
  };
}

}  // namespace steward::ctl
