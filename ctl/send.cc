// stewardctl send, ping and cancel: commands to nodes, through the station.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "common/log.h"  // fmt formats absl::string_view
#include "common/protocol.h"
#include "ctl/command_options.h"
#include "ctl/ctl.h"
#include "ctl/follow.h"
#include "ctl/render_jobs.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"
#include "ctl/results.h"

namespace steward::ctl {
namespace {

using proto::CommandState;

struct SendOptions {
  std::vector<std::string> args;  // NODE[,NODE...] (without --all), then the command
  bool all = false;
  std::string where;
  absl::Duration wait;
  CommandOptions command;
  bool no_wait = false;
  bool follow = false;  // print the output as it is produced (ctl/follow.h)
  // Control policies (proto/control.proto).
  bool exclusive = false;
  std::string on_busy = "reject";
  int priority = 0;
  bool require_approval = false;
  absl::Duration approval_ttl;
  bool allow_empty = false;
  // A staged rollout.
  std::string batch;  // "N" or "P%"
  int canary = 0;
  absl::Duration batch_wait;
  absl::Duration batch_timeout;
  std::string abort_on;  // "P%"
  int abort_after = 0;
  std::vector<std::string> count_as_failed{"timed_out"};
  // A continuous job.
  bool continuous = false;
  absl::Duration expires_in;

