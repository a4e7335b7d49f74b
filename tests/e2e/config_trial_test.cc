// A configuration change made through the agent is on trial until the agent reaches the
// broker with it: one that points the unit at a broker it cannot reach (a wrong URL,
// user or CA) is undone after config_probation, the file written back, and the unit
// comes back; a process killed during the trial finds the change's undo record at its
// next start. Real broker, station, agent processes and stewardctl.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/syslog_helpers.h"
#include "tests/testing/cluster.h"
#include "tests/testing/process.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/wait.h"

using steward::testing::BinPath;
using steward::testing::Cluster;
using steward::testing::Process;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// An agent whose broker comes from its file (Cluster::StartAgent gives --nats, which a
// change of the file cannot override).
std::unique_ptr<Process> StartFileAgent(Cluster& c, const std::string& file) {
  return std::make_unique<Process>(std::vector<std::string>{
      BinPath("agent/steward-agent"), "--node", "ship1", "--config", file, "--data-dir", c.dir().str() + "/ship1",
      "--run-dir", c.dir().str() + "/run"});
}

// An agent of ship1 configured by a file (broker from it, heartbeat 1s, then `extra`),
// serving: the file's name, its text, the process.
struct FileAgent {
  std::string file;
  std::string original;
  std::unique_ptr<Process> process;
};

bool Pings(Cluster& c, absl::Duration within);

FileAgent StartServingFileAgent(Cluster& c, const std::string& extra) {
  FileAgent a;
  a.file = c.dir().str() + "/ship1.toml";
  a.original = absl::StrCat("nats = \"", c.url(), "\"\nheartbeat = \"1s\"\n", extra);
  std::ofstream(a.file) << a.original;
  a.process = StartFileAgent(c, a.file);
  REQUIRE(Pings(c, absl::Seconds(15)));
  return a;
}

bool Pings(Cluster& c, absl::Duration within) {
  return WaitUntil([&] { return c.Ctl({"ping", "ship1", "--timeout", "1s"}).exit_code == 0; }, within);
}

}  // namespace

