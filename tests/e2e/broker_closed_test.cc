// A unit that boots while its broker does not answer (out of coverage: the connection
// is made by a modem or NAT box, and nothing comes back) must wait for the broker, not
// exit: nats.c closes the connection for good when the first connect times out, and the
// agent then starts again in its process with a backoff. The station, booted the same way,
// did exit (status 2, which systemd does not restart); it now starts again the same way,
// and so does an --ha station booted before its broker. A configuration error still ends
// the station with status 2, broker or not. Real broker, station, agent and a relay that
// goes silent (TcpProxy::Freeze).
#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/ha_cluster.h"
#include "tests/e2e/syslog_helpers.h"
#include "tests/testing/cluster.h"
#include "tests/testing/process.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/wait.h"

using steward::testing::BinPath;
using steward::testing::Cluster;
using steward::testing::Process;
using steward::testing::TcpProxy;
using steward::testing::WaitUntil;

TEST_CASE("an agent whose broker does not answer its first connect keeps trying, and serves once it answers",
          "[integration][faults]") {
  Cluster c;
  c.StartStation();
  TcpProxy proxy(static_cast<uint16_t>(c.nats().port()));
  proxy.Freeze();  // connections wait in the listen queue: no INFO, the connect times out
  Process agent({BinPath("agent/steward-agent"), "--node", "ship1", "--nats",
                 absl::StrCat("nats://127.0.0.1:", proxy.port()), "--heartbeat", "1s", "--data-dir",
                 c.dir().str() + "/ship1", "--run-dir", c.dir().str() + "/run"});
  REQUIRE(agent.WaitForOutput("the broker connection to nats://127.0.0.1:", absl::Seconds(20)));
  CHECK(agent.WaitForOutput("the agent starts again in", absl::Seconds(5)));
  // Past the error kernel's restarts of the dispatcher (about 5 s): it used to exit here.
  absl::SleepFor(absl::Seconds(8));
  REQUIRE(agent.running());
  proxy.Thaw();
  CHECK(WaitUntil([&] { return c.Ctl({"ping", "ship1", "--timeout", "1s"}).exit_code == 0; }, absl::Seconds(40)));
  CHECK(c.Ctl({"send", "--wait", "10s", "ship1", "--method", "echo", "--", "here"}).exit_code == 0);
  INFO(agent.Stderr());
  CHECK(agent.running());
}

TEST_CASE("a station whose broker does not answer its first connect keeps trying, and serves once it answers",
          "[integration][faults]") {
  Cluster c;
  TcpProxy proxy(static_cast<uint16_t>(c.nats().port()));
  proxy.Freeze();  // as above: the station's first connect times out
  // With its HTTP server: each start binds it again.
  Process station({BinPath("station/steward-station"), "--nats", absl::StrCat("nats://127.0.0.1:", proxy.port()),
                   "--data-dir", c.dir().str() + "/station", "--http", "127.0.0.1:0"});
  auto starts_again = [&] {
    const std::string log = station.Stderr();
    size_t n = 0;
    for (size_t at = log.find("the station starts again in"); at != std::string::npos;
         at = log.find("the station starts again in", at + 1)) {
      ++n;
    }
    return n;
  };
  // Two starts that found the connection closed: it did start again in its process.
  if (!WaitUntil([&] { return starts_again() >= 2; }, absl::Seconds(30))) {
    FAIL("still running: " << station.running() << "\n" << station.Stderr());
  }
  CHECK(absl::StrContains(station.Stderr(), "the broker connection to nats://127.0.0.1:"));
  REQUIRE(station.running());  // it used to exit with status 2 at the first
  CHECK_FALSE(absl::StrContains(station.Stderr(), "serving: the broker at"));
  proxy.Thaw();
  // It serves its operators and its nodes once the broker answers, and says so.
  CHECK(station.WaitForOutput("serving: the broker at nats://127.0.0.1:", absl::Seconds(40)));
  CHECK(WaitUntil([&] { return c.Ctl({"nodes", "--timeout", "1s"}).exit_code == 0; }, absl::Seconds(20)));
  c.StartAgent("ship1");
  CHECK(WaitUntil([&] { return c.Ctl({"ping", "ship1", "--timeout", "1s"}).exit_code == 0; }, absl::Seconds(20)));
  CHECK(c.Ctl({"send", "--wait", "10s", "ship1", "--method", "echo", "--", "here"}).exit_code == 0);
  INFO(station.Stderr());
  CHECK(station.running());
}

