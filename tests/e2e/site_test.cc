// Site control with real processes (issue 17 part 5): a hub broker with the central
// station, a ship's broker as its leaf node through a TcpProxy (the link, cut and
// restored), a site station on the ship's broker under the same station name, and an
// agent on the ship. Each command appends a line to a side-effect file, so runs are
// counted; the ledgers are read with stewardctl (at the ship's broker, the station
// there answers: the site station while it serves, else the central one through the
// leaf; at the hub, always the central one). The rules are station/site_rules.h's.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/testing/files.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/process.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/wait.h"

namespace {

using steward::testing::BinPath;
using steward::testing::NatsServer;
using steward::testing::Process;
using steward::testing::RunProgram;
using steward::testing::RunResult;
using steward::testing::TcpProxy;
using steward::testing::TempDir;
using steward::testing::WaitUntil;

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.str() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

struct Ship {
  TempDir dir;
  const uint16_t leaf_port = steward::testing::FreeTcpPort();
  // The link: the ship's broker reaches the hub's leaf node port only through it. The
  // hub advertises it as its leaf node address (a leaf learns the hub's addresses and
  // would otherwise redial the port itself when the link is cut).
  TcpProxy link{leaf_port};
  NatsServer hub{WriteFile(dir, "hub.conf",
                           absl::StrCat("leafnodes {\n  listen: \"127.0.0.1:", leaf_port, "\"\n  advertise: \"127.0.0.1:",
                                        link.port(), "\"\n}\n"))};
  NatsServer ship{WriteFile(dir, "ship.conf", absl::StrCat("leafnodes {\n  reconnect: 1\n  remotes = [ { url: "
                                                           "\"nats-leaf://127.0.0.1:",
                                                           link.port(), "\" } ]\n}\n"))};
  const std::string runs = dir.str() + "/runs";
  std::unique_ptr<Process> central;
  std::unique_ptr<Process> site;
  std::unique_ptr<Process> agent;
  std::unique_ptr<Process> stranger;  // an agent on the ship's broker that is not the site's

