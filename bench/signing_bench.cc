// signing_bench: what ed25519 envelope signatures cost, on one private plain nats-server
// (no TLS, no broker credentials: signature cost only). (1) micro: signing::SignEnvelope
// and signing::VerifyEnvelope on a typical shellcommand envelope, averaged over many
// iterations; (2) macro: Client::Ping (client -> station -> agent -> station -> client)
// with 32 threads sharing one Client, and durable commands (Submit `true` + Wait over 32
// domains), each with signatures OFF (station without keys, agent without --trust) and
// ON (station --keys, agent --trust station.pub, operator-signed requests, node accepted).
// Each mode has its own station, agent and data dirs; runs alternate OFF ON ON OFF.
// Goal: signed pings/s >= 70% of unsigned.
// Run: scripts/bench, or build/bench/signing_bench [--seconds N] [--iterations N]
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <sodium.h>

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
#include "common/signing.h"
#include "common/status_macros.h"
#include "proto/steward.pb.h"
#include "ctl/client.h"

namespace {

using steward::bench::BenchDir;
using steward::bench::Children;
using steward::bench::Clock;
using steward::bench::RequestFn;
using steward::bench::RunResult;

constexpr char kNode[] = "bench1";
constexpr int kInFlight = 32;
constexpr int kWarmupRequests = 200;
constexpr int kMicroWarmup = 500;
constexpr absl::Duration kPingWait = absl::Seconds(1);  // Client::Ping allows 2 s more
constexpr absl::Duration kSubmitTimeout = absl::Seconds(10);
constexpr absl::Duration kCommandWait = absl::Seconds(10);  // per durable command
constexpr absl::Duration kCallTimeout = absl::Seconds(5);
constexpr double kGoal = 0.70;  // signed/unsigned pings/s at 32 in flight, at least

struct Args {
  double seconds = 4;  // per mode and path, in two runs
  int iterations = 20000;
};

double Micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// ---------------------------------------------------------------------------------------
// 1. Micro: sign and verify one envelope.

// Per-call cost of `n` calls: thread CPU time (what a signature costs, unaffected by
// other processes taking the CPU) and wall time.
struct Cost {
  double cpu_us = 0;
  double wall_us = 0;
};

double ThreadCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Calls `fn` `n` times; stops at its first error.
template <typename Fn>
absl::StatusOr<Cost> Measure(int n, const Fn& fn) {
  const double cpu0 = ThreadCpuSeconds();
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < n; ++i) STEWARD_RETURN_IF_ERROR(fn());
  const Clock::time_point t1 = Clock::now();
  const double cpu1 = ThreadCpuSeconds();
  return Cost{.cpu_us = (cpu1 - cpu0) * 1e6 / n, .wall_us = Micros(t1 - t0) / n};
}

struct MicroResult {
  size_t envelope_bytes = 0;
  Cost sign;
  Cost verify;
  Cost raw_sign;  // libsodium alone on the same bytes
  Cost raw_verify;
};

// A command as the station sends it to a node: shellcommand with a few argv, an expiry
// and an execution timeout.
steward::proto::Envelope TypicalCommand() {
  steward::proto::Envelope env =
      steward::NewEnvelope("station", kNode, steward::proto::KIND_COMMAND,
                           steward::kMethodShell, "operatingsystem");
  env.set_expires_unix_ms(steward::NowUnixMillis() + 24 * 3600 * 1000);
  env.set_timeout_ms(10 * 60 * 1000);
  for (const char* a : {"systemctl", "restart", "--no-block", "nginx.service"}) env.add_argv(a);
  return env;
}

