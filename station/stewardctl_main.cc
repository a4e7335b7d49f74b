// stewardctl: the operator's command line; talks to the station over NATS only.
//
//   stewardctl send ship1 -- uname -a        exits like ssh: remote status, 128+signal,
//   stewardctl send ship1,ship2 -- uptime    or 255 when the command did not run (yet)
//   stewardctl send --all -- df -h /
//   stewardctl ping | nodes | node | show | cancel | history
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "common/creds.h"
#include "common/signing.h"
#include "common/log.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "common/severity.h"
#include "station/broker_config.h"
#include "station/client.h"
#include "station/json.h"
#include "station/station.h"

ABSL_FLAG(std::string, nats, "", "NATS URL (default $STEWARD_NATS_URL or nats://127.0.0.1:4222)");
ABSL_FLAG(std::string, station, "station", "Name of the station");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10),
          "How long to wait for the station, and for a single node's result");
ABSL_FLAG(absl::Duration, wait, absl::ZeroDuration(),
          "send: how long to wait for results (default: --timeout for one node, 30s for a fan-out)");
ABSL_FLAG(bool, all, false, "send: every known node");
ABSL_FLAG(std::string, domain, "",
          "send: domain of the shellcommand subject (default operatingsystem); logs: only this domain");
ABSL_FLAG(std::string, method, "shellcommand",
          "send: the node's method: shellcommand runs the command; echo runs nothing and "
          "answers its arguments (tests the whole delivery path to a unit)");
ABSL_FLAG(bool, shell, false, "send: run the single argument through /bin/sh -c");
ABSL_FLAG(std::string, cwd, "", "send: working directory on the node");
ABSL_FLAG(std::vector<std::string>, env, {}, "send: KEY=VALUE,... added to the environment");
ABSL_FLAG(absl::Duration, exec_timeout, absl::ZeroDuration(),
          "send: kill the command after this long (default: the station's, 10m)");
ABSL_FLAG(absl::Duration, ttl, absl::ZeroDuration(),
          "send: expire the command if not delivered within this long (default 24h)");
ABSL_FLAG(bool, no_wait, false, "send: print the command ids and return at once");
ABSL_FLAG(bool, json, false, "print JSON, one object per line");
ABSL_FLAG(std::string, node, "", "history, logs: only this node");
ABSL_FLAG(std::string, state, "", "history: only commands in this state");
ABSL_FLAG(int, limit, 0, "history: at most this many commands (20); logs: lines (100)");
ABSL_FLAG(absl::Duration, since, absl::ZeroDuration(), "logs: only lines received within this long");
ABSL_FLAG(std::string, severity, "", "logs: only lines this severe or worse (err, warning, ...)");
ABSL_FLAG(std::string, grep, "", "logs: only lines whose message contains this text");
ABSL_FLAG(bool, follow, false, "logs: keep printing new lines as they arrive");
ABSL_FLAG(std::string, keys, "",
          "Keys directory (stewardctl keys init): signs requests with operator.key and uses "
          "creds/operator.creds and tls/ca.pem");
ABSL_FLAG(std::string, operator_key, "", "Sign requests with this operator key");
ABSL_FLAG(std::string, creds, "", "Broker credentials file (user, password)");
ABSL_FLAG(std::string, tls_ca, "", "CA bundle: connect to NATS over TLS and verify the server");
ABSL_FLAG(std::vector<std::string>, hosts, std::vector<std::string>({"127.0.0.1", "localhost"}),
          "keys init: names and addresses of the broker's TLS certificate");
ABSL_FLAG(std::string, listen, "127.0.0.1:4222", "nats-config: the broker's host:port");
ABSL_FLAG(std::vector<std::string>, allow, {}, "acl set: rules, \"method\" or \"method:argv-glob\"");
ABSL_FLAG(bool, pending, false, "nodes: only nodes whose key waits for `stewardctl accept`");
ABSL_FLAG(std::string, by, "", "audit: only commands sent by this operator (name or key id)");

