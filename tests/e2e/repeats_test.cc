// A request that makes commands, sent again with the same envelope (its answer lost:
// a client's retry through an HA takeover, ctl/client.h) makes them once: the repeat
// gets the first answer (station/repeats.h). Real station, agent and broker; each
// command appends a line to a file, so the lines count the runs.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "ctl/client.h"
#include "tests/testing/cluster.h"
#include "tests/testing/files.h"
#include "tests/testing/wait.h"

namespace {

namespace proto = steward::proto;
using steward::testing::Cluster;
using steward::testing::WaitUntil;

// The serialized request envelope of `method` with `payload`, as operator `op`.
std::string Request(const char* method, const google::protobuf::Message& payload, const std::string& op = "tester") {
  proto::Envelope env = steward::NewEnvelope("tester", "station", proto::KIND_COMMAND, method, steward::kCliDomain);
  env.set_operator_(op);
  env.set_payload(payload.SerializeAsString());
  return env.SerializeAsString();
}

// Sends the request bytes and returns the ACK's payload (REQUIREd to succeed).
std::string Send(natsConnection* nc, const char* method, const std::string& request) {
  absl::StatusOr<steward::nats::MsgPtr> msg =
      steward::nats::Request(nc, absl::StrCat("station.command.", method, ".cli"), request, absl::Seconds(20));
  INFO(msg.status().ToString());
  REQUIRE(msg.ok());
  absl::StatusOr<std::string> payload = steward::ctl::Client::AckPayload(steward::nats::Data(msg->get()));
  INFO(payload.status().ToString());
  REQUIRE(payload.ok());
  return *payload;
}

proto::SubmitReply SubmitReplyOf(const std::string& bytes) {
  proto::SubmitReply r;
  REQUIRE(r.ParseFromString(bytes));
  return r;
}

proto::SubmitRequest Appending(const std::string& file, const std::string& line) {
  proto::SubmitRequest req;
  req.add_nodes("ship1");
  proto::Envelope* cmd = req.mutable_command();
  cmd->set_method("shellcommand");
  cmd->set_domain("operatingsystem");
  cmd->add_argv("sh");
  cmd->add_argv("-c");
  cmd->add_argv(absl::StrCat("echo ", line, " >> ", file));
  return req;
}

TEST_CASE("a repeated submit, retry or launch envelope makes its commands once and gets the first answer",
          "[integration][e2e][ha]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  steward::nats::ConnectionPtr nc = steward::testing::MustConnect(c.url(), "repeats test");
  auto client = steward::ctl::Client::Connect({.nats = {.url = c.url()}, .operator_name = "tester"});
  REQUIRE(client.ok());
  const std::string runs = c.dir().str() + "/runs";

  // One submit, sent three times: one command, the same answer each time.
  const std::string submit = Request(steward::kStationSubmit, Appending(runs, "submit"));
  const proto::SubmitReply first = SubmitReplyOf(Send(nc.get(), steward::kStationSubmit, submit));
  REQUIRE(first.commands_size() == 1);
  for (int i = 0; i < 2; ++i) {
    const proto::SubmitReply again = SubmitReplyOf(Send(nc.get(), steward::kStationSubmit, submit));
    CHECK(again.request_id() == first.request_id());
    REQUIRE(again.commands_size() == 1);
    CHECK(again.commands(0).id() == first.commands(0).id());
  }
  // The same envelope id from another operator is another request.
  std::string other_id;
  {
    proto::Envelope env;
    REQUIRE(env.ParseFromString(submit));
    env.set_operator_("someone else");
    const proto::SubmitReply other = SubmitReplyOf(Send(nc.get(), steward::kStationSubmit, env.SerializeAsString()));
    CHECK(other.request_id() != first.request_id());
    REQUIRE(other.commands_size() == 1);
    other_id = other.commands(0).id();
  }

  // Two copies at once (a client that timed out while the first was being stored):
  // both get the one answer.
  const std::string twice = Request(steward::kStationSubmit, Appending(runs, "twice"));
  std::string a, b;
  {
    steward::nats::ConnectionPtr nc2 = steward::testing::MustConnect(c.url(), "repeats test 2");
    std::thread t([&] { a = Send(nc2.get(), steward::kStationSubmit, twice); });
    b = Send(nc.get(), steward::kStationSubmit, twice);
    t.join();
  }
  CHECK(SubmitReplyOf(a).request_id() == SubmitReplyOf(b).request_id());
  CHECK(SubmitReplyOf(a).commands(0).id() == SubmitReplyOf(b).commands(0).id());

  // With a wait: the repeat waits for the same command and says how it ended.
  proto::SubmitRequest waiting = Appending(runs, "waited");
  waiting.set_wait_ms(10'000);
  const std::string waited = Request(steward::kStationSubmit, waiting);
  const proto::SubmitReply w1 = SubmitReplyOf(Send(nc.get(), steward::kStationSubmit, waited));
  const proto::SubmitReply w2 = SubmitReplyOf(Send(nc.get(), steward::kStationSubmit, waited));
  REQUIRE(w1.states_size() == 1);
  REQUIRE(w2.states_size() == 1);
  CHECK(w2.states(0).id() == w1.states(0).id());
  CHECK(w2.states(0).state() == proto::STATE_SUCCEEDED);

  // A repeat refused now had it been new (its command's expiry passed since the first
  // try) is answered as the first try was: that one was done, and nothing is made again.
  proto::SubmitRequest expiring = Appending(runs, "expiring");
  expiring.mutable_command()->set_expires_unix_ms(absl::ToUnixMillis(absl::Now() + absl::Seconds(2)));
  const std::string expires = Request(steward::kStationSubmit, expiring);
  const proto::SubmitReply e1 = SubmitReplyOf(Send(nc.get(), steward::kStationSubmit, expires));
  REQUIRE(e1.commands_size() == 1);
  REQUIRE(client.value()->Wait({e1.commands(0).id()}, absl::Seconds(10)).ok());
  absl::SleepFor(absl::Milliseconds(2500));
  const proto::SubmitReply e2 = SubmitReplyOf(Send(nc.get(), steward::kStationSubmit, expires));
  CHECK(e2.request_id() == e1.request_id());
  REQUIRE(e2.commands_size() == 1);
  CHECK(e2.commands(0).id() == e1.commands(0).id());

  // A retry of the first command, sent twice: one new command.
  REQUIRE(client.value()->Wait({first.commands(0).id()}, absl::Seconds(10)).ok());
  proto::RetryRequest retry_req;
  retry_req.add_ids(first.commands(0).id());
  const std::string retry = Request(steward::kStationRetry, retry_req);
  const proto::SubmitReply r1 = SubmitReplyOf(Send(nc.get(), steward::kStationRetry, retry));
  const proto::SubmitReply r2 = SubmitReplyOf(Send(nc.get(), steward::kStationRetry, retry));
  REQUIRE(r1.commands_size() == 1);
  CHECK(r2.request_id() == r1.request_id());
  CHECK(r2.commands(0).id() == r1.commands(0).id());

  // A launch (a job by target), sent twice: one job, one command.
  proto::LaunchRequest launch_req;
  launch_req.mutable_target()->add_selectors("ship1");
  *launch_req.mutable_command() = Appending(runs, "launched").command();
  const std::string launch = Request(steward::kStationLaunch, launch_req);
  proto::LaunchReply l1, l2;
  REQUIRE(l1.ParseFromString(Send(nc.get(), steward::kStationLaunch, launch)));
  REQUIRE(l2.ParseFromString(Send(nc.get(), steward::kStationLaunch, launch)));
  CHECK(l2.job().id() == l1.job().id());
  REQUIRE(l1.submitted().commands_size() == 1);
  REQUIRE(l2.submitted().commands_size() == 1);
  CHECK(l2.submitted().commands(0).id() == l1.submitted().commands(0).id());

  // The same envelope id asking for something else (a client's bug, or a forgery) is
  // refused, and makes nothing: answering it with the first reply would say that what
  // it asked for was done.
  for (const auto& [method, bytes] : std::map<std::string, std::string>{{steward::kStationSubmit, submit},
                                                                        {steward::kStationLaunch, launch}}) {
    proto::Envelope env;
    REQUIRE(env.ParseFromString(bytes));
    if (method == steward::kStationSubmit) {
      env.set_payload(Appending(runs, "forged").SerializeAsString());
    } else {
      proto::LaunchRequest other = launch_req;
      other.mutable_target()->set_selectors(0, "ship2");
      env.set_payload(other.SerializeAsString());
    }
    absl::StatusOr<steward::nats::MsgPtr> msg = steward::nats::Request(
        nc.get(), absl::StrCat("station.command.", method, ".cli"), env.SerializeAsString(), absl::Seconds(20));
    REQUIRE(msg.ok());
    absl::StatusOr<std::string> answer = steward::ctl::Client::AckPayload(steward::nats::Data(msg->get()));
    INFO(method << ": " << answer.status().ToString());
    CHECK(absl::IsFailedPrecondition(answer.status()));  // rejected
    CHECK_THAT(std::string(answer.status().message()),
               Catch::Contains(absl::StrCat("request id ", env.id(), " was used within the last 24h by tester for "
                                            "another request: nothing was done")));
  }

  // Every command ran once: one line each (the other operator's submit is its own).
  std::vector<std::string> ids = {first.commands(0).id(),
                                  other_id,
                                  SubmitReplyOf(a).commands(0).id(),
                                  e1.commands(0).id(),
                                  r1.commands(0).id(),
                                  l1.submitted().commands(0).id()};
  absl::StatusOr<proto::CommandStates> done = client.value()->Wait(ids, absl::Seconds(20));
  REQUIRE(done.ok());
  for (const proto::CommandState& s : done->commands()) CHECK(s.state() == proto::STATE_SUCCEEDED);
  absl::SleepFor(absl::Milliseconds(500));  // a command made twice would have run by now too
  const std::map<std::string, int> counts = steward::testing::LineCounts(runs);
  CHECK(counts ==
        std::map<std::string, int>{{"submit", 3}, {"twice", 1}, {"waited", 1}, {"expiring", 1}, {"launched", 1}});
  // (submit: the first, the other operator's, and the retry.) The ledger holds one
  // command per request.
  for (const std::string& request : {first.request_id(), SubmitReplyOf(a).request_id(), r1.request_id(),
                                     l1.job().id()}) {
    absl::StatusOr<proto::CommandStates> rows = client.value()->Show({}, request, absl::Seconds(5));
    REQUIRE(rows.ok());
    CHECK(rows->commands_size() == 1);
  }
}

TEST_CASE("station status of a station without --ha says it is a single instance", "[integration][e2e][ha]") {
  Cluster c;
  c.StartStation();
  steward::testing::RunResult r = c.Ctl({"station", "status"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("a single instance without high availability"));
  r = c.Ctl({"station", "status", "--json"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"ha\":false"));
  r = c.Ctl({"station"});
  CHECK(r.exit_code == 2);  // status (the only one) must be named
}

}  // namespace