  bool staged() const {
    return !batch.empty() || canary > 0 || batch_wait > absl::ZeroDuration() ||
           batch_timeout > absl::ZeroDuration() || !abort_on.empty() || abort_after > 0;
  }
};

proto::SubmitRequest BuildSubmit(const SendOptions& o, const std::string& nodes,
                                 const std::vector<std::string>& argv) {
  proto::SubmitRequest req;
  for (absl::string_view n : absl::StrSplit(nodes, ',', absl::SkipEmpty())) req.add_nodes(std::string(n));
  req.set_all_nodes(o.all);
  *req.mutable_command() = CommandTemplate(o.command, argv);
  if (o.command.ttl > absl::ZeroDuration()) {
    req.mutable_command()->set_expires_unix_ms(absl::ToUnixMillis(absl::Now() + o.command.ttl));
  }
  proto::ControlPolicy* c = req.mutable_control();
  c->set_exclusive(o.exclusive);
  c->set_priority(o.priority);
  c->set_require_approval(o.require_approval);
  c->set_approval_ttl_ms(absl::ToInt64Milliseconds(o.approval_ttl));
  c->set_on_busy(o.on_busy == "queue" ? proto::ON_BUSY_QUEUE
                 : o.on_busy == "preempt" ? proto::ON_BUSY_PREEMPT : proto::ON_BUSY_REJECT);
  return req;
}

int Send(Client& client, const Globals& g, const SendOptions& o, const std::string& nodes,
         const std::vector<std::string>& argv) {
  // One node: send and wait in one round trip. A fan-out prints results as they come.
  const bool one_node = !o.all && nodes.find(',') == std::string::npos;
  absl::Duration wait = o.wait;
  if (wait <= absl::ZeroDuration()) wait = one_node ? g.timeout : absl::Seconds(30);
  proto::SubmitRequest req = BuildSubmit(o, nodes, argv);
  if (one_node && !o.no_wait && !o.follow) req.set_wait_ms(absl::ToInt64Milliseconds(wait));
  // The wait counts from here: the station waits (part of) it before it answers.
  const absl::Time started = absl::Now();
  auto submitted = client.Submit(req, g.timeout);
  if (!submitted.ok()) {
    std::string why(submitted.status().message());
    if (req.wait_ms() > 0 && absl::IsDeadlineExceeded(submitted.status())) {
      // Send-and-wait: the station may have stored the command and then gone away.
      absl::StrAppend(&why, " (if it took the command, `stewardctl history --node ", nodes, "` shows it)");
    }
    return Fail(why);
  }
  if (o.no_wait) {
    PrintRefs(g, *submitted);
    return 0;
  }
  if (o.require_approval) {  // held as asked: what to do next
    PrintRefs(g, *submitted);
    if (!g.json) {
      fmt::print(stderr, "stewardctl: awaiting approval by another operator (stewardctl approvals; "
                         "stewardctl approve ID); it is sent once approved\n");
    }
    return 0;
  }
  if (o.follow && submitted->commands_size() == 1) {
    for (const CommandState& s : submitted->states()) {
      if (IsTerminal(s.state())) {  // never ran (busy, rejected): nothing to follow
        PrintResult(s, g.json);
        return ExitStatusOf(s);
      }
    }
    return Follow(client, g, submitted->commands(0).id(), o.wait);
  }
  return Collect(client, g, *submitted, o.all || submitted->commands_size() > 1, wait, started);
}

// Reads "N" or "P%" into a count or a share; false when it is neither.
bool ParseCountOrShare(const std::string& text, int* count, double* percent) {
  absl::string_view t(text);
  if (absl::ConsumeSuffix(&t, "%")) return absl::SimpleAtod(t, percent) && *percent > 0 && *percent <= 100;
  return absl::SimpleAtoi(t, count) && *count > 0;
}

// The rollout `o` asks for; a usage error in `why` when an option makes no sense.
proto::RolloutSpec RolloutOf(const SendOptions& o, std::string* why) {
  proto::RolloutSpec r;
  int count = 0;
  double percent = 0;
  if (!o.batch.empty()) {
    if (!ParseCountOrShare(o.batch, &count, &percent)) {
      *why = absl::StrCat("--batch \"", o.batch, "\": a number of nodes (10) or a share of them (10%)");
    }
    r.set_batch_size(count);
    r.set_batch_percent(percent);
  }
  if (o.canary < 0) *why = "--canary takes a number of nodes";
  r.set_canary(o.canary);
  r.set_batch_wait_ms(absl::ToInt64Milliseconds(o.batch_wait));
  r.set_batch_timeout_ms(absl::ToInt64Milliseconds(o.batch_timeout));
  if (!o.abort_on.empty()) {
    count = 0;
    percent = 0;
    if (!absl::EndsWith(o.abort_on, "%") || !ParseCountOrShare(o.abort_on, &count, &percent)) {
      *why = absl::StrCat("--abort-on \"", o.abort_on, "\": a share of the targets, such as 5%");
    }
    r.set_abort_percent(percent);
  }
  if (o.abort_after < 0) *why = "--abort-after takes a number of failures";
  r.set_abort_after(o.abort_after);
  for (const std::string& kind : o.count_as_failed) {
    if (kind == "timed_out") {
      r.set_timed_out_fails(true);
    } else if (kind == "not_answered") {
      r.set_not_answered_fails(true);
    } else if (kind != "none") {
      *why = absl::StrCat("--count-as-failed \"", kind, "\": timed_out, not_answered or none");
    }
  }
  return r;
}

// One line on a rollout's progress: "rollout 01J...: batch 2 of 5 running; 7 of 20: 6
// succeeded, 1 failed, 13 pending".
std::string ProgressLine(const proto::JobReply& r) {
  const proto::Job& job = r.job();
  std::string where;
  if (job.state() == proto::JOB_WAITING) {
    const absl::Duration left = absl::FromUnixMillis(job.progress().next_release_unix_ms()) - absl::Now();
    where = absl::StrCat("batch ", job.progress().released(), " of ", r.batches_size(), " ended, next in ",
                         absl::FormatDuration(absl::Trunc(std::max(left, absl::ZeroDuration()), absl::Milliseconds(100))));
  } else if (IsOpenJob(job.state())) {
    where = absl::StrCat("batch ", job.progress().released(), " of ", r.batches_size(), " running");
  } else {
    where = JobStateText(job);
  }
  return absl::StrCat("rollout ", job.id(), ": ", where, "; ", Nodes(r.totals().targets()), ": ",
                      CountsText(r.totals()));
}

void Forget(std::vector<std::string>& ids, const std::string& id) {
  ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
}

// Follows a rollout until it ends (or `wait`, when given): each node's result as it
// comes (one line per node, as a fan-out prints it), and its progress: a line rewritten
// in place on a terminal, a line per change otherwise.
int FollowRollout(Client& client, const Globals& g, const proto::LaunchReply& launched, absl::Duration wait) {
  const std::string& id = launched.job().id();
  const absl::Time deadline = wait > absl::ZeroDuration() ? absl::Now() + wait : absl::InfiniteFuture();
  const bool tty = !g.json && ::isatty(STDOUT_FILENO) == 1;
  std::vector<std::string> remaining;
  for (const proto::CommandRef& ref : launched.submitted().commands()) remaining.push_back(ref.id());
  int rc = 0;
  int canceled = 0;
  std::string shown;  // the progress line on screen (tty), or last printed
  auto clear = [&] {
    if (tty && !shown.empty()) fmt::print("\r\033[K");
  };
  proto::JobReply job;
  while (true) {
    if (!remaining.empty()) {
      const absl::Duration left = std::max(deadline - absl::Now(), absl::Milliseconds(1));
      auto states = client.Wait(remaining, std::min(absl::Seconds(1), left), /*any=*/true);
      if (!states.ok()) return Fail(states.status());
      for (const CommandState& s : states->commands()) {
        Forget(remaining, s.id());
        rc = std::max(rc, ExitStatusOf(s));
        if (s.state() == proto::STATE_CANCELED && s.result().started_unix_ms() == 0 && !s.result().error().empty()) {
          ++canceled;  // stopped before it was sent (by the rollout, or an operator): summed up at the end
          continue;
        }
        clear();
        if (g.json) {
          PrintJson(s);
        } else {
          fmt::print("{}\n", FanOutLine(s));
        }
        if (tty && !shown.empty()) {
          fmt::print("{}", shown);
          std::fflush(stdout);
        }
      }
    } else {
      absl::SleepFor(absl::Milliseconds(500));
    }
    auto reply = client.Job(id, g.timeout);
    if (!reply.ok()) return Fail(reply.status());
    job = *std::move(reply);
    if (!g.json) {
      const std::string line = Escape(ProgressLine(job));
      if (tty) {
        clear();
        fmt::print("{}", line);
        std::fflush(stdout);
        shown = line;
      } else if (line != shown) {
        fmt::print("{}\n", line);
        std::fflush(stdout);
        shown = line;
      }
    }
    if (!IsOpenJob(job.job().state()) && remaining.empty()) break;
    if (absl::Now() >= deadline) {
      if (tty) fmt::print("\n");
      fmt::print(stderr, "stewardctl: rollout {} goes on (stewardctl rollout show {})\n", Escape(id), Escape(id));
      return kExitUnknown;
    }
  }
  if (tty) fmt::print("\n");
  if (g.json) PrintJson(job);
  const std::string unsent = canceled > 0 ? absl::StrCat(canceled, canceled == 1 ? " command" : " commands",
                                                         " canceled before they were sent")
                                          : "";
  if (job.job().state() == proto::JOB_ABORTED || job.job().state() == proto::JOB_CLOSED) {
    fmt::print(stderr, "stewardctl: {}{}{}\n", Escape(job.job().reason()), unsent.empty() ? "" : "; ", unsent);
  } else if (!unsent.empty()) {
    fmt::print(stderr, "stewardctl: rollout {}: {}\n", Escape(id), unsent);
  }
  return rc;
}

// A send by target: recorded with what it resolved to; staged or continuous as asked.
int Launch(Client& client, const Globals& g, const SendOptions& o, const std::string& nodes,
           const std::vector<std::string>& argv, const proto::RolloutSpec* rollout) {
  proto::LaunchRequest req;
  *req.mutable_target() = TargetSpecOf(nodes, o.all, o.where);
  *req.mutable_command() = CommandTemplate(o.command, argv);
  req.set_command_ttl_ms(absl::ToInt64Milliseconds(o.command.ttl));
  if (rollout != nullptr) *req.mutable_rollout() = *rollout;
  req.set_continuous(o.continuous);
  // Each node's command as a send to it would be: exclusive per node, held for approval.
  const proto::ControlPolicy control = BuildSubmit(o, nodes, argv).control();
  if (control.ByteSizeLong() > 0) *req.mutable_control() = control;
  if (o.expires_in > absl::ZeroDuration()) req.set_expires_unix_ms(absl::ToUnixMillis(absl::Now() + o.expires_in));
  req.set_allow_empty(o.allow_empty);
  auto launched = client.Launch(req, g.timeout);
  if (!launched.ok()) return Fail(launched.status());
  const proto::Job& job = launched->job();
  const int n = launched->submitted().commands_size();
  if (!g.json) {
    std::string what = absl::StrCat("job ", job.id(), ": ", Nodes(n));
    if (job.has_rollout()) {
      int batches = 0;
      for (const proto::JobTarget& t : job.targets()) batches = std::max(batches, t.batch() + 1);
      absl::StrAppend(&what, " in ", batches, " batches");
    }
    if (job.continuous()) absl::StrAppend(&what, "; open: nodes that match later get the command too");
    fmt::print(stderr, "stewardctl: {}\n", Escape(what));
  }
  if (n == 0) {
    fmt::print(stderr, "stewardctl: {}; nothing sent{}\n", Escape(job.reason()),
               job.continuous() ? " yet" : "");
    return 0;
  }
  if (o.no_wait || o.require_approval) {
    PrintRefs(g, launched->submitted());
    if (o.require_approval && !g.json) {
      fmt::print(stderr, "stewardctl: awaiting approval by another operator (stewardctl approvals; "
                         "stewardctl approve ID); each is sent once approved\n");
    }
    return 0;
  }
  if (job.has_rollout()) return FollowRollout(client, g, *launched, o.wait);
  const bool fanout = n > 1 || nodes.find_first_of("*?[@,") != std::string::npos || o.all || !o.where.empty();
  const int rc = Collect(client, g, launched->submitted(), fanout,
                         o.wait > absl::ZeroDuration() ? o.wait : absl::Seconds(30));
  if (job.continuous()) {
    fmt::print(stderr, "stewardctl: job {} stays open: nodes that match later get the command (stewardctl close {})\n",
               Escape(job.id()), Escape(job.id()));
  }
  return rc;
}

}  // namespace

Runner SetupSend(CLI::App& cmd) {
  auto o = std::make_shared<SendOptions>();
  cmd.add_option("NODES", o->args,
                 "NODE[,NODE...]: names, globs ('ship*') and @groups (none with --all or --where); the "
                 "command follows after --");
  AddTargetOptions(cmd, &o->where, &o->all);
  cli::AddDuration(cmd, "--wait", &o->wait,
                   "How long to wait for results (default: --timeout for one node, 30s for a fan-out, a "
                   "rollout until it ends)");
  AddCommandOptions(cmd, &o->command);
  cmd.add_flag("--no-wait", o->no_wait, "Print each node and command id, and return at once");
  cmd.add_flag("--follow,-f", o->follow,
               "One node: print the output as it is produced, then the exit status (waits until the "
               "command ends, or --wait)");
  cmd.add_flag("--exclusive", o->exclusive,
               "A job: holds the node's job slot until it ends; another exclusive job finds the node busy");
  cmd.add_option("--on-busy", o->on_busy,
                 "With --exclusive, when the node is busy: reject (exit 75, naming the running job), "
                 "queue (run when the slot frees, highest --priority first), or preempt (stop the running "
                 "job when this --priority is higher)")
      ->check(CLI::IsMember({"reject", "queue", "preempt"}))
      ->capture_default_str();
  cmd.add_option("--priority", o->priority, "With --exclusive: the job's priority (higher wins)")
      ->capture_default_str();
  cmd.add_flag("--require-approval", o->require_approval,
               "Hold the command until another operator approves it (stewardctl approve ID); prints the "
               "ids and returns");
  cli::AddDuration(cmd, "--approval-ttl", &o->approval_ttl,
                   "With --require-approval: not approved within this long, it ends expired (default 1h)");
  cmd.add_flag("--allow-empty", o->allow_empty,
               "When no node matches, record the job and send nothing (else: refused)");
  cmd.add_option("--batch", o->batch, "Staged rollout: release N nodes (or P% of them) at a time")
      ->type_name("N|P%");
  cmd.add_option("--canary", o->canary, "Staged rollout: a first batch of N nodes")->type_name("N");
  cli::AddDuration(cmd, "--batch-wait", &o->batch_wait, "Staged rollout: pause this long after each batch");
  cli::AddDuration(cmd, "--batch-timeout", &o->batch_timeout,
                   "Staged rollout: a node with no result this long after its batch's release counts as "
                   "not answered (default: the exec timeout plus 1m)");
  cmd.add_option("--abort-on", o->abort_on, "Staged rollout: stop once failures reach P% of the nodes")
      ->type_name("P%");
  cmd.add_option("--abort-after", o->abort_after, "Staged rollout: stop after N failures")->type_name("N");
  cli::AddList(cmd, "--count-as-failed", &o->count_as_failed,
               "Staged rollout: what counts as a failure besides failed: timed_out, not_answered, none")
      ->type_name("KIND,...")
      ->default_str("timed_out");
  cmd.add_flag("--continuous", o->continuous,
               "Keep the job open: nodes that match later (enrolled, tagged) get the command once, until "
               "`stewardctl close ID` or --expires-in");
  cli::AddDuration(cmd, "--expires-in", &o->expires_in, "A continuous job closes after this long (default: never)");
  cmd.footer(
      "Usage: stewardctl send [OPTIONS] NODE[,NODE...]|--all|--where EXPR -- COMMAND [ARG...]\n"
      "Exit status: the remote one, 128+N when killed by signal N, 75 when an exclusive job found\n"
      "the node busy, 255 when the command did not run (or was canceled) or its fate is not known\n"
      "yet; a fan-out's highest (0 only if every node succeeded).\n"
      "A fan-out prints one line per node: \"NODE: OUTPUT\" (on one line), what did not succeed\n"
      "in brackets (\"NODE: [failed, exit 3] ...\"), or that it gave no result within --wait.\n"
      "Global options (--nats, --timeout, --json, --keys, ...): stewardctl --help");
  return [o, &cmd](const Globals& g) {
    std::vector<std::string> argv = o->args;
    argv.insert(argv.end(), g.after_dashes.begin(), g.after_dashes.end());
    // NODES comes first, unless --all (then every node), or --where without a "--" part
    // (then every node the expression matches, and the arguments are the command).
    std::string nodes;
    if (o->all && !o->args.empty() && !g.after_dashes.empty()) {
      // NODES before "--" with --all: a mistake, not a command to run on every node.
      return CheckTargetArgs(cmd, absl::StrJoin(o->args, " "), true);
    }
    if (!o->all && (o->where.empty() || (!o->args.empty() && !g.after_dashes.empty()))) {
      if (o->args.empty()) return cli::UsageError(cmd, "NODE[,NODE...], --all or --where is required");
      nodes = argv.front();
      argv.erase(argv.begin());
      if (int rc = CheckTargetArgs(cmd, nodes, false); rc != 0) return rc;
    }
    if (argv.empty())
      return cli::UsageError(cmd, "a COMMAND is required: send NODE[,NODE...] -- COMMAND [ARG...]");
    if (!o->exclusive && (o->on_busy != "reject" || o->priority != 0)) {
      return cli::UsageError(cmd, "--on-busy and --priority apply to --exclusive jobs only");
    }
    if (o->approval_ttl != absl::ZeroDuration() && !o->require_approval) {
      return cli::UsageError(cmd, "--approval-ttl applies to --require-approval only");
    }
    if (int rc = CheckWhere(cmd, o->where); rc != 0) return rc;
    if (int rc = CheckCommand(cmd, o->command, argv); rc != 0) return rc;
    if (o->follow && (o->no_wait || nodes.find_first_of(",*?[@") != std::string::npos || nodes.empty())) {
      return cli::UsageError(cmd, "--follow takes one NODE by name (and no --no-wait)");
    }
    proto::RolloutSpec rollout;
    if (o->staged()) {
      std::string why;
      rollout = RolloutOf(*o, &why);
      if (!why.empty()) return cli::UsageError(cmd, why);
      if (o->continuous) return cli::UsageError(cmd, "--continuous does not combine with a staged rollout");
    }
    const bool targeted = o->all || !o->where.empty() || o->staged() || o->continuous || o->allow_empty ||
                          nodes.find_first_of("*?[@") != std::string::npos;
    return WithClient(g, [&](Client& c) {
      if (!targeted) return Send(c, g, *o, nodes, argv);
      return Launch(c, g, *o, nodes, argv, o->staged() ? &rollout : nullptr);
    });
  };
}

Runner SetupPing(CLI::App& cmd) {
  auto node = std::make_shared<std::string>();
  cmd.add_option("NODE", *node, "The node")->required();
  return [node](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      const absl::Time start = absl::Now();
      auto pong = client.Ping(*node, g.timeout);
      if (!pong.ok()) return Fail(pong.status());
      const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
      if (pong->direct()) {
        fmt::print("{}: round trip {:.3f} ms (through the station, answered by the node)\n",
                   Escape(pong->node()), ms);
      } else {
        fmt::print("{}: round trip {:.3f} ms (station to node {:.3f} ms)\n", Escape(pong->node()), ms,
                   static_cast<double>(pong->station_rtt_us()) / 1000.0);
      }
      return 0;
    });
  };
}

