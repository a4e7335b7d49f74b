// High availability with real processes: two steward-station instances of one station
// name on a nats-server with JetStream. The active one is killed with -9 while
// commands are in flight; the standby takes over, every command ends once (a
// side-effect file counts the runs), operators reach the new active station without
// doing anything, and the old instance comes back as a standby, not as a second active.
#include <signal.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "ctl/client.h"
#include "tests/testing/files.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/process.h"
#include "tests/testing/wait.h"

namespace {

using steward::testing::BinPath;
using steward::testing::NatsServer;
using steward::testing::Process;
using steward::testing::RunResult;
using steward::testing::TempDir;
using steward::testing::WaitUntil;

struct HaCluster {
  TempDir dir;
  NatsServer nats{steward::testing::JetStreamConfig(dir)};

  std::unique_ptr<Process> Station(const std::string& instance) {
    return std::make_unique<Process>(std::vector<std::string>{
        BinPath("station/steward-station"), "--nats", nats.url(), "--data-dir", dir.str() + "/" + instance,
        "--http", "off", "--ha", "--ha-lease", "2s", "--ha-instance", instance});
  }
  std::unique_ptr<Process> Agent(const std::string& node) {
    return std::make_unique<Process>(std::vector<std::string>{BinPath("agent/steward-agent"), "--node", node,
                                                              "--nats", nats.url(), "--data-dir",
                                                              dir.str() + "/" + node, "--heartbeat", "1s"});
  }
  RunResult Ctl(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(60)) {
    std::vector<std::string> argv = {BinPath("ctl/stewardctl"), "--nats", nats.url()};
    argv.insert(argv.end(), args.begin(), args.end());
    return steward::testing::RunProgram(argv, timeout);
  }
};

TEST_CASE("HA: the standby takes over from a killed active station and every command runs once",
          "[integration][e2e][ha]") {
  HaCluster c;
  std::unique_ptr<Process> a = c.Station("a");
  REQUIRE(a->WaitForOutput("ACTIVE", absl::Seconds(15)));
  std::unique_ptr<Process> b = c.Station("b");
  REQUIRE(b->WaitForOutput("is a standby", absl::Seconds(15)));
  std::unique_ptr<Process> ship1 = c.Agent("ship1");
  std::unique_ptr<Process> ship2 = c.Agent("ship2");
  REQUIRE(WaitUntil([&] { return c.Ctl({"ping", "ship1", "--timeout", "1s"}).exit_code == 0; }, absl::Seconds(15)));
  REQUIRE(WaitUntil([&] { return c.Ctl({"ping", "ship2", "--timeout", "1s"}).exit_code == 0; }, absl::Seconds(15)));

  // Commands that take a while, accepted by a; each appends its tag to a file once it ran.
  const std::string runs = c.dir.str() + "/runs";
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    const std::string node = i % 2 == 0 ? "ship1" : "ship2";
    RunResult r = c.Ctl({"send", "--no-wait", node, "--", "sh", "-c",
                         absl::StrCat("sleep 0.", i % 5, "; echo run", i, " >> ", runs)});
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> words = absl::StrSplit(r.out, absl::ByAnyChar(" \n"), absl::SkipEmpty());
    REQUIRE(words.size() == 2);
    ids.push_back(words[1]);
  }

  const absl::Time killed = absl::Now();
  a->Signal(SIGKILL);
  REQUIRE(b->WaitForOutput("ACTIVE", absl::Seconds(15)));
  const absl::Duration takeover = absl::Now() - killed;
  CHECK(takeover < absl::Seconds(2) + absl::Seconds(5));  // the lease, then at most 5 s

  // Every command reaches its end through b, and ran exactly once.
  for (const std::string& id : ids) {
    RunResult r;
    REQUIRE(WaitUntil(
        [&] {
          r = c.Ctl({"show", id, "--timeout", "2s"});
          return r.exit_code == 0 && r.out.find("succeeded") != std::string::npos;
        },
        absl::Seconds(30)));
  }
  const std::map<std::string, int> counts = steward::testing::LineCounts(runs);
  CHECK(counts.size() == 10);
  for (const auto& [line, n] : counts) {
    INFO(line);
    CHECK(n == 1);
  }

