// Commands to one node in batches (docs/protocol.md §4): first sends due at once to a
// node whose hello says it takes batches go in one message, and their ACKs come back in
// one; each command is checked, run and answered as if it came alone. A command the
// answer leaves out (it waits behind a long command of its subject) is sent again alone,
// and the others are not held for it. A node that never said it takes batches gets
// one command a message; a node that answers a batch with ACKs for other commands has
// them ignored.
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "ctl/client.h"
#include "proto/steward.pb.h"
#include "tests/e2e/client_helpers.h"
#include "tests/testing/cluster.h"
#include "tests/testing/tmpfs.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::OperatorClient;
using steward::testing::WaitUntil;

namespace {

void Pause(steward::ctl::Client& client, bool pause) {
  steward::proto::PauseRequest req;
  req.set_pause(pause);
  req.set_reason("batch test");
  REQUIRE(client.Pause(req, absl::Seconds(5)).ok());
}

// Submits one command to `node` without waiting; returns its id.
std::string Submit(steward::ctl::Client& client, const std::string& node, const std::string& method,
                   const std::string& domain, std::vector<std::string> argv) {
  steward::proto::SubmitRequest req;
  req.add_nodes(node);
  auto* cmd = req.mutable_command();
  cmd->set_method(method);
  cmd->set_domain(domain);
  for (std::string& a : argv) cmd->add_argv(std::move(a));
  auto r = client.Submit(req, absl::Seconds(10));
  REQUIRE(r.ok());
  REQUIRE(r->commands_size() == 1);
  return r->commands(0).id();
}

steward::proto::CommandStates WaitAll(steward::ctl::Client& client, const std::vector<std::string>& ids,
                                      absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  steward::proto::CommandStates last;
  while (absl::Now() < deadline) {
    auto states = client.Wait(ids, std::min(absl::Seconds(5), deadline - absl::Now()));
    if (states.ok()) {
      last = *states;
      bool done = true;
      for (const auto& s : states->commands()) done = done && steward::IsTerminal(s.state());
      if (done) break;
    }
  }
  return last;
}

// Every message published on `subject` (a wildcard) until `Stop`: what went on the wire.
class WireWatch {
 public:
  WireWatch(const std::string& url, const std::string& subject) {
    auto nc = steward::nats::Connect({.url = url, .name = "wire watch"});
    REQUIRE(nc.ok());
    nc_ = std::move(*nc);
    auto sub = steward::nats::SubscribeSync(nc_.get(), subject, 65536);
    REQUIRE(sub.ok());
    sub_ = std::move(*sub);
    REQUIRE(steward::nats::Flush(nc_.get(), absl::Seconds(2)).ok());
  }
  // The messages seen so far.
  std::vector<steward::nats::MsgPtr> TakeMessages() {
    std::vector<steward::nats::MsgPtr> out;
    while (true) {
      auto msg = steward::nats::NextMsg(sub_.get(), absl::Milliseconds(200));
      if (!msg.ok()) break;
      out.push_back(*std::move(msg));
    }
    return out;
  }
  // The subjects seen so far.
  std::vector<std::string> Take() {
    std::vector<std::string> out;
    for (const steward::nats::MsgPtr& m : TakeMessages()) out.push_back(steward::nats::Subject(m.get()));
    return out;
  }

 private:
  steward::nats::ConnectionPtr nc_;
  steward::nats::SubscriptionPtr sub_;
};

// The commands whose results a WireWatch on `*.event.result.>` saw come as result events.
std::set<std::string> ResultIds(WireWatch& results) {
  std::set<std::string> ids;
  for (const steward::nats::MsgPtr& m : results.TakeMessages()) {
    absl::StatusOr<steward::proto::Envelope> env = steward::DecodeEnvelope(steward::nats::Data(m.get()));
    steward::proto::Ack ack;
    if (env.ok() && ack.ParseFromString(env->payload())) ids.insert(ack.envelope_id());
  }
  return ids;
}

size_t CountBatches(const std::vector<std::string>& subjects) {
  size_t n = 0;
  for (const std::string& s : subjects) n += s.find(".command.batch.") != std::string::npos;
  return n;
}

}  // namespace