Runner SetupRetry(CLI::App& cmd) {
  auto ids = std::make_shared<std::vector<std::string>>();
  cmd.add_option("ID", *ids, "Finished commands to send again")->required();
  return [ids](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      auto r = client.Retry(*ids, g.timeout);
      if (!r.ok()) return Fail(r.status());
      // The station retries an id named twice once, in the order first named.
      std::vector<std::string> once;
      for (const std::string& id : *ids) {
        if (std::find(once.begin(), once.end(), id) == once.end()) once.push_back(id);
      }
      for (int i = 0; i < r->commands_size(); ++i) {
        const size_t k = static_cast<size_t>(i);
        fmt::print("{} {} (retry of {})\n", Escape(r->commands(i).node()), Escape(r->commands(i).id()),
                   k < once.size() ? Escape(once[k]) : std::string("?"));
      }
      return 0;
    });
  };
}

Runner SetupWatch(CLI::App& cmd) {
  auto id = std::make_shared<std::string>();
  auto wait = std::make_shared<absl::Duration>();
  cmd.add_option("ID", *id, "The command (running, queued or finished)")->required();
  cli::AddDuration(cmd, "--wait", wait.get(), "Give up after this long (default: until the command ends)");
  cmd.footer(
      "Prints what the command printed so far, then its output as it is produced, then why it did\n"
      "not simply exit; a finished command's whole output. Exit status as for send. Should the\n"
      "station no longer hold some of the live output (its buffer overflowed), it says so and\n"
      "prints the rest from the result when the command ends.");
  return [id, wait](const Globals& g) {
    return WithClient(g, [&](Client& client) { return Follow(client, g, *id, *wait); });
  };
}

