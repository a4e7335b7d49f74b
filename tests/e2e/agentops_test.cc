// End-to-end: agent operations (issue 14) with real processes: `stewardctl status`
// live and --cached, and `stewardctl process stop/start` of a command handler, across
// an agent restart.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/signing.h"
#include "common/sqlite.h"
#include "tests/testing/cluster.h"
#include "tests/testing/files.h"
#include "tests/testing/process.h"
#include "tests/testing/tmpfs.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

namespace {

// The command id `send --no-wait NODE -- ...` printed ("NODE ID").
std::string IdOf(const RunResult& r) {
  const size_t space = r.out.find(' ');
  REQUIRE(space != std::string::npos);
  return r.out.substr(space + 1, 26);
}

bool Has(const std::string& text, const std::string& pattern) {
  return std::regex_search(text, std::regex(pattern));
}

// Sends `argv` to ship1's shellcommand handler of `domain` and waits for its end.
RunResult Send(Cluster& c, const std::string& domain, std::vector<std::string> argv) {
  std::vector<std::string> args = {"send", "--timeout", "10s", "--domain", domain, "ship1", "--"};
  args.insert(args.end(), argv.begin(), argv.end());
  return c.Ctl(args);
}

}  // namespace

TEST_CASE("status shows a busy handler's queue and running command", "[integration][agentops]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  // One domain is one handler: these run one after another, the rest wait in its queue.
  std::string first;
  for (int i = 0; i < 4; ++i) {
    RunResult r = c.Ctl({"send", "--no-wait", "--domain", "busy", "ship1", "--", "sleep", "5"});
    REQUIRE(r.exit_code == 0);
    if (i == 0) first = IdOf(r);
  }
  // PROCESS STATE QUEUE HANDLED FAILED RESTARTS RUNNING
  const std::string busy = "shellcommand/busy +running +[1-3]/64 +0 +0 +0 +" + first + " for ";
  RunResult status;
  CHECK(WaitUntil(
      [&] {
        status = c.Ctl({"status", "ship1"});
        return status.exit_code == 0 && Has(status.out, busy);
      },
      absl::Seconds(20)));
  INFO(status.out << status.err);
  CHECK(Has(status.out, "dispatcher +running"));
  CHECK(Has(status.out, "status/agent +running"));
  CHECK_THAT(status.out, Catch::Contains("outbox: "));
  CHECK_THAT(status.out, Catch::Contains("resources: RSS "));

  // --json: the AgentStatus record.
  RunResult json = c.Ctl({"--json", "status", "ship1"});
  CHECK(json.exit_code == 0);
  CHECK_THAT(json.out, Catch::Contains("\"name\":\"shellcommand/busy\""));

  // The status commands went through the ledger like any command: they have records.
  RunResult history = c.Ctl({"history", "--node", "ship1"});
  CHECK_THAT(history.out, Catch::Contains("status"));

  // The compact form rides in the hellos: the station's copy shows the queue too.
  RunResult cached;
  CHECK(WaitUntil(
      [&] {
        cached = c.Ctl({"status", "--cached", "ship1"});
        return cached.exit_code == 0 && Has(cached.out, "shellcommand/busy +running +[1-3] +0 ");
      },
      absl::Seconds(10)));
  INFO(cached.out << cached.err);
}