TEST_CASE("commands due at once to one node go in one batch and each is answered as if alone",
          "[integration][ledger][batch]") {
  Cluster c;
  // What is tested is the batch: its answer is not given up on (2 s) under a slow disk.
  c.StartStation({"--ack-timeout", "30s"});
  c.StartAgent("ship1");
  auto client = OperatorClient(c);
  WireWatch wire(c.url(), "ship1.command.>");

  // Held back, then all due at once: echo (answered with its result in the batch's
  // answer), shellcommand ("received" in it, then its result event), and one that fails
  // on the node (a missing program).
  Pause(*client, true);
  std::vector<std::string> ids;
  // Four to each of five subjects: the ones queued behind a prompt command of the same
  // batch are answered in it too.
  for (int i = 0; i < 20; ++i) {
    ids.push_back(Submit(*client, "ship1", steward::kMethodEcho, absl::StrCat("e", i % 5), {absl::StrCat("hi", i)}));
  }
  ids.push_back(Submit(*client, "ship1", steward::kMethodShell, "s1", {"sh", "-c", "echo shell"}));
  ids.push_back(Submit(*client, "ship1", steward::kMethodShell, "s2", {"/no/such/program"}));
  Pause(*client, false);

  const steward::proto::CommandStates states = WaitAll(*client, ids, absl::Seconds(30));
  REQUIRE(states.commands_size() == static_cast<int>(ids.size()));
  for (int i = 0; i < 20; ++i) {
    const auto& s = states.commands(i);
    INFO(s.id() << " " << steward::StateName(s.state()) << " " << s.result().error());
    CHECK(s.state() == steward::proto::STATE_SUCCEEDED);
    CHECK(s.result().stdout() == absl::StrCat("hi", i, "\n"));
    CHECK(s.attempts() == 1);  // answered in the batch: not sent again
  }
  CHECK(states.commands(20).state() == steward::proto::STATE_SUCCEEDED);
  CHECK(states.commands(20).result().stdout() == "shell\n");
  CHECK(states.commands(21).state() == steward::proto::STATE_FAILED);

  // On the wire: the 22 commands went in one message (the dispatcher takes what is due
  // at once), not one each.
  const std::vector<std::string> seen = wire.Take();
  CHECK(CountBatches(seen) == 1);
  size_t alone = 0;
  for (const std::string& s : seen) alone += s.find(".command.batch.") == std::string::npos && s.find(".command.ping.") == std::string::npos;
  CHECK(alone == 0);
}

TEST_CASE("a batch's command that waits behind a long one is left out and the others are not held for it",
          "[integration][ledger][batch]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  auto client = OperatorClient(c);
  // A long command holds the subject shellcommand.slow.
  const std::string slow = Submit(*client, "ship1", steward::kMethodShell, "slow", {"sh", "-c", "sleep 5"});
  REQUIRE(WaitUntil([&] {
    auto s = client->Wait({slow}, absl::Milliseconds(100));
    return s.ok() && s->commands(0).state() == steward::proto::STATE_RUNNING;
  }));
  WireWatch wire(c.url(), "ship1.command.>");
  Pause(*client, true);
  const std::string behind = Submit(*client, "ship1", steward::kMethodShell, "slow", {"sh", "-c", "echo behind"});
  const std::string quick1 = Submit(*client, "ship1", steward::kMethodEcho, "a", {"one"});
  const std::string quick2 = Submit(*client, "ship1", steward::kMethodShell, "b", {"sh", "-c", "echo two"});
  Pause(*client, false);

  const steward::proto::CommandStates states = WaitAll(*client, {slow, behind, quick1, quick2}, absl::Seconds(40));
  REQUIRE(states.commands_size() == 4);
  for (const auto& s : states.commands()) {
    INFO(s.id() << " " << steward::StateName(s.state()) << " " << s.result().error());
    CHECK(s.state() == steward::proto::STATE_SUCCEEDED);
  }
  const int64_t slow_done = states.commands(0).result().finished_unix_ms();
  // The two the batch answered finished while the long one still ran: its answer did not
  // wait for the one queued behind it.
  CHECK(states.commands(2).result().finished_unix_ms() < slow_done);
  CHECK(states.commands(3).result().finished_unix_ms() < slow_done);
  CHECK(states.commands(2).attempts() == 1);
  CHECK(states.commands(3).attempts() == 1);
  // The one behind ran after it, once, and was sent again alone after the batch.
  CHECK(states.commands(1).result().started_unix_ms() >= slow_done);
  CHECK(states.commands(1).result().stdout() == "behind\n");
  CHECK(states.commands(1).attempts() >= 2);
  const std::vector<std::string> seen = wire.Take();
  CHECK(CountBatches(seen) == 1);
  size_t resent_alone = 0;
  for (const std::string& s : seen) resent_alone += s == "ship1.command.shellcommand.slow";
  CHECK(resent_alone >= 1);
}