// An --ha station needs its lease bucket on the broker to start: one whose broker is not
// up yet (a host that boots the station first) used to exit with status 2 at once.
TEST_CASE("an HA station whose broker is not up yet keeps trying, and takes the lease once it is",
          "[integration][faults][ha]") {
  steward::testing::HaCluster h;
  h.nats.Stop();
  std::unique_ptr<Process> station = h.Station("a");
  REQUIRE(station->WaitForOutput("the station starts again in", absl::Seconds(30)));
  CHECK(absl::StrContains(station->Stderr(), "is not up after"));
  REQUIRE(station->running());
  h.nats.Start();
  CHECK(station->WaitForOutput("serving: the broker at", absl::Seconds(40)));
  std::vector<std::unique_ptr<Process>> agents = h.Agents(1);
  REQUIRE(agents.size() == 1);
  CHECK(h.Ctl({"send", "--wait", "10s", "ship0", "--method", "echo", "--", "here"}).exit_code == 0);
  INFO(station->Stderr());
  CHECK(absl::StrContains(station->Stderr(), "ACTIVE"));  // it took the lease
  CHECK(station->running());
}

// A broker cluster rebooted together accepts clients before it has elected its JetStream
// leader: an --ha station that came first found no answer for its lease bucket and exited
// with status 2. It starts again until JetStream answers. One member of three, alone (no
// quorum: nats-server answers "JetStream system temporarily unavailable", or not at all),
// then the other two.
TEST_CASE("an HA station whose broker cluster has no JetStream leader yet keeps trying and takes the lease once it has",
          "[integration][faults][ha]") {
  steward::testing::TempDir dir;
  uint16_t routes[3] = {steward::testing::FreeTcpPort(), steward::testing::FreeTcpPort(),
                        steward::testing::FreeTcpPort()};
  auto config = [&](int i) {
    const std::string path = absl::StrCat(dir.str(), "/n", i, ".conf");
    std::ofstream out(path);
    out << "server_name: n" << i << "\njetstream { store_dir: \"" << dir.str() << "/js" << i << "\" }\n"
        << "cluster {\n  name: steward\n  listen: \"127.0.0.1:" << routes[i] << "\"\n  routes: [";
    for (int j = 0; j < 3; ++j) {
      if (j != i) out << "\"nats-route://127.0.0.1:" << routes[j] << "\", ";
    }
    out << "]\n}\n";
    return path;
  };
  // A route port picked free may be taken before its server binds it (any process's
  // outgoing connection may get it as its own port): such a server starts again on
  // another. Its peers still reach it: routes are made from either end.
  auto start = [&](int i) {
    for (int attempt = 1;; ++attempt) {
      try {
        return std::make_unique<steward::testing::NatsServer>(config(i));
      } catch (const std::runtime_error& e) {
        if (attempt == 3) throw;
        WARN("broker n" << i << " did not start on route port " << routes[i] << ": " << e.what());
        routes[i] = steward::testing::FreeTcpPort();
      }
    }
  };
  std::unique_ptr<steward::testing::NatsServer> n0 = start(0);
  Process station({BinPath("station/steward-station"), "--nats", n0->url(), "--data-dir", dir.str() + "/station",
                   "--http", "off", "--ha", "--ha-lease", "2s", "--ha-instance", "a"});
  REQUIRE(station.WaitForOutput("the broker's JetStream did not answer", absl::Seconds(30)));
  REQUIRE(station.WaitForOutput("the station starts again in", absl::Seconds(5)));
  absl::SleepFor(absl::Seconds(2));
  REQUIRE(station.running());  // it used to exit with status 2 here
  std::unique_ptr<steward::testing::NatsServer> n1 = start(1);
  std::unique_ptr<steward::testing::NatsServer> n2 = start(2);
  CHECK(station.WaitForOutput("ACTIVE", absl::Seconds(60)));
  CHECK(station.WaitForOutput("serving: the broker at", absl::Seconds(20)));
  Process agent({BinPath("agent/steward-agent"), "--node", "ship1", "--nats", n0->url(), "--data-dir",
                 dir.str() + "/ship1", "--heartbeat", "1s"});
  const bool sent = WaitUntil(
      [&] {
        return steward::testing::RunProgram({BinPath("ctl/stewardctl"), "--nats", n0->url(), "send", "--wait", "5s",
                                             "ship1", "--method", "echo", "--", "here"},
                                            absl::Seconds(20))
                   .exit_code == 0;
      },
      absl::Seconds(30));
  INFO(station.Stderr());
  CHECK(sent);
  CHECK(station.running());
}

// Only the broker's absence is waited out: an --http address it cannot listen on is the
// operator's to fix, and ends the station with status 2 while no broker answers too.
TEST_CASE("a station that cannot listen on its --http address exits with 2, broker or not",
          "[integration][faults]") {
  steward::testing::TempDir dir;
  steward::testing::syslog::TakenTcpPort taken;  // the --http port, taken
  Process station({BinPath("station/steward-station"), "--nats", "nats://127.0.0.1:1", "--data-dir",
                   dir.str() + "/station", "--http", absl::StrCat("127.0.0.1:", taken.port())});
  std::optional<steward::testing::RunResult> r = station.Wait(absl::Seconds(20));
  REQUIRE(r.has_value());
  INFO(station.Stderr());
  CHECK(r->exit_code == 2);
  CHECK(absl::StrContains(station.Stderr(), "--http"));
  CHECK_FALSE(absl::StrContains(station.Stderr(), "starts again"));
}
