// An operator's stewardctl given the members of a broker cluster (--nats a,b) rides
// through the loss of the member it is connected to: it moves to another and the call
// in flight is answered there (common/nats.cc, Connect). Real nats-servers routed to
// each other, a real station, agent and stewardctl.
#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/process.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/wait.h"

namespace {

using steward::testing::BinPath;
using steward::testing::NatsServer;
using steward::testing::Process;
using steward::testing::RunProgram;
using steward::testing::TempDir;
using steward::testing::WaitUntil;

// Two brokers routed to each other.
struct Pair {
  TempDir dir;
  const uint16_t route1 = steward::testing::FreeTcpPort();
  const uint16_t route2 = steward::testing::FreeTcpPort();
  NatsServer n1{Config("n1", route1, route2)};
  NatsServer n2{Config("n2", route2, route1)};

  std::string Config(const std::string& name, uint16_t listen, uint16_t peer) {
    const std::string path = dir.str() + "/" + name + ".conf";
    std::ofstream(path) << "server_name: " << name << "\ncluster {\n  name: steward\n  listen: \"127.0.0.1:" << listen
                        << "\"\n  routes: [\"nats-route://127.0.0.1:" << peer << "\"]\n}\n";
    return path;
  }
};

TEST_CASE("stewardctl given a cluster's brokers moves to another when its own is lost, and the call in flight "
          "is answered",
          "[integration][e2e][ha]") {
  Pair p;
  // The station and the agent on n2; the operator's first broker is n1.
  Process station({BinPath("station/steward-station"), "--nats", p.n2.url(), "--data-dir", p.dir.str() + "/station",
                   "--http", "off"});
  Process agent({BinPath("agent/steward-agent"), "--node", "ship1", "--nats", p.n2.url(), "--data-dir",
                 p.dir.str() + "/ship1", "--heartbeat", "1s"});
  const std::string both = absl::StrCat(p.n1.url(), ",", p.n2.url());
  REQUIRE(WaitUntil(
      [&] {
        return RunProgram({BinPath("ctl/stewardctl"), "--nats", both, "ping", "ship1", "--timeout", "1s"},
                          absl::Seconds(10))
                   .exit_code == 0;
      },
      absl::Seconds(20)));
  Process waiting({BinPath("ctl/stewardctl"), "--nats", both, "--retry-for", "20s", "send", "--wait", "30s", "ship1",
                   "--", "sh", "-c", "sleep 2; echo waited through"});
  absl::SleepFor(absl::Milliseconds(800));  // its command sent through n1; it waits there
  p.n1.Stop(/*hard=*/true);
  std::optional<steward::testing::RunResult> r = waiting.Wait(absl::Seconds(40));
  REQUIRE(r.has_value());
  INFO(r->out << r->err);
  CHECK(r->exit_code == 0);
  CHECK(absl::StrContains(r->out, "waited through"));

  // With n1 gone for good, a new stewardctl given only n1 says the broker is not there,
  // and one given both goes through n2.
  auto only_n1 = RunProgram({BinPath("ctl/stewardctl"), "--nats", p.n1.url(), "--retry-for", "0", "nodes"},
                            absl::Seconds(20));
  CHECK(only_n1.exit_code != 0);
  CHECK(absl::StrContains(only_n1.err, "station not reachable"));
  CHECK(RunProgram({BinPath("ctl/stewardctl"), "--nats", both, "nodes"}, absl::Seconds(20)).exit_code == 0);
}

TEST_CASE("stewardctl waits out a restart of its one broker, and the call in flight is answered once",
          "[integration][e2e]") {
  TempDir dir;
  NatsServer n;
  Process station({BinPath("station/steward-station"), "--nats", n.url(), "--data-dir", dir.str() + "/station",
                   "--http", "off"});
  Process agent({BinPath("agent/steward-agent"), "--node", "ship1", "--nats", n.url(), "--data-dir",
                 dir.str() + "/ship1", "--heartbeat", "1s"});
  REQUIRE(WaitUntil(
      [&] {
        return RunProgram({BinPath("ctl/stewardctl"), "--nats", n.url(), "ping", "ship1", "--timeout", "1s"},
                          absl::Seconds(10))
                   .exit_code == 0;
      },
      absl::Seconds(20)));
  const std::string ran = dir.str() + "/ran";
  Process waiting({BinPath("ctl/stewardctl"), "--nats", n.url(), "send", "--wait", "30s", "ship1", "--", "sh", "-c",
                   "echo x >> " + ran + "; sleep 5; echo waited through"});
  // Its command runs; stewardctl waits for it. The broker is back 2.5 s before the
  // command ends, time for everyone to reconnect and subscribe again.
  absl::SleepFor(absl::Milliseconds(1000));
  n.Stop(/*hard=*/true);
  absl::SleepFor(absl::Milliseconds(1500));
  n.Start();
  std::optional<steward::testing::RunResult> r = waiting.Wait(absl::Seconds(45));
  REQUIRE(r.has_value());
  INFO(r->out << r->err);
  CHECK(r->exit_code == 0);
  CHECK(absl::StrContains(r->out, "waited through"));
  std::ifstream in(ran);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(all == "x\n");
}

}  // namespace