namespace {

using steward::proto::CommandState;
using steward::station::Client;

constexpr int kExitUnknown = 255;

int Fail(const std::string& why) {
  fmt::print(stderr, "stewardctl: {}\n", why);
  return kExitUnknown;
}

std::string Ago(int64_t unix_ms) {
  if (unix_ms == 0) return "never";
  const absl::Duration d = absl::Now() - absl::FromUnixMillis(unix_ms);
  if (d < absl::Seconds(1)) return "just now";
  return absl::FormatDuration(absl::Trunc(d, absl::Seconds(1))) + " ago";
}

// The exit status a finished command maps to, ssh style.
int ExitStatusOf(const CommandState& s) {
  const steward::proto::Ack& r = s.result();
  if (!steward::IsTerminal(s.state())) return kExitUnknown;
  if (s.state() == steward::proto::STATE_REJECTED || s.state() == steward::proto::STATE_EXPIRED || s.state() == steward::proto::STATE_CANCELED) return kExitUnknown;
  if (r.term_signal() != 0) return 128 + r.term_signal();
  if (r.outcome() == steward::proto::OUTCOME_ERROR) return kExitUnknown;
  return r.exit_code() >= 0 ? r.exit_code() : kExitUnknown;
}

// One line on stderr saying why a command did not simply exit.
std::string Why(const CommandState& s) {
  const steward::proto::Ack& r = s.result();
  if (s.state() == steward::proto::STATE_REJECTED) return fmt::format("rejected by {}: {}", s.node(), r.error());
  if (s.state() == steward::proto::STATE_EXPIRED || s.state() == steward::proto::STATE_CANCELED) {
    return fmt::format("command {} {} before {} ran it", s.id(), steward::StateName(s.state()), s.node());
  }
  if (r.outcome() == steward::proto::OUTCOME_ERROR) {
    return fmt::format("{} could not run the command: {}", s.node(), r.error());
  }
  if (!r.error().empty()) return fmt::format("{}: {}", s.node(), r.error());
  return "";
}

void WriteAll(FILE* f, const std::string& data) {
  std::fwrite(data.data(), 1, data.size(), f);
  std::fflush(f);
}

// Output of one node's command; `prefix` each line with "node: " in a fan-out.
void PrintResult(const CommandState& s, bool prefix) {
  if (absl::GetFlag(FLAGS_json)) {
    fmt::print("{}\n", steward::station::CommandJson(s));
    std::fflush(stdout);
    return;
  }
  const steward::proto::Ack& r = s.result();
  auto emit = [&](FILE* f, const std::string& data) {
    if (!prefix) return WriteAll(f, data);
    absl::string_view text(data);
    if (text.empty()) return;
    if (text.back() == '\n') text.remove_suffix(1);
    for (absl::string_view line : absl::StrSplit(text, '\n')) fmt::print(f, "{}: {}\n", s.node(), line);
    std::fflush(f);
  };
  emit(stdout, r.stdout());
  emit(stderr, r.stderr());
  if (r.stdout_truncated()) fmt::print(stderr, "stewardctl: stdout of {} was truncated\n", s.node());
  if (r.stderr_truncated()) fmt::print(stderr, "stewardctl: stderr of {} was truncated\n", s.node());
  const std::string why = Why(s);
  if (!why.empty()) fmt::print(stderr, "stewardctl: {}\n", why);
  if (prefix && ExitStatusOf(s) != 0) fmt::print(stderr, "{}: [exit {}]\n", s.node(), ExitStatusOf(s));
}

steward::proto::SubmitRequest BuildSubmit(const std::string& nodes, const std::vector<std::string>& argv) {
  steward::proto::SubmitRequest req;
  for (absl::string_view n : absl::StrSplit(nodes, ',', absl::SkipEmpty())) req.add_nodes(std::string(n));
  req.set_all_nodes(absl::GetFlag(FLAGS_all));
  steward::proto::Envelope* cmd = req.mutable_command();
  cmd->set_method(absl::GetFlag(FLAGS_method));
  cmd->set_domain(absl::GetFlag(FLAGS_domain).empty() ? "operatingsystem" : absl::GetFlag(FLAGS_domain));
  for (const std::string& a : argv) cmd->add_argv(a);
  cmd->mutable_shell()->set_use_shell(absl::GetFlag(FLAGS_shell));
  cmd->mutable_shell()->set_working_dir(absl::GetFlag(FLAGS_cwd));
  for (const std::string& e : absl::GetFlag(FLAGS_env)) cmd->mutable_shell()->add_env(e);
  cmd->set_timeout_ms(absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_exec_timeout)));
  if (absl::GetFlag(FLAGS_ttl) > absl::ZeroDuration()) {
    cmd->set_expires_unix_ms(absl::ToUnixMillis(absl::Now() + absl::GetFlag(FLAGS_ttl)));
  }
  return req;
}

