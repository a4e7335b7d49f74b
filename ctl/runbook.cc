// stewardctl run: a runbook file (common/runbook.h) run as one exclusive job on each
// target, followed step by step; and how `show JOB` prints a runbook job.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/protocol.h"
#include "common/runbook.h"
#include "ctl/command_options.h"
#include "ctl/ctl.h"
#include "ctl/render_jobs.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"
#include "ctl/results.h"

namespace steward::ctl {
namespace {

constexpr int kExitBusy = 75;  // as send --exclusive: the target was busy

// "step 2 (start radar)" or "step 2 (start radar), check try 3".
std::string What(const proto::Runbook& rb, const proto::CommandState& s) {
  std::string out = runbook::StepName(rb, s.runbook().step());
  if (s.runbook().check()) absl::StrAppend(&out, ", check try ", s.runbook().attempt() + 1);
  return out;
}

// Its outcome in a few words: "exit 1", the error, or nothing.
std::string Outcome(const proto::CommandState& s) {
  if (!IsTerminal(s.state())) return "";
  if (!s.result().error().empty()) return s.result().error();
  if (s.state() == proto::STATE_FAILED) return absl::StrCat("exit ", s.result().exit_code());
  return "";
}

std::string Took(const proto::CommandState& s) {
  if (!IsTerminal(s.state()) || s.updated_unix_ms() < s.created_unix_ms()) return "";
  return absl::FormatDuration(absl::Milliseconds(s.updated_unix_ms() - s.created_unix_ms()));
}

int ExitOf(const proto::Job& job) {
  bool failed = false, busy = false;
  for (const proto::RunbookRun& r : job.runs()) {
    if (r.state() == proto::RUN_BUSY) {
      busy = true;
    } else if (r.state() != proto::RUN_SUCCEEDED) {
      failed = true;
    }
  }
  return failed ? 1 : busy ? kExitBusy : 0;
}

}  // namespace

std::string RunbookDetails(const proto::Job& job, const google::protobuf::RepeatedPtrField<proto::CommandState>& states) {
  const proto::Runbook& rb = job.runbook();
  std::string out = fmt::format("runbook {}{}: job {}, {}\n  by: {}, created {}; priority {}\n",
                                Escape(rb.name().empty() ? "(unnamed)" : rb.name()),
                                rb.source().empty() ? "" : absl::StrCat(" (", Escape(rb.source()), ")"),
                                Escape(job.id()), Escape(JobStateText(job)), Escape(job.operator_()),
                                Ago(job.created_unix_ms()), rb.priority());
  for (const proto::RunbookRun& r : job.runs()) {
    absl::StrAppend(&out, "  ", Escape(r.node()), ": ", runbook::RunStateName(r.state()), ": ", Escape(r.reason()), "\n");
  }
  Table table({"  NODE", "STEP", "STATE", "TOOK", "COMMAND", "OUTCOME"});
  for (const proto::CommandState& s : states) {
    if (!s.has_runbook()) continue;
    table.AddRow({absl::StrCat("  ", Escape(s.node())), Escape(What(rb, s)), StateName(s.state()), Took(s),
                  Escape(s.id()), Escape(Outcome(s))});
  }
  absl::StrAppend(&out, table.Render());
  return out;
}

Runner SetupRun(CLI::App& cmd) {
  struct Options {
    std::string file;
    std::string target;
    bool all = false;
    std::string where;
    std::optional<int> priority;
    std::string on_busy;
    absl::Duration wait = absl::Minutes(30);
    bool no_wait = false;
    bool check_only = false;
  };
  auto o = std::make_shared<Options>();
  cmd.add_option("FILE", o->file, "The runbook (TOML: examples/runbooks/)")->required();
  cmd.add_option("--target", o->target, "Nodes: names, globs, @group, comma-separated")->type_name("NODES");
  AddTargetOptions(cmd, &o->where, &o->all);
  cmd.add_option("--priority", o->priority, "Overrides the runbook's priority (preemption: higher wins)");
  cmd.add_option("--on-busy", o->on_busy, "Overrides the runbook's on_busy: when the target's slot is taken")
      ->check(CLI::IsMember({"reject", "queue", "preempt"}));
  cli::AddDuration(cmd, "--wait", &o->wait, "Follow the job this long at most (default 30m)");
  cmd.add_flag("--no-wait", o->no_wait, "Print the job id and return");
  cmd.add_flag("--check", o->check_only, "Only read and check the file; print its steps");
  cmd.footer(
      "Each target runs the steps in order as one exclusive job: the job keeps the node's slot from\n"
      "its first step to its end, so no other exclusive job runs in between (a higher priority may\n"
      "preempt it). Every step, and every try of a step's check, is a command in the ledger under the\n"
      "job's id: `stewardctl show JOB` prints them; `stewardctl cancel JOB` stops the job.\n"
      "Exit 0 when every target succeeded, 75 when targets were busy, 1 when a run failed, was\n"
      "preempted or canceled, 255 when --wait ran out first.");
  return [o, &cmd](const Globals& g) {
    if (int rc = CheckTargetArgs(cmd, o->target, o->all); rc != 0) return rc;
    absl::StatusOr<proto::Runbook> rb = runbook::ParseFile(o->file);
    if (!rb.ok()) {
      fmt::print(stderr, "stewardctl run: {}\n", std::string(rb.status().message()));
      return cli::kUsageExit;
    }
    if (o->priority.has_value()) rb->set_priority(*o->priority);
    if (o->on_busy == "reject") rb->set_on_busy(proto::ON_BUSY_REJECT);
    if (o->on_busy == "queue") rb->set_on_busy(proto::ON_BUSY_QUEUE);
    if (o->on_busy == "preempt") rb->set_on_busy(proto::ON_BUSY_PREEMPT);
    if (o->check_only) {
      fmt::print("runbook {}: {} steps, priority {}\n", Escape(rb->name()), rb->steps_size(), rb->priority());
      for (int i = 0; i < rb->steps_size(); ++i) {
        const proto::RunbookStep& s = rb->steps(i);
        fmt::print("  {}: {}{}{}\n", Escape(runbook::StepName(*rb, i)), Escape(Argv(runbook::ActionTemplate(s.action()))),
                   s.on_failure() == proto::ON_FAILURE_CONTINUE ? " (on failure: continue)" : "",
                   s.has_check() ? absl::StrCat("; check: ", Escape(Argv(runbook::ActionTemplate(s.check().action()))),
                                                ", retries ", s.check().retries())
                                 : "");
      }
      return 0;
    }
    if (o->target.empty() && !o->all && o->where.empty()) {
      fmt::print(stderr, "stewardctl run: say where: --target NODES, --all or --where EXPR\n");
      return cli::kUsageExit;
    }
    if (int rc = CheckWhere(cmd, o->where); rc != 0) return rc;
    return WithClient(g, [&](Client& client) {
      proto::LaunchRequest req;
      *req.mutable_target() = TargetSpecOf(o->target, o->all, o->where);
      *req.mutable_runbook() = *rb;
      auto launched = client.Launch(req, g.timeout);
      if (!launched.ok()) return Fail(launched.status());
      const std::string id = launched->job().id();
      if (g.json && o->no_wait) {
        PrintJson(launched->job());
        return 0;
      }
      if (!g.json) {
        fmt::print(stderr, "runbook {}: job {} on {}\n", Escape(rb->name()), Escape(id),
                   Nodes(launched->job().targets_size()));
      }
      if (o->no_wait) {
        fmt::print("{}\n", Escape(id));
        return 0;
      }
      const absl::Time deadline = absl::Now() + o->wait;
      std::set<std::string> printed;  // commands whose end was printed
      while (true) {
        auto job = client.Job(id, g.timeout);
        auto states = client.Show({}, id, g.timeout);
        if (states.ok() && !g.json) {
          for (const proto::CommandState& s : states->commands()) {
            if (!s.has_runbook() || !IsTerminal(s.state()) || !printed.insert(s.id()).second) continue;
            const std::string outcome = Outcome(s);
            fmt::print("{}  {}: {} {}{}\n", Escape(s.node()), Escape(What(*rb, s)), StateName(s.state()), Took(s),
                       outcome.empty() ? "" : absl::StrCat(" (", Escape(outcome), ")"));
          }
        }
        if (job.ok() && !IsOpenJob(job->job().state())) {
          if (g.json) {
            PrintJson(job->job());
          } else {
            for (const proto::RunbookRun& r : job->job().runs()) {
              fmt::print("{}: {}: {}\n", Escape(r.node()), runbook::RunStateName(r.state()), Escape(r.reason()));
            }
          }
          return ExitOf(job->job());
        }
        if (absl::Now() >= deadline) {
          fmt::print(stderr, "stewardctl run: job {} still runs after --wait; stewardctl show {}\n", Escape(id),
                     Escape(id));
          return kExitUnknown;
        }
        absl::SleepFor(absl::Milliseconds(300));
      }
    });
  };
}

}  // namespace steward::ctl
