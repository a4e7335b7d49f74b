// stewardctl: the operator's command line; talks to the station over NATS only.
//
//   stewardctl send ship1 -- uname -a        exit status as ssh: remote status, 128+signal,
//   stewardctl ping ship1                    or 255 when the command did not run
//   stewardctl nodes | node NAME | show ID
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "station/client.h"
#include "station/station.h"

ABSL_FLAG(std::string, nats, "", "NATS URL (default $STEWARD_NATS_URL or nats://127.0.0.1:4222)");
ABSL_FLAG(std::string, station, "station", "Name of the station");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "How long to wait for an answer");
ABSL_FLAG(std::string, domain, "operatingsystem", "send: domain of the shellcommand subject");
ABSL_FLAG(bool, shell, false, "send: run the single argument through /bin/sh -c");
ABSL_FLAG(std::string, cwd, "", "send: working directory on the node");
ABSL_FLAG(std::vector<std::string>, env, {}, "send: KEY=VALUE,... added to the environment");
ABSL_FLAG(absl::Duration, exec_timeout, absl::ZeroDuration(),
          "send: kill the command after this long (default: the station's, 10m)");
ABSL_FLAG(absl::Duration, ttl, absl::ZeroDuration(),
          "send: expire the command if not delivered within this long (default 24h)");
ABSL_FLAG(bool, no_wait, false, "send: print the command id and return at once");
ABSL_FLAG(std::string, creds, "", "NATS credentials file");
ABSL_FLAG(std::string, tls_ca, "", "CA bundle: connect to NATS over TLS");

namespace {

using steward::proto::CommandState;

constexpr int kExitUnknown = 255;

int Fail(const std::string& why) {
  fmt::print(stderr, "stewardctl: {}\n", why);
  return kExitUnknown;
}

std::string Ago(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatDuration(absl::Trunc(absl::Now() - absl::FromUnixMillis(unix_ms), absl::Seconds(1))) + " ago";
}

// Prints one finished command's output and returns the exit status for it.
int Report(const CommandState& s, absl::Duration waited) {
  const steward::proto::Ack& r = s.result();
  if (!steward::station::IsTerminalState(s.state())) {
    if (s.state() == "running") {
      return Fail(fmt::format("command {} still running on {} after {} (stewardctl show {})",
                              s.id(), s.node(), absl::FormatDuration(waited), s.id()));
    }
    return Fail(fmt::format("node {} did not answer within {}; command {} stays {} "
                            "(stewardctl show {})",
                            s.node(), absl::FormatDuration(waited), s.id(), s.state(), s.id()));
  }
  std::fwrite(r.stdout().data(), 1, r.stdout().size(), stdout);
  std::fflush(stdout);
  std::fwrite(r.stderr().data(), 1, r.stderr().size(), stderr);
  if (r.stdout_truncated()) fmt::print(stderr, "stewardctl: stdout of {} was truncated\n", s.node());
  if (r.stderr_truncated()) fmt::print(stderr, "stewardctl: stderr of {} was truncated\n", s.node());
  if (s.state() == "rejected") return Fail(fmt::format("rejected by {}: {}", s.node(), r.error()));
  if (s.state() == "expired" || s.state() == "canceled") {
    return Fail(fmt::format("command {} {} before {} ran it", s.id(), s.state(), s.node()));
  }
  if (r.term_signal() != 0) {
    if (!r.error().empty()) fmt::print(stderr, "stewardctl: {}: {}\n", s.node(), r.error());
    return 128 + r.term_signal();
  }
  if (r.outcome() == steward::proto::OUTCOME_ERROR) {
    return Fail(fmt::format("{} could not run the command: {}", s.node(), r.error()));
  }
  return r.exit_code() >= 0 ? r.exit_code() : kExitUnknown;
}

int Send(steward::station::Client& client, const std::vector<std::string>& args) {
  // args: NODE [--] ARGV...
  if (args.size() < 2) return Fail("usage: stewardctl send NODE -- COMMAND [ARG...]");
  steward::proto::SubmitRequest req;
  for (absl::string_view n : absl::StrSplit(args[0], ',', absl::SkipEmpty())) req.add_nodes(std::string(n));
  steward::proto::Envelope* cmd = req.mutable_command();
  cmd->set_method(steward::kMethodShell);
  cmd->set_domain(absl::GetFlag(FLAGS_domain));
  for (size_t i = 1; i < args.size(); ++i) cmd->add_argv(args[i]);
  cmd->mutable_shell()->set_use_shell(absl::GetFlag(FLAGS_shell));
  cmd->mutable_shell()->set_working_dir(absl::GetFlag(FLAGS_cwd));
  for (const std::string& e : absl::GetFlag(FLAGS_env)) cmd->mutable_shell()->add_env(e);
  cmd->set_timeout_ms(absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_exec_timeout)));
  if (absl::GetFlag(FLAGS_ttl) > absl::ZeroDuration()) {
    cmd->set_expires_unix_ms(absl::ToUnixMillis(absl::Now() + absl::GetFlag(FLAGS_ttl)));
  }
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  auto submitted = client.Submit(req, timeout);
  if (!submitted.ok()) return Fail(std::string(submitted.status().message()));
  std::vector<std::string> ids;
  for (const auto& ref : submitted->commands()) ids.push_back(ref.id());
  if (absl::GetFlag(FLAGS_no_wait)) {
    for (const auto& ref : submitted->commands()) fmt::print("{} {}\n", ref.node(), ref.id());
    return 0;
  }
  auto states = client.Wait(ids, timeout);
  if (!states.ok()) return Fail(std::string(states.status().message()));
  int rc = 0;
  for (const CommandState& s : states->commands()) {
    const int one = Report(s, timeout);
    rc = std::max(rc, one);
  }
  return rc;
}

