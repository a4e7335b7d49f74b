// stewardctl send, ping and cancel: commands to nodes, through the station.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "common/log.h"  // fmt formats absl::string_view
#include "common/protocol.h"
#include "ctl/ctl.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"

namespace steward::ctl {
namespace {

using proto::CommandState;

struct SendOptions {
  std::vector<std::string> args;  // NODE[,NODE...] (without --all), then the command
  bool all = false;
  absl::Duration wait;
  std::string domain = "operatingsystem";
  std::string method = kMethodShell;
  bool shell = false;
  std::string cwd;
  std::vector<std::string> env;
  absl::Duration exec_timeout;
  absl::Duration ttl;
  bool no_wait = false;
  // Control policies (proto/control.proto).
  bool exclusive = false;
  std::string on_busy = "reject";
  int priority = 0;
};

// An exclusive command found its node busy (EX_TEMPFAIL: try again later).
constexpr int kExitBusy = 75;

// The exit status a finished command maps to, ssh style.
int ExitStatusOf(const CommandState& s) {
  const proto::Ack& r = s.result();
  if (!IsTerminal(s.state())) return kExitUnknown;
  if (s.state() == proto::STATE_BUSY) return kExitBusy;
  if (s.state() == proto::STATE_PREEMPTED) return kExitUnknown;
  if (s.state() == proto::STATE_REJECTED || s.state() == proto::STATE_EXPIRED ||
      s.state() == proto::STATE_CANCELED) {
    return kExitUnknown;
  }
  if (r.term_signal() != 0) return 128 + r.term_signal();
  if (r.outcome() == proto::OUTCOME_ERROR) return kExitUnknown;
  return r.exit_code() >= 0 ? r.exit_code() : kExitUnknown;
}

// One line on stderr saying why a command did not simply exit.
std::string Why(const CommandState& s) {
  const proto::Ack& r = s.result();
  if (s.state() == proto::STATE_REJECTED) return fmt::format("rejected by {}: {}", s.node(), r.error());
  if (s.state() == proto::STATE_BUSY) return r.error();
  if ((s.state() == proto::STATE_CANCELED || s.state() == proto::STATE_PREEMPTED) && !r.error().empty()) {
    return fmt::format("command {} {}: {}", s.id(), StateName(s.state()), r.error());
  }
  if (s.state() == proto::STATE_EXPIRED || s.state() == proto::STATE_CANCELED) {
    return fmt::format("command {} {} before {} ran it", s.id(), StateName(s.state()), s.node());
  }
  if (r.outcome() == proto::OUTCOME_ERROR)
    return fmt::format("{} could not run the command: {}", s.node(), r.error());
  if (!r.error().empty()) return fmt::format("{}: {}", s.node(), r.error());
  return "";
}

void WriteAll(FILE* f, const std::string& data) {
  std::fwrite(data.data(), 1, data.size(), f);
  std::fflush(f);
}

// Output of one node's command, raw, as ssh prints it.
void PrintResult(const CommandState& s, bool json) {
  if (json) return PrintJson(s);
  const proto::Ack& r = s.result();
  const std::string node = Escape(s.node());
  WriteAll(stdout, r.stdout());
  WriteAll(stderr, r.stderr());
  if (r.stdout_truncated()) fmt::print(stderr, "stewardctl: stdout of {} was truncated\n", node);
  if (r.stderr_truncated()) fmt::print(stderr, "stewardctl: stderr of {} was truncated\n", node);
  if (const std::string why = Why(s); !why.empty()) fmt::print(stderr, "stewardctl: {}\n", Escape(why));
}

proto::SubmitRequest BuildSubmit(const SendOptions& o, const std::string& nodes,
                                 const std::vector<std::string>& argv) {
  proto::SubmitRequest req;
  for (absl::string_view n : absl::StrSplit(nodes, ',', absl::SkipEmpty())) req.add_nodes(std::string(n));
  req.set_all_nodes(o.all);
  proto::Envelope* cmd = req.mutable_command();
  cmd->set_method(o.method);
  cmd->set_domain(o.domain);
  for (const std::string& a : argv) cmd->add_argv(a);
  cmd->mutable_shell()->set_use_shell(o.shell);
  cmd->mutable_shell()->set_working_dir(o.cwd);
  for (const std::string& e : o.env) cmd->mutable_shell()->add_env(e);
  cmd->set_timeout_ms(absl::ToInt64Milliseconds(o.exec_timeout));
  if (o.ttl > absl::ZeroDuration()) cmd->set_expires_unix_ms(absl::ToUnixMillis(absl::Now() + o.ttl));
  proto::ControlPolicy* c = req.mutable_control();
  c->set_exclusive(o.exclusive);
  c->set_priority(o.priority);
  c->set_on_busy(o.on_busy == "queue" ? proto::ON_BUSY_QUEUE
                 : o.on_busy == "preempt" ? proto::ON_BUSY_PREEMPT : proto::ON_BUSY_REJECT);
  return req;
}

// One line for one node's command in a fan-out: "NODE: OUTPUT", its stdout on one line
// (the final newline dropped, other control characters escaped), then its stderr
// after "[stderr]"; what did not simply succeed says so in brackets first:
// "NODE: [failed, exit 3] ...", "NODE: [rejected: why]".
std::string FanOutLine(const CommandState& s) {
  const proto::Ack& r = s.result();
  std::string line = absl::StrCat(Escape(s.node()), ":");
  if (ExitStatusOf(s) != 0) {
    absl::StrAppend(&line, " [", StateName(s.state()));
    if (r.term_signal() != 0) {
      absl::StrAppend(&line, ", signal ", r.term_signal());
    } else if (r.exit_code() != 0 && r.outcome() != proto::OUTCOME_ERROR) {
      absl::StrAppend(&line, ", exit ", r.exit_code());
    }
    if (!r.error().empty()) absl::StrAppend(&line, ": ", Escape(r.error()));
    line += "]";
  }
  auto add = [&line](absl::string_view label, absl::string_view text, bool truncated) {
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    if (!text.empty()) absl::StrAppend(&line, " ", label, Escape(text));
    if (truncated) absl::StrAppend(&line, " [", label.empty() ? "stdout " : "", "truncated]");
  };
  add("", r.stdout(), r.stdout_truncated());
  add("[stderr] ", r.stderr(), r.stderr_truncated());
  return line;
}

// A fan-out prints exactly one line per targeted node on stdout (one JSON record with
// --json) as its command ends, then one for each node without a result when the wait
// is over, and a summary on stderr. However the station splits its answers (a wait is
// answered with the results that fit one message; the rest come with the next wait),
// every command is printed once: the ids still open are the ones asked for. Exit 0
// only when every node's command succeeded.
int FanOut(Client& client, const Globals& g, const proto::SubmitReply& submitted,
           absl::Duration wait, absl::Time deadline) {
  absl::flat_hash_map<std::string, std::string> open;  // command id -> node: no line yet
  for (const proto::CommandRef& ref : submitted.commands()) open.emplace(ref.id(), ref.node());
  const size_t total = open.size();
  size_t succeeded = 0;
  int rc = 0;
  auto print = [&](const CommandState& s, bool ended) {
    if (open.erase(s.id()) == 0) return;  // not ours, or printed already
    if (g.json) {
      PrintJson(s);
    } else {
      fmt::print("{}\n", ended ? FanOutLine(s)
                                : absl::StrCat(Escape(s.node()), ": [no result within ",
                                               absl::FormatDuration(wait), ": ", StateName(s.state()), "]"));
      std::fflush(stdout);
    }
    const int code = ended ? ExitStatusOf(s) : kExitUnknown;
    rc = std::max(rc, code);
    if (code == 0) ++succeeded;
  };
  auto open_ids = [&open] {
    std::vector<std::string> ids;
    ids.reserve(open.size());
    for (const auto& [id, node] : open) ids.push_back(id);
    return ids;
  };
  for (const CommandState& s : submitted.states()) {
    if (IsTerminal(s.state())) print(s, true);
  }
  std::string trouble;  // why the station could not be asked
  while (!open.empty() && absl::Now() < deadline) {
    auto states = client.Wait(open_ids(), deadline - absl::Now(), /*any=*/true);
    if (!states.ok()) {
      trouble = std::string(states.status().message());
      break;
    }
    for (const CommandState& s : states->commands()) {
      if (IsTerminal(s.state())) print(s, true);
    }
  }
  // The wait is over: what each remaining command is doing (a show answer may hold
  // only some of them: ask again for the rest while it makes progress).
  while (!open.empty() && trouble.empty()) {
    const size_t before = open.size();
    auto late = client.Show(open_ids(), "", g.timeout);
    if (!late.ok()) {
      trouble = std::string(late.status().message());
      break;
    }
    for (const CommandState& s : late->commands()) print(s, IsTerminal(s.state()));
    if (open.size() == before) trouble = "the station did not say";
  }
  for (const auto& [id, node] : open) {
    if (g.json) {  // what is known: the command and its node
      CommandState unknown;
      unknown.set_id(id);
      unknown.set_node(node);
      PrintJson(unknown);
      continue;
    }
    fmt::print("{}: [no result within {}; state unknown: {}]\n", Escape(node),
               absl::FormatDuration(wait), Escape(trouble));
  }
  std::fflush(stdout);
  if (!open.empty()) rc = kExitUnknown;
  if (succeeded != total) {
    fmt::print(stderr,
               "stewardctl: {} of {} nodes succeeded; the others' lines say why (commands without a "
               "result stay queued and run when their nodes are heard from: stewardctl show {})\n",
               succeeded, total, Escape(submitted.request_id()));
  }
  return rc;
}

int Send(Client& client, const Globals& g, const SendOptions& o, const std::string& nodes,
         const std::vector<std::string>& argv) {
  // One node: send and wait in one round trip. A fan-out prints results as they come.
  const bool one_node = !o.all && nodes.find(',') == std::string::npos;
  absl::Duration wait = o.wait;
  if (wait <= absl::ZeroDuration()) wait = one_node ? g.timeout : absl::Seconds(30);
  const absl::Time deadline = absl::Now() + wait;
  proto::SubmitRequest req = BuildSubmit(o, nodes, argv);
  if (one_node && !o.no_wait) req.set_wait_ms(absl::ToInt64Milliseconds(wait));
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
    for (const proto::CommandRef& ref : submitted->commands()) {
      if (g.json) {
        PrintJson(ref);
      } else {
        fmt::print("{} {}\n", Escape(ref.node()), Escape(ref.id()));
      }
    }
    return 0;
  }
  if (o.all || submitted->commands_size() > 1) return FanOut(client, g, *submitted, wait, deadline);
  // One node.
  const std::string& id = submitted->commands(0).id();
  for (const CommandState& s : submitted->states()) {
    if (IsTerminal(s.state())) {
      PrintResult(s, g.json);
      return ExitStatusOf(s);
    }
  }
  while (absl::Now() < deadline) {
    auto states = client.Wait({id}, deadline - absl::Now(), /*any=*/true);
    if (!states.ok()) return Fail(states.status());
    for (const CommandState& s : states->commands()) {
      PrintResult(s, g.json);
      return ExitStatusOf(s);
    }
  }
  auto late = client.Show({id}, "", g.timeout);
  if (!late.ok()) return Fail(late.status());
  if (late->commands_size() == 0) return Fail(fmt::format("command {} is not known to the station", id));
  const CommandState& s = late->commands(0);
  if (IsTerminal(s.state())) {  // ended just now
    PrintResult(s, g.json);
    return ExitStatusOf(s);
  }
  if (s.state() == proto::STATE_RUNNING) {
    return Fail(fmt::format("command {} still running on {} after {} (stewardctl show {})", s.id(),
                            s.node(), absl::FormatDuration(wait), s.id()));
  }
  return Fail(fmt::format("node {} did not answer within {}; command {} stays {} (stewardctl show {})",
                          s.node(), absl::FormatDuration(wait), s.id(), StateName(s.state()), s.id()));
}

}  // namespace