Runner SetupCancel(CLI::App& cmd) {
  auto ids = std::make_shared<std::vector<std::string>>();
  cmd.add_option("ID", *ids, "Commands to cancel (queued, parked or running)")->required();
  cmd.footer(
      "A command not yet delivered is canceled at the station; a running one is killed on its node\n"
      "(SIGTERM to its process group, SIGKILL after the grace) and ends canceled with its output so\n"
      "far. Waits up to --timeout for the node to confirm; a node offline gets the cancel when it\n"
      "is back. Exit 0 when every command ended canceled (or preempted), 255 otherwise.");
  return [ids](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      auto asked = client.Cancel(*ids, g.timeout);
      if (!asked.ok() && ids->size() == 1) {
        // A runbook job's id: the job stops (its running step is killed, no more step runs).
        auto job = client.Job(ids->front(), g.timeout);
        if (job.ok() && job->job().has_runbook()) {
          auto closed = client.Close(ids->front(), g.timeout);
          if (!closed.ok()) return Fail(closed.status());
          fmt::print("{}", ReplyLines(*closed));
          return 0;
        }
      }
      if (!asked.ok()) return Fail(asked.status());
      std::vector<std::string> running;  // killed on their nodes: wait for their results
      for (const CommandState& s : asked->commands()) {
        if (!IsTerminal(s.state())) running.push_back(s.id());
      }
      absl::flat_hash_map<std::string, CommandState> final;
      if (!running.empty()) {
        auto done = client.Wait(running, g.timeout, /*any=*/false);
        if (done.ok()) {
          for (const CommandState& s : done->commands()) final[s.id()] = s;
        }
      }
      int rc = 0;
      for (const CommandState& asked_state : asked->commands()) {
        auto it = final.find(asked_state.id());
        const CommandState& s = it == final.end() ? asked_state : it->second;
        if (!IsTerminal(s.state())) {
          fmt::print("{} {} cancel sent: still {} (the node has not confirmed yet; stewardctl show {})\n",
                     Escape(s.id()), Escape(s.node()), StateName(s.state()), Escape(s.id()));
          rc = kExitUnknown;
          continue;
        }
        fmt::print("{} {} {}{}\n", Escape(s.id()), Escape(s.node()), StateName(s.state()),
                   s.result().error().empty() ? "" : absl::StrCat(" (", Escape(s.result().error()), ")"));
        if (s.state() != proto::STATE_CANCELED && s.state() != proto::STATE_PREEMPTED) rc = kExitUnknown;
      }
      return rc;
    });
  };
}

}  // namespace steward::ctl