TEST_CASE("a node that does not say it takes batches gets one command a message, and a batch answer naming other commands is not taken",
          "[integration][ledger][batch]") {
  Cluster c;
  c.StartStation();
  auto client = OperatorClient(c);
  // Two nodes played by hand on the wire: "old1" (an agent from before batches) and
  // "liar1", which says it takes batches and answers them with ACKs for other commands.
  auto nc = steward::nats::Connect({.url = c.url(), .name = "hand-played nodes"});
  REQUIRE(nc.ok());
  auto sub = steward::nats::SubscribeSync(nc->get(), "*.command.>", 65536);
  REQUIRE(sub.ok());
  auto hello = [&](const std::string& node, bool batches) {
    steward::proto::Hello h;
    h.set_version("test");
    h.set_instance_id(absl::StrCat("01HAND", node == "old1" ? "0LD" : "L1A", "0000000000000000"));
    h.set_heartbeat_ms(60000);
    h.add_methods(steward::kMethodEcho);
    h.set_takes_batches(batches);
    steward::proto::Envelope ev =
        steward::NewEnvelope(node, "station", steward::proto::KIND_EVENT, steward::kEventHello, "agent");
    ev.set_payload(h.SerializeAsString());
    REQUIRE(steward::nats::Publish(nc->get(), "station.event.hello.agent", ev.SerializeAsString()).ok());
  };
  hello("old1", false);
  hello("liar1", true);
  REQUIRE(WaitUntil([&] {
    auto n = client->Nodes("", absl::Seconds(5));
    int online = 0;
    if (n.ok()) {
      for (const auto& info : n->nodes()) online += info.online();
    }
    return online == 2;
  }));

  Pause(*client, true);
  std::vector<std::string> ids;
  for (const std::string node : {"old1", "liar1"}) {
    for (int i = 0; i < 3; ++i) ids.push_back(Submit(*client, node, steward::kMethodEcho, absl::StrCat("d", i), {node}));
  }
  Pause(*client, false);

  // Plays both nodes until every command is answered: liar1 answers a batch with a
  // failed result for a command that is not in it (old1's first, still unanswered) and
  // none for those that are, then each command sent alone with its result; old1 answers
  // each of its commands with its result, but only once liar1 is done (so that the
  // forged result would have found its command still open).
  size_t old_batches = 0, liar_batches = 0, liar_alone = 0;
  std::vector<std::pair<std::string, std::string>> old_waiting;  // (reply, command id)
  auto answer = [&](const std::string& reply, const std::string& id, const std::string& node) {
    steward::proto::Ack result =
        steward::NewAck(id, node, steward::proto::STAGE_RESULT, steward::proto::OUTCOME_SUCCEEDED);
    result.set_stdout(absl::StrCat(node, "\n"));
    REQUIRE(steward::nats::Publish(nc->get(), reply, result.SerializeAsString()).ok());
  };
  const absl::Time until = absl::Now() + absl::Seconds(30);
  steward::proto::CommandStates states;
  while (absl::Now() < until) {
    auto msg = steward::nats::NextMsg(sub->get(), absl::Milliseconds(100));
    if (msg.ok()) {
      const std::string subject = steward::nats::Subject(msg->get());
      const std::string reply = steward::nats::Reply(msg->get());
      auto env = steward::DecodeEnvelope(steward::nats::Data(msg->get()));
      REQUIRE(env.ok());
      const std::string node = env->to_node();
      if (env->method() == steward::kMethodBatch) {
        (node == "old1" ? old_batches : liar_batches)++;
        steward::proto::AckBatch acks;
        steward::proto::Ack other =
            steward::NewAck(ids[0], node, steward::proto::STAGE_RESULT, steward::proto::OUTCOME_FAILED);
        other.set_error("forged by liar1");
        *acks.add_acks() = other;
        steward::proto::Ack carrier =
            steward::NewAck(env->id(), node, steward::proto::STAGE_RESULT, steward::proto::OUTCOME_SUCCEEDED);
        carrier.set_payload(acks.SerializeAsString());
        REQUIRE(steward::nats::Publish(nc->get(), reply, carrier.SerializeAsString()).ok());
      } else if (env->method() == steward::kMethodEcho && node == "liar1") {
        ++liar_alone;
        answer(reply, env->id(), node);
      } else if (env->method() == steward::kMethodEcho) {
        old_waiting.emplace_back(reply, env->id());
      }
    }
    if (liar_alone >= 3) {
      for (const auto& [reply, id] : old_waiting) answer(reply, id, "old1");
      old_waiting.clear();
    }
    auto s = client->Wait(ids, absl::Milliseconds(1));
    if (s.ok()) {
      states = *s;
      bool done = true;
      for (const auto& st : s->commands()) done = done && steward::IsTerminal(st.state());
      if (done) break;
    }
  }
  REQUIRE(states.commands_size() == 6);
  for (int i = 0; i < 6; ++i) {
    const auto& s = states.commands(i);
    INFO(s.id() << " to " << s.node() << ": " << steward::StateName(s.state()) << " " << s.result().error());
    CHECK(s.state() == steward::proto::STATE_SUCCEEDED);
    CHECK(s.result().stdout() == absl::StrCat(s.node(), "\n"));
  }
  CHECK(old_batches == 0);
  CHECK(liar_batches == 1);
  CHECK(liar_alone == 3);  // each sent again alone after the batch's answer left it out
}