absl::StatusOr<MicroResult> Micro(int iterations) {
  STEWARD_ASSIGN_OR_RETURN(const steward::signing::KeyPair key, steward::signing::Generate());
  steward::signing::TrustedKeys trusted;
  trusted.Add(key.public_key);
  steward::proto::Envelope env = TypicalCommand();
  const auto sign = [&]() { return steward::signing::SignEnvelope(env, key); };
  const auto verify = [&]() { return steward::signing::VerifyEnvelope(env, trusted); };

  MicroResult r;
  STEWARD_RETURN_IF_ERROR(Measure(kMicroWarmup, sign).status());
  STEWARD_ASSIGN_OR_RETURN(r.sign, Measure(iterations, sign));
  r.envelope_bytes = env.ByteSizeLong();
  STEWARD_RETURN_IF_ERROR(Measure(kMicroWarmup, verify).status());
  STEWARD_ASSIGN_OR_RETURN(r.verify, Measure(iterations, verify));

  // libsodium alone on as many bytes: what the wrapper (envelope copy, deterministic
  // serialization, key ids) adds.
  const std::string msg = env.SerializeAsString();
  const auto* m = reinterpret_cast<const unsigned char*>(msg.data());
  const auto* sk = reinterpret_cast<const unsigned char*>(key.secret_key.data());
  const auto* pk = reinterpret_cast<const unsigned char*>(key.public_key.data());
  unsigned char sig[crypto_sign_BYTES];
  STEWARD_ASSIGN_OR_RETURN(r.raw_sign, Measure(iterations, [&]() {
                             return crypto_sign_detached(sig, nullptr, m, msg.size(), sk) == 0
                                        ? absl::OkStatus()
                                        : absl::InternalError("crypto_sign_detached failed");
                           }));
  STEWARD_ASSIGN_OR_RETURN(r.raw_verify, Measure(iterations, [&]() {
                             return crypto_sign_verify_detached(sig, m, msg.size(), pk) == 0
                                        ? absl::OkStatus()
                                        : absl::InternalError("crypto_sign_verify_detached failed");
                           }));

  // The verifier must really check: a changed argv fails.
  env.set_argv(0, "rm");
  if (verify().ok()) return absl::InternalError("VerifyEnvelope accepted a tampered envelope");
  return r;
}

// ---------------------------------------------------------------------------------------
// 2. Macro: pings and durable commands through a real station and agent.

// Per thread of `pid` (by thread id), from /proc/<pid>/task/<tid>/schedstat: seconds
// on a CPU and seconds runnable but waiting for one. Empty when the process is gone.
struct ThreadTimes {
  double cpu = 0;
  double wait = 0;
};

std::map<std::string, ThreadTimes> ThreadSchedStats(pid_t pid) {
  std::map<std::string, ThreadTimes> out;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream in(e.path() / "schedstat");
    int64_t cpu_ns = 0;
    int64_t wait_ns = 0;
    if (in >> cpu_ns >> wait_ns) {
      out[e.path().filename().string()] = {static_cast<double>(cpu_ns) * 1e-9,
                                           static_cast<double>(wait_ns) * 1e-9};
    }
  }
  return out;
}