TEST_CASE("a config change that cannot reach the broker is undone after its trial, also after a kill -9",
          "[integration][agentops]") {
  Cluster c;
  c.StartStation();
  FileAgent a = StartServingFileAgent(c, "config_probation = \"3s\"\n");
  const std::string& file = a.file;
  std::unique_ptr<Process>& agent = a.process;

  // A change that starts and connects is kept at once: no undo record is left.
  RunResult r = c.Ctl({"config", "set", "ship1", "intake_max_mb=32"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // The answer says what happens next, not that it is done.
  CHECK_THAT(r.out, Catch::Contains("(applied by a restart of the agent; undone unless it reaches the station with it "
                                    "within 3s)"));
  REQUIRE(agent->WaitForOutput("the new configuration reached the station: kept", absl::Seconds(15)));
  CHECK_FALSE(std::filesystem::exists(file + ".undo"));
  const std::string kept = ReadAll(file);
  CHECK_THAT(kept, Catch::Contains("intake_max_mb = 32"));

  // A broker nobody listens at: applied as far as the file goes, then the agent is off
  // the broker until its trial ends; then back, with the file as it was.
  r = c.Ctl({"config", "set", "ship1", "nats=nats://127.0.0.1:1"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(agent->WaitForOutput("did not reach the station (station) through the broker at nats://127.0.0.1:1 within 3s", absl::Seconds(30)));
  CHECK(agent->running());
  CHECK(ReadAll(file) == kept);
  CHECK_FALSE(std::filesystem::exists(file + ".undo"));
  REQUIRE(Pings(c, absl::Seconds(15)));
  RunResult echo = c.Ctl({"send", "--wait", "10s", "ship1", "--method", "echo", "--", "back"});
  CHECK(echo.exit_code == 0);
  CHECK_THAT(echo.out, Catch::Contains("back"));
  // The station shows the drift the undo left, and why.
  CHECK(WaitUntil([&] {
    r = c.Ctl({"node", "ship1"});
    return r.out.find("did not reach the station") != std::string::npos;
  }, absl::Seconds(10)));
  INFO(r.out);
  CHECK_THAT(r.out, Catch::Contains("config drift: pushed"));
  CHECK_THAT(r.out, Catch::Contains("the last change made through the agent was undone at"));

  // The same change, and the agent killed during its trial: the next start finds the
  // record, tries the file it holds, and goes back the same way.
  r = c.Ctl({"config", "set", "ship1", "nats=nats://127.0.0.1:1"});
  REQUIRE(r.exit_code == 0);
  REQUIRE(ReadAll(file) != kept);  // written before the answer
  CHECK(std::filesystem::exists(file + ".undo"));
  agent->Signal(SIGKILL);
  REQUIRE(agent->Wait(absl::Seconds(10)).has_value());
  agent = StartFileAgent(c, file);
  CHECK(agent->WaitForOutput("on trial again", absl::Seconds(10)));
  REQUIRE(agent->WaitForOutput("did not reach the station", absl::Seconds(30)));
  CHECK(ReadAll(file) == kept);
  REQUIRE(Pings(c, absl::Seconds(15)));

  // And a start after that is an ordinary one: nothing on trial.
  agent->Signal(SIGTERM);
  REQUIRE(agent->Wait(absl::Seconds(20)).has_value());
  agent = StartFileAgent(c, file);
  REQUIRE(Pings(c, absl::Seconds(15)));
  CHECK(agent->Stderr().find("on trial") == std::string::npos);
}

TEST_CASE("a hand edit and SIGHUP the agent cannot start with: back to the configuration that ran, the file left alone",
          "[integration][agentops]") {
  Cluster c;
  c.StartStation();
  const std::string file = c.dir().str() + "/ship1.toml";
  std::ofstream(file) << "syslog_tcp = [\"127.0.0.1:0\"]\n";
  auto& agent = c.StartAgent("ship1", {"--config", file});
  // A port another process listens on: the agent's syslog listener cannot bind it.
  steward::testing::syslog::TakenTcpPort blocker;
  const std::string edited = absl::StrCat("syslog_tcp = [\"127.0.0.1:", blocker.port(), "\"]\n");
  std::ofstream(file, std::ios::trunc) << edited;
  agent.Signal(SIGHUP);
  REQUIRE(agent.WaitForOutput("the new configuration does not start", absl::Seconds(20)));
  CHECK(agent.WaitForOutput("back to the configuration that ran", absl::Seconds(5)));
  CHECK(agent.running());
  CHECK(ReadAll(file) == edited);  // a hand edit is the operator's: not written over
  RunResult echo;
  CHECK(WaitUntil([&] {
    echo = c.Ctl({"send", "--wait", "5s", "ship1", "--method", "echo", "--", "still", "here"});
    return echo.exit_code == 0;
  }, absl::Seconds(30)));
}

TEST_CASE("a config change to a broker that never answers is undone as soon as the library gives up on it",
          "[integration][agentops]") {
  Cluster c;
  c.StartStation();
  steward::testing::TcpProxy silent(static_cast<uint16_t>(c.nats().port()));
  silent.Freeze();  // accepts nothing: the connect times out and nats.c closes the connection
  FileAgent a = StartServingFileAgent(c, "");  // probation 60s
  const std::string& file = a.file;
  const std::string& original = a.original;
  std::unique_ptr<Process>& agent = a.process;
  const absl::Time set_at = absl::Now();
  RunResult r = c.Ctl({"config", "set", "ship1", absl::StrCat("nats=nats://127.0.0.1:", silent.port())});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // Not after the 60 s probation: once the connection is closed nothing more can come of it.
  const bool undone = agent->WaitForOutput("the new configuration does not reach the broker (the broker connection to",
                                           absl::Seconds(30));
  INFO(agent->Stderr());
  REQUIRE(undone);
  CHECK(absl::Now() - set_at < absl::Seconds(40));
  CHECK(ReadAll(file) == original);
  CHECK(Pings(c, absl::Seconds(15)));
  CHECK(agent->running());
}

TEST_CASE("a config change the broker takes but the station never hears (a mistyped station name) is undone",
          "[integration][agentops]") {
  Cluster c;
  c.StartStation();
  FileAgent a = StartServingFileAgent(c, "config_probation = \"3s\"\n");
  const std::string& file = a.file;
  const std::string& original = a.original;
  std::unique_ptr<Process>& agent = a.process;
  RunResult r = c.Ctl({"config", "set", "ship1", "station=statoin"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // The broker is reached (the agent subscribes and serves), yet no hello is stored.
  REQUIRE(agent->WaitForOutput("did not reach the station (statoin) through the broker", absl::Seconds(30)));
  CHECK(agent->Stderr().find("reached the station: kept") == std::string::npos);
  CHECK(ReadAll(file) == original);
  CHECK(WaitUntil([&] {
    r = c.Ctl({"node", "ship1"});
    return r.out.find("did not reach the station (statoin)") != std::string::npos;
  }, absl::Seconds(15)));
}
