// High availability with real processes, as an operator meets it: stewardctl calls that
// straddle a kill -9 of the active station go through by trying again (ctl/client.h),
// the station makes each submitted command once (station/repeats.h), and `stewardctl
// station status` says who is who (station/ha/roster.h).
#include <signal.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
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
#include "tests/e2e/ha_cluster.h"
#include "tests/testing/files.h"
#include "tests/testing/wait.h"

namespace {

using steward::testing::HaCluster;
using steward::testing::Process;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

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
  const std::vector<std::unique_ptr<Process>> agents = c.Agents(kAgents);
  REQUIRE(agents.size() == static_cast<size_t>(kAgents));

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

  // a comes back as a standby; station status shows b active and a following: it holds
  // every journal entry b had written before a came back. (Its lag is a sample: the
  // active instance goes on writing, heartbeats among others, between a's roster record,
  // put every second, and the question.)
  nlohmann::json status;
  auto read_status = [&] {
    RunResult r = c.Ctl({"station", "status", "--json"});
    if (r.exit_code != 0) return false;
    status = nlohmann::json::parse(r.out, nullptr, false);
    return status.is_object() && status["instances"].is_array() && status["journal"].is_number_unsigned();
  };
  REQUIRE(read_status());
  const uint64_t written_before = status["journal"].get<uint64_t>();
  a = c.Station("a");
  REQUIRE(a->WaitForOutput("is a standby", absl::Seconds(15)));
  REQUIRE(WaitUntil(
      [&] {
        if (!read_status()) return false;
        for (const nlohmann::json& i : status["instances"]) {
          if (i.value("instance", "") == "a" && i.value("role", "") == "standby" &&
              i.value("applied", uint64_t{0}) >= written_before) {
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
