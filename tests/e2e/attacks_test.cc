// End-to-end: what one node's broker credentials can make the station do. Each test
// holds the station to doing nothing the attacker asked for, and counts it.
#include <catch2/catch.hpp>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/creds.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "station/site.h"
#include "subjects/site.h"
#include "ctl/client.h"
#include "tests/e2e/client_helpers.h"
#include "tests/testing/cluster.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::OperatorClient;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

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

// ship2, served once by its agent (the station knows it, its installation and its hello),
// then its agent killed and its commands taken by someone with ship2's broker password
// but not its node key.
struct Impostor {
  steward::nats::ConnectionPtr nc;
  steward::nats::SubscriptionPtr sub;  // ship2.command.>
  void Leave() {
    sub.reset();
    nc.reset();
  }
};
Impostor ReplaceShip2(Cluster& c) {
  c.StartStation();
  c.StartAgent("ship2");
  REQUIRE(c.Ctl({"send", "ship2", "--", "true"}).exit_code == 0);
  c.StopAgent("ship2", SIGKILL);
  Impostor i{ConnectAs(c, "ship2"), nullptr};
  auto sub = steward::nats::SubscribeSync(i.nc.get(), "ship2.command.>", 100);
  REQUIRE(sub.ok());
  i.sub = std::move(*sub);
  REQUIRE(steward::nats::Flush(i.nc.get(), absl::Seconds(2)).ok());
  return i;
}

int ReadLines(const std::filesystem::path& p) {
  std::ifstream in(p);
  int n = 0;
  for (std::string l; std::getline(in, l);) n += !l.empty();
  return n;
}

std::string IdOf(const RunResult& r) { return r.out.substr(r.out.find(' ') + 1, 26); }

steward::proto::CommandState StateOf(steward::ctl::Client& client, const std::string& id) {
  auto s = client.Show({id}, "", absl::Seconds(5));
  REQUIRE(s.ok());
  REQUIRE(s->commands_size() == 1);
  return s->commands(0);
}

void Count(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  static_cast<std::atomic<int>*>(closure)->fetch_add(1);
  natsMsg_Destroy(msg);
}

TEST_CASE("the station replies only to the sender's own inbox, never where a sender points it",
          "[integration][attack]") {
  Cluster c(Cluster::Secure{});
  c.StartStation();
  c.StartAgent("ship1");  // enrolled with its key: pinned at its first hello
  // Whatever reaches ship2's command subjects (the station may publish anywhere).
  auto station = ConnectAs(c, "station");
  std::atomic<int> landed{0};
  auto sub = steward::nats::SubscribeAsync(station.get(), "ship2.>", Count, &landed, 1000);
  REQUIRE(sub.ok());
  REQUIRE(steward::nats::Flush(station.get(), absl::Seconds(2)).ok());

  auto ship1 = ConnectAs(c, "ship1");
  auto key = steward::signing::LoadKeyPair(c.keys() + "/nodes/ship1/node.key");
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
  // All of ship1's counted before the operator's come (one count for both: the event
  // threads and the request threads take them apart, in any order).
  CHECK(c.station().WaitForOutput("is not the node's inbox (100 so far)", absl::Seconds(10)));
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
  CHECK(c.station().WaitForOutput("is not an operator's inbox (110 so far)", absl::Seconds(10)));
  CHECK(landed.load() == 0);
  // The station still serves ship1 as before.
  CHECK(c.Ctl({"send", "ship1", "--", "true"}).exit_code == 0);
}

// A hello for `claimed`, signed with `key`, published with `who`'s credentials and a
// reply subject in `claimed`'s inbox (which passes the inbox check: `who` cannot read
// there, but the station would believe it).
void ForgedHello(natsConnection* who, const std::string& claimed, const steward::signing::KeyPair& key) {
  steward::proto::Hello hello;
  hello.set_public_key(key.public_key);
  hello.set_instance_id("01F0RGED1NSTA11AT10N000000");
  steward::proto::Envelope ev =
      steward::NewEnvelope(claimed, "station", steward::proto::KIND_EVENT, "hello", "agent");
  ev.set_payload(hello.SerializeAsString());
  REQUIRE(steward::signing::SignEnvelope(ev, key).ok());
  REQUIRE(steward::nats::Publish(who, "station.event.hello.agent", ev.SerializeAsString(),
                                 "_INBOX_" + claimed + ".forged")
              .ok());
  REQUIRE(steward::nats::Flush(who, absl::Seconds(2)).ok());
}