TEST_CASE(
    "in secure mode a batch's commands are each verified by the agent and its answer by the station with one signature",
    "[integration][ledger][batch][security]") {
  Cluster c(Cluster::Secure{.nodes = {"ship1"}});
  // What is tested is the batch: its answer is not given up on (2 s) under a slow disk.
  c.StartStation({"--ack-timeout", "30s"});
  c.StartAgent("ship1");
  auto client = OperatorClient(c);
  Pause(*client, true);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(Submit(*client, "ship1", steward::kMethodEcho, absl::StrCat("e", i % 3), {absl::StrCat("s", i)}));
  }
  Pause(*client, false);
  const steward::proto::CommandStates states = WaitAll(*client, ids, absl::Seconds(30));
  REQUIRE(states.commands_size() == 6);
  for (int i = 0; i < 6; ++i) {
    const auto& s = states.commands(i);
    INFO(s.id() << " " << steward::StateName(s.state()) << " " << s.result().error());
    CHECK(s.state() == steward::proto::STATE_SUCCEEDED);
    CHECK(s.result().stdout() == absl::StrCat("s", i, "\n"));
    // Answered in the batch and believed: the answer's one signature (the ACKs in it
    // carry none) verified, or the station would have sent it again.
    CHECK(s.attempts() == 1);
  }
  CHECK_THAT(c.station().Stderr(), !Catch::Contains("not taken"));
}

