// node_simulator: many simulated edge nodes in one process, each a real agent::Agent
// (dispatcher, per-subject processes, outbox, heartbeat, command log) over a few shared
// NATS connections; for fan-out and scale benchmarks. Prints "ready N" once all started.
// Run: node_simulator --nats URL --nodes 1000 --data-dir DIR   (or --memory); SIGTERM stops.
// --facts-dir DIR gives each node its own facts (tests of targeting).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/agent.h"
#include "agent/agent_store.h"
#include "agent/command_log.h"
#include "agent/command_runner.h"
#include "agent/method.h"
#include "bench/bench_util.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/nats.h"
#include "common/outbox.h"
#include "common/status_macros.h"

ABSL_FLAG(int, nodes, 1000, "How many simulated nodes to serve");
ABSL_FLAG(std::string, prefix, "sim", "Node names: PREFIX0001 .. PREFIXNNNN");
ABSL_FLAG(int, connections, 8, "NATS connections shared by the nodes (node i uses i % K)");
ABSL_FLAG(int, delivery_pool, 8, "nats.c threads delivering every connection's async messages");
ABSL_FLAG(int, start_threads, 8, "Threads starting (and stopping) agents in parallel");
ABSL_FLAG(absl::Duration, heartbeat, absl::Seconds(5), "Interval between each node's hellos");
ABSL_FLAG(std::string, nats, "", "NATS URL (default $STEWARD_NATS_URL or nats://127.0.0.1:4222)");
ABSL_FLAG(std::string, station, "station", "Name of the station node");
ABSL_FLAG(std::string, data_dir, "",
          "Durable state: one agent.db per node under DIR/<node> (required unless --memory)");
ABSL_FLAG(bool, memory, false, "Keep command logs and spools in memory (no --data-dir)");
ABSL_FLAG(std::string, facts_dir, "",
          "Facts for targeting, per node: DIR/<node>.facts (key=value lines, as steward-agent --facts) and "
          "DIR/<node>.os-release (its ID and VERSION_ID), each when present");