  void StartCentral() {
    central = std::make_unique<Process>(std::vector<std::string>{BinPath("station/steward-station"), "--nats",
                                                                 hub.url(), "--data-dir", dir.str() + "/central",
                                                                 "--http", "off"});
  }
  void StartSite(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {BinPath("station/steward-station"), "--nats", ship.url(), "--data-dir",
                                     dir.str() + "/site", "--http", "off", "--site", "ship-a", "--site-nodes",
                                     "ship1", "--site-probe", "200ms", "--central-timeout", "2s"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    site = std::make_unique<Process>(argv);
  }
  void StartAgent() {
    agent = std::make_unique<Process>(std::vector<std::string>{BinPath("agent/steward-agent"), "--node", "ship1",
                                                               "--nats", ship.url(), "--data-dir",
                                                               dir.str() + "/ship1", "--heartbeat", "1s"});
  }
  // stewardctl at the hub (the central station) or at the ship's broker.
  RunResult Hub(std::vector<std::string> args) { return Ctl(hub.url(), std::move(args)); }
  RunResult AtShip(std::vector<std::string> args) { return Ctl(ship.url(), std::move(args)); }
  static RunResult Ctl(const std::string& url, std::vector<std::string> args) {
    std::vector<std::string> argv = {BinPath("ctl/stewardctl"), "--nats", url};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProgram(argv, absl::Seconds(30));
  }
  // A command that appends `tag` to the side-effect file and prints it.
  std::vector<std::string> Appends(const std::string& tag) {
    return {"--", "sh", "-c", absl::StrCat("echo ", tag, " >> ", runs, "; echo ", tag)};
  }
  // Sends without waiting; the command's id.
  std::string SendNoWait(bool at_ship, const std::string& tag) {
    std::vector<std::string> args = {"send", "--no-wait", "ship1"};
    for (std::string& a : Appends(tag)) args.push_back(a);
    RunResult r = at_ship ? AtShip(args) : Hub(args);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    std::string out(absl::StripAsciiWhitespace(r.out));
    REQUIRE(absl::StartsWith(out, "ship1 "));
    return out.substr(6);
  }
  bool ShowsAtHub(const std::string& id, const std::string& text) {
    RunResult r = Hub({"show", id, "--timeout", "2s"});
    return r.exit_code == 0 && absl::StrContains(r.out, text);
  }
  // The whole setup, the link up: the central station answers at the ship through it.
  void Up(std::vector<std::string> site_extra = {}) {
    StartCentral();
    StartSite(std::move(site_extra));
    StartAgent();
    REQUIRE(WaitUntil([&] { return AtShip({"ping", "ship1", "--timeout", "1s"}).exit_code == 0; },
                      absl::Seconds(20)));
    // The central station's word on which nodes are the site's.
    REQUIRE(Hub({"tag", "set", "ship1", "site=ship-a"}).exit_code == 0);
  }
  // Cuts the link and waits for the site station to take control.
  void CutAndWaitForControl() {
    link.Cut();
    const bool in_control = site->WaitForOutput("IN CONTROL", absl::Seconds(15));
    INFO(site->Stderr());
    REQUIRE(in_control);
  }
};

TEST_CASE("site: rules R1, R2, R3 and R5: no takeover while central answers, takeover when cut, hand-back "
          "once reconnected with everything in the central ledger once",
          "[integration][e2e][site]") {
  Ship s;
  s.Up();
  // ship9 is on the ship's broker but not the site's: while the site station serves,
  // its events are answered "not now" there (never journaled: the central station
  // would refuse the hand-back), and it delivers them to the central station later.
  s.stranger = std::make_unique<Process>(std::vector<std::string>{
      BinPath("agent/steward-agent"), "--node", "ship9", "--nats", s.ship.url(), "--data-dir",
      s.dir.str() + "/ship9", "--heartbeat", "1s"});
  // R1: the link is up for longer than the timeout: the site station only probes, and
  // a command sent at the ship is the central station's.
  const std::string before = s.SendNoWait(/*at_ship=*/true, "before");
  REQUIRE(WaitUntil([&] { return s.ShowsAtHub(before, "succeeded"); }, absl::Seconds(20)));
  absl::SleepFor(absl::Seconds(3));
  CHECK_FALSE(absl::StrContains(s.site->Stderr(), "IN CONTROL"));

  // R2: the link goes down; after the timeout the site station serves the ship.
  s.CutAndWaitForControl();
  // R5: the central station queues a command for ship1 during the cut.
  const std::string central_cmd = s.SendNoWait(/*at_ship=*/false, "central");
  // A site operator's commands run at the site and are recorded there (its ledger
  // answers at the ship's broker).
  std::vector<std::string> site_cmds;
  for (const std::string tag : {"site1", "site2"}) {
    const std::string id = s.SendNoWait(/*at_ship=*/true, tag);
    REQUIRE(WaitUntil(
        [&] {
          RunResult r = s.AtShip({"show", id, "--timeout", "2s"});
          return r.exit_code == 0 && absl::StrContains(r.out, "succeeded");
        },
        absl::Seconds(15)));
    site_cmds.push_back(id);
  }
  CHECK_FALSE(s.ShowsAtHub(site_cmds[0], "succeeded"));  // the central station does not know it yet
  // A node that is not the site's is refused there, with why.
  RunResult other = s.AtShip({"send", "ship9", "--", "true"});
  CHECK(other.exit_code != 0);
  CHECK(absl::StrContains(other.out + other.err, "controls only ship1"));
  CHECK(steward::testing::LineCounts(s.runs) ==
        std::map<std::string, int>{{"before", 1}, {"site1", 1}, {"site2", 1}});

  {
    RunResult status = s.AtShip({"station", "status"});
    CHECK(absl::StrContains(status.out, "the site station of site ship-a"));
  }
  // R3: the link is back: the site hands control back.
  s.link.Restore();
  {
    const bool handed_back = s.site->WaitForOutput("control handed back", absl::Seconds(30));
    INFO(s.site->Stderr());
    REQUIRE(handed_back);
  }
  // The central ledger has the site's commands, succeeded, and the held one ran, once.
  REQUIRE(WaitUntil([&] { return s.ShowsAtHub(central_cmd, "succeeded"); }, absl::Seconds(30)));
  RunResult central_history = s.Hub({"history", "--node", "ship1", "--limit", "50"});
  INFO(central_history.out);
  REQUIRE(central_history.exit_code == 0);
  for (const std::string& id : site_cmds) {
    INFO(id);
    CHECK(s.ShowsAtHub(id, "succeeded"));
    const size_t at = central_history.out.find(id);
    REQUIRE(at != std::string::npos);
    CHECK(central_history.out.find(id, at + 1) == std::string::npos);  // once
  }
  // Newest first: the site's second command above its first (the site's order).
  CHECK(central_history.out.find(site_cmds[1]) < central_history.out.find(site_cmds[0]));
  CHECK(steward::testing::LineCounts(s.runs) ==
        std::map<std::string, int>{{"before", 1}, {"site1", 1}, {"site2", 1}, {"central", 1}});

  CHECK_FALSE(absl::StrContains(s.site->Stderr(), "REFUSED"));
  // The site's results were taken as they came with its journal, not refused as
  // results of commands nobody sent (and the commands sent again).
  CHECK_FALSE(absl::StrContains(s.central->Stderr(), "was never sent to it"));
  CHECK(s.Hub({"ping", "ship9", "--timeout", "5s"}).exit_code == 0);

  // New traffic at the ship goes to the central station again.
  const std::string after = s.SendNoWait(/*at_ship=*/true, "after");
  REQUIRE(WaitUntil([&] { return s.ShowsAtHub(after, "succeeded"); }, absl::Seconds(20)));
  CHECK(steward::testing::LineCounts(s.runs).at("after") == 1);
}

TEST_CASE("site: rule R4: a closed restore window keeps control after reconnection, an open one hands back, "
          "a restarted site station resumes from its ledger",
          "[integration][e2e][site]") {
  Ship s;
  // A window that opens at the other end of the day: closed now.
  const int hour = (absl::ToCivilHour(absl::Now(), absl::UTCTimeZone()).hour() + 12) % 24;
  s.Up({"--restore-window", absl::StrCat("0 ", hour, " * * *"), "--restore-length", "1m"});
  s.CutAndWaitForControl();
  std::vector<std::string> args = {"send", "ship1"};
  for (std::string& a : s.Appends("cut")) args.push_back(a);
  REQUIRE(WaitUntil([&] { return s.AtShip(args).exit_code == 0; }, absl::Seconds(15)));
  s.link.Restore();
  // Reconnected: the central station learns of the claim and holds its own command.
  {
    const bool claimed = s.central->WaitForOutput("site ship-a is in control of ship1", absl::Seconds(20));
    INFO(s.central->Stderr());
    REQUIRE(claimed);
  }
  // Both sides say who is in control: the central station its claim, the site station
  // (which answers at the ship) its own state.
  RunResult status = s.Hub({"station", "status"});
  CHECK(absl::StrContains(status.out, "sites in control"));
  CHECK(absl::StrContains(status.out, "ship-a"));
  status = s.AtShip({"station", "status"});
  CHECK(absl::StrContains(status.out, "the site station of site ship-a (ship1), control since"));
  const std::string held = s.SendNoWait(/*at_ship=*/false, "held");
  REQUIRE(WaitUntil([&] { return s.ShowsAtHub(held, "held: site ship-a is in control since"); },
                    absl::Seconds(20)));
  absl::SleepFor(absl::Seconds(3));
  CHECK_FALSE(absl::StrContains(s.site->Stderr(), "handing control back"));
  CHECK(s.ShowsAtHub(held, "queued"));
  // The site still serves the ship.
  const std::string cut2 = s.SendNoWait(/*at_ship=*/true, "cut2");
  REQUIRE(WaitUntil(
      [&] {
        RunResult r = s.AtShip({"show", cut2, "--timeout", "2s"});
        return r.exit_code == 0 && absl::StrContains(r.out, "succeeded");
      },
      absl::Seconds(15)));
  CHECK(steward::testing::LineCounts(s.runs) == std::map<std::string, int>{{"cut", 1}, {"cut2", 1}});

  // Killed and started again with a window that is open: it comes back in control (its
  // ledger says so), then hands back.
  s.site->Signal(SIGKILL);
  s.site->Wait(absl::Seconds(5));
  s.StartSite({"--restore-window", "* * * * *", "--restore-length", "1h"});
  {
    const bool handed_back = s.site->WaitForOutput("control handed back", absl::Seconds(30));
    INFO(s.site->Stderr());
    REQUIRE(handed_back);
    CHECK(absl::StrContains(s.site->Stderr(), "control since"));
  }
  REQUIRE(WaitUntil([&] { return s.ShowsAtHub(held, "succeeded"); }, absl::Seconds(30)));
  CHECK(s.ShowsAtHub(cut2, "succeeded"));
  CHECK(steward::testing::LineCounts(s.runs) ==
        std::map<std::string, int>{{"cut", 1}, {"cut2", 1}, {"held", 1}});
}

}  // namespace
