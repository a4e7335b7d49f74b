// End-to-end: names an operator used but that were never heard from (typos) are
// "unknown", are not targets of --all, and can be forgotten; show, nodes and history
// agree on a command's state.
#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/protocol.h"
#include "ctl/client.h"
#include "tests/testing/cluster.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::RunResult;

namespace {

std::unique_ptr<steward::ctl::Client> Connect(Cluster& c) {
  auto client = steward::ctl::Client::Connect({.nats = {.url = c.url()}});
  REQUIRE(client.ok());
  return std::move(*client);
}

TEST_CASE("a typo is unknown, no target of --all, and can be forgotten", "[integration][nodes]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  RunResult r = c.Ctl({"send", "--no-wait", "shipp1", "--", "true"});  // a typo
  REQUIRE(r.exit_code == 0);
  const std::string id = r.out.substr(r.out.find(' ') + 1, 26);

  auto client = Connect(c);
  auto nodes = client->Nodes("", absl::Seconds(5));
  REQUIRE(nodes.ok());
  REQUIRE(nodes->nodes_size() == 2);
  for (const auto& n : nodes->nodes()) {
    INFO(n.name());
    CHECK(n.status() == (n.name() == "ship1" ? steward::proto::NODE_ONLINE : steward::proto::NODE_UNKNOWN));
  }

  // --all reaches the node that exists, and only it.
  r = c.Ctl({"send", "--all", "--", "echo", "everyone"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("ship1: everyone"));
  CHECK_THAT(r.out + r.err, !Catch::Contains("shipp1"));

  r = c.Ctl({"nodes"});
  CHECK_THAT(r.out, Catch::Matches("(.|\n)*shipp1 +unknown(.|\n)*"));

  // Forgetting it is refused while it has an unfinished command, unless canceled.
  r = c.Ctl({"node", "forget", "shipp1"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("1 unfinished commands"));
  r = c.Ctl({"node", "forget", "shipp1", "--cancel"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains(absl::StrCat("canceled ", id)));
  CHECK_THAT(r.out, Catch::Contains("forgot shipp1"));
  nodes = client->Nodes("", absl::Seconds(5));
  REQUIRE(nodes.ok());
  REQUIRE(nodes->nodes_size() == 1);
  CHECK(nodes->nodes(0).name() == "ship1");
  auto shown = client->Show({id}, "", absl::Seconds(5));
  REQUIRE(shown.ok());
  CHECK(shown->commands(0).state() == steward::proto::STATE_CANCELED);
  // Asking for nothing is refused, not answered with nothing (an HTTP client or an
  // older stewardctl may send it).
  auto nothing = client->Show({}, "", absl::Seconds(5));
  REQUIRE_FALSE(nothing.ok());
  CHECK_THAT(std::string(nothing.status().message()), Catch::Contains("nothing to show"));
  CHECK_FALSE(client->Forget("shipp1", true, absl::Seconds(5)).ok());  // gone

  // Forgotten across a restart too.
  c.StopStation();
  c.StartStation();
  nodes = client->Nodes("", absl::Seconds(5));
  REQUIRE(nodes.ok());
  CHECK(nodes->nodes_size() == 1);
}

TEST_CASE("nodes, show and history agree on a command's state", "[integration][nodes]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  RunResult r = c.Ctl({"send", "--no-wait", "ship1", "--", "sleep", "2"});
  REQUIRE(r.exit_code == 0);
  const std::string id = r.out.substr(r.out.find(' ') + 1, 26);
  auto client = Connect(c);
  // While it runs, the three views say "running".
  REQUIRE(steward::testing::WaitUntil([&] {
    auto s = client->Show({id}, "", absl::Seconds(5));
    return s.ok() && s->commands(0).state() == steward::proto::STATE_RUNNING;
  }));
  auto node = client->Nodes("ship1", absl::Seconds(5));
  REQUIRE(node.ok());
  CHECK(node->nodes(0).last_command_id() == id);
  CHECK(node->nodes(0).last_command_state() == "running");
  REQUIRE(node->recent_size() >= 1);
  CHECK(node->recent(0).state() == steward::proto::STATE_RUNNING);
  steward::proto::HistoryRequest h;
  h.set_node("ship1");
  h.set_limit(1);
  auto hist = client->History(h, absl::Seconds(5));
  REQUIRE(hist.ok());
  REQUIRE(hist->commands_size() == 1);
  CHECK(hist->commands(0).state() == steward::proto::STATE_RUNNING);
  // A state that is no state is refused with the list of states.
  h.set_state("bogus");
  hist = client->History(h, absl::Seconds(5));
  REQUIRE_FALSE(hist.ok());
  CHECK_THAT(std::string(hist.status().message()), Catch::Contains("queued, sent, running"));
}

}  // namespace