namespace {

// Sleeps on the blocked termination signals for up to `timeout`; true if one arrived.
bool SignalArrived(const sigset_t& signals, absl::Duration timeout) {
  const timespec tick = absl::ToTimespec(timeout);
  const int sig = sigtimedwait(&signals, nullptr, &tick);
  return sig == SIGINT || sig == SIGTERM;
}

// Runs `fn(i)` for i in [0, n) from `threads` threads; stops handing out work once
// `stop` is set or `fn` returns false.
void ParallelFor(int n, int threads, const std::atomic<bool>& stop,
                 const std::function<bool(int)>& fn, std::atomic<int>* done = nullptr) {
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  const int count = std::max(1, std::min(threads, n));
  for (int t = 0; t < count; ++t) {
    pool.emplace_back([&] {
      while (!stop.load()) {
        const int i = next.fetch_add(1);
        if (i >= n || !fn(i)) break;
        if (done != nullptr) done->fetch_add(1);
      }
    });
  }
  for (std::thread& t : pool) t.join();
}

struct Config {
  int nodes = 0;
  std::string prefix;
  int connections = 0;
  int start_threads = 0;
  absl::Duration heartbeat;
  std::string url;
  std::string station;
  std::string data_dir;
  bool memory = false;
  std::string facts_dir;
};

absl::StatusOr<std::unique_ptr<steward::agent::Agent>> StartNode(const Config& cfg, int index,
                                                                 natsConnection* conn) {
  steward::agent::AgentOptions opts;
  opts.node = steward::bench::SimNodeName(cfg.prefix, index + 1, cfg.nodes);
  opts.station = cfg.station;
  opts.heartbeat = cfg.heartbeat;
  opts.nats.url = cfg.url;
  opts.shared_connection = conn;
  if (!cfg.facts_dir.empty()) {
    // Each simulated node is a unit of its own kind: its own facts and OS.
    const std::string base = absl::StrCat(cfg.facts_dir, "/", opts.node);
    if (std::filesystem::exists(base + ".facts")) opts.facts.file = base + ".facts";
    if (std::filesystem::exists(base + ".os-release")) opts.facts.os_release = base + ".os-release";
  }
  std::unique_ptr<steward::agent::CommandLog> log;
  std::unique_ptr<steward::Spool> spool;
  std::vector<steward::proto::Ack> interrupted;
  if (cfg.memory) {
    log = steward::agent::NewMemoryCommandLog();
    spool = steward::NewMemorySpool();
  } else {
    STEWARD_ASSIGN_OR_RETURN(std::shared_ptr<steward::agent::AgentStore> store,
                             steward::agent::AgentStore::Open(
                                 absl::StrCat(cfg.data_dir, "/", opts.node)));
    STEWARD_ASSIGN_OR_RETURN(interrupted, store->Interrupted());
    opts.instance_id = store->instance_id();
    log = store->NewCommandLog();
    spool = store->NewSpool();
  }
  return steward::agent::Agent::Start(std::move(opts), steward::agent::BuiltinMethods(),
                                      steward::agent::NewPosixCommandRunner(), std::move(log),
                                      std::move(spool), std::move(interrupted));
}

int Run(const Config& cfg, const sigset_t& signals) {
  // Connections first: they must outlive every agent (declared before `agents`).
  std::vector<steward::nats::ConnectionPtr> conns;
  for (int k = 0; k < cfg.connections; ++k) {
    absl::StatusOr<steward::nats::ConnectionPtr> c = steward::nats::Connect(
        {.url = cfg.url,
         .name = absl::StrCat("node_simulator ", k + 1, "/", cfg.connections),
         .global_delivery = true});
    if (!c.ok()) {
      fmt::print(stderr, "node_simulator: {}\n", c.status().ToString());
      return 2;
    }
    conns.push_back(*std::move(c));
  }

  std::vector<std::unique_ptr<steward::agent::Agent>> agents(static_cast<size_t>(cfg.nodes));
  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  std::mutex error_mu;
  std::string first_error;
  const absl::Time start = absl::Now();
  std::thread starter([&] {
    ParallelFor(
        cfg.nodes, cfg.start_threads, stop,
        [&](int i) {
          absl::StatusOr<std::unique_ptr<steward::agent::Agent>> a =
              StartNode(cfg, i, conns[static_cast<size_t>(i % cfg.connections)].get());
          if (!a.ok()) {
            std::lock_guard<std::mutex> lock(error_mu);
            if (first_error.empty()) {
              first_error = absl::StrCat(steward::bench::SimNodeName(cfg.prefix, i + 1, cfg.nodes),
                                         ": ", a.status().ToString());
            }
            return false;
          }
          agents[static_cast<size_t>(i)] = *std::move(a);
          return true;
        },
        &started);
  });
  bool signaled = false;
  while (started.load() < cfg.nodes) {
    if (SignalArrived(signals, absl::Milliseconds(100))) {
      signaled = true;
      break;
    }
    std::lock_guard<std::mutex> lock(error_mu);
    if (!first_error.empty()) break;
  }
  stop.store(true);
  starter.join();
  int rc = 0;
  {
    std::lock_guard<std::mutex> lock(error_mu);
    if (!first_error.empty()) {
      fmt::print(stderr, "node_simulator: started {} of {} nodes; then {}\n", started.load(),
                 cfg.nodes, first_error);
      rc = 2;
    }
  }
  if (rc == 0 && !signaled) {
    fmt::print("ready {}\n", cfg.nodes);
    std::fflush(stdout);
    fmt::print(stderr,
               "node_simulator: {} nodes started in {} over {} connections; {} threads, "
               "VmRSS {} kB\n",
               cfg.nodes, absl::FormatDuration(absl::Now() - start), cfg.connections,
               steward::bench::ProcStatusValue(::getpid(), "Threads"),
               steward::bench::ProcStatusValue(::getpid(), "VmRSS"));
    while (!SignalArrived(signals, absl::Milliseconds(500))) {
    }
  }

  // Shut down in parallel: each Shutdown joins its threads and flushes its outbox.
  const absl::Time stopping = absl::Now();
  const std::atomic<bool> never{false};
  const int shutdown_threads = std::max(cfg.start_threads, 128);
  std::vector<absl::Duration> took(static_cast<size_t>(cfg.nodes));
  ParallelFor(cfg.nodes, shutdown_threads, never, [&](int i) {
    const size_t k = static_cast<size_t>(i);
    if (agents[k] == nullptr) return true;
    const absl::Time t0 = absl::Now();
    agents[k]->Shutdown();
    took[k] = absl::Now() - t0;
    return true;
  });
  std::sort(took.begin(), took.end());
  ParallelFor(cfg.nodes, cfg.start_threads, never, [&](int i) {
    agents[static_cast<size_t>(i)].reset();
    return true;
  });
  fmt::print(stderr,
             "node_simulator: {} nodes shut down in {} from {} threads; one Agent::Shutdown "
             "took p50 {}, p90 {}, max {}\n",
             started.load(), absl::FormatDuration(absl::Now() - stopping), shutdown_threads,
             absl::FormatDuration(took[took.size() / 2]),
             absl::FormatDuration(took[took.size() * 9 / 10]),
             absl::FormatDuration(took.back()));
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t signals = steward::BlockTerminationSignals();  // before any thread
  absl::SetProgramUsageMessage(
      "node_simulator --nodes N --data-dir DIR|--memory [--nats URL] [--connections K]");
  std::vector<std::string> storage;
  std::vector<char*> args = steward::NormalizeFlags(argc, argv, storage);
  absl::ParseCommandLine(static_cast<int>(args.size() - 1), args.data());

  Config cfg;
  cfg.nodes = absl::GetFlag(FLAGS_nodes);
  cfg.prefix = absl::GetFlag(FLAGS_prefix);
  cfg.connections = absl::GetFlag(FLAGS_connections);
  cfg.start_threads = absl::GetFlag(FLAGS_start_threads);
  cfg.heartbeat = absl::GetFlag(FLAGS_heartbeat);
  cfg.url = absl::GetFlag(FLAGS_nats);
  if (cfg.url.empty()) cfg.url = steward::DefaultNatsUrl();
  cfg.station = absl::GetFlag(FLAGS_station);
  cfg.data_dir = absl::GetFlag(FLAGS_data_dir);
  cfg.memory = absl::GetFlag(FLAGS_memory);
  cfg.facts_dir = absl::GetFlag(FLAGS_facts_dir);
  const int pool = absl::GetFlag(FLAGS_delivery_pool);
  if (cfg.nodes < 1 || cfg.connections < 1 || cfg.start_threads < 1 || pool < 1) {
    fmt::print(stderr, "node_simulator: --nodes, --connections, --start-threads and "
                       "--delivery-pool must be at least 1\n");
    return 2;
  }
  if (cfg.memory == !cfg.data_dir.empty()) {
    fmt::print(stderr, "node_simulator: give exactly one of --data-dir DIR and --memory\n");
    return 2;
  }
  if (cfg.heartbeat <= absl::ZeroDuration()) {
    fmt::print(stderr, "node_simulator: --heartbeat must be positive\n");
    return 2;
  }
  if (std::getenv("STEWARD_LOG_LEVEL") == nullptr) {
    steward::SetLogLevel(steward::LogLevel::kWarning);  // not 1000 "serving" lines
  }
  steward::SetLogTag("node_simulator");

  steward::nats::Library lib;  // destroyed last
  if (natsStatus s = nats_SetMessageDeliveryPoolSize(pool); s != NATS_OK) {
    fmt::print(stderr, "node_simulator: nats_SetMessageDeliveryPoolSize: {}\n",
               natsStatus_GetText(s));
    return 2;
  }
  return Run(cfg, signals);
}
