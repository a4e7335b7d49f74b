// stewardctl's targeting command lines, run as the real program against no broker: a
// bad expression or rollout option is a usage error (exit 2) found before anything is
// sent; a line that parses ends at "station not reachable" (255).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/testing/process.h"

namespace steward::ctl {
namespace {

using steward::testing::BinPath;
using steward::testing::RunResult;

RunResult Ctl(std::vector<std::string> args) {
  args.insert(args.begin(), {BinPath("ctl/stewardctl"), "--nats", "nats://127.0.0.1:1"});
  return steward::testing::RunProgram(args, absl::Seconds(30));
}

TEST_CASE("a bad --where is a usage error with a caret, before anything is sent", "[ctl][targeting]") {
  RunResult r = Ctl({"send", "--where", R"(os == "debian" and tag.role == radar)", "--", "true"});
  CHECK(r.exit_code == 2);
  CHECK(r.err ==
        "stewardctl send: --where: at column 32: expected a quoted string after ==, found radar (write \"radar\")\n"
        "  os == \"debian\" and tag.role == radar\n"
        "                                 ^\n"
        "Run `stewardctl send --help` for usage.\n");
  for (const std::vector<std::string>& line : std::vector<std::vector<std::string>>{
           {"targets", "--where", "nosuch == \"x\""},
           {"tag", "show", "--where", "os =="},
           {"schedule", "add", "s", "--cron", "* * * * *", "--where", "(", "--", "true"}}) {
    INFO(line[0]);
    r = Ctl(line);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--where: at column"));
  }
}

TEST_CASE("rollout options are checked before anything is sent", "[ctl][targeting]") {
  auto usage = [](std::vector<std::string> args, const std::string& why) {
    args.insert(args.begin(), "send");
    args.insert(args.end(), {"--", "true"});
    RunResult r = Ctl(args);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(why));
  };
  usage({"--all", "--batch", "ten"}, "--batch \"ten\": a number of nodes (10) or a share of them (10%)");
  usage({"--all", "--batch", "0"}, "--batch \"0\"");
  usage({"--all", "--batch", "150%"}, "--batch \"150%\"");
  usage({"--all", "--abort-on", "5"}, "--abort-on \"5\": a share of the targets, such as 5%");
  usage({"--all", "--batch", "2", "--count-as-failed", "late"}, "--count-as-failed \"late\"");
  usage({"--all", "--batch", "2", "--continuous"}, "--continuous does not combine with a staged rollout");
  usage({}, "NODE[,NODE...], --all or --where is required");
}

TEST_CASE("targeting command lines that parse reach for the station", "[ctl][targeting]") {
  for (const std::vector<std::string>& line : std::vector<std::vector<std::string>>{
           {"targets"},
           {"targets", "ship*,@web", "--where", "online"},
           {"tag", "set", "ship1", "role=radar", "region=north"},
           {"tag", "unset", "--all", "role"},
           {"send", "--where", "online", "--", "true"},
           {"send", "ship*", "--batch", "10%", "--canary", "1", "--batch-wait", "30s", "--abort-on", "5%", "--",
            "true"},
           {"send", "--all", "--continuous", "--expires-in", "24h", "--", "true"},
           {"rollout", "show", "01J0000000000000000000000"},
           {"close", "01J0000000000000000000000"},
           {"schedule", "add", "disk", "--cron", "*/15 * * * *", "--tz", "Europe/Oslo", "--missed", "run-once",
            "--splay", "1m", "--all", "--", "df", "-h"},
           {"schedule", "list"},
           {"schedule", "pause", "disk"}}) {
    INFO(line[0] << " " << (line.size() > 1 ? line[1] : ""));
    RunResult r = Ctl(line);
    CHECK(r.exit_code == 255);
    CHECK_THAT(r.err, Catch::Contains("not reachable"));
  }
  RunResult r = Ctl({"tag", "set", "ship1", "role"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("\"role\" is not KEY=VALUE"));
  r = Ctl({"schedule", "add", "disk", "--cron", "* * * * *", "--", "true"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("NODES, --where or --all is required"));
  r = Ctl({"schedule", "add", "disk", "--cron", "* * * * *", "--all", "--missed", "later", "--", "true"});
  CHECK(r.exit_code == 2);
}

}  // namespace
}  // namespace steward::ctl
