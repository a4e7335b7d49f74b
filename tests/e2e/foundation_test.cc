// End-to-end: stewardctl -> station -> agent -> station -> stewardctl over a real
// nats-server, with the real binaries.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "ctl/client.h"
#include "tests/testing/cluster.h"

using steward::testing::Cluster;
using steward::testing::RunResult;

namespace {

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s;
}

bool WaitForFile(const std::filesystem::path& p, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (std::filesystem::exists(p) && !ReadFile(p).empty()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

bool ProcessGone(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (::kill(pid, 0) != 0) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

}  // namespace

TEST_CASE("stewardctl send returns remote output and exit status", "[integration][e2e]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");

  RunResult r = c.Ctl({"send", "ship1", "--", "echo", "hello world"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "hello world\n");

  r = c.Ctl({"send", "ship1", "--", "sh", "-c", "echo oops >&2; exit 3"});
  CHECK(r.exit_code == 3);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::Contains("oops"));

  r = c.Ctl({"send", "ship1", "--", "sh", "-c", "kill -9 $$"});
  CHECK(r.exit_code == 128 + 9);

  // argv is never re-parsed by a shell.
  r = c.Ctl({"send", "ship1", "--", "echo", "$(id); rm -rf /"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "$(id); rm -rf /\n");

  // The shell only when asked for.
  r = c.Ctl({"send", "--shell", "ship1", "--", "echo $((6*7))"});
  CHECK(r.out == "42\n");

  // A program that does not exist did not run: 255 with the reason.
  r = c.Ctl({"send", "ship1", "--", "/no/such/program"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("could not run"));

  // Execution timeout: killed by SIGTERM -> 128+15.
  r = c.Ctl({"send", "--exec-timeout", "200ms", "ship1", "--", "sleep", "30"});
  CHECK(r.exit_code == 128 + SIGTERM);
  CHECK_THAT(r.err, Catch::Contains("timed out"));

  // Working directory and environment.
  r = c.Ctl({"send", "--cwd", "/tmp", "--env", "GREETING=hi", "ship1", "--", "sh", "-c",
             "pwd; echo $GREETING"});
  CHECK(r.out == "/tmp\nhi\n");

  // The station says which heap it runs on (station/CMakeLists.txt: tcmalloc unless a
  // sanitizer brings its own).
#ifdef STEWARD_STATION_TCMALLOC
  CHECK_THAT(c.station().Stderr(), Catch::Contains("steward-station " STEWARD_VERSION " on gperftools 2."));
#else
  CHECK_THAT(c.station().Stderr(), Catch::Contains("steward-station " STEWARD_VERSION " on glibc malloc"));
#endif
}

TEST_CASE("stewardctl ping reports a round trip and unknown nodes are offline", "[integration][e2e]") {
  Cluster c;
  c.StartStation();
  steward::testing::Process& agent = c.StartAgent("ship1");
  RunResult r = c.Ctl({"ping", "ship1"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("ship1: round trip"));
  // Online: the station forwards it and the node's own ACK answers stewardctl.
  CHECK_THAT(r.out, Catch::Contains("answered by the node"));

  // Still believed online but silent (stopped): no answer within the wait, said so.
  agent.Signal(SIGSTOP);
  r = c.Ctl({"ping", "ship1", "--timeout", "1s"});
  agent.Signal(SIGCONT);
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("no answer from node ship1"));
  r = c.Ctl({"ping", "ship1"});
  CHECK(r.exit_code == 0);

  r = c.Ctl({"ping", "ship9", "--timeout", "2s"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("offline"));

  r = c.Ctl({"ping", "bad.name"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("contains '.'"));
}

TEST_CASE("stewardctl without a station exits 255 with the reason", "[integration][e2e]") {
  Cluster c;
  // No station on the broker: stewardctl says it is trying again (an HA standby may be
  // taking over), and after --retry-for gives up with the reason.
  RunResult r = c.Ctl({"send", "--retry-for", "1s", "ship1", "--", "true"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("station not reachable"));
  CHECK_THAT(r.err, Catch::Contains("trying again for up to 1s"));
  CHECK_THAT(r.err, Catch::Contains("(tried again for 1s)"));
  // --retry-for 0: at once.
  r = c.Ctl({"nodes", "--retry-for", "0"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("station not reachable"));
  CHECK_THAT(r.err, !Catch::Contains("trying again"));

  // No broker at all.
  r = steward::testing::RunProgram({steward::testing::BinPath("ctl/stewardctl"), "--nats",
                                    "nats://127.0.0.1:1", "nodes"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("station not reachable"));
}

TEST_CASE("garbage, unknown methods and misaddressed envelopes are rejected and the agent goes on",
          "[integration][e2e]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  steward::nats::Library lib;
  auto nc = steward::nats::Connect({.url = c.url(), .name = "test", .keep_trying = false});
  REQUIRE(nc.ok());

  auto request = [&](const std::string& subject, const std::string& data) {
    auto msg = steward::nats::Request(nc->get(), subject, data, absl::Seconds(5));
    REQUIRE(msg.ok());
    auto ack = steward::DecodeAck(steward::nats::Data(msg->get()));
    REQUIRE(ack.ok());
    return *ack;
  };

  SECTION("garbage bytes") {
    steward::proto::Ack ack = request("ship1.command.shellcommand.x", "\x01\x02garbage\xff");
    CHECK(ack.outcome() == steward::proto::OUTCOME_REJECTED);
    CHECK_THAT(ack.error(), Catch::Contains("malformed"));
  }
  SECTION("unknown method") {
    steward::proto::Envelope env = steward::NewEnvelope("station", "ship1", steward::proto::KIND_COMMAND,
                                                        "nosuchmethod", "x");
    steward::proto::Ack ack = request("ship1.command.nosuchmethod.x", env.SerializeAsString());
    CHECK(ack.outcome() == steward::proto::OUTCOME_REJECTED);
    CHECK(ack.envelope_id() == env.id());
    CHECK_THAT(ack.error(), Catch::Contains("unknown method nosuchmethod"));
  }
  SECTION("misaddressed envelope") {
    steward::proto::Envelope env = steward::NewEnvelope("station", "ship2", steward::proto::KIND_COMMAND,
                                                        "shellcommand", "x");
    env.add_argv("touch");
    env.add_argv((c.dir().path() / "should-not-exist").string());
    steward::proto::Ack ack = request("ship1.command.shellcommand.x", env.SerializeAsString());
    CHECK(ack.outcome() == steward::proto::OUTCOME_REJECTED);
    CHECK_THAT(ack.error(), Catch::Contains("misaddressed"));
    CHECK_FALSE(std::filesystem::exists(c.dir().path() / "should-not-exist"));
  }
  SECTION("expired envelope") {
    steward::proto::Envelope env = steward::NewEnvelope("station", "ship1", steward::proto::KIND_COMMAND,
                                                        "shellcommand", "x");
    env.add_argv("touch");
    env.add_argv((c.dir().path() / "should-not-exist").string());
    env.set_expires_unix_ms(steward::NowUnixMillis() - 1000);
    steward::proto::Ack ack = request("ship1.command.shellcommand.x", env.SerializeAsString());
    CHECK(ack.outcome() == steward::proto::OUTCOME_REJECTED);
    CHECK_THAT(ack.error(), Catch::Contains("expired"));
    CHECK_FALSE(std::filesystem::exists(c.dir().path() / "should-not-exist"));
  }
  SECTION("wrong protocol version") {
    steward::proto::Envelope env = steward::NewEnvelope("station", "ship1", steward::proto::KIND_COMMAND,
                                                        "shellcommand", "x");
    env.set_protocol_version(99);
    steward::proto::Ack ack = request("ship1.command.shellcommand.x", env.SerializeAsString());
    CHECK(ack.outcome() == steward::proto::OUTCOME_REJECTED);
    CHECK_THAT(ack.error(), Catch::Contains("protocol version 99"));
  }

  // The agent still serves, and told the station about the rejection (errorlog).
  RunResult r = c.Ctl({"send", "ship1", "--", "echo", "still here"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "still here\n");
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  std::string node;
  while (absl::Now() < deadline) {
    node = c.Ctl({"node", "ship1"}).out;
    if (node.find("errors reported: 0") == std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  CHECK_THAT(node, Catch::Contains("errors reported: 1"));
  CHECK(c.agent("ship1").running());
}

TEST_CASE("unknown method through the station ends rejected", "[integration][e2e]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  // A domain or method with a bad token is refused up front, by stewardctl (a usage
  // error) and by the station (the same request sent directly).
  RunResult r = c.Ctl({"send", "--domain", "a*b", "ship1", "--", "true"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("contains '*'"));
  r = c.Ctl({"send", "--method", "a.b", "ship1", "--", "true"});
  CHECK(r.exit_code == 2);
  auto client = steward::ctl::Client::Connect({.nats = {.url = c.url()}});
  REQUIRE(client.ok());
  steward::proto::SubmitRequest bad;
  bad.add_nodes("ship1");
  bad.mutable_command()->set_method("shellcommand");
  bad.mutable_command()->set_domain("a*b");
  bad.mutable_command()->add_argv("true");
  auto refused = (*client)->Submit(bad, absl::Seconds(5));
  CHECK(absl::IsFailedPrecondition(refused.status()));
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("contains '*'"));

  // A method the node does not have reaches it and ends rejected, with the reason.
  r = c.Ctl({"send", "--method", "nosuchmethod", "ship1", "--", "true"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("unknown method nosuchmethod"));
  r = c.Ctl({"history", "--node", "ship1", "--state", "rejected", "--json"});
  CHECK_THAT(r.out, Catch::Contains("nosuchmethod"));
}

TEST_CASE("echo takes the durable path and runs nothing", "[integration][e2e]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  RunResult r = c.Ctl({"send", "--method", "echo", "ship1", "--", "hello", "$(id)", "/tmp/x"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "hello $(id) /tmp/x\n");
  r = c.Ctl({"history", "--node", "ship1", "--json"});
  CHECK_THAT(r.out, Catch::Contains("\"method\":\"echo\""));
  CHECK_THAT(r.out, Catch::Contains("\"state\":\"succeeded\""));
}

TEST_CASE("SIGTERM during a long command kills it and the agent exits within 2s",
          "[integration][e2e]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const auto pidfile = c.dir().path() / "sleep.pid";
  RunResult r = c.Ctl({"send", "--no-wait", "ship1", "--", "sh", "-c",
                       absl::StrCat("echo $$ > ", pidfile.string(), "; exec sleep 60")});
  REQUIRE(r.exit_code == 0);
  REQUIRE(WaitForFile(pidfile, absl::Seconds(10)));
  const pid_t child = std::stoi(ReadFile(pidfile));
  REQUIRE(::kill(child, 0) == 0);

  const absl::Time start = absl::Now();
  c.agent("ship1").Signal(SIGTERM);
  auto done = c.agent("ship1").Wait(absl::Seconds(5));
  REQUIRE(done.has_value());
  CHECK(absl::Now() - start < absl::Seconds(2));
  CHECK(done->exit_code == 0);
  CHECK(ProcessGone(child, absl::Seconds(2)));
}

TEST_CASE("a command to a node that is not running waits and runs when it comes",
          "[integration][e2e]") {
  Cluster c;
  c.StartStation();
  const auto marker = c.dir().path() / "ran";
  RunResult r = c.Ctl({"send", "--no-wait", "ship2", "--", "sh", "-c",
                       absl::StrCat("echo x >> ", marker.string())});
  REQUIRE(r.exit_code == 0);
  const std::string id = r.out.substr(r.out.find(' ') + 1, 26);
  c.StartAgent("ship2");
  REQUIRE(WaitForFile(marker, absl::Seconds(10)));
  r = c.Ctl({"show", id});
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline && r.out.find("state: succeeded") == std::string::npos) {
    absl::SleepFor(absl::Milliseconds(50));
    r = c.Ctl({"show", id});
  }
  CHECK_THAT(r.out, Catch::Contains("state: succeeded"));
  CHECK(ReadFile(marker) == "x\n");
}
