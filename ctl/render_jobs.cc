#include "ctl/render_jobs.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/protocol.h"
#include "common/time_text.h"
#include "ctl/render_text.h"

namespace steward::ctl {
namespace {

std::string Describe(const proto::TargetSpec& spec) {
  std::string out = spec.all_nodes() || spec.selectors().empty() ? "every node" : absl::StrJoin(spec.selectors(), ",");
  if (!spec.where().empty()) absl::StrAppend(&out, " where ", spec.where());
  return out;
}

// "2024-05-01 10:00:00 UTC (in 14m)" / "(3m ago)"; "-" for 0.
std::string When(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  const absl::Time t = absl::FromUnixMillis(unix_ms);
  const absl::Duration d = absl::Trunc(t - absl::Now(), absl::Seconds(1));
  const std::string rel = d > absl::ZeroDuration() ? absl::StrCat("in ", absl::FormatDuration(d)) : Ago(unix_ms);
  return absl::StrCat(UtcText(t), " (", rel, ")");
}

std::string Tags(const proto::TargetRow& row) {
  std::vector<std::string> tags;
  for (const auto& [k, v] : row.tags()) tags.push_back(absl::StrCat(k, "=", v));
  std::sort(tags.begin(), tags.end());
  return tags.empty() ? "-" : Escape(absl::StrJoin(tags, " "));
}

std::string Or(const std::string& s) { return s.empty() ? "-" : Escape(s); }

std::string RolloutPlan(const proto::RolloutSpec& r) {
  std::vector<std::string> parts;
  if (r.canary() > 0) parts.push_back(absl::StrCat("canary ", r.canary()));
  if (r.batch_size() > 0) parts.push_back(absl::StrCat("batches of ", r.batch_size()));
  if (r.batch_percent() > 0) parts.push_back(absl::StrCat("batches of ", r.batch_percent(), "%"));
  if (r.batch_wait_ms() > 0)
    parts.push_back(absl::StrCat("wait ", absl::FormatDuration(absl::Milliseconds(r.batch_wait_ms()))));
  if (r.batch_timeout_ms() > 0) {
    parts.push_back(absl::StrCat("batch timeout ", absl::FormatDuration(absl::Milliseconds(r.batch_timeout_ms()))));
  }
  if (r.abort_after() > 0) parts.push_back(absl::StrCat("abort after ", r.abort_after(), " failures"));
  if (r.abort_percent() > 0) parts.push_back(absl::StrCat("abort at ", r.abort_percent(), "% failed"));
  std::vector<std::string> fails = {"failed"};
  if (r.timed_out_fails()) fails.push_back("timed out");
  if (r.not_answered_fails()) fails.push_back("not answered");
  parts.push_back(absl::StrCat("failures: ", absl::StrJoin(fails, ", ")));
  return absl::StrJoin(parts, "; ");
}

void AddCountsRow(Table& table, std::string label, std::string released, const proto::JobCounts& c) {
  table.AddRow({std::move(label), std::to_string(c.targets()), std::move(released), std::to_string(c.succeeded()),
                std::to_string(c.failed()), std::to_string(c.timed_out()), std::to_string(c.not_answered()),
                std::to_string(c.canceled()), std::to_string(c.pending())});
}

std::string History(const google::protobuf::RepeatedPtrField<proto::OperatorAction>& events) {
  std::string out;
  for (const proto::OperatorAction& e : events) {
    absl::StrAppend(&out, "  ", Rfc3339UtcMs(e.at_unix_ms()), "  ", Escape(e.operator_()), "  ", Escape(e.action()),
                    " ", Escape(e.target()), e.detail().empty() ? "" : ": ", Escape(e.detail()), "\n");
  }
  return out;
}

}  // namespace

std::string Argv(const proto::Envelope& cmd) {
  std::string what = absl::StrJoin(cmd.argv(), " ");
  if (cmd.method() != kMethodShell) what = absl::StrCat(cmd.method(), ": ", what);
  return what;
}


std::string Nodes(int n) { return absl::StrCat(n, n == 1 ? " node" : " nodes"); }

std::string JobStateText(const proto::Job& job) {
  std::string out = JobStateName(job.state());
  if (!job.reason().empty()) absl::StrAppend(&out, ": ", job.reason());
  return out;
}

std::string CountsText(const proto::JobCounts& c) {
  std::vector<std::string> parts;
  auto add = [&parts](int n, const char* what) {
    if (n > 0) parts.push_back(absl::StrCat(n, " ", what));
  };
  add(c.succeeded(), "succeeded");
  add(c.failed(), "failed");
  add(c.timed_out(), "timed out");
  add(c.not_answered(), "not answered");
  add(c.canceled(), "canceled");
  add(c.pending(), "pending");
  return parts.empty() ? "nothing yet" : absl::StrJoin(parts, ", ");
}

std::string TargetTable(const proto::TargetsReply& reply) {
  Table table({"NODE", "STATUS", "OS", "ARCH", "AGENT", "TAGS"});
  for (const proto::TargetRow& n : reply.nodes()) {
    std::string status = NodeStatusName(n.status());
    if (n.maintenance()) absl::StrAppend(&status, " (maintenance)");
    const std::string os =
        n.facts().os().empty() ? "-" : Escape(absl::StrCat(n.facts().os(), " ", n.facts().os_version()));
    table.AddRow({Escape(n.name()), status, os, Or(n.facts().arch()), Or(n.agent_version()), Tags(n)});
  }
  if (reply.matched() == 0) return "no node matches\n";
  return absl::StrCat(table.Render(), reply.matched(), reply.matched() == 1 ? " node matches" : " nodes match", " (",
                      reply.online(), " online, ", reply.matched() - reply.online(), " not online)",
                      reply.incomplete() ? absl::StrCat("; the first ", reply.nodes_size(), " are shown") : "", "\n");
}

std::string TagLines(const proto::TagReply& reply) {
  std::string out;
  for (const std::string& line : reply.lines()) absl::StrAppend(&out, Escape(line), "\n");
  if (reply.lines_size() == 0) {
    for (const proto::TargetRow& n : reply.nodes()) absl::StrAppend(&out, Escape(n.name()), ": ", Tags(n), "\n");
  }
  if (reply.history_size() > 0) absl::StrAppend(&out, "changes:\n", History(reply.history()));
  return out;
}

std::string JobDetails(const proto::JobReply& reply) {
  const proto::Job& job = reply.job();
  std::string kind = job.has_runbook()         ? "runbook job"
                     : job.has_rollout()       ? "rollout"
                     : job.continuous()        ? "continuous job"
                     : !job.schedule().empty() ? "run"
                                               : "job";
  std::string out = fmt::format("{} {}: {}\n  target: {}\n  command: {}\n  by: {}, created {}\n", kind,
                                Escape(job.id()), Escape(JobStateText(job)), Escape(Describe(job.target())),
                                Escape(job.has_runbook() ? absl::StrCat("runbook ", job.runbook().name(), " (", job.runbook().steps_size(),
                                                                        " steps)")
                                                       : Argv(job.command())),
                                Escape(job.operator_()), Ago(job.created_unix_ms()));
  if (!job.schedule().empty()) {
    absl::StrAppend(&out, "  schedule: ", Escape(job.schedule()), " for ", When(job.scheduled_unix_ms()),
                    job.catch_up() ? " (catch-up: missed while the station was down)" : "", "\n");
  }
  if (job.splay_ms() > 0)
    absl::StrAppend(&out, "  splay: ", absl::FormatDuration(absl::Milliseconds(job.splay_ms())), "\n");
  if (job.continuous() && job.expires_unix_ms() > 0)
    absl::StrAppend(&out, "  expires: ", When(job.expires_unix_ms()), "\n");
  if (job.finished_unix_ms() > 0) absl::StrAppend(&out, "  finished: ", Ago(job.finished_unix_ms()), "\n");
  if (job.has_rollout()) {
    absl::StrAppend(&out, "  plan: ", RolloutPlan(job.rollout()), "\n");
    if (job.state() == proto::JOB_WAITING) {
      absl::StrAppend(&out, "  next batch: ", When(job.progress().next_release_unix_ms()), "\n");
    }
  }
  Table table({job.has_rollout() ? "  BATCH" : "", "NODES", "RELEASED", "SUCCEEDED", "FAILED", "TIMED-OUT",
               "NOT-ANSWERED", "CANCELED", "PENDING"});
  for (size_t c : {1, 3, 4, 5, 6, 7, 8}) table.AlignRight(c);
  for (const proto::BatchSummary& b : reply.batches()) {
    std::string label =
        absl::StrCat("  ", b.index() + 1, b.index() == 0 && job.rollout().canary() > 0 ? " (canary)" : "");
    AddCountsRow(table, std::move(label), b.released_unix_ms() > 0 ? Ago(b.released_unix_ms()) : "-", b.counts());
  }
  AddCountsRow(table, "  total", "", reply.totals());
  absl::StrAppend(&out, table.Render());
  if (job.targets_size() > 0 && job.targets_size() <= 50) {
    std::vector<std::string> nodes;
    for (const proto::JobTarget& t : job.targets()) nodes.push_back(t.node());
    absl::StrAppend(&out, "  nodes: ", Escape(absl::StrJoin(nodes, ", ")), "\n");
  }
  absl::StrAppend(&out, "  commands: stewardctl show ", Escape(job.id()), "\n");
  return out;
}

std::string ScheduleTable(const google::protobuf::RepeatedPtrField<proto::Schedule>& schedules) {
  Table table({"NAME", "STATE", "CRON", "ZONE", "NEXT", "LAST-RUN", "TARGET", "COMMAND"});
  for (const proto::Schedule& s : schedules) {
    table.AddRow({Escape(s.name()), !s.problem().empty() ? "broken" : s.paused() ? "paused" : "active", Escape(s.cron()),
                  s.time_zone().empty() ? "UTC" : Escape(s.time_zone()), When(s.next_run_unix_ms()),
                  s.last_run_unix_ms() == 0 ? "never" : Ago(s.last_run_unix_ms()), Escape(Describe(s.target())),
                  Escape(Argv(s.command()))});
  }
  return table.Render();
}

std::string ScheduleDetails(const proto::ScheduleReply& reply) {
  std::string out;
  for (const proto::Schedule& s : reply.schedules()) {
    absl::StrAppend(
        &out,
        fmt::format("schedule {} ({})\n  cron: {} ({})\n  target: {}\n  command: {}\n  missed runs: {} "
                    "({} skipped so far)\n  splay: {}\n  next run: {}\n  by: {}, created {}\n",
                    Escape(s.name()), s.paused() ? "paused" : "active", Escape(s.cron()),
                    s.time_zone().empty() ? "UTC" : Escape(s.time_zone()), Escape(Describe(s.target())),
                    Escape(Argv(s.command())), s.missed() == proto::MISSED_RUN_ONCE ? "run once at start" : "skipped",
                    s.missed_runs(), s.splay_ms() > 0 ? absl::FormatDuration(absl::Milliseconds(s.splay_ms())) : "none",
                    When(s.next_run_unix_ms()), Escape(s.operator_()), Ago(s.created_unix_ms())));
    if (!s.problem().empty()) {
      absl::StrAppend(&out, "  broken: ", Escape(s.problem()), " (it makes no runs: remove it and add it again)\n");
    }
  }
  if (reply.runs_size() > 0) {
    Table table({"  RUN", "FOR", "STATE", "OUTCOMES"});
    for (const proto::JobReply& r : reply.runs()) {
      table.AddRow({absl::StrCat("  ", Escape(r.job().id())),
                    absl::StrCat(When(r.job().scheduled_unix_ms()), r.job().catch_up() ? " catch-up" : ""),
                    Escape(JobStateText(r.job())),
                    absl::StrCat(Nodes(r.totals().targets()), ": ", CountsText(r.totals()))});
    }
    absl::StrAppend(&out, "recent runs:\n", table.Render());
  }
  if (reply.history_size() > 0) absl::StrAppend(&out, "changes:\n", History(reply.history()));
  return out;
}

}  // namespace steward::ctl