steward::proto::NodeInfo NodeOf(steward::ctl::Client& client, const std::string& node) {
  auto n = client.Nodes(node, absl::Seconds(5));
  REQUIRE(n.ok());
  return n->nodes(0);
}

TEST_CASE("one node's credentials cannot take over another node's key", "[integration][attack]") {
  // ship2 enrolled with a key; ship3 enrolled without (its agent makes its own).
  Cluster c(Cluster::Secure{.nodes = {"ship1", "ship2", "ship3"}, .without_node_key = {"ship3"}});
  c.StartStation();
  c.StartAgent("ship1");
  auto ship1 = ConnectAs(c, "ship1");
  auto attacker = steward::signing::LoadKeyPair(c.keys() + "/nodes/ship1/node.key");
  REQUIRE(attacker.ok());
  auto client = OperatorClient(c);

  // ship2's key was made at enrolment: any other key is refused, and counted.
  ForgedHello(ship1.get(), "ship2", *attacker);
  REQUIRE(WaitUntil([&] { return c.Ctl({"node", "ship2"}).exit_code == 0; }));
  steward::proto::NodeInfo ship2 = NodeOf(*client, "ship2");
  CHECK(ship2.refused_hellos() == 1);
  CHECK(ship2.public_key().empty());
  CHECK(ship2.pending_key().empty());
  CHECK(ship2.status() != steward::proto::NODE_ONLINE);
  // The real ship2 comes: pinned, online, runs commands.
  c.StartAgent("ship2");
  CHECK(c.Ctl({"send", "ship2", "--", "true"}).exit_code == 0);
  // A forged hello for a pinned node changes nothing but a counter and a pending key
  // that nobody can accept without naming it.
  ForgedHello(ship1.get(), "ship2", *attacker);
  REQUIRE(WaitUntil([&] { return NodeOf(*client, "ship2").refused_hellos() == 2; }));
  ship2 = NodeOf(*client, "ship2");
  CHECK(ship2.status() == steward::proto::NODE_ONLINE);
  CHECK(steward::signing::KeyId(ship2.public_key()) != steward::signing::KeyId(attacker->public_key));
  RunResult r = c.Ctl({"accept", "ship2"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("announced a new key"));
  CHECK(c.Ctl({"send", "ship2", "--", "true"}).exit_code == 0);  // still the real one
  // Nor does it make a pinned node that went quiet look heard from.
  c.StopAgent("ship2", SIGKILL);
  absl::SleepFor(absl::Milliseconds(300));
  const int64_t heard = NodeOf(*client, "ship2").last_heard_unix_ms();
  auto another = steward::signing::Generate();
  REQUIRE(another.ok());
  ForgedHello(ship1.get(), "ship2", *another);
  REQUIRE(WaitUntil([&] { return NodeOf(*client, "ship2").refused_hellos() == 3; }));
  CHECK(NodeOf(*client, "ship2").last_heard_unix_ms() == heard);
  c.StartAgent("ship2");

  // ship3 makes its own key: the attacker announces one first, then the real unit.
  ForgedHello(ship1.get(), "ship3", *attacker);
  c.StartAgent("ship3");
  REQUIRE(WaitUntil([&] { return NodeOf(*client, "ship3").pending_keys_seen() >= 2; }));
  r = c.Ctl({"accept", "ship3"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("different keys"));
  // The operator names the key the unit logs: that one is pinned.
  const std::string log = c.agent("ship3").Stderr();
  const size_t at = log.find("key ed25519:");
  REQUIRE(at != std::string::npos);
  const std::string real = log.substr(at + 4, 24);
  r = c.Ctl({"accept", "ship3", "--key", steward::signing::KeyId(attacker->public_key)});
  CHECK(r.exit_code == 255);  // not the key it announced last
  r = c.Ctl({"accept", "ship3", "--key", real});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("with key " + real));
  r = c.Ctl({"send", "ship3", "--", "true"});
  INFO(r.err << c.station().Stderr() << c.agent("ship3").Stderr());
  CHECK(r.exit_code == 0);

  // The audit has every decision: the station's refusals and pending keys, the
  // operator's refused and granted accepts, each naming the key.
  r = c.Ctl({"audit", "--limit", "100"});
  REQUIRE(r.exit_code == 0);
  INFO(r.out);
  CHECK_THAT(r.out, Catch::Contains("hello refused") && Catch::Contains("ship2"));
  CHECK_THAT(r.out, Catch::Contains("key change pending"));
  CHECK_THAT(r.out, Catch::Contains("key pending") && Catch::Contains("ship3"));
  CHECK_THAT(r.out, Catch::Contains("accept") && Catch::Contains("key " + real));
  r = c.Ctl({"audit", "--by", "station", "--node", "ship2", "--json"});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"outcome\":\"refused\""));
  CHECK_THAT(r.out, !Catch::Contains("ship3"));
}