int Send(Client& client, std::vector<std::string> args) {
  const bool all = absl::GetFlag(FLAGS_all);
  std::string nodes;
  if (!all) {
    if (args.empty()) return Fail("usage: stewardctl send NODE[,NODE...] -- COMMAND [ARG...]");
    nodes = args[0];
    args.erase(args.begin());
  }
  if (args.empty()) return Fail("usage: stewardctl send NODE[,NODE...] -- COMMAND [ARG...]");
  const bool no_wait = absl::GetFlag(FLAGS_no_wait);
  // One node: send and wait in one round trip. A fan-out prints results as they come.
  const bool one_node = !all && nodes.find(',') == std::string::npos;
  absl::Duration wait = absl::GetFlag(FLAGS_wait);
  if (wait <= absl::ZeroDuration()) wait = one_node ? absl::GetFlag(FLAGS_timeout) : absl::Seconds(30);
  const absl::Time deadline = absl::Now() + wait;
  steward::proto::SubmitRequest req = BuildSubmit(nodes, args);
  if (one_node && !no_wait) req.set_wait_ms(absl::ToInt64Milliseconds(wait));
  auto submitted = client.Submit(req, absl::GetFlag(FLAGS_timeout));
  if (!submitted.ok()) {
    std::string why(submitted.status().message());
    if (req.wait_ms() > 0 && absl::IsDeadlineExceeded(submitted.status())) {
      // Send-and-wait: the station may have stored the command and then gone away.
      absl::StrAppend(&why, " (if it took the command, `stewardctl history --node ", nodes,
                      "` shows it)");
    }
    return Fail(why);
  }
  if (no_wait) {
    for (const auto& ref : submitted->commands()) fmt::print("{} {}\n", ref.node(), ref.id());
    return 0;
  }
  const bool fanout = all || submitted->commands_size() > 1;
  std::vector<std::string> remaining;
  for (const auto& ref : submitted->commands()) remaining.push_back(ref.id());
  int rc = 0;
  for (const CommandState& s : submitted->states()) {
    if (!steward::IsTerminal(s.state())) continue;
    PrintResult(s, fanout);
    rc = std::max(rc, ExitStatusOf(s));
    remaining.erase(std::remove(remaining.begin(), remaining.end(), s.id()), remaining.end());
  }
  while (!remaining.empty() && absl::Now() < deadline) {
    auto states = client.Wait(remaining, deadline - absl::Now(), /*any=*/true);
    if (!states.ok()) return Fail(std::string(states.status().message()));
    for (const CommandState& s : states->commands()) {
      PrintResult(s, fanout);
      rc = std::max(rc, ExitStatusOf(s));
      remaining.erase(std::remove(remaining.begin(), remaining.end(), s.id()), remaining.end());
    }
  }
  if (remaining.empty()) return rc;
  auto late = client.Show(remaining, "", absl::GetFlag(FLAGS_timeout));
  if (!late.ok()) return Fail(std::string(late.status().message()));
  if (!fanout) {
    const CommandState& s = late->commands(0);
    if (s.state() == steward::proto::STATE_RUNNING) {
      return Fail(fmt::format("command {} still running on {} after {} (stewardctl show {})", s.id(),
                              s.node(), absl::FormatDuration(wait), s.id()));
    }
    return Fail(fmt::format("node {} did not answer within {}; command {} stays {} (stewardctl show {})",
                            s.node(), absl::FormatDuration(wait), s.id(), steward::StateName(s.state()), s.id()));
  }
  std::vector<std::string> names;
  for (const CommandState& s : late->commands()) names.push_back(s.node() + " (" + steward::StateName(s.state()) + ")");
  fmt::print(stderr,
             "stewardctl: no result yet after {} from {} of {} nodes: {}\n"
             "stewardctl: their commands stay queued and run when the nodes are heard from "
             "(stewardctl show {})\n",
             absl::FormatDuration(wait), names.size(), submitted->commands_size(),
             absl::StrJoin(names, ", "), submitted->request_id());
  return kExitUnknown;
}

int Ping(Client& client, const std::vector<std::string>& args) {
  if (args.size() != 1) return Fail("usage: stewardctl ping NODE");
  const absl::Time start = absl::Now();
  auto pong = client.Ping(args[0], absl::GetFlag(FLAGS_timeout));
  if (!pong.ok()) return Fail(std::string(pong.status().message()));
  fmt::print("{}: round trip {:.3f} ms (station to node {:.3f} ms)\n", pong->node(),
             absl::ToDoubleMilliseconds(absl::Now() - start),
             static_cast<double>(pong->station_rtt_us()) / 1000.0);
  return 0;
}