Runner SetupSend(CLI::App& cmd) {
  auto o = std::make_shared<SendOptions>();
  cmd.add_option("NODES", o->args, "NODE[,NODE...] (none with --all); the command follows after --");
  cmd.add_flag("--all", o->all, "Every known node");
  cli::AddDuration(cmd, "--wait", &o->wait,
                   "How long to wait for results (default: --timeout for one node, 30s for a fan-out)");
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
                   "Expire the command if not delivered within this long (default 24h)");
  cmd.add_flag("--no-wait", o->no_wait, "Print each node and command id, and return at once");
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
  cmd.footer(
      "Usage: stewardctl send [OPTIONS] NODE[,NODE...]|--all -- COMMAND [ARG...]\n"
      "Exit status: the remote one, 128+N when killed by signal N, 75 when an exclusive job found\n"
      "the node busy, 255 when the command did not run (or was canceled) or its fate is not known\n"
      "yet; a fan-out's highest (0 only if every node succeeded).\n"
      "A fan-out prints one line per node: \"NODE: OUTPUT\" (on one line), what did not succeed\n"
      "in brackets (\"NODE: [failed, exit 3] ...\"), or that it gave no result within --wait.\n"
      "Global options (--nats, --timeout, --json, --keys, ...): stewardctl --help");
  return [o, &cmd](const Globals& g) {
    std::vector<std::string> argv = o->args;
    argv.insert(argv.end(), g.after_dashes.begin(), g.after_dashes.end());
    std::string nodes;
    if (!o->all) {
      if (argv.empty()) return cli::UsageError(cmd, "NODE[,NODE...] or --all is required");
      nodes = argv.front();
      argv.erase(argv.begin());
    }
    if (argv.empty())
      return cli::UsageError(cmd, "a COMMAND is required: send NODE[,NODE...] -- COMMAND [ARG...]");
    if (!o->exclusive && (o->on_busy != "reject" || o->priority != 0)) {
      return cli::UsageError(cmd, "--on-busy and --priority apply to --exclusive jobs only");
    }
    return WithClient(g, [&](Client& c) { return Send(c, g, *o, nodes, argv); });
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
      fmt::print("{}: round trip {:.3f} ms (station to node {:.3f} ms)\n", Escape(pong->node()),
                 absl::ToDoubleMilliseconds(absl::Now() - start),
                 static_cast<double>(pong->station_rtt_us()) / 1000.0);
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
      for (int i = 0; i < r->commands_size(); ++i) {
        fmt::print("{} {} (retry of {})\n", Escape(r->commands(i).node()), Escape(r->commands(i).id()),
                   Escape((*ids)[static_cast<size_t>(i)]));
      }
      return 0;
    });
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