// CPU used by each process, and by its busiest thread, summed over the timed runs
// (Start() .. Stop()). A busiest thread that is running or waiting for a CPU nearly all
// the time is a serial bottleneck.
class CpuMeter {
 public:
  explicit CpuMeter(std::vector<std::pair<std::string, pid_t>> procs)
      : procs_(std::move(procs)), used_(procs_.size(), 0.0), busiest_(procs_.size()) {}
  void Start() {
    start_.clear();
    threads_start_.clear();
    for (const auto& p : procs_) {
      start_.push_back(steward::bench::ProcCpuSeconds(p.second));
      threads_start_.push_back(ThreadSchedStats(p.second));
    }
    started_ = Clock::now();
  }
  void Stop() {
    wall_seconds_ += std::chrono::duration<double>(Clock::now() - started_).count();
    for (size_t i = 0; i < procs_.size() && i < start_.size(); ++i) {
      used_[i] += steward::bench::ProcCpuSeconds(procs_[i].second) - start_[i];
      ThreadTimes most;
      for (const auto& [tid, now] : ThreadSchedStats(procs_[i].second)) {
        const auto before = threads_start_[i].find(tid);
        const ThreadTimes t0 = before == threads_start_[i].end() ? ThreadTimes{} : before->second;
        if (now.cpu - t0.cpu > most.cpu) most = {now.cpu - t0.cpu, now.wait - t0.wait};
      }
      busiest_[i].cpu += most.cpu;
      busiest_[i].wait += most.wait;
    }
  }
  // "station 40, agent 24, ..., total 174": microseconds per operation.
  std::string PerOp(int64_t ops) const {
    if (ops <= 0) return "n/a";
    std::string out;
    for (size_t i = 0; i < procs_.size(); ++i) {
      out += fmt::format("{} {:.0f}, ", procs_[i].first, Us(used_[i], ops));
    }
    return out + fmt::format("total {:.0f}", Total(ops));
  }
  // "station 30 us (run 25% + wait 60%), ...": the busiest thread's CPU microseconds per
  // operation, and the share of the runs' wall time it ran and waited for a CPU.
  std::string Busiest(int64_t ops) const {
    if (ops <= 0 || wall_seconds_ <= 0) return "n/a";
    std::string out;
    for (size_t i = 0; i < procs_.size(); ++i) {
      out += fmt::format("{}{} {:.0f} (run {:.0f}% + wait {:.0f}%)", i == 0 ? "" : ", ",
                         procs_[i].first, Us(busiest_[i].cpu, ops),
                         busiest_[i].cpu * 100 / wall_seconds_,
                         busiest_[i].wait * 100 / wall_seconds_);
    }
    return out;
  }
  double Total(int64_t ops) const {
    double total = 0;
    for (double u : used_) total += u;
    return Us(total, ops);
  }

 private:
  static double Us(double seconds, int64_t ops) {
    return ops > 0 ? seconds * 1e6 / static_cast<double>(ops) : 0;
  }

  std::vector<std::pair<std::string, pid_t>> procs_;
  std::vector<double> start_;
  std::vector<std::map<std::string, ThreadTimes>> threads_start_;
  Clock::time_point started_;
  double wall_seconds_ = 0;
  std::vector<double> used_;
  std::vector<ThreadTimes> busiest_;
};

steward::proto::SubmitRequest ShellTrue(const std::string& node, const std::string& domain) {
  steward::proto::SubmitRequest req;
  req.add_nodes(node);
  steward::proto::Envelope* cmd = req.mutable_command();
  cmd->set_method(steward::kMethodShell);
  cmd->set_domain(domain);
  cmd->add_argv("true");
  return req;
}

// One durable command: Submit, then Wait until it is terminal; anything but "succeeded"
// is an error.
absl::Status DurableCommand(steward::ctl::Client& client, const std::string& node,
                            int thread) {
  STEWARD_ASSIGN_OR_RETURN(
      steward::proto::SubmitReply submitted,
      client.Submit(ShellTrue(node, absl::StrCat("d", thread)), kSubmitTimeout));
  if (submitted.commands_size() != 1) {
    return absl::InternalError(absl::StrCat("submit returned ", submitted.commands_size(),
                                            " commands for one node"));
  }
  const std::string& id = submitted.commands(0).id();
  STEWARD_ASSIGN_OR_RETURN(steward::proto::CommandStates states, client.Wait({id}, kCommandWait));
  if (states.commands_size() != 1) return absl::InternalError("wait: no state returned");
  const steward::proto::CommandState& s = states.commands(0);
  if (s.state() == steward::proto::STATE_SUCCEEDED) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("command ", id, " ", steward::StateName(s.state()), ": ",
                                                    s.result().error()));
}

void PrintRow(const std::string& mode, const RunResult& r) {
  fmt::print("{:<8} {:<7} {:>9} {:>10.0f} {:>9.0f} {:>9.0f} {:>7}", r.path, mode, r.requests,
             r.rps, r.p50_us, r.p99_us, r.errors);
  if (r.inner_p50_us >= 0) fmt::print("   station<->agent p50 {:.0f} us", r.inner_p50_us);
  fmt::print("\n");
  if (r.errors > 0) fmt::print("         {} errors; first: {}\n", r.errors, r.first_error);
  std::fflush(stdout);
}