void PrintCommandRow(const CommandState& s) {
  const auto& r = s.result();
  std::string outcome = steward::StateName(s.state());
  if (s.has_result() && r.stage() == steward::proto::STAGE_RESULT && s.state() != steward::proto::STATE_REJECTED) {
    outcome += r.term_signal() != 0 ? fmt::format(" (signal {})", r.term_signal())
                                    : fmt::format(" (exit {})", r.exit_code());
  }
  // Commands other than shell commands say what they are ("echo: hello").
  std::string what = absl::StrJoin(s.command().argv(), " ");
  if (s.command().method() != steward::kMethodShell) what = absl::StrCat(s.command().method(), ": ", what);
  fmt::print("{}  {:<12} {:<22} {:<14} {}\n", s.id(), s.node(), outcome, Ago(s.created_unix_ms()), what);
}

int Nodes(Client& client, const std::string& node) {
  auto nodes = client.Nodes(node, absl::GetFlag(FLAGS_timeout));
  if (!nodes.ok()) return Fail(std::string(nodes.status().message()));
  if (absl::GetFlag(FLAGS_json)) {
    for (const auto& n : nodes->nodes()) fmt::print("{}\n", steward::station::NodeJson(n));
    for (const auto& c : nodes->recent()) fmt::print("{}\n", steward::station::CommandJson(c));
    return 0;
  }
  if (!absl::GetFlag(FLAGS_pending)) {
    fmt::print("{:<16} {:<8} {:<14} {:<14} {:<8} {:>7}  {}\n", "NODE", "STATE", "SINCE", "LAST-HEARD",
               "VERSION", "PENDING", "LAST-COMMAND");
  }
  for (const auto& n : nodes->nodes()) {
    if (absl::GetFlag(FLAGS_pending)) {
      if (!n.pending_key().empty()) {
        fmt::print("{:<16} pending key {}  (stewardctl accept {})\n", n.name(),
                   steward::signing::KeyId(n.pending_key()), n.name());
      }
      continue;
    }
    fmt::print("{:<16} {:<8} {:<14} {:<14} {:<8} {:>7}  {}\n", n.name(), n.online() ? "online" : "offline",
               Ago(n.since_unix_ms()), Ago(n.last_heard_unix_ms()), n.version().empty() ? "-" : n.version(),
               n.pending(), n.last_command_id().empty() ? "-" : n.last_command_id() + " " + n.last_command_state());
    if (!node.empty()) {
      fmt::print("  hostname: {}\n  os: {}\n  load: {:.2f}\n  methods: {}\n  heartbeat: {} ms\n"
                 "  errors reported: {}\n  last log: {}\n  log lines: {} ({} error or worse, {:.1f}/min "
                 "over 10 min; {} dropped by the agent)\n",
                 n.hostname(), n.os(), n.load1(), absl::StrJoin(n.methods(), ", "), n.heartbeat_ms(), n.errors(),
                 Ago(n.last_log_unix_ms()), n.log_lines(), n.log_errors(), n.log_errors_per_min(), n.log_dropped());
      fmt::print("  key: {}\n  acl: {}\n",
                 !n.public_key().empty()    ? "accepted " + steward::signing::KeyId(n.public_key())
                 : !n.pending_key().empty() ? "pending " + steward::signing::KeyId(n.pending_key())
                                            : "none",
                 n.acl().empty() ? "-" : absl::StrJoin(n.acl(), " "));
    }
  }
  if (!node.empty() && nodes->recent_size() > 0) {
    fmt::print("recent commands:\n");
    for (const auto& c : nodes->recent()) PrintCommandRow(c);
  }
  return 0;
}

// The station left rows out so that its reply fits one message: say so.
void NoteIncomplete(const steward::proto::CommandStates& states) {
  if (!states.incomplete()) return;
  fmt::print(stderr,
             "stewardctl: only the first {} commands fit in one reply; ask for fewer "
             "(--limit, fewer ids)\n",
             states.commands_size());
}

