// The takeover again and again (issue 17's soak): 20 rounds of a kill -9 of the active
// station at a random moment while two operators send commands; the killed instance
// comes back as the standby each time. Every accepted command ends once (a side-effect
// file counts the runs) and every stewardctl call goes through by itself.
#include <signal.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "ctl/client.h"
#include "proto/steward.pb.h"
#include "tests/e2e/ha_cluster.h"
#include "tests/testing/files.h"
#include "tests/testing/wait.h"

namespace {

using steward::testing::HaCluster;
using steward::testing::Process;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

TEST_CASE("HA soak: 20 kills of the active station at random moments, every command once",
          "[integration][e2e][ha][slow]") {
  constexpr int kRounds = 20;
  constexpr int kAgents = 3;
  constexpr int kSenders = 2;
  constexpr int kPerSender = 8;  // commands a sender makes in a round
  HaCluster c;
  std::map<std::string, std::unique_ptr<Process>> stations;
  stations["a"] = c.Station("a");
  REQUIRE(stations["a"]->WaitForOutput("ACTIVE", absl::Seconds(15)));
  stations["b"] = c.Station("b");
  REQUIRE(stations["b"]->WaitForOutput("is a standby", absl::Seconds(15)));
  const std::vector<std::unique_ptr<Process>> agents = c.Agents(kAgents);
  REQUIRE(agents.size() == static_cast<size_t>(kAgents));
  const std::string runs = c.dir.str() + "/runs";
  std::mt19937 random(std::random_device{}());
  std::vector<std::string> ids;
  std::vector<std::string> failures;
  absl::Mutex mu;
  std::string active = "a", standby = "b";
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round << ": " << active << " active");
    std::vector<std::thread> senders;
    for (int t = 0; t < kSenders; ++t) {
      senders.emplace_back([&, t, round] {
        for (int i = 0; i < kPerSender; ++i) {
          const std::string tag = absl::StrCat("r", round, "-s", t, "-", i);
          RunResult r = c.Ctl({"send", "--no-wait", absl::StrCat("ship", (t + i) % kAgents), "--", "sh", "-c",
                               absl::StrCat("echo ", tag, " >> ", runs)});
          std::vector<std::string> words = absl::StrSplit(r.out, absl::ByAnyChar(" \n"), absl::SkipEmpty());
          absl::MutexLock lock(&mu);
          if (r.exit_code != 0 || words.size() != 2) {
            failures.push_back(absl::StrCat(tag, ": exit ", r.exit_code, ": ", r.out, r.err));
          } else {
            ids.push_back(words[1]);
          }
        }
      });
    }
    // Anywhere in the senders' stream, and anywhere in the lease's renewal cycle.
    absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(0, 1500)(random)));
    stations[active]->Signal(SIGKILL);
    REQUIRE(stations[active]->Wait(absl::Seconds(10)).has_value());
    REQUIRE(stations[standby]->WaitForOutput("ACTIVE", absl::Seconds(15)));
    for (std::thread& t : senders) t.join();
    std::swap(active, standby);
    stations[standby] = c.Station(standby);  // the killed one comes back as the standby
    REQUIRE(stations[standby]->WaitForOutput("is a standby", absl::Seconds(15)));
  }
  for (const std::string& f : failures) FAIL_CHECK(f);
  REQUIRE(ids.size() == static_cast<size_t>(kRounds * kSenders * kPerSender));

  auto client = steward::ctl::Client::Connect({.nats = {.url = c.nats.url()}});
  REQUIRE(client.ok());
  absl::StatusOr<steward::proto::CommandStates> done = client.value()->Wait(ids, absl::Seconds(60));
  REQUIRE(done.ok());
  REQUIRE(done->commands_size() == static_cast<int>(ids.size()));
  for (const steward::proto::CommandState& s : done->commands()) {
    INFO(s.id() << " on " << s.node());
    CHECK(s.state() == steward::proto::STATE_SUCCEEDED);
  }
  const std::map<std::string, int> counts = steward::testing::LineCounts(runs);
  CHECK(counts.size() == ids.size());
  for (const auto& [line, n] : counts) {
    INFO(line);
    CHECK(n == 1);
  }
}

}  // namespace