TEST_CASE("names the station did not enrol are pending, never online and never targets",
          "[integration][attack]") {
  Cluster c(Cluster::Secure{});
  c.StartStation();
  c.StartAgent("ship1");
  auto ship1 = ConnectAs(c, "ship1");
  auto key = steward::signing::LoadKeyPair(c.keys() + "/nodes/ship1/node.key");
  REQUIRE(key.ok());
  auto client = OperatorClient(c);
  for (int i = 0; i < 3; ++i) ForgedHello(ship1.get(), "ghost" + std::to_string(i), *key);
  REQUIRE(WaitUntil([&] { return c.Ctl({"node", "ghost2"}).exit_code == 0; }));
  for (int i = 0; i < 3; ++i) {
    steward::proto::NodeInfo ghost = NodeOf(*client, "ghost" + std::to_string(i));
    CHECK(ghost.status() == steward::proto::NODE_PENDING);
    CHECK_FALSE(ghost.enrolled());
  }
  RunResult r = c.Ctl({"send", "--all", "--", "echo", "hi"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("ship1: hi"));
  CHECK_THAT(r.out + r.err, !Catch::Contains("ghost"));
  r = c.Ctl({"send", "--timeout", "1s", "ghost0", "--", "true"});
  CHECK(r.exit_code == 255);
  r = c.Ctl({"accept", "ghost0"});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("was not enrolled by this station"));
  // A hello naming the operator's broker user makes a pending row, and locks no one
  // out: the station still takes the operator's requests from that user's inbox.
  ForgedHello(ship1.get(), "operator", *key);
  REQUIRE(WaitUntil([&] { return c.Ctl({"node", "operator"}).exit_code == 0; }));
  CHECK(NodeOf(*client, "operator").status() == steward::proto::NODE_PENDING);
  r = c.Ctl({"nodes"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("ship1"));

  // Hellos from strangers that do not verify against the key they announce leave no row
  // (they did, as "unknown", and no cap counted them).
  auto other = steward::signing::Generate();
  REQUIRE(other.ok());
  for (int i = 0; i < 20; ++i) {
    steward::proto::Hello hello;
    hello.set_public_key(other->public_key);  // announced, but signed with another key
    steward::proto::Envelope ev = steward::NewEnvelope("badsig" + std::to_string(i), "station",
                                                       steward::proto::KIND_EVENT, "hello", "agent");
    ev.set_payload(hello.SerializeAsString());
    REQUIRE(steward::signing::SignEnvelope(ev, *key).ok());
    REQUIRE(steward::nats::Publish(ship1.get(), "station.event.hello.agent", ev.SerializeAsString(),
                                   "_INBOX_" + ev.from_node() + ".forged")
                .ok());
  }
  REQUIRE(steward::nats::Flush(ship1.get(), absl::Seconds(2)).ok());
  REQUIRE(WaitUntil([&] { return c.station().Stderr().find("(a name with no row) refused") != std::string::npos; }));
  CHECK(c.Ctl({"node", "badsig19"}).exit_code != 0);

  // A flood of such names stops at the cap: no more rows, the ledger does not fill.
  auto pending = [&] {
    auto n = client->Nodes("", absl::Seconds(10));
    REQUIRE(n.ok());
    size_t out = 0;
    for (const steward::proto::NodeInfo& info : n->nodes()) {
      out += info.status() == steward::proto::NODE_PENDING || info.status() == steward::proto::NODE_UNKNOWN;
    }
    return out;
  };
  const size_t cap = 1000;  // Security::kMaxUnenrolledPending
  const size_t before = pending();
  for (size_t i = 0; i < cap - before + 20; ++i) ForgedHello(ship1.get(), "flood" + std::to_string(i), *key);
  REQUIRE(WaitUntil([&] {
    return c.station().Stderr().find("names the station did not enrol are pending or unknown already") !=
           std::string::npos;
  }));
  absl::SleepFor(absl::Milliseconds(300));
  CHECK(pending() == cap);
  CHECK(c.Ctl({"node", "flood" + std::to_string(cap - before + 19)}).exit_code != 0);
  // The real node is served as before.
  CHECK(c.Ctl({"send", "ship1", "--", "true"}).exit_code == 0);
}

TEST_CASE("answers on the reply path count only with the node's signature and the command's id",
          "[integration][attack]") {
  Cluster c(Cluster::Secure{});
  // Someone with ship2's broker password but not its node key answers its commands.
  Impostor impostor = ReplaceShip2(c);
  auto other = steward::signing::LoadKeyPair(c.keys() + "/nodes/ship1/node.key");
  REQUIRE(other.ok());
  const auto ran = c.dir().path() / "ran";
  RunResult r = c.Ctl({"send", "--no-wait", "ship2", "--", "sh", "-c", "echo x >> " + ran.string()});
  REQUIRE(r.exit_code == 0);
  const std::string id = IdOf(r);
  auto client = OperatorClient(c);
  int answered = 0;
  for (int round = 0; round < 3; ++round) {
    auto msg = steward::nats::NextMsg(impostor.sub.get(), absl::Seconds(10));
    REQUIRE(msg.ok());
    auto env = steward::DecodeEnvelope(steward::nats::Data(msg->get()));
    REQUIRE(env.ok());
    steward::proto::Ack ack = steward::NewAck(round == 1 ? "" : env->id(), "ship2", steward::proto::STAGE_RESULT,
                                              steward::proto::OUTCOME_SUCCEEDED);
    ack.set_stdout("forged");
    ack.set_instance_id(env->target_instance());
    if (round == 2) REQUIRE(steward::signing::SignAck(ack, *other).ok());  // another node's key
    REQUIRE(steward::nats::Publish(impostor.nc.get(), steward::nats::Reply(msg->get()), ack.SerializeAsString()).ok());
    ++answered;
  }
  CHECK(answered == 3);
  steward::proto::CommandState s = StateOf(*client, id);
  CHECK_FALSE(steward::IsTerminal(s.state()));
  CHECK(s.result().stdout().empty());
  CHECK(c.station().WaitForOutput("not taken", absl::Seconds(2)));
  // The real ship2 runs it, once.
  impostor.Leave();
  c.StartAgent("ship2");
  REQUIRE(WaitUntil([&] { return StateOf(*client, id).state() == steward::proto::STATE_SUCCEEDED; },
                    absl::Seconds(20)));
  CHECK(ReadLines(ran) == 1);
}

TEST_CASE("a batch's answer counts only when the node's signature covers all of it whether once or ACK by ACK",
          "[integration][attack][batch]") {
  Cluster c(Cluster::Secure{});
  // Someone with ship2's broker password but not its node key answers its batches (its
  // agent's hello said it takes them).
  Impostor impostor = ReplaceShip2(c);
  auto other = steward::signing::LoadKeyPair(c.keys() + "/nodes/ship1/node.key");
  REQUIRE(other.ok());
  auto own = steward::signing::LoadKeyPair(c.keys() + "/nodes/ship2/node.key");
  REQUIRE(own.ok());
  auto client = OperatorClient(c);
  auto pause = [&](bool on) {
    steward::proto::PauseRequest req;
    req.set_pause(on);
    req.set_reason("attack test");
    REQUIRE(client->Pause(req, absl::Seconds(5)).ok());
  };
  const auto ran = c.dir().path() / "ran";
  std::vector<std::string> ids;
  // Three commands due at once go in one batch; the impostor answers it with a forged
  // result for each: round 0 signs the whole answer with another node's key, round 1
  // signs nothing (the ACKs in it unsigned as in an answer signed once). Round 2 is the
  // node itself as an agent from before answer_signed_once: each ACK signed with its
  // key and the carrier not, which a station takes.
  for (int round = 0; round < 3; ++round) {
    pause(true);
    std::vector<std::string> batch_ids;
    for (int i = 0; i < 3; ++i) {
      steward::proto::SubmitRequest req;
      req.add_nodes("ship2");
      req.mutable_command()->set_method(steward::kMethodShell);
      req.mutable_command()->set_domain(absl::StrCat("b", i));
      for (const std::string& a : std::vector<std::string>{"sh", "-c", "echo x >> " + ran.string()}) {
        req.mutable_command()->add_argv(a);
      }
      auto r = client->Submit(req, absl::Seconds(10));
      REQUIRE(r.ok());
      REQUIRE(r->commands_size() == 1);
      batch_ids.push_back(r->commands(0).id());
    }
    pause(false);
    bool answered = false;
    const absl::Time until = absl::Now() + absl::Seconds(10);
    while (!answered && absl::Now() < until) {
      auto msg = steward::nats::NextMsg(impostor.sub.get(), absl::Seconds(1));
      if (!msg.ok()) continue;
      auto carrier = steward::DecodeEnvelope(steward::nats::Data(msg->get()));
      REQUIRE(carrier.ok());
      if (carrier->method() != steward::kMethodBatch) continue;
      steward::proto::CommandBatch batch;
      REQUIRE(batch.ParseFromString(carrier->payload()));
      CHECK(batch.answer_signed_once());
      REQUIRE(batch.commands_size() == 3);
      steward::proto::AckBatch acks;
      std::string instance;
      for (const std::string& bytes : batch.commands()) {
        auto cmd = steward::DecodeEnvelope(bytes);
        REQUIRE(cmd.ok());
        instance = cmd->target_instance();
        steward::proto::Ack forged =
            steward::NewAck(cmd->id(), "ship2", steward::proto::STAGE_RESULT, steward::proto::OUTCOME_SUCCEEDED);
        forged.set_stdout("forged");
        forged.set_instance_id(instance);
        if (round == 2) REQUIRE(steward::signing::SignAck(forged, *own).ok());
        *acks.add_acks() = forged;
      }
      steward::proto::Ack answer =
          steward::NewAck(carrier->id(), "ship2", steward::proto::STAGE_RESULT, steward::proto::OUTCOME_SUCCEEDED);
      answer.set_instance_id(instance);
      answer.set_payload(acks.SerializeAsString());
      if (round == 0) REQUIRE(steward::signing::SignAck(answer, *other).ok());
      REQUIRE(
          steward::nats::Publish(impostor.nc.get(), steward::nats::Reply(msg->get()), answer.SerializeAsString()).ok());
      answered = true;
    }
    REQUIRE(answered);
    if (round == 2) {
      for (const std::string& id : batch_ids) {
        REQUIRE(WaitUntil([&] { return StateOf(*client, id).state() == steward::proto::STATE_SUCCEEDED; },
                          absl::Seconds(10)));
        CHECK(StateOf(*client, id).result().stdout() == "forged");
      }
      break;
    }
    CHECK(c.station().WaitForOutput(round == 0 ? "was not taken: its signature is not believed"
                                               : absl::StrCat("for command ", batch_ids[0], " not taken"),
                                    absl::Seconds(5)));
    for (const std::string& id : batch_ids) {
      const steward::proto::CommandState s = StateOf(*client, id);
      INFO("round " << round << ": " << id << " " << steward::StateName(s.state()));
      CHECK_FALSE(steward::IsTerminal(s.state()));
      CHECK(s.result().stdout().empty());
    }
    ids.insert(ids.end(), batch_ids.begin(), batch_ids.end());
  }
  CHECK(ReadLines(ran) == 0);
  // The real ship2 runs each, once.
  impostor.Leave();
  c.StartAgent("ship2");
  for (const std::string& id : ids) {
    REQUIRE(
        WaitUntil([&] { return StateOf(*client, id).state() == steward::proto::STATE_SUCCEEDED; }, absl::Seconds(30)));
    CHECK(StateOf(*client, id).result().stdout().empty());
  }
  CHECK(ReadLines(ran) == 6);
}

TEST_CASE("a captured command runs neither on a wiped unit nor after the node's replay window",
          "[integration][attack]") {
  Cluster c(Cluster::Secure{});
  c.StartStation();
  c.StartAgent("ship1", {"--keep-results", "3s"});
  // The attacker can read the broker (station credentials) and replay what it saw.
  auto spy = ConnectAs(c, "station");
  auto sub = steward::nats::SubscribeSync(spy.get(), "ship1.command.shellcommand.>", 100);
  REQUIRE(sub.ok());
  REQUIRE(steward::nats::Flush(spy.get(), absl::Seconds(2)).ok());
  const auto ran = c.dir().path() / "ran";
  // The node keeps ids 3 s, so it refuses what would outlive that...
  RunResult r = c.Ctl({"send", "ship1", "--", "sh", "-c", "echo x >> " + ran.string()});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("replay window"));
  // ... and runs what expires within it.
  r = c.Ctl({"send", "--ttl", "2s", "ship1", "--", "sh", "-c", "echo x >> " + ran.string()});
  REQUIRE(r.exit_code == 0);
  CHECK(ReadLines(ran) == 1);
  steward::nats::MsgPtr captured;
  while (true) {
    auto msg = steward::nats::NextMsg(sub->get(), absl::Seconds(2));
    REQUIRE(msg.ok());
    auto env = steward::DecodeEnvelope(steward::nats::Data(msg->get()));
    REQUIRE(env.ok());
    if (env->expires_unix_ms() - env->created_unix_ms() <= 2000) {
      captured = std::move(*msg);
      break;
    }
  }
  const std::string bytes(steward::nats::Data(captured.get()));
  auto replay = [&] {
    auto answer = steward::nats::Request(spy.get(), "ship1.command.shellcommand.operatingsystem", bytes,
                                         absl::Seconds(5));
    REQUIRE(answer.ok());
    auto ack = steward::DecodeAck(steward::nats::Data(answer->get()));
    REQUIRE(ack.ok());
    return *ack;
  };
  // Replayed at once: answered from the record, not run.
  CHECK(replay().stage() == steward::proto::STAGE_RESULT);
  // After the window: expired (its id may be forgotten, the command is dead anyway).
  absl::SleepFor(absl::Seconds(3));
  c.StopAgent("ship1");
  c.StartAgent("ship1", {"--keep-results", "3s"});
  steward::proto::Ack late = replay();
  CHECK(late.outcome() == steward::proto::OUTCOME_REJECTED);
  CHECK_THAT(late.error(), Catch::Contains("expired"));
  // Wiped and reinstalled (same enrolled key): a command bound to the old installation
  // is refused, even inside its lifetime.
  r = c.Ctl({"send", "--ttl", "3s", "--no-wait", "ship1", "--", "sh", "-c", "echo x >> " + ran.string()});
  REQUIRE(r.exit_code == 0);
  steward::nats::MsgPtr fresh;
  while (true) {
    auto msg = steward::nats::NextMsg(sub->get(), absl::Seconds(5));
    REQUIRE(msg.ok());
    auto env = steward::DecodeEnvelope(steward::nats::Data(msg->get()));
    REQUIRE(env.ok());
    if (env->id() == IdOf(r)) {
      fresh = std::move(*msg);
      break;
    }
  }
  REQUIRE(WaitUntil([&] { return ReadLines(ran) == 2; }));
  const std::string fresh_bytes(steward::nats::Data(fresh.get()));
  c.StopAgent("ship1", SIGKILL);
  std::filesystem::remove_all(c.dir().path() / "ship1");
  c.StartAgent("ship1", {"--keep-results", "3s"});
  auto answer = steward::nats::Request(spy.get(), "ship1.command.shellcommand.operatingsystem", fresh_bytes,
                                       absl::Seconds(5));
  REQUIRE(answer.ok());
  auto ack = steward::DecodeAck(steward::nats::Data(answer->get()));
  REQUIRE(ack.ok());
  CHECK(ack->outcome() == steward::proto::OUTCOME_REJECTED);
  CHECK_THAT(ack->error(), Catch::Contains("was the unit reinstalled?"));
  absl::SleepFor(absl::Milliseconds(500));
  CHECK(ReadLines(ran) == 2);
}

}  // namespace

