// stewardctl status, process and config: operations on an agent itself (copy is in
// ctl/copy.cc, debug in ctl/debug.cc). Each is a
// command to the node's `status`, `process` or `config` method (domain "agent") that goes through the
// station like `send`: signed, ACL-checked, recorded in the ledger and the audit, run
// once. `status --cached` asks the station instead: the compact status from the node's
// last hello, with its age, for a node that is offline.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/protocol.h"
#include "ctl/agentops.h"
#include "ctl/ctl.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"

namespace steward::ctl {

absl::StatusOr<proto::SubmitReply> SubmitToNode(Client& client, const Globals& g, const std::string& node,
                                                const std::string& method, const std::vector<std::string>& argv,
                                                std::string payload, absl::Duration wait) {
  proto::SubmitRequest req;
  req.add_nodes(node);
  proto::Envelope* cmd = req.mutable_command();
  cmd->set_method(method);
  cmd->set_domain(kAgentDomain);
  for (const std::string& a : argv) cmd->add_argv(a);
  cmd->set_payload(std::move(payload));  // a copy chunk: 896 KiB, moved, not copied
  // An operation that cannot reach the node now is of no use later: it expires with
  // the wait instead of running whenever the node comes back.
  cmd->set_expires_unix_ms(absl::ToUnixMillis(absl::Now() + g.timeout + absl::Seconds(30)));
  req.set_wait_ms(absl::ToInt64Milliseconds(wait));
  auto submitted = client.Submit(req, wait + absl::Seconds(5));
  if (!submitted.ok()) return submitted.status();
  if (submitted->commands_size() != 1) return absl::InternalError("the station did not take the command");
  return submitted;
}

absl::StatusOr<proto::CommandState> RunOnNode(Client& client, const Globals& g, const std::string& node,
                                              const std::string& method, const std::vector<std::string>& argv,
                                              std::string payload) {
  const absl::Time deadline = absl::Now() + g.timeout;
  auto submitted = SubmitToNode(client, g, node, method, argv, std::move(payload), g.timeout);
  if (!submitted.ok()) return submitted.status();
  const std::string id = submitted->commands(0).id();
  for (const proto::CommandState& s : submitted->states()) {
    if (IsTerminal(s.state())) return s;
  }
  while (absl::Now() < deadline) {
    auto states = client.Wait({id}, deadline - absl::Now(), /*any=*/true);
    if (!states.ok()) return states.status();
    for (const proto::CommandState& s : states->commands()) return s;
  }
  return absl::DeadlineExceededError(fmt::format(
      "{} did not answer within {}; command {} expires unrun if it is not delivered soon (stewardctl show {})", node,
      absl::FormatDuration(g.timeout), id, id));
}

std::string Failure(const proto::CommandState& s) {
  const proto::Ack& r = s.result();
  if (s.state() == proto::STATE_SUCCEEDED) return "";
  if (!r.error().empty()) return fmt::format("{} {}: {}", s.node(), StateName(s.state()), r.error());
  return fmt::format("{}: command {} {}", s.node(), s.id(), StateName(s.state()));
}

std::string Bytes(uint64_t n) {
  if (n >= (uint64_t{1} << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(n) / (1 << 30));
  if (n >= (uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1 << 20));
  if (n >= 1024) return fmt::format("{:.1f} KiB", static_cast<double>(n) / 1024);
  return fmt::format("{} B", n);
}

namespace {

std::string StatsLines(const proto::AgentStats& s) {
  std::string out;
  absl::StrAppend(&out, fmt::format("outbox: {} entries, {}, oldest {}\n", s.outbox_entries(), Bytes(s.outbox_bytes()),
                                    s.outbox_oldest_age_ms() > 0
                                        ? absl::FormatDuration(absl::Milliseconds(s.outbox_oldest_age_ms()))
                                        : "-"));
  absl::StrAppend(&out, fmt::format("log spool: {} batches, {}; {} lines dropped\n", s.log_spool_entries(),
                                    Bytes(s.log_spool_bytes()), s.log_dropped()));
  absl::StrAppend(&out, fmt::format("queues: {} of {} slots used; intake dropped {}; restarts {}\n", s.queue_depth(),
                                    s.queue_capacity(), s.intake_dropped(), s.restarts()));
  absl::StrAppend(&out, fmt::format("resources: RSS {}, CPU {:.2f} s, {} open fds, {} free under the data dir\n",
                                    Bytes(s.rss_bytes()), s.cpu_seconds(), s.open_fds(),
                                    Bytes(s.data_disk_free_bytes())));
  return out;
}

// One syslog input: "input syslog-udp:127.0.0.1:5514: listening on port 5514, 12 lines,
// 3 dropped (3 by the kernel)"; a file tail says its offset instead of a port.
std::string InputLine(const std::string& name, bool listening, uint32_t port, uint64_t lines, uint64_t dropped,
                      std::optional<uint64_t> kernel_dropped, int64_t offset) {
  std::string out = absl::StrCat("input ", Escape(name), ": ",
                                 listening ? (offset < 0 ? "listening" : "reading") : "NOT running");
  if (port != 0) absl::StrAppend(&out, " on port ", port);
  absl::StrAppend(&out, ", ", lines, " lines, ", dropped, " dropped");
  if (kernel_dropped && *kernel_dropped > 0) absl::StrAppend(&out, " (", *kernel_dropped, " by the kernel)");
  if (offset >= 0) absl::StrAppend(&out, ", offset ", offset);
  return out + "\n";
}

std::string LiveStatus(const proto::AgentStatus& st) {
  std::string out = fmt::format("{}: version {}, up {}, installation {}\n", Escape(st.node()), Escape(st.version()),
                                absl::FormatDuration(absl::Trunc(
                                    absl::Now() - absl::FromUnixMillis(st.started_unix_ms()), absl::Seconds(1))),
                                Escape(st.instance_id()));
  Table t({"PROCESS", "STATE", "QUEUE", "HANDLED", "FAILED", "RESTARTS", "RUNNING"});
  t.AlignRight(2);
  t.AlignRight(3);
  t.AlignRight(4);
  t.AlignRight(5);
  for (const proto::ProcessStatus& p : st.processes()) {
    std::string running = "-";
    if (!p.current_command().empty()) {
      running = absl::StrCat(Escape(p.current_command()), " for ",
                             absl::FormatDuration(absl::Trunc(
                                 absl::Now() - absl::FromUnixMillis(p.current_since_unix_ms()), absl::Seconds(1))));
    }
    t.AddRow({Escape(p.name()), Escape(p.state()),
              p.handler() ? fmt::format("{}/{}", p.queue_depth(), p.queue_capacity()) : "-",
              p.handler() ? absl::StrCat(p.handled()) : "-", p.handler() ? absl::StrCat(p.failed()) : "-",
              absl::StrCat(p.restarts()), running});
  }
  out += t.Render();
  for (const proto::ProcessStatus& p : st.processes()) {
    if (p.last_restart_reason().empty()) continue;
    absl::StrAppend(&out, fmt::format("  {}: last restart/stop {}: {}\n", Escape(p.name()),
                                      Ago(p.last_restart_unix_ms()), Escape(p.last_restart_reason())));
  }
  for (const proto::InputStatus& in : st.inputs()) {
    absl::StrAppend(&out, InputLine(in.name(), in.listening(), in.port(), in.lines(), in.dropped(),
                                    in.kernel_dropped(), in.offset()));
  }
  out += StatsLines(st.stats());
  if (!st.stats().config_hash().empty()) absl::StrAppend(&out, "configuration: ", Escape(st.stats().config_hash()), "\n");
  return out;
}

std::string CachedStatus(const proto::NodeInfo& n) {
  const proto::AgentStats& s = n.agent_stats();
  std::string out = fmt::format("{}: {} (last known status, from its hello of {}); version {}\n", Escape(n.name()),
                                NodeStatus(n), Ago(s.at_unix_ms() != 0 ? s.at_unix_ms() : n.last_heard_unix_ms()),
                                Escape(n.version()));
  Table t({"PROCESS", "STATE", "QUEUE", "RESTARTS", "RUNNING"});
  t.AlignRight(2);
  t.AlignRight(3);
  for (const proto::ProcessBrief& p : s.handlers()) {
    t.AddRow({Escape(p.name()), Escape(p.state()), absl::StrCat(p.queue_depth()), absl::StrCat(p.restarts()),
              p.current_command().empty() ? "-" : Escape(p.current_command())});
  }
  if (s.handlers_size() > 0) out += t.Render();
  for (const proto::InputBrief& in : s.inputs()) {
    absl::StrAppend(&out, InputLine(in.name(), in.listening(), 0, in.lines(), in.dropped(), std::nullopt, in.offset()));
  }
  out += StatsLines(s);
  if (const std::string drift = ConfigDrift(n); !drift.empty()) {
    absl::StrAppend(&out, drift, "\n");
  } else if (!s.config_hash().empty()) {
    absl::StrAppend(&out, "configuration: ", Escape(s.config_hash()), "\n");
  }
  return out;
}

int Status(const Globals& g, const std::string& node, bool cached) {
  return WithClient(g, [&](Client& client) {
    if (cached) {
      auto nodes = client.Nodes(node, g.timeout);
      if (!nodes.ok()) return Fail(nodes.status());
      for (const proto::NodeInfo& n : nodes->nodes()) {
        if (n.name() != node) continue;
        if (!n.has_agent_stats()) return Fail(fmt::format("{} has sent no status yet", node));
        if (g.json) {
          PrintJson(n);
        } else {
          fmt::print("{}", CachedStatus(n));
        }
        return 0;
      }
      return Fail(fmt::format("no node {} is known to the station", node));
    }
    auto s = RunOnNode(client, g, node, kMethodStatus, {});
    if (!s.ok()) {
      return Fail(absl::StrCat(s.status().message(), " (the last known status: stewardctl status --cached ", node, ")"));
    }
    if (const std::string why = Failure(*s); !why.empty()) return Fail(why);
    proto::AgentStatus st;
    if (!st.ParseFromString(s->result().payload())) return Fail(fmt::format("{} sent a malformed status", node));
    if (g.json) {
      PrintJson(st);
    } else {
      fmt::print("{}", LiveStatus(st));
    }
    return 0;
  });
}


}  // namespace

Runner SetupStatus(CLI::App& cmd) {
  struct Options {
    std::string node;
    bool cached = false;
  };
  auto o = std::make_shared<Options>();
  cmd.add_option("NODE", o->node, "The node")->required();
  cmd.add_flag("--cached", o->cached,
               "The last known status, from the node's latest hello (works while it is offline)");
  return [o](const Globals& g) { return Status(g, o->node, o->cached); };
}

Runner SetupProcess(CLI::App& cmd) {
  struct Options {
    std::string node;
    std::string name;
    bool cancel_running = false;
  };
  auto o = std::make_shared<Options>();
  cmd.require_subcommand(1);
  CLI::App* stop = cmd.add_subcommand(
      "stop", "Stop a command handler: no thread, its commands are rejected \"stopped by operator\", across restarts");
  CLI::App* start = cmd.add_subcommand("start", "Start a stopped command handler again");
  for (CLI::App* sub : {stop, start}) {
    sub->add_option("NODE", o->node, "The node")->required();
    sub->add_option("PROCESS", o->name, "METHOD/DOMAIN, as `stewardctl status NODE` names it")->required();
  }
  stop->add_flag("--cancel-running", o->cancel_running,
                 "Kill the command it is running (without it, a busy handler is not stopped)");
  return [o, stop](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      std::vector<std::string> argv = {stop->parsed() ? "stop" : "start", o->name};
      if (o->cancel_running) argv.push_back("--cancel-running");
      auto s = RunOnNode(client, g, o->node, kMethodProcess, argv);
      if (!s.ok()) return Fail(s.status());
      if (g.json) PrintJson(*s);
      if (const std::string why = Failure(*s); !why.empty()) {
        if (!g.json) fmt::print(stderr, "stewardctl: {}\n", Escape(why));
        return 1;
      }
      if (!g.json) {
        fmt::print("{}: {}\n", Escape(o->node), Escape(absl::StripTrailingAsciiWhitespace(s->result().stdout())));
      }
      return 0;
    });
  };
}

