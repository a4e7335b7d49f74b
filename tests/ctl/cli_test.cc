// stewardctl's and the daemons' command lines, run as the real programs: usage errors
// exit 2 and say why, help shows each (sub)command's own options, the environment fills
// in what is not given, and every spelling that worked before still parses. No broker:
// a command line that parses ends at "station not reachable" (255).
#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/creds.h"
#include "common/protocol.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/process.h"

namespace steward::ctl {
namespace {

using steward::testing::BinPath;
using steward::testing::RunResult;

constexpr char kNoBroker[] = "nats://127.0.0.1:1";

RunResult Ctl(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), BinPath("ctl/stewardctl"));
  return steward::testing::RunProgram(args, absl::Seconds(30), std::move(env));
}

// Runs stewardctl against no broker: 255 and "not reachable" mean the line parsed.
RunResult Parsed(std::vector<std::string> args) {
  args.insert(args.begin(), {"--nats", kNoBroker});
  return Ctl(args);
}

TEST_CASE("stewardctl usage errors exit 2 and say why", "[ctl]") {
  RunResult r = Ctl({"sned", "ship1", "--", "true"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err,
             Catch::Contains("unknown subcommand \"sned\"") && Catch::Contains("did you mean \"send\""));

  r = Ctl({"nodes", "--pendnig"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown option --pendnig") && Catch::Contains("\"--pending\""));

  r = Ctl({"acl", "sho", "ship1"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("did you mean \"show\""));

  r = Ctl({});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("subcommand is required"));

  r = Ctl({"ping"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("stewardctl ping: NODE is required"));

  r = Ctl({"send", "ship1"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("COMMAND is required"));

  // Values that would ask for nothing, or quietly for something else.
  r = Parsed({"show", ""});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("an ID may not be empty"));
  for (const char* what : {"history", "audit"}) {
    INFO(what);
    for (const char* limit : {"0", "-3", "10001"}) {
      INFO(limit);
      r = Parsed({what, "--limit", limit});
      CHECK(r.exit_code == 2);
      // The range the station serves, not a double's.
      CHECK_THAT(r.err, Catch::Contains("--limit") && Catch::Contains("not in range 1 to 10000"));
    }
  }

  r = Ctl({"send", "--timeout", "soon", "ship1", "--", "true"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("\"soon\" is not a duration"));
  // A negative time is a usage error here, not the station's refusal (exit 255).
  r = Ctl({"send", "--batch", "1", "--batch-wait", "-1s", "ship1,ship2", "--", "true"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("\"-1s\" is negative"));
  r = Ctl({"send", "--ttl", "-5m", "ship1", "--", "true"});
  CHECK(r.exit_code == 2);

  r = Ctl({"history", "--state", "bogus"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown state \"bogus\"") && Catch::Contains(steward::StateNames()));

  r = Ctl({"logs", "--severity", "loud"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown severity \"loud\""));
  // A window that ends before it begins matches nothing: said, not answered with silence.
  r = Ctl({"logs", "--since", "10m", "--until", "20m"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--until 20m is not after --since 10m"));
  r = Ctl({"logs", "--follow", "--until", "1m"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("it takes no --until"));

  r = Ctl({"nodes", "--", "extra"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("no arguments after --"));

  // What goes into a protobuf string must be UTF-8.
  r = Ctl({"logs", "--grep", "caf\xe9"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("is not UTF-8 text"));
  r = Ctl({"history", "--node", "\xff"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("is not UTF-8 text"));
}

TEST_CASE("a command the station would refuse is a usage error naming the bad part", "[ctl]") {
  RunResult r = Parsed({"send", "ship1", "--", "ls", "caf\xe9.txt"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("argument 2 (caf\\xe9.txt) is not UTF-8 text"));
  r = Parsed({"send", "--env", "A=\xff", "ship1", "--", "true"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--env A=\\xff is not UTF-8 text"));
  r = Parsed({"send", "--env", "NOVALUE", "ship1", "--", "true"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--env NOVALUE: not KEY=VALUE"));
  // The agent's own: it finds a command's processes by its id.
  r = Parsed({"send", "--env", "STEWARD_COMMAND_ID=x", "ship1", "--", "true"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("STEWARD_COMMAND_ID is set by the agent"));
  r = Parsed({"send", "--domain", "a.b", "ship1", "--", "true"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--domain a.b: token \"a.b\" contains '.'"));
  r = Parsed({"schedule", "add", "nightly", "--cron", "0 3 * * *", "--all", "--domain", "x*", "--", "true"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--domain x*"));
  // Valid UTF-8 goes through to the (absent) station.
  r = Parsed({"send", "ship1", "--", "ls", "caf\xc3\xa9.txt"});
  CHECK(r.exit_code == 255);
}

TEST_CASE("a target is chosen one way: NODES with --all, or NODES naming no node, is a usage error", "[ctl]") {
  // Before, the names were glued to the command (send), or --all won (run, schedule).
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"send", "--all", "n1", "--", "true"},
           {"run", "rb.toml", "--target", "n1", "--all"},
           {"schedule", "add", "both", "n1", "--all", "--cron", "@yearly", "--", "true"},
           {"tag", "set", "n1", "--all", "role=x"},
           {"targets", "n1", "--all"}}) {
    RunResult r = Parsed(args);
    INFO(args[0] << " " << args[1]);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--all takes every node: give no NODES with it"));
  }
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"send", ",", "--", "true"},
           {"schedule", "add", "comma", ",", "--cron", "@yearly", "--", "true"},
           {"run", "rb.toml", "--target", ","},
           {"targets", ",,"}}) {
    RunResult r = Parsed(args);
    INFO(args[0] << " " << args[1]);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("names no node"));
  }
  // With --all, every word of tag set is a tag (the first was taken for NODES).
  CHECK(Parsed({"tag", "set", "--all", "a=1", "b=2"}).exit_code == 255);
  CHECK(Parsed({"tag", "unset", "--all", "a", "b"}).exit_code == 255);
  // --all alone, and --all with a command and no "--", still go to the station.
  CHECK(Parsed({"send", "--all", "--", "true"}).exit_code == 255);
  CHECK(Parsed({"send", "--all", "echo", "hi"}).exit_code == 255);
}

TEST_CASE("stewardctl help lists subcommands, and a subcommand's help only its options", "[ctl]") {
  RunResult r = Ctl({"--help"});
  CHECK(r.exit_code == 0);
  for (const char* sub : {"send", "ping", "show", "cancel", "history", "nodes", "node", "logs", "audit",
                          "accept", "acl", "group", "keys", "enroll", "nats-config", "station"}) {
    CHECK_THAT(r.out, Catch::Contains(std::string("\n  ") + sub + " "));
  }
  CHECK_THAT(r.out, Catch::Contains("--timeout") && Catch::Contains("STEWARD_NATS_URL"));
  CHECK_THAT(r.out, Catch::Contains("--retry-for") && Catch::Contains("STEWARD_RETRY_FOR"));
  CHECK_THAT(r.out, !Catch::Contains("--exec-timeout"));

  r = Ctl({"send", "--help"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out,
             Catch::Contains("--exec-timeout") && Catch::Contains("--no-wait") && Catch::Contains("--env"));
  for (const char* other : {"--pending", "--grep", "--listen", "--severity", "--station", "--state"}) {
    CHECK_THAT(r.out, !Catch::Contains(other));
  }

  r = Ctl({"node", "forget", "--help"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("--cancel"));

  r = Ctl({"--version"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == std::string("stewardctl ") + STEWARD_VERSION + "\n");
}

TEST_CASE("stewardctl takes the broker, station and keys from the environment", "[ctl]") {
  RunResult r = Ctl({"nodes"}, {{"STEWARD_NATS_URL", kNoBroker}});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains(std::string("station not reachable at ") + kNoBroker));

  // A flag wins over the environment.
  r = Ctl({"--nats", "nats://127.0.0.1:2", "nodes"}, {{"STEWARD_NATS_URL", kNoBroker}});
  CHECK_THAT(r.err, Catch::Contains("nats://127.0.0.1:2"));

  r = Ctl({"--nats", kNoBroker, "nodes"}, {{"STEWARD_STATION", "bad.name"}});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("bad.name"));

  steward::testing::TempDir dir;
  const std::string keys = dir.str() + "/keys";
  r = Ctl({"keys", "init"}, {{"STEWARD_KEYS", keys}});
  CHECK(r.exit_code == 0);
  CHECK(std::filesystem::exists(keys + "/operator.pub"));
}

TEST_CASE("every spelling stewardctl took before still parses", "[ctl]") {
  const std::vector<std::vector<std::string>> lines = {
      {"--timeout", "1s", "nodes", "--pending"},
      {"--wait", "30s", "send", "--all", "--", "df", "-h", "/"},
      {"--json", "history"},
      {"history", "--json", "--node", "ship1", "--state", "failed", "--limit", "20"},
      {"send", "--no_wait", "ship1", "--", "true"},
      {"send", "--no-wait=true", "--exec_timeout=1m30s", "--ttl", "500ms", "ship1", "--", "true"},
      {"send", "--cwd", "/tmp", "--env", "A=1,B=2", "--env=C=3", "ship1,ship2", "--", "sh", "-c", "echo $A"},
      {"send", "--shell", "--domain", "nginx", "--method=echo", "ship1", "--", "echo hi"},
      {"send", "ship1", "uname"},
      {"logs", "--node", "ship1", "--since", "10m", "--severity", "warning", "--grep", "x", "--follow"},
      {"acl", "set", "@web", "--allow", "shellcommand:/usr/bin/systemctl *,ping"},
      {"group", "set", "web", "ship1,ship2"},
      {"audit", "--by", "alice", "--node", "ship1"},
      {"node", "ship1"},
      {"node", "forget", "ship1", "--cancel"},
      {"show", "01J0000000000000000000000A", "--timeout=2s"},
      {"ping", "ship1", "--station", "station"},
      {"station", "status", "--json"},
      {"--retry-for", "3s", "station", "status"},
  };
  for (const auto& line : lines) {
    RunResult r = Parsed(line);
    INFO(line[0] << " " << (line.size() > 1 ? line[1] : "") << ": " << r.err);
    CHECK(r.exit_code == 255);
    CHECK_THAT(r.err, Catch::Contains("station not reachable"));
  }
}

TEST_CASE("the daemons' help shows their own flags and a bad flag exits 2", "[ctl]") {
  RunResult r = steward::testing::RunProgram({BinPath("agent/steward-agent"), "--help"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out,
             Catch::Contains("--syslog-udp") && Catch::Contains("--heartbeat") && Catch::Contains("--node"));
  CHECK_THAT(r.out, !Catch::Contains("--log-retention"));

  r = steward::testing::RunProgram({BinPath("station/steward-station"), "--help"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("--log-retention") && Catch::Contains("--data-dir"));
  CHECK_THAT(r.out, !Catch::Contains("--syslog-udp"));

  r = steward::testing::RunProgram({BinPath("agent/steward-agent"), "--nodee", "ship1"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("did you mean \"--node\""));

  r = steward::testing::RunProgram({BinPath("agent/steward-agent"), "--data_dir", "/tmp/x"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--node is required"));

  r = steward::testing::RunProgram({BinPath("station/steward-station"), "--log-retention", "a week"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("not a duration"));
}

}  // namespace
}  // namespace steward::ctl

namespace steward::ctl {
namespace {

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

TEST_CASE("nats-config keeps broker passwords private: -o at 0600, never to a terminal", "[ctl][secrets]") {
  steward::testing::TempDir dir;
  const std::string keys = dir.str() + "/keys";
  REQUIRE(Ctl({"--keys", keys, "keys", "init"}).exit_code == 0);
  REQUIRE(Ctl({"--keys", keys, "enroll", "ship1"}).exit_code == 0);
  // Names whose subjects are the broker's or the station's own: a node of that name
  // would be allowed to read them (_DEBUG.>: every operator's debug stream).
  for (const char* reserved : {"_DEBUG", "_STEWARD", "$SYS", "station", "operator", "_INBOX_x"}) {
    RunResult bad = Ctl({"--keys", keys, "enroll", reserved});
    INFO(reserved << ": " << bad.err);
    CHECK(bad.exit_code != 0);
    CHECK_FALSE(std::filesystem::exists(keys + "/nodes/" + reserved));
  }
  CHECK_THAT(Ctl({"--keys", keys, "enroll", "_DEBUG"}).err, Catch::Contains("begins with '_'"));
  // One made by hand in the creds directory is refused by nats-config too.
  std::filesystem::copy_file(keys + "/creds/ship1.creds", keys + "/creds/_DEBUG.creds");
  {
    std::ofstream(keys + "/creds/_DEBUG.creds") << "user _DEBUG\npassword abcdefghijklmnopqrstuvwxyz012345\n";
    RunResult conf = Ctl({"--keys", keys, "nats-config", "-o", dir.str() + "/bad.conf"});
    INFO(conf.err);
    CHECK(conf.exit_code != 0);
    CHECK_THAT(conf.err, Catch::Contains("_DEBUG"));
    std::filesystem::remove(keys + "/creds/_DEBUG.creds");
  }

  const std::string out = dir.str() + "/nats.conf";
  RunResult r = Ctl({"--keys", keys, "nats-config", "-o", out});
  REQUIRE(r.exit_code == 0);
  CHECK(ModeOf(out) == 0600);
  CHECK_THAT(r.err, Catch::Contains("mode 0600"));
  CHECK(std::filesystem::file_size(out) > 100);

  // Redirected by the shell (the umask would give 0644): made private too.
  const std::string redirected = dir.str() + "/redirected.conf";
  r = steward::testing::RunProgram(
      {"/bin/sh", "-c", "umask 022; \"$0\" --keys \"$1\" nats-config > \"$2\"", BinPath("ctl/stewardctl"), keys,
       redirected});
  REQUIRE(r.exit_code == 0);
  CHECK(ModeOf(redirected) == 0600);

  // On a terminal (script(1) gives it one): refused, nothing printed.
  r = steward::testing::RunProgram(
      {"script", "-qec", "\"$STEWARDCTL\" --keys \"$KEYS\" nats-config", "/dev/null"}, absl::Seconds(30),
      {{"STEWARDCTL", BinPath("ctl/stewardctl")}, {"KEYS", keys}});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.out, Catch::Contains("not printed to a terminal"));
  absl::StatusOr<BrokerCreds> creds = ReadCreds(keys + "/nodes/ship1/ship1.creds");
  REQUIRE(creds.ok());
  CHECK_THAT(r.out, !Catch::Contains(creds->password));
}

TEST_CASE("nats-config --site-station: a site's broker gets a user of its own for the site station and the operators' user",
          "[ctl][broker]") {
  steward::testing::TempDir dir;
  const std::string keys = dir.str() + "/keys";
  REQUIRE(Ctl({"--keys", keys, "keys", "init"}).exit_code == 0);
  REQUIRE(Ctl({"--keys", keys, "enroll", "ship1"}).exit_code == 0);
  const std::string out = dir.str() + "/ship-a.conf";
  RunResult r = Ctl({"--keys", keys, "nats-config", "--leaf", "ship-a", "--hub", "127.0.0.1:7422", "--nodes", "ship1",
                     "--site-station", "-o", out});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::ifstream in(out);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  absl::StatusOr<BrokerCreds> site = ReadCreds(keys + "/creds/site-ship-a.creds");
  REQUIRE(site.ok());
  CHECK_THAT(text, Catch::Contains(absl::StrCat("# station\n      user: \"site-ship-a\"\n      password: \"",
                                                site->password, "\"")));
  CHECK_THAT(text, !Catch::Contains("user: \"station\""));  // never the central station's own user
  // The operators reach the site station there while the link is cut.
  CHECK_THAT(text, Catch::Contains("user: \"operator\""));
  // Without a site station, the site's broker knows its nodes only.
  const std::string plain = dir.str() + "/ship-b.conf";
  REQUIRE(Ctl({"--keys", keys, "nats-config", "--leaf", "ship-b", "--hub", "127.0.0.1:7422", "--nodes", "ship1", "-o",
               plain})
              .exit_code == 0);
  std::ifstream pin(plain);
  const std::string plain_text((std::istreambuf_iterator<char>(pin)), std::istreambuf_iterator<char>());
  CHECK_THAT(plain_text, Catch::Contains("user: \"ship1\"") && !Catch::Contains("user: \"operator\""));
  // The hub's configuration knows nothing of it: it is the site broker's only.
  const std::string hub = dir.str() + "/hub.conf";
  REQUIRE(Ctl({"--keys", keys, "nats-config", "--leaf-listen", "127.0.0.1:7422", "--sites", "ship-a", "-o", hub})
              .exit_code == 0);
  std::ifstream hin(hub);
  const std::string hub_text((std::istreambuf_iterator<char>(hin)), std::istreambuf_iterator<char>());
  CHECK_THAT(hub_text, !Catch::Contains("site-ship-a"));
  // Only with --leaf.
  CHECK(Ctl({"--keys", keys, "nats-config", "--site-station"}).exit_code != 0);
}

}  // namespace
}  // namespace steward::ctl