// A site station (steward-station --site, station/site.h) speaks to the central station
// with the station's rights. It may hold and hand back only the nodes the operators
// tagged as its own (site=SITE); here its messages are forged with the station's
// credentials, as a compromised or misconfigured site station would send them.
TEST_CASE("a site station can claim and hand back only the nodes tagged as its own", "[integration][attack][site]") {
  Cluster c(Cluster::Secure{});
  c.StartStation();
  c.StartAgent("ship1");
  c.StartAgent("ship2");
  REQUIRE(c.Ctl({"tag", "set", "ship1", "site=ship-a"}).exit_code == 0);
  auto site = ConnectAs(c, "station");
  // The central station's answer to `m`, sent as site `m.site`.
  auto ask = [&](const steward::station::SiteMessage& m) {
    auto to = steward::subjects::SiteSubject("station", m.site);
    REQUIRE(to.ok());
    auto answer = steward::nats::Request(site.get(), *to, steward::station::EncodeSiteMessage(m), absl::Seconds(10));
    REQUIRE(answer.ok());
    return steward::station::DecodeSiteAnswer(steward::nats::Data(answer->get()));
  };
  // Whether the central ledger holds a command.
  auto known = [&](const std::string& id) { return c.Ctl({"show", id, "--timeout", "5s"}).exit_code == 0; };
  steward::station::SiteMessage claim{.op = "probe", .site = "ship-a", .nodes = {"ship1", "ship2"},
                                      .state = "control", .since_ms = steward::NowUnixMillis()};

  // ship2 is not ship-a's: the claim is refused whole, and nothing is held.
  absl::Status st = ask(claim);
  CHECK(absl::IsPermissionDenied(st));
  CHECK_THAT(std::string(st.message()), Catch::Contains("ship2") && !Catch::Contains("ship1,"));
  RunResult r = c.Ctl({"station", "status"});
  CHECK_THAT(r.out, Catch::Contains("site ship-a REFUSED") && !Catch::Contains("sites in control"));
  const auto ran = c.dir().path() / "ran";
  const std::vector<std::string> append = {"--", "sh", "-c", "echo x >> " + ran.string()};
  std::vector<std::string> send = {"send", "ship1,ship2"};
  send.insert(send.end(), append.begin(), append.end());
  r = c.Ctl(send);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(ReadLines(ran) == 2);

  // Its own node: held while it claims it.
  claim.nodes = {"ship1"};
  REQUIRE(ask(claim).ok());
  r = c.Ctl({"station", "status"});
  CHECK_THAT(r.out, Catch::Contains("sites in control") && Catch::Contains("ship-a") &&
                        !Catch::Contains("REFUSED"));
  send = {"send", "--no-wait", "ship1"};
  send.insert(send.end(), append.begin(), append.end());
  r = c.Ctl(send);
  REQUIRE(r.exit_code == 0);
  const std::string held = IdOf(r);
  REQUIRE(WaitUntil([&] { return absl::StrContains(c.Ctl({"show", held}).out, "site ship-a is in control"); },
                    absl::Seconds(10)));

  // A journal batch naming another node imports nothing of it, nor of the rest.
  steward::proto::CommandState own;
  own.set_id("01S1TE0WNC0MMAND0000000000");
  own.set_node("ship1");
  own.set_state(steward::proto::STATE_SUCCEEDED);
  *own.mutable_command() = steward::NewEnvelope("station", "ship1", steward::proto::KIND_COMMAND, "echo", "station");
  own.mutable_command()->set_id(own.id());
  steward::proto::CommandState stranger = own;
  stranger.set_id("01S1TESTRANGERC0MMAND00000");
  stranger.set_node("ship2");
  *stranger.mutable_command() = steward::NewEnvelope("station", "ship2", steward::proto::KIND_COMMAND, "echo", "station");
  stranger.mutable_command()->set_id(stranger.id());
  steward::station::SiteMessage batch{.op = "batch", .site = "ship-a", .nodes = {"ship1"}, .state = "handing-back"};
  batch.entries = {{1, "command", own.id(), own.SerializeAsString()},
                   {2, "command", stranger.id(), stranger.SerializeAsString()}};
  CHECK(absl::IsPermissionDenied(ask(batch)));
  CHECK_FALSE(known(own.id()));
  CHECK_FALSE(known(stranger.id()));
  // Nor a command for its node addressed to another, nor an event from another node.
  steward::proto::CommandState readdressed = own;
  readdressed.mutable_command()->set_to_node("ship2");
  batch.entries = {{3, "command", readdressed.id(), readdressed.SerializeAsString()}};
  CHECK(absl::IsPermissionDenied(ask(batch)));
  steward::proto::Envelope ev = steward::NewEnvelope("ship2", "station", steward::proto::KIND_EVENT, "errorlog", "agent");
  batch.entries = {{4, "event", ev.id(), ev.SerializeAsString()}};
  CHECK(absl::IsPermissionDenied(ask(batch)));
  CHECK_FALSE(known(own.id()));

  // Its own node's command is imported; once released, the held command runs.
  batch.entries = {{5, "command", own.id(), own.SerializeAsString()}};
  REQUIRE(ask(batch).ok());
  CHECK_THAT(c.Ctl({"show", own.id()}).out, Catch::Contains("succeeded"));
  steward::station::SiteMessage released{.op = "released", .site = "ship-a", .nodes = {"ship1"}, .state = "central"};
  REQUIRE(ask(released).ok());
  REQUIRE(WaitUntil([&] { return absl::StrContains(c.Ctl({"show", held}).out, "succeeded"); }, absl::Seconds(20)));
  CHECK(ReadLines(ran) == 3);
  r = c.Ctl({"station", "status"});
  CHECK_THAT(r.out, !Catch::Contains("sites in control") && !Catch::Contains("REFUSED"));

  // One site holds a node at a time: ship1 moved to ship-b while ship-a holds it.
  REQUIRE(ask(claim).ok());
  REQUIRE(c.Ctl({"tag", "set", "ship1", "site=ship-b"}).exit_code == 0);
  steward::station::SiteMessage claim_b = claim;
  claim_b.site = "ship-b";
  st = ask(claim_b);
  CHECK(absl::IsPermissionDenied(st));
  CHECK_THAT(std::string(st.message()), Catch::Contains("which site ship-a holds"));
  REQUIRE(ask(released).ok());
  CHECK(ask(claim_b).ok());
  released.site = "ship-b";
  CHECK(ask(released).ok());
}

