// CommandTable's control policies (issue 13), pure: exclusive jobs and their node's
// slot (busy, queue, preempt by priority), stopping any command (Stop), and the slot
// rebuilt after a station restart. No broker, no ledger, an explicit clock.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/protocol.h"
#include "station/commands.h"
#include "tests/station/command_fixtures.h"

namespace steward::station {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

proto::CommandState Job(const std::string& id, proto::OnBusy on_busy = proto::ON_BUSY_REJECT, int priority = 0,
                        const std::string& node = "ship1", bool exclusive = true) {
  proto::CommandState s = Queued(id, node);
  s.mutable_command()->set_domain("operatingsystem");
  s.mutable_command()->add_argv("recover-" + id);
  s.set_created_unix_ms(absl::ToUnixMillis(kT0));
  s.set_updated_unix_ms(absl::ToUnixMillis(kT0));
  s.mutable_control()->set_exclusive(exclusive);
  s.mutable_control()->set_on_busy(on_busy);
  s.mutable_control()->set_priority(priority);
  return s;
}

proto::Ack Ack(const std::string& id, proto::Stage stage, proto::Outcome outcome = proto::OUTCOME_UNSPECIFIED,
               const std::string& out = "") {
  proto::Ack a;
  a.set_envelope_id(id);
  a.set_stage(stage);
  a.set_outcome(outcome);
  a.set_stdout(out);
  return a;
}

Gate SendAll(const proto::CommandState&) { return Gate::kSend; }

std::vector<std::string> Ids(const std::vector<Dispatch>& d) {
  std::vector<std::string> out;
  for (const Dispatch& x : d) out.push_back(x.id);
  return out;
}

// Sends what is due and has the node receive it: it runs.
std::vector<std::string> RunDue(CommandTable& t, absl::Time now, Changes& ch) {
  std::vector<Dispatch> d = t.TakeDue(now, SendAll, ch);
  for (const Dispatch& x : d) t.OnReply(x.id, x.gen, Ack(x.id, proto::STAGE_RECEIVED), now, ch);
  return Ids(d);
}

proto::State StateOf(const CommandTable& t, const std::string& id) { return t.Find(id)->state(); }

TEST_CASE("an exclusive job holds its node's slot and a second one is busy, naming it", "[station][control]") {
  CommandTable t;
  Changes ch;
  t.Add(Job("a"), kT0);
  CHECK(RunDue(t, kT0, ch) == std::vector<std::string>{"a"});
  CHECK(t.SlotHolder("ship1") == "a");
  t.Add(Job("b"), kT0 + absl::Seconds(12));
  CHECK(RunDue(t, kT0 + absl::Seconds(12), ch).empty());
  CHECK(StateOf(t, "b") == proto::STATE_BUSY);
  CHECK(t.Find("b")->result().error() == "ship1 is busy with a (recover-a, running 12s, priority 0)");
  // Ordinary commands and other nodes are not affected.
  t.Add(Job("plain", proto::ON_BUSY_REJECT, 0, "ship1", /*exclusive=*/false), kT0 + absl::Seconds(13));
  t.Add(Job("other", proto::ON_BUSY_REJECT, 0, "ship2"), kT0 + absl::Seconds(13));
  CHECK(RunDue(t, kT0 + absl::Seconds(13), ch) == std::vector<std::string>{"other", "plain"});
  CHECK(t.SlotHolder("ship2") == "other");
  // The slot frees when the holder ends; the next exclusive job takes it.
  t.OnResult("a", "ship1", Ack("a", proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED), kT0 + absl::Seconds(14), ch);
  CHECK(t.SlotHolder("ship1").empty());
  t.Add(Job("c"), kT0 + absl::Seconds(15));
  CHECK(RunDue(t, kT0 + absl::Seconds(15), ch) == std::vector<std::string>{"c"});
}

TEST_CASE("queued jobs wait their turn, highest priority first, then oldest", "[station][control]") {
  CommandTable t;
  Changes ch;
  t.Add(Job("a"), kT0);
  RunDue(t, kT0, ch);
  t.Add(Job("low1", proto::ON_BUSY_QUEUE, 1), kT0);
  t.Add(Job("high", proto::ON_BUSY_QUEUE, 5), kT0);
  t.Add(Job("low2", proto::ON_BUSY_QUEUE, 1), kT0);
  CHECK(RunDue(t, kT0 + absl::Seconds(1), ch).empty());
  CHECK(t.SlotQueue("ship1") == std::vector<std::string>{"high", "low1", "low2"});
  CHECK(StateOf(t, "low1") == proto::STATE_QUEUED);
  // Waiting is not a retry: an hour later only the holder is asked about again (its
  // result is late), nothing waiting was sent.
  CHECK(Ids(t.TakeDue(kT0 + absl::Hours(1), SendAll, ch)) == std::vector<std::string>{"a"});
  // A node heard from again (Unpark) does not send a waiting job either.
  t.Unpark("ship1", kT0 + absl::Hours(1));
  CHECK(t.TakeDue(kT0 + absl::Hours(1), SendAll, ch).empty());
  std::vector<std::string> order;
  std::string holder = "a";
  for (int i = 0; i < 3; ++i) {
    const absl::Time now = kT0 + absl::Hours(1) + absl::Seconds(i + 1);
    t.OnResult(holder, "ship1", Ack(holder, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED), now, ch);
    std::vector<std::string> ran = RunDue(t, now, ch);
    REQUIRE(ran.size() == 1);
    order.push_back(ran[0]);
    holder = ran[0];
  }
  CHECK(order == std::vector<std::string>{"high", "low1", "low2"});
}

TEST_CASE("a waiting job that is canceled or expires leaves the queue", "[station][control]") {
  CommandTable t;
  Changes ch;
  t.Add(Job("a"), kT0);
  RunDue(t, kT0, ch);
  proto::CommandState soon = Job("soon", proto::ON_BUSY_QUEUE);
  soon.mutable_command()->set_expires_unix_ms(absl::ToUnixMillis(kT0 + absl::Seconds(5)));
  t.Add(soon, kT0);
  t.Add(Job("later", proto::ON_BUSY_QUEUE), kT0);
  t.Add(Job("gone", proto::ON_BUSY_QUEUE), kT0);
  RunDue(t, kT0, ch);
  CHECK(t.SlotQueue("ship1").size() == 3);
  absl::StatusOr<bool> asked = t.Stop("gone", "alice", kT0 + absl::Seconds(1), ch);
  REQUIRE(asked.ok());
  CHECK_FALSE(*asked);  // never delivered: canceled here, nothing sent to the node
  CHECK(ch.kills.empty());
  CHECK(StateOf(t, "gone") == proto::STATE_CANCELED);
  CHECK(t.Find("gone")->result().error() == "canceled by alice before it was delivered to ship1");
  RunDue(t, kT0 + absl::Seconds(6), ch);
  CHECK(StateOf(t, "soon") == proto::STATE_EXPIRED);
  CHECK(t.SlotQueue("ship1") == std::vector<std::string>{"later"});
}

TEST_CASE("preempting an undelivered holder ends it preempted at the station", "[station][control]") {
  CommandTable t;
  Changes ch;
  t.Add(Job("a", proto::ON_BUSY_REJECT, 0), kT0);
  // Admitted but parked (its node is offline): it holds the slot, never delivered.
  t.TakeDue(kT0, [](const proto::CommandState&) { return Gate::kPark; }, ch);
  CHECK(t.SlotHolder("ship1") == "a");
  t.Add(Job("p", proto::ON_BUSY_PREEMPT, 5), kT0 + absl::Seconds(1));
  std::vector<std::string> ran = RunDue(t, kT0 + absl::Seconds(1), ch);
  CHECK(ran == std::vector<std::string>{"p"});
  CHECK(StateOf(t, "a") == proto::STATE_PREEMPTED);
  CHECK(t.Find("a")->marks().preempted_by() == "p");
  CHECK(ch.kills.empty());
  CHECK(t.SlotHolder("ship1") == "p");
}

TEST_CASE("preempting a running holder kills it on its node, then the new job runs", "[station][control]") {
  CommandTable t;
  Changes ch;
  t.Add(Job("a", proto::ON_BUSY_REJECT, 1), kT0);
  RunDue(t, kT0, ch);
  ch = Changes{};
  t.Add(Job("p", proto::ON_BUSY_PREEMPT, 5), kT0 + absl::Seconds(1));
  CHECK(RunDue(t, kT0 + absl::Seconds(1), ch).empty());  // waits for the holder to stop
  REQUIRE(ch.kills.size() == 1);
  CHECK(ch.kills[0].id == "a");
  CHECK(ch.kills[0].node == "ship1");
  CHECK(ch.kills[0].domain == "operatingsystem");
  CHECK(ch.kills[0].by == "preemption by p");
  CHECK(t.Find("a")->marks().cancel_by() == "preemption by p");
  CHECK(StateOf(t, "a") == proto::STATE_RUNNING);
  // The node killed it: its result (canceled, with the output so far) ends it preempted.
  t.OnResult("a", "ship1", Ack("a", proto::STAGE_RESULT, proto::OUTCOME_CANCELED, "half done\n"),
             kT0 + absl::Seconds(2), ch);
  CHECK(StateOf(t, "a") == proto::STATE_PREEMPTED);
  CHECK(t.Find("a")->result().stdout() == "half done\n");
  CHECK(RunDue(t, kT0 + absl::Seconds(2), ch) == std::vector<std::string>{"p"});
}

TEST_CASE("a job that finished before the kill reached it keeps its own outcome", "[station][control]") {
  CommandTable t;
  Changes ch;
  t.Add(Job("a"), kT0);
  RunDue(t, kT0, ch);
  t.Add(Job("p", proto::ON_BUSY_PREEMPT, 5), kT0);
  RunDue(t, kT0, ch);
  t.OnResult("a", "ship1", Ack("a", proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED), kT0 + absl::Seconds(1), ch);
  CHECK(StateOf(t, "a") == proto::STATE_SUCCEEDED);
  CHECK(RunDue(t, kT0 + absl::Seconds(1), ch) == std::vector<std::string>{"p"});
}

TEST_CASE("preempt without a higher priority ends busy and says why", "[station][control]") {
  CommandTable t;
  Changes ch;
  t.Add(Job("a", proto::ON_BUSY_REJECT, 5), kT0);
  RunDue(t, kT0, ch);
  t.Add(Job("p", proto::ON_BUSY_PREEMPT, 5), kT0);
  RunDue(t, kT0, ch);
  CHECK(StateOf(t, "p") == proto::STATE_BUSY);
  CHECK_THAT(t.Find("p")->result().error(), Catch::EndsWith("priority 5 does not preempt priority 5"));
  CHECK(ch.kills.empty());
  CHECK(StateOf(t, "a") == proto::STATE_RUNNING);
}

TEST_CASE("Stop kills a running or in-flight command once and answers a finished one", "[station][control]") {
  CommandTable t;
  Changes ch;
  t.Add(Job("run", proto::ON_BUSY_REJECT, 0, "ship1", false), kT0);
  t.Add(Job("fly", proto::ON_BUSY_REJECT, 0, "ship2", false), kT0);
  std::vector<Dispatch> d = t.TakeDue(kT0, SendAll, ch);
  REQUIRE(d.size() == 2);
  t.OnReply("run", t.Generation("run"), Ack("run", proto::STAGE_RECEIVED), kT0, ch);
  ch = Changes{};
  for (const char* id : {"run", "fly"}) {
    absl::StatusOr<bool> asked = t.Stop(id, "bob", kT0 + absl::Seconds(1), ch);
    REQUIRE(asked.ok());
    CHECK(*asked);
  }
  REQUIRE(ch.kills.size() == 2);
  CHECK(ch.writes.size() == 2);  // the marks are durable before anyone is told
  CHECK(ch.writes[0].record.marks().cancel_by() == "bob");
  // Asked again: no second kill.
  ch = Changes{};
  REQUIRE(t.Stop("run", "bob", kT0 + absl::Seconds(2), ch).ok());
  CHECK(ch.kills.empty());
  t.OnResult("run", "ship1", Ack("run", proto::STAGE_RESULT, proto::OUTCOME_CANCELED), kT0 + absl::Seconds(3), ch);
  CHECK(StateOf(t, "run") == proto::STATE_CANCELED);
  absl::StatusOr<bool> late = t.Stop("run", "bob", kT0 + absl::Seconds(4), ch);
  CHECK(late.status().message() == "command run already finished: canceled");
}

TEST_CASE("a command sent without an answer is canceled here and its node is told", "[station][control]") {
  CommandTable t;
  Changes ch;
  t.Add(Job("q", proto::ON_BUSY_REJECT, 0, "ship1", false), kT0);
  std::vector<Dispatch> d = t.TakeDue(kT0, SendAll, ch);
  REQUIRE(d.size() == 1);
  t.OnTimeout("q", d[0].gen, kT0 + absl::Seconds(2));  // backing off: not in flight
  ch = Changes{};
  absl::StatusOr<bool> asked = t.Stop("q", "dave", kT0 + absl::Seconds(3), ch);
  REQUIRE(asked.ok());
  CHECK(*asked);
  CHECK(StateOf(t, "q") == proto::STATE_CANCELED);
  REQUIRE(ch.kills.size() == 1);  // it may wait in the node's queue: recorded canceled there
  REQUIRE(ch.writes.size() == 1);
  CHECK(ch.writes[0].record.marks().cancel_by() == "dave");
  CHECK(ch.writes[0].record.state() == proto::STATE_CANCELED);
  // Never sent again.
  CHECK(t.TakeDue(kT0 + absl::Hours(1), SendAll, ch).empty());
}

TEST_CASE("after a restart the delivered job holds the slot again and the queue is rebuilt in order",
          "[station][control]") {
  CommandTable t;
  Changes ch;
  proto::CommandState running = Job("a", proto::ON_BUSY_REJECT, 0);
  running.set_state(proto::STATE_RUNNING);
  running.set_attempts(1);
  running.mutable_marks()->set_cancel_by("carol");  // asked before the restart
  proto::CommandState q1 = Job("q1", proto::ON_BUSY_QUEUE, 0);
  proto::CommandState q2 = Job("q2", proto::ON_BUSY_QUEUE, 3);
  // Loaded in any order.
  t.Add(q1, kT0, /*fresh=*/false);
  t.Add(running, kT0, /*fresh=*/false);
  t.Add(q2, kT0, /*fresh=*/false);
  CHECK(t.SlotHolder("ship1") == "a");
  std::vector<Dispatch> d = t.TakeDue(kT0, SendAll, ch);
  CHECK(Ids(d) == std::vector<std::string>{"a"});  // asked again about the running one only
  REQUIRE(ch.kills.size() == 1);  // and its cancel goes out again
  CHECK(ch.kills[0].id == "a");
  CHECK(ch.kills[0].by == "carol");
  CHECK(t.SlotQueue("ship1") == std::vector<std::string>{"q2", "q1"});
  t.OnReply("a", t.Generation("a"), Ack("a", proto::STAGE_RESULT, proto::OUTCOME_CANCELED), kT0, ch);
  CHECK(RunDue(t, kT0, ch) == std::vector<std::string>{"q2"});
}

}  // namespace
}  // namespace steward::station