int Ping(steward::station::Client& client, const std::vector<std::string>& args) {
  if (args.size() != 1) return Fail("usage: stewardctl ping NODE");
  const absl::Time start = absl::Now();
  auto pong = client.Ping(args[0], absl::GetFlag(FLAGS_timeout));
  if (!pong.ok()) return Fail(std::string(pong.status().message()));
  fmt::print("{}: round trip {:.3f} ms (station to node {:.3f} ms)\n", pong->node(),
             absl::ToDoubleMilliseconds(absl::Now() - start), static_cast<double>(pong->station_rtt_us()) / 1000.0);
  return 0;
}

int Nodes(steward::station::Client& client, const std::string& node) {
  auto nodes = client.Nodes(node, absl::GetFlag(FLAGS_timeout));
  if (!nodes.ok()) return Fail(std::string(nodes.status().message()));
  fmt::print("{:<16} {:<8} {:<14} {:<14} {:<8} {:>7}  {}\n", "NODE", "STATE", "SINCE", "LAST-HEARD",
             "VERSION", "PENDING", "LAST-COMMAND");
  for (const auto& n : nodes->nodes()) {
    fmt::print("{:<16} {:<8} {:<14} {:<14} {:<8} {:>7}  {}\n", n.name(), n.online() ? "online" : "offline",
               Ago(n.since_unix_ms()), Ago(n.last_heard_unix_ms()), n.version().empty() ? "-" : n.version(),
               n.pending(), n.last_command_id().empty() ? "-" : n.last_command_id() + " " + n.last_command_state());
    if (!node.empty()) {
      fmt::print("  hostname: {}\n  os: {}\n  methods: {}\n  errors reported: {}\n", n.hostname(), n.os(),
                 absl::StrJoin(n.methods(), ", "), n.errors());
    }
  }
  return 0;
}

int Show(steward::station::Client& client, const std::vector<std::string>& ids) {
  if (ids.empty()) return Fail("usage: stewardctl show ID...");
  auto states = client.Show(ids, absl::GetFlag(FLAGS_timeout));
  if (!states.ok()) return Fail(std::string(states.status().message()));
  for (const CommandState& s : states->commands()) {
    const auto& r = s.result();
    fmt::print("command {}\n  node: {}\n  state: {}\n  argv: {}\n  attempts: {}\n  created: {}\n",
               s.id(), s.node(), s.state(), absl::StrJoin(s.command().argv(), " "), s.attempts(),
               Ago(s.created_unix_ms()));
    if (s.has_result()) {
      fmt::print("  outcome: {}\n  exit code: {}\n  signal: {}\n  error: {}\n  stdout:\n{}\n  stderr:\n{}\n",
                 steward::OutcomeName(r.outcome()), r.exit_code(), r.term_signal(), r.error(), r.stdout(),
                 r.stderr());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "stewardctl [flags] send NODE[,NODE...] -- COMMAND [ARG...] | ping NODE | nodes | node NAME | show ID...");
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
  opts.nats.creds_file = absl::GetFlag(FLAGS_creds);
  opts.nats.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  const char* user = std::getenv("USER");
  opts.operator_name = user != nullptr ? user : "unknown";

  steward::nats::Library nats_library;
  auto client = steward::station::Client::Connect(opts);
  if (!client.ok()) return Fail(std::string(client.status().message()));
  if (sub == "send") return Send(**client, args);
  if (sub == "ping") return Ping(**client, args);
  if (sub == "nodes") return Nodes(**client, "");
  if (sub == "node") return args.size() == 1 ? Nodes(**client, args[0]) : Fail("usage: stewardctl node NAME");
  if (sub == "show") return Show(**client, args);
  return Fail("unknown subcommand \"" + sub + "\"; try --help");
}
