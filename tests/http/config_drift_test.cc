// Configuration drift (issue 14): the station remembers the hash a successful `config
// set`/`config push` installed on a node and shows the node when its hellos carry
// another one, the typical cause being a hand edit on the node and a SIGHUP. Real
// station, agent, broker; stewardctl and the HTTP API.
#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <string>

#include "absl/time/clock.h"
#include "tests/http/http_util.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::Http;
using steward::testing::Reply;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

namespace {

// The "sha256:..." after `prefix` in `text`; "" when absent.
std::string HashAfter(const std::string& text, const std::string& prefix) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(prefix + "(sha256:[0-9a-f]+)"))) return "";
  return m[1].str();
}

}  // namespace

TEST_CASE("a hand edit and SIGHUP after a config set shows as drift at the station, until the next push",
          "[integration][agentops][http]") {
  Cluster c;
  c.StartStation();
  const std::string file = c.dir().str() + "/ship1.toml";
  std::ofstream(file) << "heartbeat = \"1s\"\n";
  c.StartAgent("ship1", {"--config", file});
  const int port = c.HttpPort();
  REQUIRE(port > 0);

  // Never pushed: no drift, whatever the node runs.
  RunResult r = c.Ctl({"node", "ship1"});
  CHECK_THAT(r.out, !Catch::Contains("config drift"));

  r = c.Ctl({"config", "set", "ship1", "heartbeat=2s"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string pushed = HashAfter(r.out, "now ");
  REQUIRE(!pushed.empty());
  // The node reloads and says so in its hellos: it runs what was pushed.
  CHECK(WaitUntil([&] {
    r = c.Ctl({"node", "ship1"});
    return r.out.find("configuration: " + pushed + " (as pushed ") != std::string::npos;
  }, absl::Seconds(10)));
  INFO(r.out);
  CHECK(c.Ctl({"nodes", "--config-drift"}).out.empty());
  CHECK(Http(port, "GET", "/api/v1/fleet").json["counts"]["config_drift"] == 0);

  // Edited by hand on the node, then reloaded.
  std::ofstream(file, std::ios::trunc) << "heartbeat = \"3s\"\n";
  c.agent("ship1").Signal(SIGHUP);
  std::string running;
  CHECK(WaitUntil([&] {
    r = c.Ctl({"nodes"});
    running = HashAfter(r.out, "ship1  config drift: pushed " + pushed + " [0-9a-z ]+ ago, running ");
    return !running.empty();
  }, absl::Seconds(10)));
  INFO(r.out);
  CHECK(running != pushed);
  r = c.Ctl({"nodes", "--config-drift"});
  CHECK(std::regex_search(r.out, std::regex("^ship1  config drift: pushed " + pushed)));
  r = c.Ctl({"node", "ship1"});
  CHECK_THAT(r.out, Catch::Contains("configuration: config drift: pushed " + pushed));
  CHECK_THAT(r.out, Catch::Contains("running " + running));
  r = c.Ctl({"status", "--cached", "ship1"});
  CHECK_THAT(r.out, Catch::Contains("config drift: pushed " + pushed));

  Reply fleet = Http(port, "GET", "/api/v1/fleet");
  REQUIRE(fleet.status == 200);
  CHECK(fleet.json["counts"]["config_drift"] == 1);
  CHECK(fleet.json["nodes"][0]["config_drift"] == true);
  Reply nodes = Http(port, "GET", "/api/v1/nodes?status=config_drift");
  REQUIRE(nodes.json["nodes"].size() == 1);
  CHECK(nodes.json["nodes"][0]["config_pushed_hash"] == pushed);
  CHECK(nodes.json["nodes"][0]["agent_stats"]["config_hash"] == running);

  // The station remembers what was pushed across its restart.
  c.StopStation();
  c.StartStation();
  CHECK(WaitUntil([&] { return !c.Ctl({"nodes", "--config-drift"}).out.empty(); }, absl::Seconds(15)));

  // A push of what the node runs now ends the drift.
  r = c.Ctl({"config", "set", "ship1", "heartbeat=3s"});
  REQUIRE(r.exit_code == 0);
  CHECK(WaitUntil([&] { return c.Ctl({"nodes", "--config-drift"}).out.empty(); }, absl::Seconds(10)));
  CHECK(Http(c.HttpPort(), "GET", "/api/v1/nodes?status=config_drift").json["nodes"].empty());
}

TEST_CASE("a heartbeat change shows no config drift, not even until the next heartbeat", "[integration][agentops][http]") {
  // The hello a new heartbeat sends at once must carry the new configuration's hash:
  // with the old one the station showed drift ("edited on the node?") for a whole
  // heartbeat.
  Cluster c;
  c.StartStation();
  const std::string file = c.dir().str() + "/ship1.toml";
  std::ofstream(file) << "heartbeat = \"40s\"\n";
  c.StartAgent("ship1", {"--config", file});
  REQUIRE(WaitUntil([&] { return c.Ctl({"node", "ship1"}).exit_code == 0; }, absl::Seconds(10)));
  for (int s = 41; s <= 44; ++s) {
    RunResult r = c.Ctl({"config", "set", "ship1", "heartbeat=" + std::to_string(s) + "s"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    for (int look = 0; look < 5; ++look) {
      absl::SleepFor(absl::Milliseconds(300));
      r = c.Ctl({"nodes", "--config-drift"});
      INFO("heartbeat " << s << "s, look " << look);
      CHECK(r.out.empty());
    }
  }
}
