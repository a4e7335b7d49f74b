// High availability with real processes: two steward-station instances of one station
// name on a nats-server with JetStream. The active one is killed with -9 while
// commands are in flight; the standby takes over, every command ends once (a
// side-effect file counts the runs), operators reach the new active station without
// doing anything, and the old instance comes back as a standby, not as a second active.
#include <signal.h>
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/nats.h"
#include "tests/e2e/ha_cluster.h"
#include "tests/testing/files.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/process.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/wait.h"

namespace {

using steward::testing::HaCluster;
using steward::testing::Process;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

// Every command of `ids` ends succeeded (asked of whichever instance is active).
void ExpectEachSucceeded(HaCluster& c, const std::vector<std::string>& ids) {
  for (const std::string& id : ids) {
    RunResult r;
    REQUIRE(WaitUntil(
        [&] {
          r = c.Ctl({"show", id, "--timeout", "2s"});
          return r.exit_code == 0 && r.out.find("succeeded") != std::string::npos;
        },
        absl::Seconds(30)));
  }
}

// `runs` has `lines` different lines, each once.
void ExpectEachLineOnce(const std::string& runs, size_t lines) {
  const std::map<std::string, int> counts = steward::testing::LineCounts(runs);
  CHECK(counts.size() == lines);
  for (const auto& [line, n] : counts) {
    INFO(line);
    CHECK(n == 1);
  }
}

// ... and each appended its one line to `runs`.
void ExpectEachSucceededOnce(HaCluster& c, const std::vector<std::string>& ids, const std::string& runs) {
  ExpectEachSucceeded(c, ids);
  ExpectEachLineOnce(runs, ids.size());
}

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
  ExpectEachSucceededOnce(c, ids, runs);

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

// A transaction larger than the broker carries in one message (copy chunks stay in
// their rows on a replicated ledger) goes to the journal in parts: the copy works, and
// the standby holds it whole when it takes over.
TEST_CASE("HA: a copy larger than a message is replicated and the standby has it", "[integration][e2e][ha]") {
  HaCluster c;
  std::unique_ptr<Process> a = c.Station("a");
  REQUIRE(a->WaitForOutput("ACTIVE", absl::Seconds(15)));
  std::unique_ptr<Process> b = c.Station("b");
  REQUIRE(b->WaitForOutput("is a standby", absl::Seconds(15)));
  std::unique_ptr<Process> ship1 = c.Agent("ship1");
  REQUIRE(WaitUntil([&] { return c.Ctl({"ping", "ship1", "--timeout", "1s"}).exit_code == 0; }, absl::Seconds(15)));

  std::string data;
  for (int i = 0; data.size() < 3 * 1024 * 1024; ++i) data += absl::StrCat("line ", i, " of a file bigger than a message\n");
  const std::string src = c.dir.str() + "/src";
  std::ofstream(src, std::ios::binary) << data;
  RunResult r = c.Ctl({"copy", src, "ship1:" + c.dir.str() + "/dst"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::ifstream in(c.dir.str() + "/dst", std::ios::binary);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == data);

  // b takes over and answers from its own copy of the ledger: the copy's commands are there.
  a->Signal(SIGTERM);
  REQUIRE(a->Wait(absl::Seconds(15)).has_value());
  REQUIRE(b->WaitForOutput("ACTIVE", absl::Seconds(15)));
  r = c.Ctl({"history", "--node", "ship1", "--limit", "100"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("copy") != std::string::npos);
  CHECK(r.out.find("failed") == std::string::npos);
}

// The time of day a log line starts with ("HH:MM:SS.mmm"), in ms, of the first line of
// `log` that holds `what`; -1 when none does.
int64_t LoggedAt(const std::string& log, const std::string& what) {
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (line.find(what) == absl::string_view::npos) continue;
    int h = 0, m = 0, sec = 0, ms = 0;
    if (std::sscanf(std::string(line.substr(0, 12)).c_str(), "%d:%d:%d.%d", &h, &m, &sec, &ms) != 4) return -1;
    return ((h * 60 + m) * 60 + sec) * 1000 + ms;
  }
  return -1;
}

// A partition: the active instance's link to the broker goes silent (no reset). It
// cannot renew its lease, so it stops acting before the standby may take the lease,
// and exits with status 3; the standby takes over and the commands that were running
// end once, through it.
TEST_CASE("HA: an active station cut off from the broker stops before the standby takes over",
          "[integration][e2e][ha]") {
  HaCluster c;
  steward::testing::TcpProxy link(static_cast<uint16_t>(c.nats.port()));
  std::unique_ptr<Process> a = c.Station("a", absl::StrCat("nats://127.0.0.1:", link.port()));
  REQUIRE(a->WaitForOutput("ACTIVE", absl::Seconds(15)));
  std::unique_ptr<Process> b = c.Station("b");
  REQUIRE(b->WaitForOutput("is a standby", absl::Seconds(15)));
  std::unique_ptr<Process> ship1 = c.Agent("ship1");
  REQUIRE(WaitUntil([&] { return c.Ctl({"ping", "ship1", "--timeout", "1s"}).exit_code == 0; }, absl::Seconds(15)));

  const std::string runs = c.dir.str() + "/runs";
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    RunResult r = c.Ctl({"send", "--no-wait", "ship1", "--domain", absl::StrCat("p", i), "--", "sh", "-c",
                         absl::StrCat("sleep 1; echo run", i, " >> ", runs)});
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> words = absl::StrSplit(r.out, absl::ByAnyChar(" \n"), absl::SkipEmpty());
    REQUIRE(words.size() == 2);
    ids.push_back(words[1]);
  }
  link.Freeze();
  std::optional<RunResult> exited = a->Wait(absl::Seconds(15));
  REQUIRE(exited.has_value());
  CHECK(exited->exit_code == 3);  // lost its lease: stopped acting, for systemd to restart as a standby
  REQUIRE(b->WaitForOutput("ACTIVE", absl::Seconds(15)));
  // a's own word for when it stopped acting (its writer refused from then on).
  const std::string ran_out = "renewal ran out at ";
  const size_t at = a->Stderr().find(ran_out);
  REQUIRE(at != std::string::npos);
  const int64_t a_stopped = LoggedAt(a->Stderr().substr(at + ran_out.size()), "UTC");
  const int64_t b_active = LoggedAt(b->Stderr(), "ACTIVE");
  INFO(a->Stderr());
  REQUIRE(a_stopped >= 0);
  REQUIRE(b_active >= 0);
  CHECK(a_stopped < b_active);  // never two active instances at once

  ExpectEachSucceededOnce(c, ids, runs);
  link.Thaw();
}

TEST_CASE("HA: station status answers with the active instance when the roster cannot be read",
          "[integration][e2e][ha]") {
  HaCluster c;
  std::unique_ptr<Process> a = c.Station("a");
  REQUIRE(a->WaitForOutput("ACTIVE", absl::Seconds(15)));
  std::unique_ptr<Process> b = c.Station("b");
  REQUIRE(b->WaitForOutput("is a standby", absl::Seconds(15)));
  REQUIRE(WaitUntil([&] { return c.Ctl({"station", "status"}).out.find("standby") != std::string::npos; },
                    absl::Seconds(15)));

  // The roster's bucket goes away (a lost broker, an operator's mistake): the answer
  // still names the active instance, and says why the others are missing.
  steward::nats::Library lib;
  steward::nats::ConnectionPtr nc = steward::testing::MustConnect(c.nats.url(), "operator");
  jsCtx* js = nullptr;
  REQUIRE(natsConnection_JetStream(&js, nc.get(), nullptr) == NATS_OK);
  const natsStatus deleted = js_DeleteStream(js, "KV_steward_stations", nullptr, nullptr);
  jsCtx_Destroy(js);
  REQUIRE(deleted == NATS_OK);
  RunResult r = c.Ctl({"station", "status"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("\na ") != std::string::npos);
  CHECK(r.out.find(" active ") != std::string::npos);
  CHECK(r.out.find("the roster could not be read") != std::string::npos);
  CHECK(r.out.find("standby") == std::string::npos);
  // Nothing else depends on the roster: commands still go through.
  std::unique_ptr<Process> ship1 = c.Agent("ship1");
  REQUIRE(WaitUntil([&] { return c.Ctl({"ping", "ship1", "--timeout", "1s"}).exit_code == 0; }, absl::Seconds(15)));
  r = c.Ctl({"send", "ship1", "--", "echo", "no roster"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "no roster\n");
}

// A consistent copy of the ledger in `from` (a running instance's data directory) made
// into `to`, as an operator makes a seed with sqlite3's VACUUM INTO (or .backup).
void CopyLedger(const std::string& from, const std::string& to) {
  std::filesystem::create_directories(to);
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2((from + "/station.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, ("VACUUM INTO '" + to + "/station.db'").c_str(), nullptr, nullptr, &error);
  INFO((error != nullptr ? error : ""));
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

TEST_CASE("HA: the journal is compacted behind the standbys, and a new instance starts from a seed copy",
          "[integration][e2e][ha]") {
  HaCluster c;
  const std::vector<std::string> keep = {"--ha-journal-keep", "5"};
  std::unique_ptr<Process> a = c.Station("a", "", keep);
  REQUIRE(a->WaitForOutput("ACTIVE", absl::Seconds(15)));
  std::unique_ptr<Process> b = c.Station("b", "", keep);
  REQUIRE(b->WaitForOutput("is a standby", absl::Seconds(15)));
  std::unique_ptr<Process> ship1 = c.Agent("ship1");
  REQUIRE(WaitUntil([&] { return c.Ctl({"ping", "ship1", "--timeout", "1s"}).exit_code == 0; }, absl::Seconds(15)));

  const std::string runs = c.dir.str() + "/runs";
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) {
    RunResult r = c.Ctl({"send", "--no-wait", "ship1", "--", "sh", "-c", absl::StrCat("echo run", i, " >> ", runs)});
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> words = absl::StrSplit(r.out, absl::ByAnyChar(" \n"), absl::SkipEmpty());
    REQUIRE(words.size() == 2);
    ids.push_back(words[1]);
  }
  ExpectEachSucceededOnce(c, ids, runs);

  // The active instance drops what every standby has: the standby still follows.
  RunResult status;
  REQUIRE(WaitUntil(
      [&] {
        status = c.Ctl({"station", "status"});
        return status.exit_code == 0 && status.out.find("kept from entry") != std::string::npos;
      },
      absl::Seconds(20)));
  INFO(status.out);
  CHECK(a->Stderr().find("now starts at entry") != std::string::npos);
  CHECK(b->Stderr().find("standby stopped") == std::string::npos);

  // A new instance with an empty ledger cannot follow a compacted journal: it says how
  // to start it, and ends.
  std::unique_ptr<Process> fresh = c.Station("fresh", "", keep);
  REQUIRE(fresh->WaitForOutput("seed this instance", absl::Seconds(15)));
  const std::optional<RunResult> ended = fresh->Wait(absl::Seconds(15));
  REQUIRE(ended.has_value());
  CHECK(ended->exit_code == 3);

  // Seeded with a copy of the standby's ledger, taken while it runs, it follows; with
  // a and b gone it takes over and holds every command.
  CopyLedger(c.DataDir("b"), c.DataDir("seeded"));
  std::unique_ptr<Process> seeded = c.Station("seeded", "", keep);
  REQUIRE(seeded->WaitForOutput("is a standby", absl::Seconds(15)));
  RunResult r = c.Ctl({"send", "ship1", "--", "sh", "-c", absl::StrCat("echo after-seed >> ", runs)});
  REQUIRE(r.exit_code == 0);
  a->Signal(SIGKILL);
  b->Signal(SIGKILL);
  REQUIRE(seeded->WaitForOutput("ACTIVE", absl::Seconds(20)));
  CHECK(seeded->Stderr().find("standby stopped") == std::string::npos);
  ExpectEachSucceeded(c, ids);  // asked of the seeded instance, now the active one
  ExpectEachLineOnce(runs, ids.size() + 1);
  r = c.Ctl({"send", "ship1", "--", "echo", "on the seeded one"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "on the seeded one\n");
}

}  // namespace
