// End-to-end: `stewardctl copy --owner` (issue 14 part 5: "with the requested mode and
// owner"), both directions, with real processes. The tests run as root (as the
// agent of a real unit does); an unknown owner is refused before anything is written.
#include <catch2/catch.hpp>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "tests/testing/cluster.h"

using steward::testing::Cluster;
using steward::testing::RunResult;

namespace {

struct stat StatOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st;
}

}  // namespace

TEST_CASE("copy --owner gives the written file its owner, both ways", "[integration][agentops][copy]") {
  if (::geteuid() != 0) {
    WARN("not root: cannot give files away here; skipped");
    return;
  }
  const struct passwd* nobody = ::getpwnam("nobody");
  const struct group* nogroup = ::getgrnam("nogroup");
  REQUIRE(nobody != nullptr);
  REQUIRE(nogroup != nullptr);
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const std::string dir = c.dir().str();
  {
    std::ofstream out(dir + "/src");
    out << "owned\n";
  }
  std::filesystem::create_directories(dir + "/node");

  RunResult to = c.Ctl({"copy", "--owner", "nobody:nogroup", "--mode", "0640", dir + "/src", "ship1:" + dir + "/node/dst"});
  INFO(to.out << to.err);
  REQUIRE(to.exit_code == 0);
  struct stat st = StatOf(dir + "/node/dst");
  CHECK(st.st_uid == nobody->pw_uid);
  CHECK(st.st_gid == nogroup->gr_gid);
  CHECK((st.st_mode & 07777) == 0640);

  // Numbers, and only the group.
  RunResult group = c.Ctl({"copy", "--owner", ":" + std::to_string(nogroup->gr_gid), dir + "/src",
                           "ship1:" + dir + "/node/dst2"});
  INFO(group.out << group.err);
  REQUIRE(group.exit_code == 0);
  CHECK(StatOf(dir + "/node/dst2").st_uid == 0);
  CHECK(StatOf(dir + "/node/dst2").st_gid == nogroup->gr_gid);

  // From the node: the owner is given here.
  RunResult from = c.Ctl({"copy", "--owner", "nobody", "ship1:" + dir + "/node/dst", dir + "/back"});
  INFO(from.out << from.err);
  REQUIRE(from.exit_code == 0);
  CHECK(StatOf(dir + "/back").st_uid == nobody->pw_uid);
}

TEST_CASE("copy --owner with an unknown user or a bad spec is refused and writes nothing",
          "[integration][agentops][copy]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const std::string dir = c.dir().str();
  {
    std::ofstream out(dir + "/src");
    out << "x\n";
  }
  std::filesystem::create_directories(dir + "/node");
  RunResult unknown = c.Ctl({"copy", "--owner", "no-such-user-here", dir + "/src", "ship1:" + dir + "/node/dst"});
  CHECK(unknown.exit_code == 1);  // the node refused it
  CHECK_THAT(unknown.err, Catch::Contains("no user \"no-such-user-here\" here"));
  RunResult bad = c.Ctl({"copy", "--owner", "a:b:c", dir + "/src", "ship1:" + dir + "/node/dst"});
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.err, Catch::Contains("is not USER, USER:GROUP or :GROUP"));
  RunResult here = c.Ctl({"copy", "--owner", ":no-such-group-here", "ship1:" + dir + "/src", dir + "/back"});
  CHECK(here.exit_code == 255);
  CHECK_THAT(here.err, Catch::Contains("no group \"no-such-group-here\" here"));
  // A node the station never heard of (a typo) ends a copy either way at once, without
  // a command sent again and again until --wait.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"copy", dir + "/src", "shipp1:" + dir + "/node/dst"},
        std::vector<std::string>{"copy", "shipp1:" + dir + "/src", dir + "/back"}}) {
    const absl::Time start = absl::Now();
    RunResult typo = c.Ctl(args);
    CHECK(typo.exit_code == 255);
    CHECK_THAT(typo.err, Catch::Contains("unknown node shipp1: the station has never heard of it"));
    CHECK(absl::Now() - start < absl::Seconds(10));
  }
  CHECK(c.Ctl({"--json", "history", "--node", "shipp1"}).out.empty());
  // Nothing was written on either side, no part file left.
  CHECK(std::filesystem::is_empty(dir + "/node"));
  CHECK_FALSE(std::filesystem::exists(dir + "/back"));
  CHECK_FALSE(std::filesystem::exists(dir + "/back.steward-part"));
}