absl::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0) {
    return absl::InternalError(steward::bench::ErrnoText(("mkdir " + path).c_str()));
  }
  return absl::OkStatus();
}

// A keys directory with station.key/.pub and operator.key/.pub only: no creds/ or tls/,
// so the station's --keys changes nothing about the broker connection.
absl::Status MakeKeys(const std::string& keys) {
  STEWARD_RETURN_IF_ERROR(MakeDir(keys));
  for (const char* who : {"station", "operator"}) {
    STEWARD_ASSIGN_OR_RETURN(const steward::signing::KeyPair pair, steward::signing::Generate());
    STEWARD_RETURN_IF_ERROR(steward::signing::WriteKeyPair(pair, absl::StrCat(keys, "/", who), who));
  }
  return absl::OkStatus();
}

// One configuration: its own station, agent (node) and Client, all kept running until
// the end so that the runs of both modes can alternate.
struct Mode {
  bool signed_mode = false;
  std::string label;    // "OFF" / "ON"
  std::string station;  // station name, also its child's name
  std::string node;     // agent's node name
  std::string agent;    // agent child's name
  std::unique_ptr<steward::ctl::Client> client;
  RequestFn ping;
  RequestFn durable;
  std::vector<RunResult> ping_runs;
  std::vector<RunResult> durable_runs;
  std::unique_ptr<CpuMeter> ping_cpu;
  std::unique_ptr<CpuMeter> durable_cpu;
};

// Starts the mode's station and agent, connects its Client and waits until a ping and a
// durable command went through (in signed mode, after accepting the node's key).
absl::Status StartMode(Mode& m, const std::string& url, Children& children,
                       const BenchDir& dir) {
  const std::string bin = STEWARD_BIN_DIR;
  const std::string keys = dir.File("keys");
  std::vector<std::string> station_argv = {bin + "/station/steward-station", "--name", m.station,
                                           "--nats", url, "--data-dir", dir.File(m.station)};
  std::vector<std::string> agent_argv = {bin + "/agent/steward-agent", "--node", m.node,
                                         "--station", m.station, "--nats", url,
                                         "--heartbeat", "1s", "--data-dir", dir.File(m.agent)};
  steward::ctl::ClientOptions client_options{
      .station = m.station,
      .nats = {.url = url, .name = "signing_bench " + m.label},
      .operator_name = "signing_bench"};
  if (m.signed_mode) {
    STEWARD_RETURN_IF_ERROR(MakeKeys(keys));
    station_argv.insert(station_argv.end(), {"--keys", keys});
    agent_argv.insert(agent_argv.end(), {"--trust", keys + "/station.pub"});
    STEWARD_ASSIGN_OR_RETURN(client_options.operator_key,
                             steward::signing::LoadKeyPair(keys + "/operator.key"));
  }
  STEWARD_RETURN_IF_ERROR(children.Spawn(m.station, station_argv, dir.File(m.station + ".log")));
  STEWARD_RETURN_IF_ERROR(children.Spawn(m.agent, agent_argv, dir.File(m.agent + ".log")));
  STEWARD_ASSIGN_OR_RETURN(m.client, steward::ctl::Client::Connect(client_options));

  steward::ctl::Client& c = *m.client;
  m.ping = [&c, node = m.node](int, int64_t* inner_us) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(steward::proto::PingReply pong, c.Ping(node, kPingWait));
    *inner_us = pong.station_rtt_us();
    return absl::OkStatus();
  };
  m.durable = [&c, node = m.node](int thread, int64_t*) {
    return DurableCommand(c, node, thread);
  };
  if (m.signed_mode) {
    // Accept the node's key (the agent made it: the node was not enrolled, so it is
    // named by its fingerprint) once its first hello, which announces it, has arrived.
    const std::string node_pub = dir.File(m.agent) + "/node.pub";
    STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil("accept of the node's key", children, [&] {
      absl::StatusOr<std::string> key = steward::signing::LoadPublicKey(node_pub);
      if (!key.ok()) return key.status();
      return c.Accept(m.node, steward::signing::KeyId(*key), kCallTimeout).status();
    }));
    // The station must really be in signed mode: an unsigned request is refused.
    steward::ctl::ClientOptions unsigned_options = client_options;
    unsigned_options.operator_key.reset();
    unsigned_options.nats.name = "signing_bench unsigned";
    STEWARD_ASSIGN_OR_RETURN(std::unique_ptr<steward::ctl::Client> unsigned_client,
                             steward::ctl::Client::Connect(unsigned_options));
    const absl::Status refused = unsigned_client->Ping(m.node, kPingWait).status();
    if (!absl::IsFailedPrecondition(refused)) {
      return absl::InternalError(absl::StrCat(
          "the signed station did not refuse an unsigned request: ", refused.ToString()));
    }
  }
  STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil("ping through the station", children, [&] {
    int64_t ignored = 0;
    return m.ping(0, &ignored);
  }));
  STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil("a command through the station", children,
                                                    [&] {
                                                      int64_t ignored = 0;
                                                      return m.durable(0, &ignored);
                                                    }));
  const std::vector<std::pair<std::string, pid_t>> procs = {
      {"station", children.pid(m.station)},
      {"agent", children.pid(m.agent)},
      {"nats-server", children.pid("nats-server")},
      {"client", ::getpid()}};
  m.ping_cpu = std::make_unique<CpuMeter>(procs);
  m.durable_cpu = std::make_unique<CpuMeter>(procs);
  return absl::OkStatus();
}