TEST_CASE("a batch of quick commands to a node whose disk is full ends succeeded with each result sent from memory",
          "[integration][batch][faults]") {
  Cluster c;
  std::string why;
  auto disk = steward::testing::Tmpfs::Mount(c.dir().path() / "ship1", 8 << 20, &why);
  if (disk == nullptr) {
    WARN("skipped: " << why);
    return;
  }
  // What is tested is the batch: its answer is not given up on (2 s) under a slow disk.
  c.StartStation({"--ack-timeout", "30s"});
  c.StartAgent("ship1");
  auto client = OperatorClient(c);
  REQUIRE(WaitAll(*client, {Submit(*client, "ship1", steward::kMethodEcho, "e0", {"up"})}, absl::Seconds(20))
              .commands(0)
              .state() == steward::proto::STATE_SUCCEEDED);
  WireWatch wire(c.url(), "ship1.command.>");
  WireWatch results(c.url(), "*.event.result.>");
  WireWatch answers(c.url(), "_INBOX_station.>");  // the station's replies: the batch's answer
  disk->Fill();

  // Due at once: one batch, whose quick commands the agent runs and then cannot record
  // (their one write fails). Each is answered `received` and its result goes to the
  // station as an event from memory: all end succeeded, none sent again.
  Pause(*client, true);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(Submit(*client, "ship1", steward::kMethodEcho, absl::StrCat("e", i % 3), {absl::StrCat("hi", i)}));
  }
  Pause(*client, false);
  steward::proto::CommandStates states = WaitAll(*client, ids, absl::Seconds(30));
  REQUIRE(states.commands_size() == 6);
  for (int i = 0; i < 6; ++i) {
    const auto& s = states.commands(i);
    INFO(s.id() << " " << steward::StateName(s.state()) << " " << s.result().error());
    CHECK(s.state() == steward::proto::STATE_SUCCEEDED);
    CHECK(s.result().stdout() == absl::StrCat("hi", i, "\n"));
    CHECK(s.attempts() == 1);
  }
  // One batch, and its answer came (not left to the 30 s timeout): each command in it
  // answered `received`.
  std::vector<std::string> reply_to;
  for (const steward::nats::MsgPtr& m : wire.TakeMessages()) {
    if (steward::nats::Subject(m.get()).find(".command.batch.") != std::string::npos) {
      reply_to.push_back(steward::nats::Reply(m.get()));
    }
  }
  REQUIRE(reply_to.size() == 1);
  std::set<std::string> received;
  std::vector<steward::nats::MsgPtr> seen;
  REQUIRE(WaitUntil([&] {
    for (steward::nats::MsgPtr& m : answers.TakeMessages()) seen.push_back(std::move(m));
    for (const steward::nats::MsgPtr& m : seen) {
      if (steward::nats::Subject(m.get()) == reply_to[0]) return true;
    }
    return false;
  }));
  for (const steward::nats::MsgPtr& m : seen) {
    if (steward::nats::Subject(m.get()) != reply_to[0]) continue;
    absl::StatusOr<steward::proto::Ack> carrier = steward::DecodeAck(steward::nats::Data(m.get()));
    REQUIRE(carrier.ok());
    CHECK(carrier->outcome() == steward::proto::OUTCOME_SUCCEEDED);
    steward::proto::AckBatch batch;
    REQUIRE(batch.ParseFromString(carrier->payload()));
    for (const steward::proto::Ack& ack : batch.acks()) {
      if (ack.stage() == steward::proto::STAGE_RECEIVED) received.insert(ack.envelope_id());
    }
  }
  CHECK(received == std::set<std::string>(ids.begin(), ids.end()));
  CHECK(c.agent("ship1").running());
  // The results went the long way, as result events.
  const std::set<std::string> long_way = ResultIds(results);
  for (const std::string& id : ids) CHECK(long_way.count(id) == 1);

  // Room again: the next batch's results come in its answer.
  disk->Free();
  Pause(*client, true);
  ids.clear();
  for (int i = 0; i < 3; ++i) ids.push_back(Submit(*client, "ship1", steward::kMethodEcho, "e1", {"again"}));
  Pause(*client, false);
  states = WaitAll(*client, ids, absl::Seconds(30));
  REQUIRE(states.commands_size() == 3);
  for (const auto& s : states.commands()) {
    CHECK(s.state() == steward::proto::STATE_SUCCEEDED);
    CHECK(s.result().stdout() == "again\n");
    CHECK(s.attempts() == 1);
  }
  const std::set<std::string> after = ResultIds(results);
  for (const std::string& id : ids) CHECK(after.count(id) == 0);
}
