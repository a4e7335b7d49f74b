// A unit that boots while its broker does not answer (out of coverage: the connection
// is made by a modem or NAT box, and nothing comes back) must wait for the broker, not
// exit: nats.c closes the connection for good when the first connect times out, and the
// agent then starts again in its process with a backoff. Real broker, station, agent
// and a relay that goes silent (TcpProxy::Freeze).
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
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