int Show(Client& client, const std::vector<std::string>& ids) {
  if (ids.empty()) return Fail("usage: stewardctl show ID... | REQUEST-ID");
  auto states = client.Show(ids, "", absl::GetFlag(FLAGS_timeout));
  if (!states.ok() && ids.size() == 1) states = client.Show({}, ids[0], absl::GetFlag(FLAGS_timeout));
  if (!states.ok()) return Fail(std::string(states.status().message()));
  for (const CommandState& s : states->commands()) {
    if (absl::GetFlag(FLAGS_json)) {
      fmt::print("{}\n", steward::station::CommandJson(s));
      continue;
    }
    const auto& r = s.result();
    fmt::print("command {}\n  node: {}\n  request: {}\n  state: {}\n  argv: {}\n  operator: {}\n"
               "  attempts: {}\n  created: {}\n  updated: {}\n",
               s.id(), s.node(), s.request_id(), steward::StateName(s.state()), absl::StrJoin(s.command().argv(), " "),
               s.command().operator_(), s.attempts(), Ago(s.created_unix_ms()), Ago(s.updated_unix_ms()));
    if (s.has_result()) {
      fmt::print("  outcome: {}\n  exit code: {}\n  signal: {}\n", steward::OutcomeName(r.outcome()),
                 r.exit_code(), r.term_signal());
      if (r.finished_unix_ms() > 0 && r.started_unix_ms() > 0) {
        fmt::print("  ran: {} ms\n", r.finished_unix_ms() - r.started_unix_ms());
      }
      if (!r.error().empty()) fmt::print("  error: {}\n", r.error());
      fmt::print("  stdout{}:\n{}  stderr{}:\n{}", r.stdout_truncated() ? " (truncated)" : "", r.stdout(),
                 r.stderr_truncated() ? " (truncated)" : "", r.stderr());
    }
  }
  NoteIncomplete(*states);
  return 0;
}

int History(Client& client) {
  steward::proto::HistoryRequest req;
  req.set_node(absl::GetFlag(FLAGS_node));
  req.set_state(absl::GetFlag(FLAGS_state));
  req.set_limit(absl::GetFlag(FLAGS_limit) > 0 ? absl::GetFlag(FLAGS_limit) : 20);
  auto states = client.History(req, absl::GetFlag(FLAGS_timeout));
  if (!states.ok()) return Fail(std::string(states.status().message()));
  for (const CommandState& s : states->commands()) {
    if (absl::GetFlag(FLAGS_json)) {
      fmt::print("{}\n", steward::station::CommandJson(s));
    } else {
      PrintCommandRow(s);
    }
  }
  NoteIncomplete(*states);
  return 0;
}

std::string LogJson(const steward::proto::LogEntry& e) {
  const auto& r = e.record();
  std::string sd = "[";
  for (int i = 0; i < r.sd_size(); ++i) {
    std::string params = "{";
    for (int j = 0; j < r.sd(i).params_size(); ++j) {
      params += fmt::format("{}{}:{}", j ? "," : "", steward::station::JsonString(r.sd(i).params(j).name()),
                            steward::station::JsonString(r.sd(i).params(j).value()));
    }
    sd += fmt::format("{}{{\"id\":{},\"params\":{}}}}}", i ? "," : "", steward::station::JsonString(r.sd(i).id()),
                      params);
  }
  sd += "]";
  using steward::station::JsonString;
  return fmt::format(
      "{{\"node\":{},\"domain\":{},\"source\":{},\"format\":{},\"facility\":{},\"severity\":{},"
      "\"severity_name\":{},\"timestamp_unix_us\":{},\"received_unix_us\":{},\"hostname\":{},"
      "\"app_name\":{},\"procid\":{},\"msgid\":{},\"structured_data\":{},\"sd\":{},\"message\":{},"
      "\"parse_error\":{},\"truncated\":{},\"cursor\":{}}}",
      JsonString(e.node()), JsonString(r.domain()), JsonString(r.source()), JsonString(r.format()),
      r.facility(), r.severity(), JsonString(steward::SeverityName(r.severity())), r.timestamp_unix_us(),
      r.received_unix_us(), JsonString(r.hostname()), JsonString(r.app_name()), JsonString(r.procid()),
      JsonString(r.msgid()), JsonString(r.structured_data()), sd, JsonString(r.message()),
      r.parse_error() ? "true" : "false", r.truncated() ? "true" : "false", JsonString(e.cursor()));
}

void PrintLog(const steward::proto::LogEntry& e) {
  if (absl::GetFlag(FLAGS_json)) {
    fmt::print("{}\n", LogJson(e));
    return;
  }
  const auto& r = e.record();
  const int64_t us = r.timestamp_unix_us() != 0 ? r.timestamp_unix_us() : r.received_unix_us();
  const std::string when = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMicros(us), absl::UTCTimeZone());
  std::string what = r.app_name().empty() ? r.domain() : r.app_name();
  if (!r.procid().empty()) what += "[" + r.procid() + "]";
  fmt::print("{} {} {} {}: {}{}\n", when, e.node(), what, steward::SeverityName(r.severity()), r.message(),
             r.truncated() ? " [truncated]" : "");
}

