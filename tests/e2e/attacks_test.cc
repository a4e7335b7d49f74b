// End-to-end: what one node's broker credentials can make the station do. Each test
// holds the station to doing nothing the attacker asked for, and counts it.
#include <catch2/catch.hpp>
#include <atomic>
#include <string>

#include "absl/time/clock.h"
#include "common/creds.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "tests/testing/cluster.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::RunResult;

namespace {

steward::nats::ConnectionPtr ConnectAs(Cluster& c, const std::string& user) {
  const std::string creds = user == "station" || user == "operator"
                                ? c.keys() + "/creds/" + user + ".creds"
                                : c.keys() + "/nodes/" + user + "/" + user + ".creds";
  auto cr = steward::ReadCreds(creds);
  REQUIRE(cr.ok());
  auto nc = steward::nats::Connect({.url = c.url(), .name = "test-" + user, .keep_trying = false,
                                    .user = cr->user, .password = cr->password,
                                    .tls_ca_file = c.keys() + "/tls/ca.pem",
                                    .inbox_prefix = "_INBOX_" + user});
  REQUIRE(nc.ok());
  return std::move(*nc);
}

void Count(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  static_cast<std::atomic<int>*>(closure)->fetch_add(1);
  natsMsg_Destroy(msg);
}

TEST_CASE("the station replies only to the sender's own inbox, never where a sender points it",
          "[integration][attack]") {
  Cluster c(Cluster::Secure{});
  c.StartStation();
  c.StartAgent("ship1");
  REQUIRE(c.Ctl({"accept", "ship1"}).exit_code == 0);
  // Whatever reaches ship2's command subjects (the station may publish anywhere).
  auto station = ConnectAs(c, "station");
  std::atomic<int> landed{0};
  auto sub = steward::nats::SubscribeAsync(station.get(), "ship2.>", Count, &landed, 1000);
  REQUIRE(sub.ok());
  REQUIRE(steward::nats::Flush(station.get(), absl::Seconds(2)).ok());

  auto ship1 = ConnectAs(c, "ship1");
  auto key = steward::signing::LoadKeyPair((c.dir().path() / "ship1" / "node.key").string());
  REQUIRE(key.ok());
  const std::string target = "ship2.command.shellcommand.operatingsystem";
  for (int i = 0; i < 50; ++i) {
    // Well-formed, signed hellos and errorlogs of ship1, and garbage, all with
    // ship2's command subject as the reply.
    steward::proto::Envelope ev = steward::NewEnvelope("ship1", "station", steward::proto::KIND_EVENT,
                                                       i % 2 ? "hello" : "errorlog", "agent");
    REQUIRE(steward::signing::SignEnvelope(ev, *key).ok());
    const std::string subject = i % 2 ? "station.event.hello.agent" : "station.event.errorlog.agent";
    REQUIRE(steward::nats::Publish(ship1.get(), subject, ev.SerializeAsString(), target).ok());
    REQUIRE(steward::nats::Publish(ship1.get(), "station.event.result.x", "garbage", target).ok());
  }
  REQUIRE(steward::nats::Flush(ship1.get(), absl::Seconds(2)).ok());
  // The operator's requests, pointed there too (the broker lets the operator publish
  // only to the station's CLI subjects, with any reply).
  auto op = ConnectAs(c, "operator");
  steward::proto::Envelope req =
      steward::NewEnvelope("op", "station", steward::proto::KIND_COMMAND, "nodes", "cli");
  for (int i = 0; i < 10; ++i) {
    REQUIRE(steward::nats::Publish(op.get(), "station.command.nodes.cli", req.SerializeAsString(), target).ok());
  }
  REQUIRE(steward::nats::Flush(op.get(), absl::Seconds(2)).ok());
  absl::SleepFor(absl::Milliseconds(500));
  CHECK(landed.load() == 0);
  CHECK(c.station().WaitForOutput("is not the node's inbox (100 so far)", absl::Seconds(5)));
  CHECK(c.station().WaitForOutput("is not an operator's inbox (110 so far)", absl::Seconds(5)));
  // The station still serves ship1 as before.
  CHECK(c.Ctl({"send", "ship1", "--", "true"}).exit_code == 0);
}

}  // namespace
