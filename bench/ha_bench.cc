// ha_bench: what high availability (steward-station --ha, issue 17) costs and how fast it
// takes over, on one private nats-server with JetStream:
// (a) durable commands/s at 32 in flight (Submit with wait, `echo`, one real agent):
//     a single-host station against an active --ha station with a standby, in turns;
// (b) fan-out of one `echo` to N simulated nodes (node_simulator), both ways;
// (c) takeover: the active instance is killed with -9, K times; from the kill to the
//     standby's "ACTIVE" line, and to the first command that went all the way through
//     the new active station (submitted, dispatched, run, its result committed).
// The journal's replicas are 1 here (one broker): on a three-broker cluster each entry
// also waits for a second broker's copy.
// Run: build/bench/ha_bench [--seconds 3] [--nodes 1000] [--rounds 5] [--lease 2s]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "common/mutex_mode.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "ctl/client.h"
#include "proto/steward.pb.h"
#include "tests/testing/nats_server.h"

namespace {

using steward::bench::BenchDir;
using steward::bench::Children;
using steward::bench::RunResult;

constexpr char kNode[] = "bench1";
constexpr char kSimPrefix[] = "hasim";
constexpr int kInFlight = 32;
constexpr absl::Duration kCommandWait = absl::Seconds(10);
constexpr absl::Duration kFanoutWait = absl::Seconds(60);
constexpr absl::Duration kTakeoverLimit = absl::Seconds(60);

struct Args {
  double seconds = 3;
  int nodes = 1000;
  int rounds = 5;
  absl::Duration lease = absl::Seconds(2);
};

int spawned = 0;  // station children so far: each child name is new

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

steward::proto::SubmitRequest Echo(const std::vector<std::string>& nodes, const std::string& domain,
                                   absl::Duration wait) {
  steward::proto::SubmitRequest req;
  for (const std::string& n : nodes) req.add_nodes(n);
  req.mutable_command()->set_method(steward::kMethodEcho);
  req.mutable_command()->set_domain(domain);
  req.mutable_command()->add_argv("hi");
  req.set_wait_ms(absl::ToInt64Milliseconds(wait));
  return req;
}

// One command to each of `nodes`, answered once all are terminal; an error unless every
// one succeeded.
absl::Status SendAndWait(steward::ctl::Client& client, const std::vector<std::string>& nodes,
                         const std::string& domain, absl::Duration wait) {
  STEWARD_ASSIGN_OR_RETURN(steward::proto::SubmitReply reply,
                           client.Submit(Echo(nodes, domain, wait), wait + absl::Seconds(5)));
  int ok = 0;
  std::string first;
  for (const steward::proto::CommandState& s : reply.states()) {
    if (s.state() == steward::proto::STATE_SUCCEEDED) {
      ++ok;
    } else if (first.empty()) {
      first = absl::StrCat(s.node(), " ", steward::StateName(s.state()), " ", s.result().error());
    }
  }
  if (ok != static_cast<int>(nodes.size())) {
    return absl::UnavailableError(absl::StrCat(ok, " of ", nodes.size(), " succeeded; first other: ", first));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<steward::ctl::Client>> Connect(const std::string& url) {
  return steward::ctl::Client::Connect(
      steward::ctl::ClientOptions{.nats = {.url = url, .name = "ha_bench"}, .operator_name = "ha_bench"});
}

// The stations of one mode: "single" (one instance, no --ha) or "ha" (instances a and b).
class Stations {
 public:
  Stations(Children& children, const BenchDir& dir, std::string url, std::string mode, absl::Duration lease)
      : children_(children), dir_(dir), url_(std::move(url)), mode_(std::move(mode)), lease_(lease) {}

  absl::Status Start(const std::string& instance) {
    generation_[instance] = ++spawned;  // a child's name is used once
    const std::string name = Child(instance);
    std::vector<std::string> argv = {steward::bench::BinDir() + "/station/steward-station", "--nats", url_,
                                     "--data-dir", dir_.File(name), "--http", "off"};
    if (mode_ != "single") {
      for (const std::string& a : {std::string("--ha"), std::string("--ha-lease"), absl::FormatDuration(lease_),
                                   std::string("--ha-instance"), instance}) {
        argv.push_back(a);
      }
    }
    return children_.Spawn(name, argv, Log(instance));
  }
  // Waits until `instance`'s log says `what` (at or after byte `from`).
  absl::Status WaitFor(const std::string& instance, const std::string& what, size_t from = 0,
                       absl::Duration limit = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + limit;
    while (absl::Now() < deadline) {
      STEWARD_RETURN_IF_ERROR(children_.CheckAlive());
      std::ifstream in(Log(instance));
      std::string text((std::istreambuf_iterator<char>(in)), {});
      if (text.size() > from && text.find(what, from) != std::string::npos) return absl::OkStatus();
      absl::SleepFor(absl::Milliseconds(5));
    }
    return absl::DeadlineExceededError(absl::StrCat(Child(instance), " did not say \"", what, "\" within ",
                                                    absl::FormatDuration(limit)));
  }
  // Instance a, and with --ha instance b as its standby, each ready.
  absl::Status Up() {
    const size_t from_a = LogSize("a"), from_b = LogSize("b");
    STEWARD_RETURN_IF_ERROR(Start("a"));
    if (mode_ == "single") return absl::OkStatus();
    STEWARD_RETURN_IF_ERROR(WaitFor("a", "ACTIVE", from_a));
    STEWARD_RETURN_IF_ERROR(Start("b"));
    return WaitFor("b", "is a standby", from_b);
  }
  size_t LogSize(const std::string& instance) const {
    std::error_code ec;
    const auto n = std::filesystem::file_size(Log(instance), ec);
    return ec ? 0 : static_cast<size_t>(n);
  }
  void Kill(const std::string& instance) {
    const pid_t pid = children_.pid(Child(instance));
    if (pid > 0) ::kill(pid, SIGKILL);
    children_.Stop(Child(instance));  // reaps it
  }
  void Stop(const std::string& instance) { children_.Stop(Child(instance)); }
  std::string Child(const std::string& instance) const {
    auto it = generation_.find(instance);
    return absl::StrCat("station-", mode_, "-", instance, "-", it == generation_.end() ? 0 : it->second);
  }

 private:
  std::string Log(const std::string& instance) const {
    return dir_.File(absl::StrCat("station-", mode_, "-", instance, ".log"));
  }
  std::map<std::string, int> generation_;
  Children& children_;
  const BenchDir& dir_;
  const std::string url_;
  const std::string mode_;
  const absl::Duration lease_;
};

RunResult Durable(steward::ctl::Client& client, const std::string& label, absl::Duration duration) {
  return steward::bench::RunLoad(label, kInFlight, duration, [&client](int thread, int64_t*) {
    return SendAndWait(client, {kNode}, absl::StrCat("d", thread), kCommandWait);
  });
}

absl::Status Throughput(const std::string& url, const Args& args, Children& children, const BenchDir& dir) {
  fmt::print("a. durable commands (echo to {}, Submit with wait), {} in flight, {:.0f} s per run; "
             "single-host station vs active --ha station (with a standby), in turns\n",
             kNode, kInFlight, args.seconds);
  STEWARD_RETURN_IF_ERROR(children.Spawn("agent",
                                         {steward::bench::BinDir() + "/agent/steward-agent", "--node", kNode, "--nats",
                                          url, "--heartbeat", "1s", "--data-dir", dir.File("agent")},
                                         dir.File("agent.log")));
  STEWARD_ASSIGN_OR_RETURN(std::unique_ptr<steward::ctl::Client> client, Connect(url));
  std::vector<double> single_rps, ha_rps;
  Stations single(children, dir, url, "single", args.lease);
  Stations ha(children, dir, url, "ha", args.lease);
  for (int turn = 0; turn < 2; ++turn) {
    for (const std::string mode : {"single", "ha"}) {
      Stations& st = mode == "ha" ? ha : single;
      STEWARD_RETURN_IF_ERROR(st.Up());
      STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil("a command through the station", children, [&] {
        return SendAndWait(*client, {kNode}, "warm", absl::Seconds(2));
      }));
      const RunResult r = Durable(*client, mode, absl::Seconds(args.seconds));
      fmt::print("  {:<7} {:>8.0f} commands/s  p50 {:>6.1f} ms  p99 {:>6.1f} ms  errors {}{}\n", mode, r.rps,
                 r.p50_us / 1000, r.p99_us / 1000, r.errors,
                 r.errors > 0 ? absl::StrCat(" (first: ", r.first_error, ")") : "");
      std::fflush(stdout);
      (mode == "ha" ? ha_rps : single_rps).push_back(r.rps);
      st.Stop("a");
      if (mode == "ha") st.Stop("b");
    }
  }
  const double s = (single_rps[0] + single_rps[1]) / 2, h = (ha_rps[0] + ha_rps[1]) / 2;
  fmt::print("  HA/single durable commands/s: {:.0f}% (means of 2 turns: {:.0f} vs {:.0f})\n\n",
             s > 0 ? h / s * 100 : 0.0, h, s);
  children.Stop("agent");
  return absl::OkStatus();
}

absl::Status Fanout(const std::string& url, const Args& args, Children& children, const BenchDir& dir) {
  fmt::print("b. fan-out of one echo to {} simulated nodes (node_simulator), every result committed; "
             "best of 3 warm rounds\n", args.nodes);
  STEWARD_RETURN_IF_ERROR(children.Spawn(
      "node_simulator",
      {steward::bench::BinDir() + "/bench/node_simulator", "--nats", url, "--nodes", absl::StrCat(args.nodes),
       "--prefix", kSimPrefix, "--connections", "8", "--heartbeat", "5s"},
      dir.File("node_simulator.log")));
  std::vector<std::string> nodes;
  for (int i = 1; i <= args.nodes; ++i) nodes.push_back(steward::bench::SimNodeName(kSimPrefix, i, args.nodes));
  STEWARD_ASSIGN_OR_RETURN(std::unique_ptr<steward::ctl::Client> client, Connect(url));
  double best[2] = {0, 0};
  int m = 0;
  for (const std::string mode : {"single", "ha"}) {
    Stations st(children, dir, url, mode, args.lease);
    STEWARD_RETURN_IF_ERROR(st.Up());
    // The first round finds every node (a command to a node not heard from yet waits).
    STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil("every simulated node answering", children, [&] {
      return SendAndWait(*client, nodes, "fanout", kFanoutWait);
    }, absl::Seconds(120)));
    std::vector<double> rounds;
    for (int round = 0; round < 3; ++round) {
      const absl::Time t0 = absl::Now();
      STEWARD_RETURN_IF_ERROR(SendAndWait(*client, nodes, "fanout", kFanoutWait));
      rounds.push_back(Seconds(absl::Now() - t0));
    }
    best[m++] = *std::min_element(rounds.begin(), rounds.end());
    fmt::print("  {:<7} {:.3f} s, {:.3f} s, {:.3f} s\n", mode, rounds[0], rounds[1], rounds[2]);
    std::fflush(stdout);
    st.Stop("a");
    if (mode == "ha") st.Stop("b");
  }
  fmt::print("  HA/single fan-out time (best rounds): {:.2f}x\n\n", best[0] > 0 ? best[1] / best[0] : 0.0);
  children.Stop("node_simulator");
  return absl::OkStatus();
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

absl::Status Takeover(const std::string& url, const Args& args, Children& children, const BenchDir& dir) {
  fmt::print("c. takeover, {} rounds: kill -9 of the active instance (lease {}); a client keeps submitting "
             "(echo to {}, 1 s wait, retried at once on any error)\n",
             args.rounds, absl::FormatDuration(args.lease), kNode);
  STEWARD_RETURN_IF_ERROR(children.Spawn("agent2",
                                         {steward::bench::BinDir() + "/agent/steward-agent", "--node", kNode, "--nats",
                                          url, "--heartbeat", "1s", "--data-dir", dir.File("agent")},  // the same installation
                                         dir.File("agent2.log")));
  STEWARD_ASSIGN_OR_RETURN(std::unique_ptr<steward::ctl::Client> client, Connect(url));
  Stations st(children, dir, url, "takeover", args.lease);
  std::string active = "a", standby = "b";
  STEWARD_RETURN_IF_ERROR(st.Up());
  std::vector<double> to_active, to_command;
  for (int round = 0; round < args.rounds; ++round) {
    STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil("a command through the active station", children, [&] {
      return SendAndWait(*client, {kNode}, "takeover", absl::Seconds(1));
    }));
    // Kill at a random moment of the lease's renewal cycle.
    absl::SleepFor(absl::Milliseconds(std::rand() % 1000));
    const size_t from = st.LogSize(standby);
    const absl::Time killed = absl::Now();
    st.Kill(active);
    absl::Time first_ok = absl::InfiniteFuture();
    while (absl::Now() - killed < kTakeoverLimit) {
      if (SendAndWait(*client, {kNode}, "takeover", absl::Seconds(1)).ok()) {
        first_ok = absl::Now();
        break;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    if (first_ok == absl::InfiniteFuture()) {
      return absl::DeadlineExceededError(absl::StrCat("no command through the standby within ",
                                                      absl::FormatDuration(kTakeoverLimit), " of the kill"));
    }
    STEWARD_RETURN_IF_ERROR(st.WaitFor(standby, "ACTIVE", from, absl::Seconds(1)));
    to_command.push_back(Seconds(first_ok - killed));
    fmt::print("  round {}: first command through the new active {:.2f} s after the kill\n", round + 1,
               to_command.back());
    std::fflush(stdout);
    std::swap(active, standby);
    const size_t back = st.LogSize(standby);
    STEWARD_RETURN_IF_ERROR(st.Start(standby));  // the killed one comes back as the standby
    STEWARD_RETURN_IF_ERROR(st.WaitFor(standby, "is a standby", back));
  }
  fmt::print("  kill -> first command through the new active: p50 {:.2f} s, max {:.2f} s "
             "(lease {}: it runs out, then the standby takes it)\n\n",
             Percentile(to_command, 0.5), Percentile(to_command, 1.0), absl::FormatDuration(args.lease));
  st.Stop(active);
  st.Stop(standby);
  children.Stop("agent2");
  return absl::OkStatus();
}

int Usage(const char* error) {
  if (error != nullptr) std::fprintf(stderr, "ha_bench: %s\n", error);
  std::fprintf(stderr, "usage: ha_bench [--seconds S] [--nodes N] [--rounds K] [--lease DURATION]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  steward::SkipLockOrderChecks();  // as stewardctl, station and agent do (common/mutex_mode.h)
  steward::bench::SetProgramName("ha_bench");
  Args args;
  for (int i = 1; i < argc; i += 2) {  // every option takes a value
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : "";
    if (arg == "--help" || arg == "-h") return Usage(nullptr);
    if (arg == "--seconds") {
      if (!absl::SimpleAtod(value, &args.seconds) || args.seconds <= 0 || args.seconds > 600) {
        return Usage("--seconds wants a number in (0, 600]");
      }
    } else if (arg == "--nodes") {
      if (!absl::SimpleAtoi(value, &args.nodes) || args.nodes < 1 || args.nodes > 20000) {
        return Usage("--nodes wants a number in [1, 20000]");
      }
    } else if (arg == "--rounds") {
      if (!absl::SimpleAtoi(value, &args.rounds) || args.rounds < 1 || args.rounds > 100) {
        return Usage("--rounds wants a number in [1, 100]");
      }
    } else if (arg == "--lease") {
      if (!absl::ParseDuration(value, &args.lease) || args.lease < absl::Seconds(1)) {
        return Usage("--lease wants a duration of at least 1s");
      }
    } else {
      return Usage(absl::StrCat("unknown argument ", arg).c_str());
    }
  }
  steward::bench::InstallFatalSignalHandlers(900);
  return steward::bench::RunInBenchDir("ha_bench", [&](Children& children, BenchDir& dir) -> absl::Status {
    const std::string config = dir.File("jetstream.conf");
    std::ofstream(config) << "jetstream { store_dir: \"" << dir.File("jetstream") << "\" }\n";
    STEWARD_RETURN_IF_ERROR(children.Spawn(
        "nats-server", steward::testing::NatsServerArgv("-1", dir.path(), dir.File("nats-server.log"), config),
        dir.File("nats-server.out")));
    STEWARD_ASSIGN_OR_RETURN(const int port, steward::testing::WaitForNatsPort(dir.path(), children.pid("nats-server"),
                                                                               [&] { return children.CheckAlive(); }));
    const std::string url = absl::StrCat("nats://127.0.0.1:", port);
    fmt::print("ha_bench: one nats-server with JetStream at {}; {} CPUs\n\n", url, std::thread::hardware_concurrency());
    STEWARD_RETURN_IF_ERROR(Throughput(url, args, children, dir));
    STEWARD_RETURN_IF_ERROR(Fanout(url, args, children, dir));
    return Takeover(url, args, children, dir);
  });
}
