// Cluster fixture: real processes on a real broker.
#include "tests/testing/cluster.h"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "absl/time/clock.h"

namespace steward::testing {

namespace {

// Makes keys, enrolls `nodes` and writes <dir>/nats.conf; returns the keys directory.
std::string PrepareKeys(const TempDir& dir, const Cluster::Secure& secure) {
  const std::vector<std::string>& nodes = secure.nodes;
  const std::string keys = dir.str() + "/keys";
  const std::string ctl = BinPath("ctl/stewardctl");
  auto run = [](std::vector<std::string> argv) {
    RunResult r = RunProgram(argv, absl::Seconds(60));
    if (r.exit_code != 0) throw std::runtime_error("secure setup failed: " + argv[3] + ": " + r.err);
    return r;
  };
  run({ctl, "--keys", keys, "keys", "init"});
  for (const std::string& n : nodes) {
    std::vector<std::string> argv = {ctl, "--keys", keys, "enroll", n};
    const auto& without = secure.without_node_key;
    if (std::find(without.begin(), without.end(), n) != without.end()) argv.push_back("--no-node-key");
    run(argv);
  }
  RunResult conf = run({ctl, "--keys", keys, "--listen", "127.0.0.1:-1", "nats-config"});
  const std::string path = dir.str() + "/nats.conf";
  std::ofstream(path) << conf.out;
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return keys;
}

}  // namespace

Cluster::Cluster() = default;

Cluster::Cluster(Secure secure)
    : keys_(PrepareKeys(dir_, secure)), nats_(dir_.str() + "/nats.conf") {}

Cluster::~Cluster() {
  for (auto& [node, p] : agents_) p->Signal(SIGKILL);
  if (station_) station_->Signal(SIGKILL);
}

void Cluster::StartStation(std::vector<std::string> extra_args, const std::string& nats_url) {
  std::vector<std::string> argv = {BinPath("station/steward-station"), "--nats", nats_url.empty() ? url() : nats_url,
                                   "--data-dir", dir_.str() + "/station"};
  if (secure()) {
    argv.push_back("--keys");
    argv.push_back(keys_);
  }
  if (std::find(extra_args.begin(), extra_args.end(), "--http") == extra_args.end()) {
    argv.push_back("--http");
    argv.push_back("127.0.0.1:0");
  }
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  station_ = std::make_unique<Process>(argv);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    // "nodes" answers as soon as the station serves its intake subject.
    if (Ctl({"nodes", "--timeout", "1s"}).exit_code == 0) return;
    if (!station_->running()) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  throw std::runtime_error("station did not start: " + station_->Stderr());
}

int Cluster::HttpPort() {
  if (!station_) return 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    const std::string log = station_->Stderr();
    const std::string marker = "/metrics on http";
    // The last start's line (a restarted station logs its new port after the old).
    const size_t at = log.rfind(marker);
    if (at != std::string::npos) {
      const size_t slash = log.find('/', at + marker.size() + 4);  // after "s://"
      const size_t colon = log.rfind(':', slash);
      if (slash != std::string::npos && colon != std::string::npos) return std::stoi(log.substr(colon + 1, slash - colon - 1));
    }
    if (!station_->running()) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return 0;
}

void Cluster::StopStation(int sig) {
  if (!station_) return;
  station_->Signal(sig);
  station_->Wait(absl::Seconds(10));
}

Process& Cluster::StartAgent(const std::string& node, std::vector<std::string> extra_args,
                             const std::string& nats_url, std::map<std::string, std::string> env) {
  std::vector<std::string> argv = {BinPath("agent/steward-agent"), "--node", node, "--nats",
                                   nats_url.empty() ? url() : nats_url, "--data-dir", dir_.str() + "/" + node};
  // 1s unless the test gives a heartbeat or a configuration file (which may set it).
  if (std::find(extra_args.begin(), extra_args.end(), "--heartbeat") == extra_args.end() &&
      std::find(extra_args.begin(), extra_args.end(), "--config") == extra_args.end()) {
    argv.push_back("--heartbeat");
    argv.push_back("1s");
  }
  // Marks of running commands in the cluster's directory, outside the node's data
  // directory (a wiped one keeps them), and not left behind in /run.
  if (std::find(extra_args.begin(), extra_args.end(), "--run-dir") == extra_args.end() &&
      std::find(extra_args.begin(), extra_args.end(), "--config") == extra_args.end()) {
    argv.push_back("--run-dir");
    argv.push_back(dir_.str() + "/run");
  }
  if (secure()) {
    const std::string bundle = keys_ + "/nodes/" + node + "/";
    for (const std::string& a : {std::string("--creds"), bundle + node + ".creds", std::string("--tls-ca"),
                                 bundle + "ca.pem", std::string("--trust"), bundle + "station.pub"}) {
      argv.push_back(a);
    }
    // Enrolled with a node key (pinned at its first hello), unless the test enrolled it
    // without one.
    if (std::filesystem::exists(bundle + "node.key")) {
      argv.push_back("--node-key");
      argv.push_back(bundle + "node.key");
    }
  }
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  auto& slot = agents_[node];
  slot = std::make_unique<Process>(argv, std::move(env));
  if (station_ && station_->running()) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (Ctl({"ping", node, "--timeout", "1s"}).exit_code == 0) return *slot;
      if (!slot->running()) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    throw std::runtime_error("agent " + node + " did not answer pings: " + slot->Stderr());
  }
  return *slot;
}

void Cluster::StopAgent(const std::string& node, int sig) {
  auto it = agents_.find(node);
  if (it == agents_.end()) return;
  it->second->Signal(sig);
  it->second->Wait(absl::Seconds(10));
}

RunResult Cluster::Ctl(std::vector<std::string> args, absl::Duration timeout) {
  std::vector<std::string> argv = {BinPath("ctl/stewardctl"), "--nats", url()};
  if (secure()) {
    argv.push_back("--keys");
    argv.push_back(keys_);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, timeout);
}

}  // namespace steward::testing