// One timed run of pings or durable commands in mode `m`.
absl::Status Run(Mode& m, bool durable, absl::Duration duration, Children& children) {
  STEWARD_RETURN_IF_ERROR(children.CheckAlive());
  CpuMeter& cpu = durable ? *m.durable_cpu : *m.ping_cpu;
  RunResult r = steward::bench::RunLoad(
      durable ? "durable" : "ping", kInFlight, duration, durable ? m.durable : m.ping,
      {.warmup_requests = kWarmupRequests, .on_start = [&cpu] { cpu.Start(); }});
  cpu.Stop();
  PrintRow(m.label, r);
  if (r.requests == 0) {
    return absl::UnavailableError(absl::StrCat("every ", r.path, " request failed (", r.errors,
                                               "); first error: ", r.first_error));
  }
  (durable ? m.durable_runs : m.ping_runs).push_back(std::move(r));
  return children.CheckAlive();
}

// The runs of one path and mode together: requests/s over all of them; p50 and p99 the
// mean of the runs' values.
struct Summary {
  int64_t requests = 0;
  int64_t errors = 0;
  double rps = 0;
  double p50_us = 0;
  double p99_us = 0;
};

Summary Summarize(const std::vector<RunResult>& runs) {
  Summary s;
  double seconds = 0;
  for (const RunResult& r : runs) {
    s.requests += r.requests;
    s.errors += r.errors;
    seconds += r.seconds;
    s.p50_us += r.p50_us / static_cast<double>(runs.size());
    s.p99_us += r.p99_us / static_cast<double>(runs.size());
  }
  s.rps = seconds > 0 ? static_cast<double>(s.requests) / seconds : 0;
  return s;
}

double Ratio(double on, double off) { return off > 0 ? on / off : 0; }