TEST_CASE("a stopped handler rejects its commands at once and stays stopped across an agent restart",
          "[integration][agentops]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  REQUIRE(Send(c, "svc", {"true"}).exit_code == 0);

  RunResult r = c.Ctl({"process", "stop", "ship1", "shellcommand/svc"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("ship1: stopped shellcommand/svc"));

  // Rejected at once (not queued to time out), saying why and how to undo it.
  const absl::Time sent = absl::Now();
  r = Send(c, "svc", {"true"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("stopped by operator"));
  CHECK_THAT(r.err, Catch::Contains("stewardctl process start ship1 shellcommand/svc"));
  CHECK(absl::Now() - sent < absl::Seconds(5));
  // Other handlers are not affected.
  CHECK(Send(c, "other", {"true"}).exit_code == 0);
  r = c.Ctl({"status", "ship1"});
  CHECK(Has(r.out, "shellcommand/svc +stopped"));

  // Across a restart of the agent.
  c.StopAgent("ship1");
  c.StartAgent("ship1");
  r = Send(c, "svc", {"true"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("stopped by operator"));
  r = c.Ctl({"status", "ship1"});
  CHECK(Has(r.out, "shellcommand/svc +stopped"));

  // Stopping twice is harmless; the operator's own handlers cannot be stopped.
  r = c.Ctl({"process", "stop", "ship1", "shellcommand/svc"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("already stopped"));
  r = c.Ctl({"process", "stop", "ship1", "process/agent"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("cannot be stopped"));
  r = c.Ctl({"process", "stop", "ship1", "nosuchmethod/x"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("unknown method nosuchmethod"));

  r = c.Ctl({"process", "start", "ship1", "shellcommand/svc"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("started shellcommand/svc"));
  r = Send(c, "svc", {"echo", "back"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "back\n");
  // Started stays started across a restart too.
  c.StopAgent("ship1");
  c.StartAgent("ship1");
  CHECK(Send(c, "svc", {"true"}).exit_code == 0);
}

TEST_CASE("stopping a handler that runs a command is refused unless --cancel-running",
          "[integration][agentops]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  RunResult r = c.Ctl({"send", "--no-wait", "--domain", "long", "ship1", "--", "sleep", "60"});
  REQUIRE(r.exit_code == 0);
  const std::string id = IdOf(r);
  REQUIRE(WaitUntil([&] { return Has(c.Ctl({"status", "ship1"}).out, "shellcommand/long +running .*" + id); },
                    absl::Seconds(15)));

  r = c.Ctl({"process", "stop", "ship1", "shellcommand/long"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("is running command " + id));
  CHECK_THAT(r.err, Catch::Contains("--cancel-running"));
  CHECK(Has(c.Ctl({"status", "ship1"}).out, "shellcommand/long +running"));  // nothing changed

  const absl::Time asked = absl::Now();
  r = c.Ctl({"process", "stop", "--cancel-running", "ship1", "shellcommand/long"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("canceled command " + id));
  // The sleep was killed, and its command ended truthfully.
  RunResult shown;
  CHECK(WaitUntil(
      [&] {
        shown = c.Ctl({"show", id});
        return shown.out.find("canceled") != std::string::npos;
      },
      absl::Seconds(10)));
  INFO(shown.out);
  CHECK_THAT(shown.out, Catch::Contains("canceled"));
  CHECK(absl::Now() - asked < absl::Seconds(30));
}

TEST_CASE("status --cached shows an offline node's last known status with its age", "[integration][agentops]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  REQUIRE(Send(c, "svc", {"true"}).exit_code == 0);
  REQUIRE(c.Ctl({"process", "stop", "ship1", "shellcommand/svc"}).exit_code == 0);
  // A hello after the stop carries it.
  REQUIRE(WaitUntil([&] { return Has(c.Ctl({"status", "--cached", "ship1"}).out, "shellcommand/svc +stopped"); },
                    absl::Seconds(10)));
  c.StopAgent("ship1", SIGKILL);

  // Live: the node does not answer; the error points at --cached.
  RunResult r = c.Ctl({"status", "--timeout", "2s", "ship1"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("status --cached ship1"));

  absl::SleepFor(absl::Seconds(1));
  r = c.Ctl({"status", "--cached", "ship1"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(Has(r.out, "ship1: .* \\(last known status, from its hello of [0-9]+s ago\\)"));
  CHECK(Has(r.out, "shellcommand/svc +stopped"));
  CHECK_THAT(r.out, Catch::Contains("outbox: "));

  r = c.Ctl({"status", "--cached", "nosuchnode"});
  CHECK(r.exit_code == 255);
}

namespace {

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// The heartbeat the station last heard from ship1 announce (ms), 0 when unknown.
int64_t StationHeartbeatMs(Cluster& c) {
  RunResult r = c.Ctl({"--json", "node", "ship1"});
  const std::string key = "\"heartbeat_ms\":";
  const size_t at = r.out.find(key);
  if (at == std::string::npos) return 0;
  return std::atoll(r.out.c_str() + at + key.size() + (r.out[at + key.size()] == '"' ? 1 : 0));
}

}  // namespace

TEST_CASE("config show, set and push: validated, applied live, an invalid one changes nothing",
          "[integration][agentops]") {
  Cluster c;
  c.StartStation();
  const std::string file = c.dir().str() + "/ship1.toml";
  WriteFile(file, "heartbeat = \"1s\"\n");
  c.StartAgent("ship1", {"--config", file});

  RunResult r = c.Ctl({"config", "show", "ship1"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Has(r.out, "# hash: sha256:[0-9a-f]{16}"));
  CHECK(Has(r.out, "heartbeat = \"1s\" +# file " + file));
  const std::string hash_before = r.out.substr(r.out.find("sha256:"), 23);

  // Invalid values are refused with the reason; the file and the running agent stay.
  r = c.Ctl({"config", "set", "ship1", "heartbeat=soon"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("refused, nothing changed"));
  CHECK_THAT(r.err, Catch::Contains("heartbeat"));
  r = c.Ctl({"config", "set", "ship1", "nosuchkey=1"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("unknown key nosuchkey"));
  const std::string bad = c.dir().str() + "/bad.toml";
  WriteFile(bad, "heartbeat = \"1s\"\nsyslog_tcp = [\"not a listen address\"]\n");
  r = c.Ctl({"config", "push", "ship1", bad});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("refused, nothing changed"));
  WriteFile(bad, "node = \"other\"\n");
  r = c.Ctl({"config", "push", "ship1", bad});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("refused, nothing changed: node (set by flag --node"));
  WriteFile(bad, "heartbeat = \"1s\"\nkeep_results = \"1h\"\n");
  r = c.Ctl({"config", "push", "ship1", bad});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("keep_results (needs a restart of the service)"));
  std::ifstream in(file);
  std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(kept == "heartbeat = \"1s\"\n");
  r = c.Ctl({"config", "show", "ship1"});
  CHECK_THAT(r.out, Catch::Contains(hash_before));

  // A valid change is written and applied: the station hears the new heartbeat.
  r = c.Ctl({"config", "set", "ship1", "heartbeat=3s"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("changes heartbeat"));
  CHECK(WaitUntil([&] { return StationHeartbeatMs(c) == 3000; }, absl::Seconds(10)));
  r = c.Ctl({"config", "show", "ship1"});
  CHECK(Has(r.out, "heartbeat = \"3s\""));
  CHECK_THAT(r.out, !Catch::Contains(hash_before));
  // The hello carries the new hash.
  CHECK(WaitUntil([&] { return !Has(c.Ctl({"status", "--cached", "ship1"}).out, hash_before); }, absl::Seconds(10)));

  // A push that changes more than the heartbeat restarts the agent inside its process:
  // it answers again, with its handlers and records.
  WriteFile(bad, "heartbeat = \"2s\"\nintake_max_mb = 8\n");
  r = c.Ctl({"config", "push", "ship1", bad});
  CHECK(r.exit_code == 0);
  CHECK(WaitUntil([&] { return StationHeartbeatMs(c) == 2000; }, absl::Seconds(15)));
  CHECK(WaitUntil([&] { return Send(c, "after", {"echo", "ok"}).exit_code == 0; }, absl::Seconds(15)));
  CHECK(c.agent("ship1").running());
}

TEST_CASE("SIGHUP reloads the file: a new heartbeat takes effect, an invalid file is refused",
          "[integration][agentops]") {
  Cluster c;
  c.StartStation();
  const std::string file = c.dir().str() + "/ship1.toml";
  WriteFile(file, "heartbeat = \"1s\"\n");
  c.StartAgent("ship1", {"--config", file});
  REQUIRE(WaitUntil([&] { return StationHeartbeatMs(c) == 1000; }));

  WriteFile(file, "heartbeat = \"nonsense\"\n");
  c.agent("ship1").Signal(SIGHUP);
  CHECK(WaitUntil([&] { return c.agent("ship1").Stderr().find("configuration not reloaded") != std::string::npos; }));
  CHECK(c.agent("ship1").running());
  CHECK(Send(c, "x", {"true"}).exit_code == 0);
  CHECK(StationHeartbeatMs(c) == 1000);

  WriteFile(file, "heartbeat = \"4s\"\n");
  c.agent("ship1").Signal(SIGHUP);
  CHECK(WaitUntil([&] { return StationHeartbeatMs(c) == 4000; }));
  CHECK(c.agent("ship1").running());

  // A reload that changes more restarts the agent in its process, which stops what
  // runs: the command's result says that, not that the agent was shutting down.
  RunResult r = c.Ctl({"send", "--no-wait", "--domain", "long", "ship1", "--", "sleep", "60"});
  REQUIRE(r.exit_code == 0);
  const std::string id = IdOf(r);
  REQUIRE(WaitUntil([&] { return Has(c.Ctl({"status", "ship1"}).out, "shellcommand/long +running .*" + id); },
                    absl::Seconds(15)));
  WriteFile(file, "heartbeat = \"4s\"\nintake_max_mb = 8\n");
  c.agent("ship1").Signal(SIGHUP);
  RunResult shown;
  CHECK(WaitUntil(
      [&] {
        shown = c.Ctl({"show", id});
        return shown.out.find("failed") != std::string::npos;
      },
      absl::Seconds(15)));
  INFO(shown.out);
  CHECK_THAT(shown.out, Catch::Contains("canceled: the agent restarted to apply a new configuration"));
  CHECK(c.agent("ship1").running());
}

namespace {

// Same content (compared by hash: a failure must not print megabytes).
bool SameFile(const std::string& a, const std::string& b) {
  auto ha = steward::signing::Sha256File(a);
  auto hb = steward::signing::Sha256File(b);
  return ha.ok() && hb.ok() && *ha == *hb;
}

// The bytes in the station's spool of copy chunks (<data>/spool).
uintmax_t SpoolBytes(const std::string& dir) {
  uintmax_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/station/spool", ec)) {
    n += std::filesystem::file_size(e.path(), ec);
  }
  return n;
}

// `bytes` of varied content (not all one byte: a chunk mix-up would show).
void WriteBytes(const std::string& path, size_t bytes) {
  std::string data(bytes, '\0');
  uint32_t x = 2463534242u;
  for (char& ch : data) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    ch = static_cast<char>(x);
  }
  std::ofstream(path, std::ios::binary) << data;
}

}  // namespace

TEST_CASE("copy a file to a node and back: whole, with its mode, checked", "[integration][agentops][copy]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const std::string dir = c.dir().str();
  WriteBytes(dir + "/src", (3 << 20) + 12345);  // several chunks and a partial one
  std::filesystem::create_directories(dir + "/node");

  RunResult r = c.Ctl({"copy", dir + "/src", "ship1:" + dir + "/node/dst", "--mode", "0640"}, absl::Seconds(60));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(SameFile(dir + "/node/dst", dir + "/src"));
  CHECK((std::filesystem::status(dir + "/node/dst").permissions() & std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write | std::filesystem::perms::group_read));
  // No part file is left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/node")) files += e.is_regular_file() ? 1 : 0;
  CHECK(files == 1);

  r = c.Ctl({"copy", "ship1:" + dir + "/node/dst", dir + "/back"}, absl::Seconds(60));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(SameFile(dir + "/back", dir + "/src"));
  CHECK_FALSE(std::filesystem::exists(dir + "/back.steward-part"));

  // An empty file too.
  WriteBytes(dir + "/empty", 0);
  CHECK(c.Ctl({"copy", dir + "/empty", "ship1:" + dir + "/node/empty"}).exit_code == 0);
  CHECK(std::filesystem::file_size(dir + "/node/empty") == 0);
}

TEST_CASE("copy bad input gets a clear error and writes nothing", "[integration][agentops][copy]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const std::string dir = c.dir().str();
  WriteBytes(dir + "/src", 1000);
  RunResult r = c.Ctl({"copy", dir + "/missing", "ship1:" + dir + "/x"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("No such file"));
  r = c.Ctl({"copy", dir, "ship1:" + dir + "/x"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("is a directory"));
  // What the node refuses exits 1 (docs/agent-operations.md), what never ran 255.
  r = c.Ctl({"copy", dir + "/src", "ship1:" + dir});  // the target is a directory
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("is a directory"));
  r = c.Ctl({"copy", dir + "/src", "ship1:" + dir + "/nodir/x"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("No such file or directory"));
  r = c.Ctl({"copy", dir + "/src", "ship1:" + dir + "/../etc/x"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("\"..\""));
  r = c.Ctl({"copy", "ship1:" + dir + "/missing", dir + "/got"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("No such file"));
  // A FIFO (or a device) is refused at once: its open must not wait for a writer, which
  // left the node's copy handler stuck for good.
  REQUIRE(::mkfifo((dir + "/fifo").c_str(), 0600) == 0);
  const absl::Time start = absl::Now();
  r = c.Ctl({"copy", "ship1:" + dir + "/fifo", dir + "/got"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("is not a regular file"));
  CHECK(absl::Now() - start < absl::Seconds(8));
  WriteBytes(dir + "/after", 100);
  r = c.Ctl({"copy", "ship1:" + dir + "/after", dir + "/after.got"});  // the handler is free
  CHECK(r.exit_code == 0);
  CHECK_FALSE(std::filesystem::exists(dir + "/got"));
  CHECK_FALSE(std::filesystem::exists(dir + "/x"));
  r = c.Ctl({"copy", dir + "/src", dir + "/other"});
  CHECK(r.exit_code == 2);  // usage: no NODE:/path
}

TEST_CASE("copy --wait bounds a copy to a node that does not answer, both ways", "[integration][agentops][copy]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const std::string dir = c.dir().str();
  WriteBytes(dir + "/src", 1000);
  REQUIRE(c.Ctl({"copy", dir + "/src", "ship1:" + dir + "/first"}).exit_code == 0);
  c.StopAgent("ship1");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"copy", "--wait", "3s", dir + "/src", "ship1:" + dir + "/second"},
        std::vector<std::string>{"copy", "--wait", "3s", "ship1:" + dir + "/first", dir + "/back"}}) {
    const absl::Time start = absl::Now();
    RunResult r = c.Ctl(args);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 255);
    CHECK_THAT(r.err, Catch::Contains("not finished within 3s"));
    // One step waited the whole --timeout (10 s) before.
    CHECK(absl::Now() - start < absl::Seconds(7));
  }
}

TEST_CASE("copy to a full disk fails clearly and resumes once there is room", "[integration][agentops][copy]") {
  Cluster c;
  std::string why;
  auto disk = steward::testing::Tmpfs::Mount(c.dir().path() / "small", 4 << 20, &why);
  if (disk == nullptr) {
    WARN("skipped: " << why);
    return;
  }
  c.StartStation();
  c.StartAgent("ship1");
  const std::string dir = c.dir().str();
  WriteBytes(dir + "/src", 3 << 20);
  disk->Fill();
  RunResult r = c.Ctl({"copy", "--wait", "20s", dir + "/src", "ship1:" + dir + "/small/dst"});
  CHECK(r.exit_code == 1);  // the node refused it
  CHECK_THAT(r.err, Catch::Contains("No space left on device"));
  CHECK_FALSE(std::filesystem::exists(dir + "/small/dst"));
  disk->Free();
  r = c.Ctl({"copy", dir + "/src", "ship1:" + dir + "/small/dst"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(SameFile(dir + "/small/dst", dir + "/src"));
}

namespace {

// Copies 48 MiB to ship1, calls `stop` once the node holds more than 4 MiB of it (and
// not all), then `start`, and checks that the copy ends with the file's hash.
void CopyInterrupted(Cluster& c, const std::function<void()>& stop, const std::function<void()>& start) {
  const std::string dir = c.dir().str();
  WriteBytes(dir + "/src", 48 << 20);
  std::filesystem::create_directories(dir + "/node");
  steward::testing::Process copy({steward::testing::BinPath("ctl/stewardctl"), "--nats", c.url(), "--timeout", "3s",
                                  "copy", dir + "/src", "ship1:" + dir + "/node/dst"});
  // Chunks come in any order: what the node holds from 0 with no gap is in the part's
  // .have file.
  auto part_size = [&] { return steward::testing::CopyPartHas(dir + "/node"); };
  REQUIRE(WaitUntil([&] { return part_size() > (4u << 20); }, absl::Seconds(60)));
  stop();
  CHECK(part_size() < (48u << 20));
  start();
  std::optional<RunResult> done = copy.Wait(absl::Seconds(120));
  REQUIRE(done.has_value());
  INFO(done->out << done->err);
  CHECK(done->exit_code == 0);
  CHECK(SameFile(dir + "/node/dst", dir + "/src"));
}

}  // namespace

TEST_CASE("a copy interrupted by killing the agent resumes and the file's hash matches",
          "[integration][agentops][copy]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  CopyInterrupted(c, [&] { c.StopAgent("ship1", SIGKILL); }, [&] { c.StartAgent("ship1"); });
}

// The station keeps each chunk's payload in its ledger only until the chunk's end is
// recorded (ledger schema step 7): chunks accepted but not yet run when it dies are
// sent again from the ledger after the restart, and the finished ones leave no payload.
TEST_CASE("a copy survives a station restart in its middle and the file's hash matches",
          "[integration][agentops][copy]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  CopyInterrupted(c, [&] { c.StopStation(SIGKILL); }, [&] { c.StartStation(); });
  const std::string dir = c.dir().str();
  // What the ledger still holds of the 48 MiB: at most the chunks a copy left unfinished
  // (the station died before their end was recorded; nothing runs them again).
  c.StopStation();
  auto db = steward::sqlite::Database::Open(dir + "/station/station.db", {.read_only = true});
  REQUIRE(db.ok());
  auto held = db->Prepare(
      "SELECT (SELECT total(length(envelope)) FROM command_envelopes) + "
      "(SELECT total(length(record)) FROM commands)");
  REQUIRE(held.ok());
  REQUIRE(held->Step().ok());
  CHECK(held->ColumnInt(0) < (24 << 20));
  // Nor does the spool of chunks' bytes beside it (ledger schema step 9).
  CHECK(SpoolBytes(dir) < (24u << 20));
}

// A chunk the station acknowledged is in its spool: if that spool is found damaged
// after a crash, the chunk is not sent as it is (it ends "lost", saying why) and
// stewardctl sends it again.
TEST_CASE("a copy whose spooled chunks are damaged in a station crash is not sent from them and completes",
          "[integration][agentops][copy]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const std::string dir = c.dir().str();
  WriteBytes(dir + "/src", 16 << 20);
  std::filesystem::create_directories(dir + "/node");
  steward::testing::Process copy({steward::testing::BinPath("ctl/stewardctl"), "--nats", c.url(), "--timeout", "3s",
                                  "copy", dir + "/src", "ship1:" + dir + "/node/dst"});
  // The node has the part file: the first chunk went, the rest are in flight.
  REQUIRE(WaitUntil([&] {
    for (const auto& e : std::filesystem::directory_iterator(dir + "/node")) {
      if (absl::EndsWith(e.path().filename().string(), ".part")) return true;
    }
    return false;
  }, absl::Seconds(60)));
  c.StopAgent("ship1", SIGKILL);
  // Chunks accepted that nobody runs now: in the spool, and their rows committed (bytes
  // appended by a group that did not commit yet are no chunk the station accepted).
  REQUIRE(WaitUntil([&] {
    auto db = steward::sqlite::Database::Open(dir + "/station/station.db", {.read_only = true});
    if (!db.ok()) return false;
    auto rows = db->Prepare("SELECT count(*) FROM command_payloads");
    return rows.ok() && rows->Step().ok() && rows->ColumnInt(0) > 0;
  }, absl::Seconds(30)));
  CHECK(SpoolBytes(dir) > 0);
  c.StopStation(SIGKILL);
  for (const auto& e : std::filesystem::directory_iterator(dir + "/station/spool")) {
    // Every chunk in it is longer than what is left (the copy's are 896 KiB).
    std::filesystem::resize_file(e.path(), std::min<uintmax_t>(std::filesystem::file_size(e.path()), 4096));
  }
  c.StartStation();
  const bool said = c.station().WaitForOutput("truncated", absl::Seconds(30));
  INFO(c.station().Stderr());
  CHECK(said);
  CHECK(c.station().WaitForOutput("ends lost", absl::Seconds(5)));
  c.StartAgent("ship1");
  std::optional<RunResult> done = copy.Wait(absl::Seconds(120));
  REQUIRE(done.has_value());
  INFO(done->out << done->err);
  CHECK(done->exit_code == 0);
  CHECK(SameFile(dir + "/node/dst", dir + "/src"));
  RunResult lost = c.Ctl({"history", "--node", "ship1", "--state", "lost"});
  INFO(lost.out << lost.err);
  CHECK_THAT(lost.out, Catch::Contains("copy"));
}

TEST_CASE("a copy outside the node's ACL is refused and audited", "[integration][agentops][copy]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const std::string dir = c.dir().str();
  std::filesystem::create_directories(dir + "/allowed");
  WriteBytes(dir + "/src", 1000);
  RunResult r = c.Ctl({"acl", "set", "ship1", "--allow", "copy:* " + dir + "/allowed/*"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  r = c.Ctl({"copy", dir + "/src", "ship1:" + dir + "/allowed/f"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  r = c.Ctl({"copy", dir + "/src", "ship1:" + dir + "/elsewhere"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("ACL"));
  CHECK_FALSE(std::filesystem::exists(dir + "/elsewhere"));
  r = c.Ctl({"audit"});
  CHECK_THAT(r.out, Catch::Contains(dir + "/elsewhere"));
}
