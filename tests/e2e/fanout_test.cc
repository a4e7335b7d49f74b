// Fan-out truth at fleet size: `stewardctl send --all` to 2,000 simulated nodes (two
// bench/node_simulator processes, real nats-server and station) prints exactly one line
// per node and exits 0 only when every node succeeded, round after round, with small
// answers and with answers too large for one reply of the station.
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "ctl/client.h"
#include "tests/testing/cluster.h"
#include "tests/testing/process.h"
#include "tests/testing/wait.h"

using steward::testing::BinPath;
using steward::testing::Cluster;
using steward::testing::Process;
using steward::testing::RunResult;

namespace {

constexpr int kPerSimulator = 1000;
const char* const kPrefixes[] = {"sima", "simb"};

// The node names of both simulators (node_simulator: PREFIX0001 .. PREFIX1000).
std::vector<std::string> NodeNames() {
  std::vector<std::string> out;
  for (const char* prefix : kPrefixes) {
    for (int i = 1; i <= kPerSimulator; ++i) {
      std::string digits = std::to_string(i);
      digits.insert(0, 4 - std::min<size_t>(4, digits.size()), '0');
      out.push_back(absl::StrCat(prefix, digits));
    }
  }
  return out;
}

// stdout's lines by node ("node: rest" -> rest); a node seen twice fails the test.
std::map<std::string, std::string> LinesByNode(const std::string& out) {
  std::map<std::string, std::string> by_node;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    const size_t colon = line.find(": ");
    INFO(line);
    REQUIRE(colon != absl::string_view::npos);
    const bool fresh = by_node.emplace(std::string(line.substr(0, colon)), std::string(line.substr(colon + 2))).second;
    CHECK(fresh);
  }
  return by_node;
}

int Online(steward::ctl::Client& client) {
  auto nodes = client.Nodes("", absl::Seconds(10));
  if (!nodes.ok()) return -1;
  int n = 0;
  for (const auto& node : nodes->nodes()) n += node.status() == steward::proto::NODE_ONLINE ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("fan-out to 2000 simulated nodes prints one line per node round after round",
          "[integration][fanout]") {
  const std::string simulator = BinPath("bench/node_simulator");
  INFO("the simulator is built with the benchmarks (STEWARD_BUILD_BENCH): " << simulator);
  REQUIRE(std::filesystem::exists(simulator));
  Cluster c;
  c.StartStation();
  std::vector<std::unique_ptr<Process>> sims;
  for (const char* prefix : kPrefixes) {
    sims.push_back(std::make_unique<Process>(std::vector<std::string>{
        simulator, "--nats", c.url(), "--nodes", std::to_string(kPerSimulator), "--prefix", prefix,
        "--connections", "4", "--heartbeat", "5s"}));
  }
  for (auto& sim : sims) {
    INFO(sim->Stderr());
    REQUIRE(sim->WaitForOutput(absl::StrCat("ready ", kPerSimulator), absl::Seconds(60)));
  }
  auto client = steward::ctl::Client::Connect({.nats = {.url = c.url()}});
  REQUIRE(client.ok());
  const int nodes = 2 * kPerSimulator;
  REQUIRE(steward::testing::WaitUntil([&] { return Online(**client) == nodes; }, absl::Seconds(60)));
  const std::vector<std::string> names = NodeNames();

  // Back to back: every round prints every node's own answer once, and exits 0.
  for (int round = 1; round <= 3; ++round) {
    const std::string word = absl::StrCat("round", round);
    RunResult r = c.Ctl({"--wait", "60s", "send", "--all", "--method", "echo", "--", word}, absl::Seconds(90));
    INFO("round " << round << ": " << r.err.substr(0, 2000));
    CHECK(r.exit_code == 0);
    const std::map<std::string, std::string> lines = LinesByNode(r.out);
    CHECK(lines.size() == names.size());
    for (const std::string& n : names) {
      auto it = lines.find(n);
      INFO(n);
      REQUIRE(it != lines.end());
      CHECK(it->second == word);
    }
  }

  // Answers far larger than one reply of the station (2,000 x 4 KiB): split over many
  // waits, still one whole line per node.
  const std::string big(4096, 'x');
  RunResult r = c.Ctl({"--wait", "60s", "send", "--all", "--method", "echo", "--", big}, absl::Seconds(90));
  INFO(r.err.substr(0, 2000));
  CHECK(r.exit_code == 0);
  std::map<std::string, std::string> lines = LinesByNode(r.out);
  CHECK(lines.size() == names.size());
  int whole = 0;
  for (const auto& [node, rest] : lines) whole += rest == big ? 1 : 0;
  CHECK(whole == nodes);

  // One node that does not exist and one that does: a line each, exit 255.
  r = c.Ctl({"--wait", "2s", "send", "sima0001,nosuchnode", "--method", "echo", "--", "hi"});
  CHECK(r.exit_code == 255);
  lines = LinesByNode(r.out);
  CHECK(lines.size() == 2);
  CHECK(lines["sima0001"] == "hi");
  CHECK_THAT(lines["nosuchnode"], Catch::StartsWith("[no result within 2s: "));  // queued or sent
  CHECK_THAT(r.err, Catch::Contains("1 of 2 nodes succeeded"));

  for (auto& sim : sims) {
    sim->Signal(SIGTERM);
    auto done = sim->Wait(absl::Seconds(20));
    REQUIRE(done.has_value());
    INFO(done->err);
    CHECK(done->exit_code == 0);
  }
}
