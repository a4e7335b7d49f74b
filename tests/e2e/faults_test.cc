// End-to-end: the truth under faults. Each test counts executions with a side-effect
// file and reads the ledger (through the station, after a restart where it matters),
// so that a command run twice, a lost result or a false state fails it.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/protocol.h"
#include "ctl/client.h"
#include "tests/testing/cluster.h"
#include "tests/testing/files.h"
#include "tests/testing/tmpfs.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::LineCounts;
using steward::testing::RunResult;
using steward::testing::Tmpfs;
using steward::testing::WaitUntil;

namespace {

std::unique_ptr<steward::ctl::Client> Connect(Cluster& c) {
  auto client = steward::ctl::Client::Connect({.nats = {.url = c.url()}});
  REQUIRE(client.ok());
  return std::move(*client);
}

// The state column of command `id` in the station's ledger file, read beside the
// running station (WAL lets a reader in).
std::string LedgerState(const std::string& db, const std::string& id) {
  RunResult r = steward::testing::RunProgram(
      {"/usr/bin/sqlite3", db, absl::StrCat("SELECT state FROM commands WHERE id = '", id, "'")});
  if (r.exit_code != 0) FAIL("sqlite3 " << db << ": " << r.err);
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string IdOf(const RunResult& r) { return r.out.substr(r.out.find(' ') + 1, 26); }

TEST_CASE("station disk full: nothing is acknowledged before it is stored, and it recovers by itself",
          "[integration][faults]") {
  Cluster c;
  std::string why;
  auto disk = Tmpfs::Mount(c.dir().path() / "station", 8 << 20, &why);
  if (disk == nullptr) {
    WARN("skipped: " << why);
    return;
  }
  c.StartStation();
  c.StartAgent("ship1");
  const auto ran = c.dir().path() / "ran";
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    RunResult r = c.Ctl({"send", "--no-wait", "ship1", "--", "sh", "-c", absl::StrCat("sleep 1; echo ", i, " >> ", ran.string())});
    REQUIRE(r.exit_code == 0);
    ids.push_back(IdOf(r));
  }
  disk->Fill();
  // They run on the node; their results cannot be stored.
  REQUIRE(WaitUntil([&] { return LineCounts(ran).size() == 5; }, absl::Seconds(15)));
  auto client = Connect(c);
  REQUIRE(WaitUntil([&] {
    auto n = client->Nodes("", absl::Seconds(2));
    return n.ok() && n->station().degraded();
  }, absl::Seconds(10)));
  // A send while the ledger cannot write is refused clearly and runs nothing.
  const auto refused = c.dir().path() / "refused";
  RunResult r = c.Ctl({"send", "ship1", "--", "touch", refused.string()});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("ledger write failed"));
  // The ledger does not hold their results: the fault is real.
  const std::string db = (c.dir().path() / "station" / "station.db").string();
  for (const std::string& id : ids) CHECK(LedgerState(db, id) != "succeeded");

  disk->Free();
  // Recovers by itself: the agent's resent results are stored; nothing runs again.
  REQUIRE(WaitUntil([&] {
    auto n = client->Nodes("", absl::Seconds(2));
    return n.ok() && !n->station().degraded();
  }, absl::Seconds(20)));
  REQUIRE(WaitUntil([&] {
    auto s = client->Show(ids, "", absl::Seconds(2));
    if (!s.ok()) return false;
    for (const auto& cs : s->commands()) {
      if (cs.state() != steward::proto::STATE_SUCCEEDED) return false;
    }
    return true;
  }, absl::Seconds(30)));
  // In the ledger, not only in memory.
  for (const std::string& id : ids) CHECK(LedgerState(db, id) == "succeeded");
  // And a killed and restarted station says so too.
  c.StopStation(SIGKILL);
  c.StartStation();
  auto shown = client->Show(ids, "", absl::Seconds(5));
  REQUIRE(shown.ok());
  for (const auto& s : shown->commands()) {
    INFO(s.id());
    CHECK(s.state() == steward::proto::STATE_SUCCEEDED);
  }
  CHECK(LineCounts(ran) == std::map<std::string, int>{{"0", 1}, {"1", 1}, {"2", 1}, {"3", 1}, {"4", 1}});
  CHECK_FALSE(std::filesystem::exists(refused));
}

}  // namespace