  // Operators just go on: a new command through the new active station.
  RunResult r = c.Ctl({"send", "ship1", "--", "echo", "after"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "after\n");

  // a comes back: as a standby, never a second active one.
  a = c.Station("a");
  REQUIRE(a->WaitForOutput("is a standby", absl::Seconds(15)));
  absl::SleepFor(absl::Seconds(5));  // more than two leases
  CHECK(a->Stderr().find("ACTIVE") == std::string::npos);
  r = c.Ctl({"send", "ship2", "--", "echo", "still b"});
  CHECK(r.exit_code == 0);

  // A clean stop of b hands over at once (no wait for the lease to run out).
  b->Signal(SIGTERM);
  REQUIRE(b->Wait(absl::Seconds(15)).has_value());
  REQUIRE(a->WaitForOutput("ACTIVE", absl::Seconds(5)));
  r = c.Ctl({"send", "ship1", "--", "echo", "on a again"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "on a again\n");
}

// The takeover: 10 agents, operators submitting a stream of commands with
// stewardctl while the active station is killed with -9. The calls that straddle the
// kill go through by themselves (stewardctl sends the same request again until the
// standby answers; a request that was stored before the kill is not made twice), every
// accepted command ends, each ran once, and `stewardctl station status` shows the new
// active instance and the old one, restarted, as a standby.
TEST_CASE("HA: stewardctl calls straddling a kill -9 of the active station go through and every command runs once",
          "[integration][e2e][ha]") {
  constexpr int kAgents = 10;
  constexpr int kCommands = 200;
  constexpr int kSenders = 4;
  HaCluster c;
  std::unique_ptr<Process> a = c.Station("a");
  REQUIRE(a->WaitForOutput("ACTIVE", absl::Seconds(15)));
  std::unique_ptr<Process> b = c.Station("b");
  REQUIRE(b->WaitForOutput("is a standby", absl::Seconds(15)));
  std::vector<std::unique_ptr<Process>> agents;
  for (int i = 0; i < kAgents; ++i) agents.push_back(c.Agent(absl::StrCat("ship", i)));
  for (int i = 0; i < kAgents; ++i) {
    REQUIRE(WaitUntil([&] { return c.Ctl({"ping", absl::StrCat("ship", i), "--timeout", "1s"}).exit_code == 0; },
                      absl::Seconds(20)));
  }

  // Senders take the next command number until all are sent; a is killed once a
  // quarter are accepted, with the rest still to come and the first ones running.
  const std::string runs = c.dir.str() + "/runs";
  std::atomic<int> next{0};
  std::atomic<int> accepted{0};
  std::atomic<int> retried{0};  // calls that said they were trying again
  absl::Mutex mu;
  std::vector<std::string> ids;
  std::vector<std::string> failures;
  std::vector<std::thread> senders;
  for (int t = 0; t < kSenders; ++t) {
    senders.emplace_back([&] {
      for (int i = next++; i < kCommands; i = next++) {
        const std::string node = absl::StrCat("ship", i % kAgents);
        RunResult r = c.Ctl({"send", "--no-wait", node, "--", "sh", "-c",
                             absl::StrCat("sleep 0.", i % 3, "; echo run", i, " >> ", runs)});
        std::vector<std::string> words = absl::StrSplit(r.out, absl::ByAnyChar(" \n"), absl::SkipEmpty());
        if (r.err.find("trying again") != std::string::npos) ++retried;
        absl::MutexLock lock(&mu);
        if (r.exit_code != 0 || words.size() != 2) {
          failures.push_back(absl::StrCat("command ", i, ": exit ", r.exit_code, ": ", r.out, r.err));
          continue;
        }
        ids.push_back(words[1]);
        ++accepted;
      }
    });
  }
  REQUIRE(WaitUntil([&] { return accepted.load() >= kCommands / 4; }, absl::Seconds(60)));
  const absl::Time killed = absl::Now();
  a->Signal(SIGKILL);
  REQUIRE(b->WaitForOutput("ACTIVE", absl::Seconds(15)));
  const absl::Duration takeover = absl::Now() - killed;
  for (std::thread& t : senders) t.join();
  INFO("takeover took " << absl::FormatDuration(takeover) << "; " << retried.load() << " calls tried again");
  for (const std::string& f : failures) FAIL_CHECK(f);
  REQUIRE(ids.size() == static_cast<size_t>(kCommands));
  // Senders kept going through the takeover (a lease of 2 s at least): some calls met
  // no station and went through by trying again.
  CHECK(retried.load() > 0);
  CHECK(accepted.load() == kCommands);

  // Every accepted command ends (through b), each once.
  auto client = steward::ctl::Client::Connect({.nats = {.url = c.nats.url()}});
  REQUIRE(client.ok());
  absl::StatusOr<steward::proto::CommandStates> done = client.value()->Wait(ids, absl::Seconds(60));
  REQUIRE(done.ok());
  REQUIRE(done->commands_size() == kCommands);
  for (const steward::proto::CommandState& s : done->commands()) {
    INFO(s.id() << " on " << s.node());
    CHECK(s.state() == steward::proto::STATE_SUCCEEDED);
  }
  const std::map<std::string, int> counts = steward::testing::LineCounts(runs);
  CHECK(counts.size() == static_cast<size_t>(kCommands));
  for (const auto& [line, n] : counts) {
    INFO(line);
    CHECK(n == 1);
  }

  // a comes back as a standby; station status shows b active and a following.
  a = c.Station("a");
  REQUIRE(a->WaitForOutput("is a standby", absl::Seconds(15)));
  nlohmann::json status;
  REQUIRE(WaitUntil(
      [&] {
        RunResult r = c.Ctl({"station", "status", "--json"});
        if (r.exit_code != 0) return false;
        status = nlohmann::json::parse(r.out, nullptr, false);
        if (!status.is_object() || !status["instances"].is_array()) return false;
        for (const nlohmann::json& i : status["instances"]) {
          if (i.value("instance", "") == "a" && i.value("role", "") == "standby" && i.value("lag", -1) == 0) {
            return true;
          }
        }
        return false;
      },
      absl::Seconds(15)));
  INFO(status.dump());
  CHECK(status["ha"] == true);
  REQUIRE(status["instances"].size() >= 2);
  CHECK(status["instances"][0]["instance"] == "b");
  CHECK(status["instances"][0]["role"] == "active");
  CHECK(status["instances"][0]["term"].get<uint64_t>() > 0);
  CHECK(status["instances"][0]["applied"] == status["journal"]);
  RunResult text = c.Ctl({"station", "status"});
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.out, Catch::Contains("high availability"));
  // Rows: instance, role, ...
  std::map<std::string, std::string> role_of;
  for (absl::string_view line : absl::StrSplit(text.out, '\n')) {
    std::vector<std::string> cells = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (cells.size() >= 2) role_of[cells[0]] = cells[1];
  }
  INFO(text.out);
  CHECK(role_of["b"] == "active");
  CHECK(role_of["a"] == "standby");
}

}  // namespace