TEST_CASE("with operator keys, whoever launched a runbook, a continuous job or a schedule cannot approve its "
          "held commands",
          "[integration][attack][approvals]") {
  Cluster c(Cluster::Secure{.nodes = {"ship1"}});
  c.StartStation();
  c.StartAgent("ship1");
  REQUIRE(c.Ctl({"approval-rules", "set", "ship1", "--require", "shellcommand"}).exit_code == 0);
  // Three ways a command is made later, by the station, for the operator who asked.
  const std::string book = c.dir().str() + "/rb.toml";
  std::ofstream(book) << "name = \"rb\"\n[[step]]\nname = \"one\"\nshell = \"true\"\n";
  RunResult run = c.Ctl({"run", book, "--target", "ship1", "--no-wait"});
  INFO(run.out << run.err);
  REQUIRE(run.exit_code == 0);
  RunResult cont = c.Ctl({"send", "--where", "tag.zz == \"1\"", "--continuous", "--allow-empty", "--", "true"});
  INFO(cont.out << cont.err);
  REQUIRE(cont.exit_code == 0);
  REQUIRE(c.Ctl({"tag", "set", "ship1", "zz=1"}).exit_code == 0);
  REQUIRE(c.Ctl({"schedule", "add", "s1", "--cron", "*/2 * * * * *", "ship1", "--", "true"}).exit_code == 0);
  // Each holds a command for approval: the runbook's step, the job's offer, a run's.
  std::vector<std::string> held;
  REQUIRE(WaitUntil(
      [&] {
        held.clear();
        RunResult list = c.Ctl({"--json", "approvals"});
        std::set<std::string> kinds;
        for (absl::string_view line : absl::StrSplit(list.out, '\n', absl::SkipEmpty())) {
          const nlohmann::json s = nlohmann::json::parse(line);
          held.push_back(s["id"]);
          const std::string op = s["command"]["operator"];
          kinds.insert(absl::StartsWith(op, "schedule ") ? "schedule" : !s["runbook"].is_null() ? "runbook" : "job");
        }
        return kinds.size() == 3;
      },
      absl::Seconds(20), absl::Milliseconds(250)));
  // The same operator key approves none of them: four eyes, as for a plain send.
  for (const std::string& id : held) {
    RunResult own = c.Ctl({"approve", id});
    INFO(id << ": " << own.out << own.err);
    CHECK(own.exit_code == 255);
    CHECK_THAT(own.err, Catch::Contains("four eyes"));
  }
}