Runner SetupConfig(CLI::App& cmd) {
  struct Options {
    std::string node;
    std::vector<std::string> assignments;
    std::string file;
  };
  auto o = std::make_shared<Options>();
  cmd.require_subcommand(1);
  CLI::App* show = cmd.add_subcommand("show", "The agent's effective configuration, where each value came from, its hash");
  CLI::App* set = cmd.add_subcommand("set", "Set keys in the agent's configuration file (validated, then reloaded)");
  CLI::App* push = cmd.add_subcommand("push", "Replace the agent's configuration file (validated, then reloaded)");
  for (CLI::App* sub : {show, set, push}) sub->add_option("NODE", o->node, "The node")->required();
  set->add_option("KEY=VALUE", o->assignments, "heartbeat=10s, syslog.tcp=0.0.0.0:6514 (a list: A,B)")->required();
  push->add_option("FILE", o->file, "A TOML file, as /etc/steward/agent.toml")->required()->check(CLI::ExistingFile);
  return [o, show, set](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      std::vector<std::string> argv;
      std::string payload;
      if (show->parsed()) {
        argv = {"show"};
      } else if (set->parsed()) {
        argv = {"set"};
        argv.insert(argv.end(), o->assignments.begin(), o->assignments.end());
      } else {
        argv = {"push"};
        std::ifstream in(o->file, std::ios::binary);
        std::stringstream text;
        text << in.rdbuf();
        if (!in) return Fail(fmt::format("cannot read {}", o->file));
        payload = text.str();
      }
      auto s = RunOnNode(client, g, o->node, kMethodConfig, argv, payload);
      if (!s.ok()) return Fail(s.status());
      if (g.json) PrintJson(*s);
      if (const std::string why = Failure(*s); !why.empty()) {
        if (!g.json) fmt::print(stderr, "stewardctl: {}\n", Escape(why));
        return 1;
      }
      if (!g.json) std::fwrite(s->result().stdout().data(), 1, s->result().stdout().size(), stdout);
      return 0;
    });
  };
}

}  // namespace steward::ctl
