// Cluster: a real nats-server plus real steward-station and steward-agent processes,
// and stewardctl run as a real program, for end-to-end tests. Not thread-safe.
#pragma once

#include <csignal>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/process.h"

namespace steward::testing {

class Cluster {
 public:
  Cluster();
  // Secure: `stewardctl keys init`, `enroll` of each of `nodes`, a generated broker
  // config (TLS, per-node users and permissions); the station runs with --keys, agents
  // with their enrollment bundle, stewardctl with --keys.
  struct Secure {
    std::vector<std::string> nodes = {"ship1", "ship2"};
    // Of `nodes`, those enrolled without a node key (`enroll --no-node-key`): their
    // agents make their own, which an operator accepts (the others are pinned at once).
    std::vector<std::string> without_node_key;
  };
  explicit Cluster(Secure secure);
  ~Cluster();

  bool secure() const { return !keys_.empty(); }
  const std::string& keys() const { return keys_; }

  NatsServer& nats() { return nats_; }
  const std::string& url() const { return nats_.url(); }
  const TempDir& dir() const { return dir_; }

  // Starts the station (data under dir/station) and waits until it answers. Its HTTP
  // server listens on a free loopback port unless extra_args say --http. `nats_url`
  // replaces the broker's URL (a proxy in front of it).
  void StartStation(std::vector<std::string> extra_args = {}, const std::string& nats_url = "");
  // The station's HTTP port, from its log line ("http: serving ... :PORT/"); 0 if none.
  int HttpPort();
  void StopStation(int sig = SIGTERM);
  Process& station() { return *station_; }

  // Starts an agent for `node` (data under dir/<node>), heartbeat 1s unless given
  // (--heartbeat, or a --config file),
  // and waits until the station can ping it (when a station runs).
  // `nats_url` replaces the broker's URL (a proxy in front of it); `env` is added to
  // the agent's environment (TZ=..., say).
  Process& StartAgent(const std::string& node, std::vector<std::string> extra_args = {},
                      const std::string& nats_url = "", std::map<std::string, std::string> env = {});
  void StopAgent(const std::string& node, int sig = SIGTERM);
  Process& agent(const std::string& node) { return *agents_.at(node); }

  // Runs stewardctl against this cluster.
  RunResult Ctl(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(30));

 private:
  TempDir dir_;
  std::string keys_;  // the keys directory, secure clusters only
  NatsServer nats_;
  std::unique_ptr<Process> station_;
  std::map<std::string, std::unique_ptr<Process>> agents_;
};

}  // namespace steward::testing