int Logs(Client& client) {
  steward::proto::LogsRequest req;
  req.set_node(absl::GetFlag(FLAGS_node));
  req.set_domain(absl::GetFlag(FLAGS_domain));
  req.set_grep(absl::GetFlag(FLAGS_grep));
  req.set_limit(absl::GetFlag(FLAGS_limit) > 0 ? absl::GetFlag(FLAGS_limit) : 100);
  req.set_max_severity(-1);
  if (const std::string sev = absl::GetFlag(FLAGS_severity); !sev.empty()) {
    const int n = steward::SeverityFromName(sev);
    if (n < 0) return Fail("unknown severity \"" + sev + "\" (emerg alert crit err warning notice info debug)");
    req.set_max_severity(n);
  }
  if (absl::GetFlag(FLAGS_since) > absl::ZeroDuration()) {
    req.set_since_unix_ms(absl::ToUnixMillis(absl::Now() - absl::GetFlag(FLAGS_since)));
  }
  auto page = client.Logs(req, absl::GetFlag(FLAGS_timeout));
  if (!page.ok()) return Fail(std::string(page.status().message()));
  for (const auto& e : page->entries()) PrintLog(e);
  std::fflush(stdout);
  if (!absl::GetFlag(FLAGS_follow)) return 0;
  req.set_after(page->cursor());
  req.set_limit(1000);
  while (true) {
    auto next = client.Logs(req, absl::GetFlag(FLAGS_timeout));
    if (!next.ok()) {
      fmt::print(stderr, "stewardctl: {} (retrying)\n", next.status().message());
    } else {
      for (const auto& e : next->entries()) PrintLog(e);
      std::fflush(stdout);
      req.set_after(next->cursor());
      if (next->entries_size() >= req.limit()) continue;  // more waiting
    }
    absl::SleepFor(absl::Milliseconds(300));
  }
}

// ---- keys and broker configuration (no station needed) ----

std::string KeysDir() {
  const std::string k = absl::GetFlag(FLAGS_keys);
  return k.empty() ? "steward-keys" : k;
}

int KeysInit() {
  const std::string dir = KeysDir();
  std::error_code ec;
  std::filesystem::create_directories(dir + "/tls", ec);
  std::filesystem::create_directories(dir + "/creds", ec);
  std::filesystem::create_directories(dir + "/nodes", ec);
  if (ec) return Fail("cannot create " + dir + ": " + ec.message());
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  for (const char* who : {"station", "operator"}) {
    auto pair = steward::signing::Generate();
    if (!pair.ok()) return Fail(std::string(pair.status().message()));
    if (absl::Status st = steward::signing::WriteKeyPair(*pair, dir + "/" + who, who); !st.ok()) {
      return Fail(std::string(st.message()));
    }
  }
  if (absl::Status st = steward::station::GenerateTls(dir + "/tls", absl::GetFlag(FLAGS_hosts)); !st.ok()) {
    return Fail(std::string(st.message()));
  }
  for (const char* who : {"station", "operator"}) {
    absl::Status st = steward::WriteCreds(dir + "/creds/" + who + ".creds", {who, steward::station::RandomPassword()});
    if (!st.ok()) return Fail(std::string(st.message()));
  }
  fmt::print("keys in {}:\n  station.key/.pub   signs commands (steward-station --keys {})\n"
             "  operator.key/.pub  signs your requests (stewardctl --keys {})\n"
             "  tls/               CA and broker certificate\n  creds/             broker users\n"
             "next: stewardctl --keys {} enroll NODE; stewardctl --keys {} nats-config > nats.conf\n",
             dir, dir, dir, dir, dir);
  return 0;
}

int NatsConfig() {
  const std::string dir = KeysDir();
  steward::station::BrokerConfigOptions opts;
  opts.listen = absl::GetFlag(FLAGS_listen);
  opts.station = absl::GetFlag(FLAGS_station);
  opts.tls_dir = std::filesystem::absolute(dir + "/tls").string();
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/creds", ec)) {
    if (e.path().extension() != ".creds") continue;
    auto c = steward::ReadCreds(e.path().string());
    if (!c.ok()) return Fail(std::string(c.status().message()));
    using Role = steward::station::BrokerUser::Role;
    const Role role = c->user == "station" ? Role::kStation : c->user == "operator" ? Role::kOperator : Role::kNode;
    opts.users.push_back({c->user, c->password, role});
  }
  if (ec) return Fail("cannot read " + dir + "/creds: " + ec.message());
  auto text = steward::station::NatsServerConfig(opts);
  if (!text.ok()) return Fail(std::string(text.status().message()));
  fmt::print("{}", *text);
  fmt::print(stderr, "stewardctl: the configuration holds passwords: keep it private (chmod 600)\n");
  return 0;
}

