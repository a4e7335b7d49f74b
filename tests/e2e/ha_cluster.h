// HaCluster: a nats-server with JetStream and what runs on it for the HA end-to-end tests
// (station/ha/): steward-station instances of one station name with --ha (a 2 s lease,
// each with its own data directory), agents, and stewardctl as a real program.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/testing/files.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/process.h"
#include "tests/testing/wait.h"

namespace steward::testing {

struct HaCluster {
  TempDir dir;
  NatsServer nats{JetStreamConfig(dir)};

  // `url`: another way to the broker (a proxy in front of it); `extra`: more flags.
  std::unique_ptr<Process> Station(const std::string& instance, const std::string& url = "",
                                   const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {BinPath("station/steward-station"), "--nats", url.empty() ? nats.url() : url,
                                     "--data-dir", DataDir(instance), "--http", "off", "--ha", "--ha-lease", "2s",
                                     "--ha-instance", instance};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(argv);
  }
  std::string DataDir(const std::string& instance) const { return dir.str() + "/" + instance; }
  std::unique_ptr<Process> Agent(const std::string& node) {
    return std::make_unique<Process>(std::vector<std::string>{BinPath("agent/steward-agent"), "--node", node,
                                                              "--nats", nats.url(), "--data-dir",
                                                              dir.str() + "/" + node, "--heartbeat", "1s"});
  }
  // Agents ship0 .. ship<n-1>, returned once the station pings each; empty when one did
  // not answer within 20 s.
  std::vector<std::unique_ptr<Process>> Agents(int n) {
    std::vector<std::unique_ptr<Process>> agents;
    for (int i = 0; i < n; ++i) agents.push_back(Agent(absl::StrCat("ship", i)));
    for (int i = 0; i < n; ++i) {
      if (!WaitUntil([&] { return Ctl({"ping", absl::StrCat("ship", i), "--timeout", "1s"}).exit_code == 0; },
                     absl::Seconds(20))) {
        return {};
      }
    }
    return agents;
  }
  RunResult Ctl(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(60)) {
    std::vector<std::string> argv = {BinPath("ctl/stewardctl"), "--nats", nats.url()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProgram(argv, timeout);
  }
};

}  // namespace steward::testing