absl::Status RunBench(const Args& args, Children& children, const BenchDir& dir) {
  fmt::print("signing_bench: {} CPUs\n\n", std::thread::hardware_concurrency());
  fmt::print("1. micro: one shellcommand envelope, {} iterations each, one thread\n",
             args.iterations);
  std::fflush(stdout);
  STEWARD_ASSIGN_OR_RETURN(const MicroResult micro, Micro(args.iterations));
  const double ping_crypto_us = 2 * micro.sign.cpu_us + 2 * micro.verify.cpu_us;
  const double durable_crypto_us = 3 * micro.sign.cpu_us + 4 * micro.verify.cpu_us;
  fmt::print("  envelope {} B signed; thread CPU (wall) per call:\n", micro.envelope_bytes);
  fmt::print("    SignEnvelope    {:6.1f} us ({:.1f})   libsodium alone {:6.1f} us ({:.1f})\n",
             micro.sign.cpu_us, micro.sign.wall_us, micro.raw_sign.cpu_us,
             micro.raw_sign.wall_us);
  fmt::print("    VerifyEnvelope  {:6.1f} us ({:.1f})   libsodium alone {:6.1f} us ({:.1f})\n",
             micro.verify.cpu_us, micro.verify.wall_us, micro.raw_verify.cpu_us,
             micro.raw_verify.wall_us);
  fmt::print("  per ping ON: 2 signs + 2 verifies (client, station; station, agent) = "
             "{:.0f} us of CPU\n",
             ping_crypto_us);
  fmt::print("  per durable command ON: +3 signs + 4 verifies over OFF (Submit, Wait, command; "
             "the agent signs results either way) = {:.0f} us of CPU\n\n",
             durable_crypto_us);
  std::fflush(stdout);

  STEWARD_ASSIGN_OR_RETURN(const std::string url, steward::bench::StartBroker(children, dir));
  Mode off{.signed_mode = false, .label = "OFF", .station = "station0", .node = "bench0",
           .agent = "agent0"};
  Mode on{.signed_mode = true, .label = "ON", .station = "station1", .node = kNode,
          .agent = "agent1"};
  STEWARD_RETURN_IF_ERROR(StartMode(off, url, children, dir));
  STEWARD_RETURN_IF_ERROR(StartMode(on, url, children, dir));

  // Each mode runs twice per path, in the order OFF ON ON OFF, so that a change in what
  // else the machine does while we run hits both modes alike.
  const absl::Duration run = absl::Seconds(args.seconds / 2);
  fmt::print("2. macro: one plain nats-server at {}; per mode its own station and agent; "
             "{} threads sharing one Client; runs of {} after {} warm-up requests, in the "
             "order OFF ON ON OFF\n",
             url, kInFlight, absl::FormatDuration(run), kWarmupRequests);
  fmt::print("  ping:    Client::Ping: client -> station -> agent -> station -> client\n");
  fmt::print("  durable: Submit `true` + Wait until succeeded, thread i in domain d<i>\n");
  fmt::print("  OFF: station0 without keys, agent bench0 without --trust; ON: station1 --keys "
             "(signs commands and pings, requires signed requests: an unsigned one was "
             "refused), agent bench1 --trust station.pub, accepted\n\n");
  fmt::print("{:<8} {:<7} {:>9} {:>10} {:>9} {:>9} {:>7}\n", "path", "signing", "requests",
             "req/s", "p50 us", "p99 us", "errors");
  std::fflush(stdout);
  for (bool durable : {false, true}) {
    for (Mode* m : {&off, &on, &on, &off}) {
      STEWARD_RETURN_IF_ERROR(Run(*m, durable, run, children));
    }
  }

  const Summary ping_off = Summarize(off.ping_runs);
  const Summary ping_on = Summarize(on.ping_runs);
  const Summary durable_off = Summarize(off.durable_runs);
  const Summary durable_on = Summarize(on.durable_runs);
  const int64_t ops[] = {ping_off.requests, ping_on.requests, durable_off.requests,
                         durable_on.requests};
  fmt::print("\nCPU per request (user+sys, us):\n");
  fmt::print("  ping    OFF: {}\n", off.ping_cpu->PerOp(ops[0]));
  fmt::print("  ping    ON:  {}\n", on.ping_cpu->PerOp(ops[1]));
  fmt::print("  durable OFF: {}\n", off.durable_cpu->PerOp(ops[2]));
  fmt::print("  durable ON:  {}\n", on.durable_cpu->PerOp(ops[3]));
  fmt::print("  busiest thread per request (CPU us; share of the wall time it ran and waited "
             "for a CPU):\n");
  fmt::print("    ping    OFF: {}\n", off.ping_cpu->Busiest(ops[0]));
  fmt::print("    ping    ON:  {}\n", on.ping_cpu->Busiest(ops[1]));
  fmt::print("    durable OFF: {}\n", off.durable_cpu->Busiest(ops[2]));
  fmt::print("    durable ON:  {}\n", on.durable_cpu->Busiest(ops[3]));
  fmt::print("  extra CPU with signatures: ping {:+.0f} us (crypto estimate {:.0f}), durable "
             "{:+.0f} us (estimate {:.0f})\n\n",
             on.ping_cpu->Total(ops[1]) - off.ping_cpu->Total(ops[0]), ping_crypto_us,
             on.durable_cpu->Total(ops[3]) - off.durable_cpu->Total(ops[2]), durable_crypto_us);

  const double ping_ratio = Ratio(ping_on.rps, ping_off.rps);
  const double durable_ratio = Ratio(durable_on.rps, durable_off.rps);
  fmt::print("sign {:.1f} us, verify {:.1f} us (thread CPU; wall {:.1f}, {:.1f})\n",
             micro.sign.cpu_us, micro.verify.cpu_us, micro.sign.wall_us, micro.verify.wall_us);
  fmt::print("ping    cmds/s ON {:.0f} vs OFF {:.0f}: {:.0f}%; p50 {:.0f} vs {:.0f} us, "
             "p99 {:.0f} vs {:.0f} us\n",
             ping_on.rps, ping_off.rps, ping_ratio * 100, ping_on.p50_us, ping_off.p50_us,
             ping_on.p99_us, ping_off.p99_us);
  fmt::print("durable cmds/s ON {:.0f} vs OFF {:.0f}: {:.0f}%; p50 {:.0f} vs {:.0f} us, "
             "p99 {:.0f} vs {:.0f} us\n",
             durable_on.rps, durable_off.rps, durable_ratio * 100, durable_on.p50_us,
             durable_off.p50_us, durable_on.p99_us, durable_off.p99_us);
  fmt::print("goal signed >= {:.0f}% of unsigned: {} ({:.0f}%)\n", kGoal * 100,
             ping_ratio >= kGoal ? "PASS" : "FAIL", ping_ratio * 100);
  return absl::OkStatus();
}

