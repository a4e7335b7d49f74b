// A group's active member end to end (issue 13 part 6): real nats-server, station,
// agents and stewardctl. The first online member is active, a send to @group:active
// reaches it alone, it hands over when that member goes offline, stays put when the
// better one comes back, moves on an operator's word, survives a station restart, and
// every change is said once (the audit).
#include <catch2/catch.hpp>

#include <string>

#include "tests/testing/cluster.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

namespace {

bool ActiveIs(Cluster& c, const std::string& member) {
  RunResult r = c.Ctl({"group", "show", "radar"});
  return r.exit_code == 0 && r.out.find("active member of @radar (healthiest): " + member + " ") != std::string::npos;
}

// How many changes of the active member the audit holds.
int Changes(Cluster& c) {
  RunResult r = c.Ctl({"audit", "--limit", "200"});
  int n = 0;
  for (size_t at = r.out.find("@radar"); at != std::string::npos; at = r.out.find("@radar", at + 1)) {
    const size_t line = r.out.rfind('\n', at);
    if (r.out.substr(line == std::string::npos ? 0 : line, at - (line == std::string::npos ? 0 : line))
            .find(" active ") != std::string::npos) {
      ++n;
    }
  }
  return n;
}

}  // namespace

TEST_CASE("a group's active member takes sends to @group:active and hands over only when it must",
          "[integration][active]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("radar-a");
  c.StartAgent("radar-b");
  RunResult set = c.Ctl({"group", "set", "radar", "radar-a,radar-b", "--active", "healthiest"});
  INFO(set.out << set.err);
  REQUIRE(set.exit_code == 0);
  CHECK(ActiveIs(c, "radar-a"));
  CHECK(c.Ctl({"group", "set", "radar", "radar-a", "--active", "random"}).exit_code != 0);

  RunResult sent = c.Ctl({"send", "@radar:active", "--", "echo", "on-duty"});
  INFO(sent.out << sent.err);
  CHECK(sent.exit_code == 0);
  CHECK(sent.out == "radar-a: on-duty\n");

  // radar-a goes away: radar-b takes over, and sends follow.
  c.StopAgent("radar-a");
  REQUIRE(WaitUntil([&] { return ActiveIs(c, "radar-b"); }, absl::Seconds(20)));
  sent = c.Ctl({"send", "@radar:active", "--", "echo", "on-duty"});
  CHECK(sent.out == "radar-b: on-duty\n");

  // radar-a is back: radar-b stays active (no flapping).
  c.StartAgent("radar-a");
  REQUIRE(WaitUntil([&] { return c.Ctl({"ping", "radar-a", "--timeout", "2s"}).exit_code == 0; }, absl::Seconds(20)));
  absl::SleepFor(absl::Seconds(1));
  CHECK(ActiveIs(c, "radar-b"));

  // An operator moves it; a non-member is refused.
  RunResult move = c.Ctl({"group", "active", "radar", "radar-a"});
  INFO(move.out << move.err);
  CHECK(move.exit_code == 0);
  CHECK(ActiveIs(c, "radar-a"));
  CHECK(c.Ctl({"group", "active", "radar", "ship9"}).exit_code != 0);

  // Kept across a station restart.
  c.StopStation();
  c.StartStation();
  CHECK(ActiveIs(c, "radar-a"));

  // Each change said once: none -> a, a -> b, b -> a (moved), and the refused move.
  CHECK(Changes(c) == 4);
}