TEST_CASE("a signed operator request is good for 23 hours: an older one, or one from the future, is refused",
          "[integration][attack]") {
  // A captured request played again after the station forgot it (24 h) would run again.
  Cluster c(Cluster::Secure{});
  c.StartStation();
  auto op = ConnectAs(c, "operator");
  auto key = steward::signing::LoadKeyPair(c.keys() + "/operator.key");
  REQUIRE(key.ok());
  auto ask = [&](absl::Duration age) {
    steward::proto::Envelope req =
        steward::NewEnvelope("stewardctl", "station", steward::proto::KIND_COMMAND, steward::kStationNodes,
                             steward::kCliDomain);
    req.set_created_unix_ms(absl::ToUnixMillis(absl::Now() - age));
    req.set_payload(steward::proto::NodesRequest().SerializeAsString());
    REQUIRE(steward::signing::SignEnvelope(req, *key).ok());
    auto msg = steward::nats::Request(op.get(), "station.command.nodes.cli", req.SerializeAsString(), absl::Seconds(5));
    REQUIRE(msg.ok());
    auto ack = steward::DecodeAck(steward::nats::Data(msg->get()));
    REQUIRE(ack.ok());
    return *ack;
  };
  CHECK(ask(absl::ZeroDuration()).outcome() == steward::proto::OUTCOME_SUCCEEDED);
  CHECK(ask(absl::Hours(22)).outcome() == steward::proto::OUTCOME_SUCCEEDED);  // a slow retry, a skewed clock
  steward::proto::Ack old = ask(absl::Hours(25));
  CHECK(old.outcome() == steward::proto::OUTCOME_REJECTED);
  CHECK_THAT(old.error(), Catch::Contains("ago; a signed request is good for 23h"));
  steward::proto::Ack ahead = ask(-absl::Hours(2));
  CHECK(ahead.outcome() == steward::proto::OUTCOME_REJECTED);
  CHECK_THAT(ahead.error(), Catch::Contains("ahead of the station's clock"));
  CHECK(c.station().WaitForOutput("refused nodes request", absl::Seconds(2)));
}