int Enroll(const std::vector<std::string>& args) {
  if (args.size() != 1) return Fail("usage: stewardctl --keys DIR enroll NODE");
  const std::string dir = KeysDir();
  const std::string& node = args[0];
  if (absl::Status st = steward::station::ValidateBrokerUserName(node); !st.ok()) return Fail(std::string(st.message()));
  if (node == "station" || node == "operator") return Fail("\"" + node + "\" is reserved");
  const std::string bundle = dir + "/nodes/" + node;
  std::error_code ec;
  std::filesystem::create_directories(bundle, ec);
  if (ec) return Fail("cannot create " + bundle + ": " + ec.message());
  const steward::BrokerCreds creds{node, steward::station::RandomPassword()};
  for (const std::string& path : {dir + "/creds/" + node + ".creds", bundle + "/" + node + ".creds"}) {
    if (absl::Status st = steward::WriteCreds(path, creds); !st.ok()) return Fail(std::string(st.message()));
  }
  std::filesystem::copy_file(dir + "/tls/ca.pem", bundle + "/ca.pem", std::filesystem::copy_options::overwrite_existing, ec);
  if (!ec) {
    std::filesystem::copy_file(dir + "/station.pub", bundle + "/station.pub",
                               std::filesystem::copy_options::overwrite_existing, ec);
  }
  if (ec) return Fail("cannot write the trust bundle: " + ec.message());
  fmt::print("enrolled {}: copy {} to the node and run\n"
             "  steward-agent --node {} --creds {}.creds --tls-ca ca.pem --trust station.pub --nats tls://BROKER:4222\n"
             "then regenerate the broker config (stewardctl nats-config), reload nats-server, and once the node\n"
             "has announced its key: stewardctl accept {}\n",
             node, bundle, node, node, node);
  return 0;
}

int Accept(Client& client, const std::vector<std::string>& args) {
  if (args.size() != 1) return Fail("usage: stewardctl accept NODE");
  auto r = client.Accept(args[0], absl::GetFlag(FLAGS_timeout));
  if (!r.ok()) return Fail(std::string(r.status().message()));
  for (const std::string& l : r->lines()) fmt::print("{}\n", l);
  return 0;
}

int AclCommand(Client& client, const std::vector<std::string>& args) {
  if (args.size() != 2 || (args[0] != "set" && args[0] != "show")) {
    return Fail("usage: stewardctl acl set NODE|@GROUP --allow RULE[,RULE...] | acl show NODE|@GROUP");
  }
  steward::proto::AclRequest req;
  req.set_target(args[1]);
  req.set_show(args[0] == "show");
  for (const std::string& r : absl::GetFlag(FLAGS_allow)) req.add_rules(r);
  auto r = client.Acl(req, absl::GetFlag(FLAGS_timeout));
  if (!r.ok()) return Fail(std::string(r.status().message()));
  for (const std::string& l : r->lines()) fmt::print("{}\n", l);
  return 0;
}

int Group(Client& client, const std::vector<std::string>& args) {
  if (args.size() != 3 || args[0] != "set") return Fail("usage: stewardctl group set NAME NODE[,NODE...]");
  steward::proto::AclRequest req;
  req.set_target(args[1]);
  req.set_define_group(true);
  for (absl::string_view n : absl::StrSplit(args[2], ',', absl::SkipEmpty())) req.add_members(std::string(n));
  auto r = client.Acl(req, absl::GetFlag(FLAGS_timeout));
  if (!r.ok()) return Fail(std::string(r.status().message()));
  for (const std::string& l : r->lines()) fmt::print("{}\n", l);
  return 0;
}

int Audit(Client& client) {
  steward::proto::AuditRequest req;
  req.set_node(absl::GetFlag(FLAGS_node));
  req.set_operator_(absl::GetFlag(FLAGS_by));
  req.set_limit(absl::GetFlag(FLAGS_limit));
  auto r = client.Audit(req, absl::GetFlag(FLAGS_timeout));
  if (!r.ok()) return Fail(std::string(r.status().message()));
  for (const CommandState& s : r->commands()) {
    if (absl::GetFlag(FLAGS_json)) {
      fmt::print("{}\n", steward::station::CommandJson(s));
      continue;
    }
    const std::string when = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(s.created_unix_ms()),
                                              absl::UTCTimeZone());
    fmt::print("{}  {:<28} {:<12} {:<10} {} {}\n", when, s.command().operator_(), s.node(), steward::StateName(s.state()),
               s.command().method(), absl::StrJoin(s.command().argv(), " "));
  }
  NoteIncomplete(*r);
  return 0;
}

