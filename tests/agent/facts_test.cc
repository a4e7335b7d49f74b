// Facts (agent/facts.h): os-release and the custom facts file, as hellos carry them.
#include "agent/facts.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "tests/testing/nats_server.h"

namespace steward::agent {
namespace {

TEST_CASE("custom facts: key=value lines, comments and bad lines", "[agent][facts]") {
  proto::Facts facts;
  std::vector<std::string> problems;
  ParseFactLines("# the fleet\nfleet = north\n\nradar=furuno 2117\nno equals\nbad key=x\nempty=\n", "f.conf", facts,
                 &problems);
  CHECK(facts.custom().size() == 3);
  CHECK(facts.custom().at("fleet") == "north");
  CHECK(facts.custom().at("radar") == "furuno 2117");
  CHECK(facts.custom().at("empty").empty());
  REQUIRE(problems.size() == 2);
  CHECK(problems[0] == "f.conf line 5: not key=value");
  CHECK(problems[1] == "f.conf line 6: key \"bad key\" may hold only letters, digits, _ . and -");
}

TEST_CASE("facts: os-release ID and VERSION_ID, uname, and the file, read each time", "[agent][facts]") {
  steward::testing::TempDir dir;
  const std::string os_release = dir.str() + "/os-release";
  const std::string file = dir.str() + "/facts";
  std::ofstream(os_release) << "PRETTY_NAME=\"Alpine Linux v3.19\"\nID=alpine\nVERSION_ID='3.19.1'\n";
  std::ofstream(file) << "fleet=north\n";
  std::vector<std::string> problems;
  proto::Facts facts = ReadFacts({.os_release = os_release, .file = file}, &problems);
  CHECK(problems.empty());
  CHECK(facts.os() == "alpine");
  CHECK(facts.os_version() == "3.19.1");
  CHECK_FALSE(facts.arch().empty());
  CHECK_FALSE(facts.kernel().empty());
  CHECK(facts.custom().at("fleet") == "north");
  std::ofstream(file) << "fleet=south\n";
  CHECK(ReadFacts({.os_release = os_release, .file = file}, &problems).custom().at("fleet") == "south");
  ReadFacts({.os_release = os_release, .file = dir.str() + "/none"}, &problems);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == "cannot read the facts file " + dir.str() + "/none");
}

}  // namespace
}  // namespace steward::agent
