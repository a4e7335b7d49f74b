// A station stopped while an operator's HTTP submit waits for its command: the submit is
// answered with the states as they are, and the station ends within its service manager's
// stop timeout (it used to join that request's server thread until the wait ran out, up to
// 2 minutes, before its ledger's queued writes were committed). Real station, agent, broker.
#include <catch2/catch.hpp>
#include <future>
#include <optional>
#include <string>

#include "absl/time/clock.h"
#include "tests/http/http_util.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::MakeToken;
using steward::testing::Reply;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

TEST_CASE("a station stopped while an HTTP submit waits answers it and ends at once", "[integration][http]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const int port = c.HttpPort();
  REQUIRE(port > 0);
  const std::string alice = MakeToken(c, "alice");
  // A command that runs longer than this test; the submit waits a minute for it.
  // TryHttp, not Http(): no Catch2 assertion may run on this thread.
  std::future<absl::StatusOr<Reply>> waiting = std::async(std::launch::async, [&] {
    return steward::testing::TryHttp(port, "POST", "/api/v1/commands", alice,
                                     R"({"nodes":["ship1"],"argv":["sleep","40"],"wait_ms":60000})");
  });
  REQUIRE(WaitUntil([&] {
    const RunResult r = c.Ctl({"history"});
    return r.out.find("running") != std::string::npos;
  }));
  REQUIRE(waiting.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout);
  const absl::Time stopped = absl::Now();
  c.station().Signal(SIGTERM);
  std::optional<steward::testing::RunResult> end = c.station().Wait(absl::Seconds(10));
  INFO(c.station().Stderr());
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 0);
  CHECK(absl::Now() - stopped < absl::Seconds(5));
  REQUIRE(waiting.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  const absl::StatusOr<Reply> answer = waiting.get();
  INFO(answer.status().ToString());
  REQUIRE(answer.ok());
  const Reply& r = *answer;
  INFO(r.body);
  CHECK(r.status == 201);
  REQUIRE(r.json.is_object());
  CHECK(r.json["states"][0]["state"] == "running");  // the truth when it stopped: not ended
}