int Cancel(Client& client, const std::vector<std::string>& ids) {
  if (ids.empty()) return Fail("usage: stewardctl cancel ID...");
  auto states = client.Cancel(ids, absl::GetFlag(FLAGS_timeout));
  if (!states.ok()) return Fail(std::string(states.status().message()));
  for (const CommandState& s : states->commands()) fmt::print("{} {} canceled\n", s.id(), s.node());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "stewardctl [flags] send NODE[,NODE...]|--all -- COMMAND [ARG...] | ping NODE | nodes | "
      "node NAME | show ID...|REQUEST-ID | cancel ID... | history [--node N] [--state S] [--limit N] | "
      "logs [--node N] [--domain D] [--since 10m] [--severity warning] [--grep TEXT] [--follow] | "
      "keys init | nats-config | enroll NODE | nodes --pending | accept NODE | "
      "acl set NODE|@GROUP --allow RULE,... | acl show NODE|@GROUP | group set NAME NODE,... | audit [--by OP]");
  std::vector<std::string> storage;
  std::vector<char*> cargs = steward::NormalizeFlags(argc, argv, storage);
  std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(cargs.size() - 1), cargs.data());
  std::vector<std::string> args;
  for (size_t i = 1; i < positional.size(); ++i) args.emplace_back(positional[i]);
  if (args.empty()) return Fail("no subcommand; try --help");
  const std::string sub = args[0];
  args.erase(args.begin());

  steward::station::ClientOptions opts;
  opts.station = absl::GetFlag(FLAGS_station);
  opts.nats.url = absl::GetFlag(FLAGS_nats).empty() ? steward::DefaultNatsUrl() : absl::GetFlag(FLAGS_nats);
  if (sub == "keys") return args.size() == 1 && args[0] == "init" ? KeysInit() : Fail("usage: stewardctl keys init");
  if (sub == "nats-config") return NatsConfig();
  if (sub == "enroll") return Enroll(args);
  opts.nats.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  const char* user = std::getenv("USER");
  opts.operator_name = user != nullptr ? user : "unknown";
  const std::string keys = absl::GetFlag(FLAGS_keys);
  std::string creds = absl::GetFlag(FLAGS_creds);
  std::string operator_key = absl::GetFlag(FLAGS_operator_key);
  if (!keys.empty()) {
    if (operator_key.empty()) operator_key = keys + "/operator.key";
    if (creds.empty() && std::filesystem::exists(keys + "/creds/operator.creds")) creds = keys + "/creds/operator.creds";
    if (opts.nats.tls_ca_file.empty() && std::filesystem::exists(keys + "/tls/ca.pem")) {
      opts.nats.tls_ca_file = keys + "/tls/ca.pem";
    }
  }
  if (!operator_key.empty()) {
    auto key = steward::signing::LoadKeyPair(operator_key);
    if (!key.ok()) return Fail(std::string(key.status().message()));
    opts.operator_key = *key;
  }
  if (!creds.empty()) {
    auto c = steward::ReadCreds(creds);
    if (!c.ok()) return Fail(std::string(c.status().message()));
    opts.nats.user = c->user;
    opts.nats.password = c->password;
  }

  steward::nats::Library nats_library;
  auto client = Client::Connect(opts);
  if (!client.ok()) return Fail(std::string(client.status().message()));
  Client& c = **client;
  if (sub == "send") return Send(c, args);
  if (sub == "ping") return Ping(c, args);
  if (sub == "nodes") return Nodes(c, "");
  if (sub == "node") return args.size() == 1 ? Nodes(c, args[0]) : Fail("usage: stewardctl node NAME");
  if (sub == "show") return Show(c, args);
  if (sub == "history") return History(c);
  if (sub == "cancel") return Cancel(c, args);
  if (sub == "logs") return Logs(c);
  if (sub == "accept") return Accept(c, args);
  if (sub == "acl") return AclCommand(c, args);
  if (sub == "group") return Group(c, args);
  if (sub == "audit") return Audit(c);
  return Fail("unknown subcommand \"" + sub + "\"; try --help");
}