int Usage(const char* error) {
  if (error != nullptr) fmt::print(stderr, "signing_bench: {}\n", error);
  fmt::print(stderr,
             "usage: signing_bench [--seconds N] [--iterations N]\n"
             "  --seconds     time per mode and path, split over two runs (default 4)\n"
             "  --iterations  signatures and verifications in the micro benchmark (default "
             "20000)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  steward::SkipLockOrderChecks();  // as stewardctl, station and agent do (common/mutex_mode.h)
  steward::bench::SetProgramName("signing_bench");
  steward::nats::Library lib;

  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string value;
    if (arg == "--help" || arg == "-h") return Usage(nullptr);
    if (steward::bench::FlagValue(argc, argv, &i, "seconds", &value)) {
      if (!absl::SimpleAtod(value, &args.seconds) || !(args.seconds > 0) || args.seconds > 600) {
        return Usage("--seconds wants a number in (0, 600]");
      }
    } else if (steward::bench::FlagValue(argc, argv, &i, "iterations", &value)) {
      if (!absl::SimpleAtoi(value, &args.iterations) || args.iterations < 1 ||
          args.iterations > 10'000'000) {
        return Usage("--iterations wants a number in [1, 10000000]");
      }
    } else {
      return Usage(absl::StrCat("unknown argument ", arg).c_str());
    }
  }

  // Whatever happens, children die with us: on Ctrl-C, SIGTERM, or past a time limit
  // that covers the micro benchmark, two setups, eight timed runs with their warm-ups
  // and every shutdown, each bounded by its own deadline.
  steward::bench::InstallFatalSignalHandlers(
      static_cast<unsigned>(std::ceil(4 * args.seconds + args.iterations * 0.002)) + 120);

  return steward::bench::RunInBenchDir("signing_bench", [&](Children& children, BenchDir& dir) {
    return RunBench(args, children, dir);
  });
}
