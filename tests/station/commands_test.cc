// CommandTable (station/commands.h): the command state machine, driven with an
// explicit clock; no broker, no ledger.
#include "station/commands.h"

#include <catch2/catch.hpp>

#include <algorithm>

#include "common/protocol.h"
#include "tests/station/command_fixtures.h"

namespace steward::station {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

proto::Ack Received(const std::string& id) {
  proto::Ack a;
  a.set_envelope_id(id);
  a.set_stage(proto::STAGE_RECEIVED);
  return a;
}

proto::Ack Result(const std::string& id, proto::Outcome outcome, const std::string& out = "") {
  proto::Ack a;
  a.set_envelope_id(id);
  a.set_stage(proto::STAGE_RESULT);
  a.set_outcome(outcome);
  a.set_stdout(out);
  return a;
}

Gate SendAll(const proto::CommandState&) { return Gate::kSend; }

// Commits every queued write, in order; returns the ids whose final word committed.
std::vector<std::string> CommitAll(CommandTable& t, Changes& changes, bool ok = true) {
  std::vector<std::string> ended;
  for (const CommandWrite& w : changes.writes) {
    if (t.Committed(w.record.id(), w.seq, ok)) ended.push_back(w.record.id());
  }
  changes = Changes{};
  return ended;
}

TEST_CASE("a queued command is sent once, then runs, then ends with its result", "[station][commands]") {
  CommandTable t;
  t.Add(Queued("c1"), kT0);
  CHECK(t.NextDue() == kT0);
  Changes ch;
  std::vector<Dispatch> d = t.TakeDue(kT0, SendAll, ch);
  REQUIRE(d.size() == 1);
  CHECK(d[0].id == "c1");
  CHECK(t.Find("c1")->state() == proto::STATE_SENT);
  CHECK(t.Find("c1")->attempts() == 1);
  CHECK(ch.writes.empty());  // "sent" reaches the ledger with the next write
  REQUIRE(ch.states.size() == 1);
  CHECK(ch.states[0].state == proto::STATE_SENT);
  // In flight: not sent again, however late it gets.
  CHECK(t.TakeDue(kT0 + absl::Hours(1), SendAll, ch).empty());

  t.OnReply("c1", t.Generation("c1"), Received("c1"), kT0 + absl::Milliseconds(1), ch);
  CHECK(t.Find("c1")->state() == proto::STATE_RUNNING);
  CHECK(ch.writes.empty());  // lazily, with the next housekeeping
  t.Housekeep(kT0 + absl::Milliseconds(2), ch);
  REQUIRE(ch.writes.size() == 1);
  CHECK(ch.writes[0].record.state() == proto::STATE_RUNNING);
  CHECK(CommitAll(t, ch).empty());

  CHECK(t.OnResult("c1", "ship1", Result("c1", proto::OUTCOME_SUCCEEDED, "hi"), kT0 + absl::Seconds(1), ch) ==
        CommandTable::ResultFate::kApplied);
  REQUIRE(ch.writes.size() == 1);
  CHECK(ch.writes[0].record.state() == proto::STATE_SUCCEEDED);
  CHECK_FALSE(t.Durable("c1"));
  CHECK(CommitAll(t, ch) == std::vector<std::string>{"c1"});
  CHECK(t.Durable("c1"));
  CHECK(t.Pending("ship1") == 0);
  // A repeat changes nothing.
  CHECK(t.OnResult("c1", "ship1", Result("c1", proto::OUTCOME_FAILED), kT0 + absl::Seconds(2), ch) ==
        CommandTable::ResultFate::kRepeat);
  CHECK(ch.writes.empty());
  CHECK(t.Find("c1")->state() == proto::STATE_SUCCEEDED);
}

TEST_CASE("a result for a command never sent is refused, unless another station may have sent it",
          "[station][commands]") {
  CommandTable t;
  t.Add(Queued("c1", "ship1"), kT0);  // stored here, not dispatched yet
  proto::CommandState imported = Queued("c2", "ship1");
  imported.set_attempts(1);  // a site station's, handed back unfinished (station/site.cc)
  t.Add(imported, kT0);
  Changes ch;
  CHECK(t.OnResult("c1", "ship1", Result("c1", proto::OUTCOME_CANCELED), kT0, ch) ==
        CommandTable::ResultFate::kNeverSent);
  CHECK(t.Find("c1")->state() == proto::STATE_QUEUED);
  CHECK(t.OnResult("c2", "ship1", Result("c2", proto::OUTCOME_SUCCEEDED), kT0, ch) ==
        CommandTable::ResultFate::kApplied);
  CHECK(t.Find("c2")->state() == proto::STATE_SUCCEEDED);
}

TEST_CASE("a result is taken only from the node the command went to", "[station][commands]") {
  CommandTable t;
  t.Add(Queued("c1", "ship1"), kT0);
  Changes ch;
  CHECK(t.OnResult("c1", "ship2", Result("c1", proto::OUTCOME_SUCCEEDED), kT0, ch) ==
        CommandTable::ResultFate::kWrongNode);
  CHECK(t.OnResult("nope", "ship1", Result("nope", proto::OUTCOME_SUCCEEDED), kT0, ch) ==
        CommandTable::ResultFate::kUnknown);
  CHECK(ch.writes.empty());
  CHECK(t.Find("c1")->state() == proto::STATE_QUEUED);
}

TEST_CASE("no answer retries with doubling backoff up to the cap", "[station][commands]") {
  CommandTable t({.initial_backoff = absl::Milliseconds(500), .max_backoff = absl::Seconds(2)});
  t.Add(Queued("c1"), kT0);
  Changes ch;
  absl::Time now = kT0;
  std::vector<absl::Duration> waits;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(t.TakeDue(now, SendAll, ch).size() == 1);
    t.OnTimeout("c1", t.Generation("c1"), now);
    waits.push_back(t.NextDue() - now);
    now = t.NextDue();
  }
  CHECK(waits == std::vector<absl::Duration>{absl::Milliseconds(500), absl::Seconds(1), absl::Seconds(2),
                                             absl::Seconds(2), absl::Seconds(2)});
  CHECK(t.Find("c1")->attempts() == 5);
}

TEST_CASE("no responders parks a command until its node is heard from", "[station][commands]") {
  CommandTable t;
  t.Add(Queued("c1"), kT0);
  t.Add(Queued("c2", "ship2"), kT0);
  Changes ch;
  REQUIRE(t.TakeDue(kT0, SendAll, ch).size() == 2);
  t.OnNoResponders("c1", t.Generation("c1"));
  t.OnNoResponders("c2", t.Generation("c2"));
  CHECK(t.NextDue() == absl::InfiniteFuture());
  CHECK(t.TakeDue(kT0 + absl::Hours(1), SendAll, ch).empty());
  (void)t.TakeSooner();
  t.Unpark("ship1", kT0 + absl::Hours(2));
  CHECK(t.TakeSooner());
  std::vector<Dispatch> d = t.TakeDue(kT0 + absl::Hours(2), SendAll, ch);
  REQUIRE(d.size() == 1);
  CHECK(d[0].id == "c1");
  CHECK(t.Find("c1")->attempts() == 2);
}

TEST_CASE("a node heard from again gets its commands at once, not after their backoff",
          "[station][commands]") {
  CommandTable t({.initial_backoff = absl::Seconds(8), .max_backoff = absl::Seconds(30)});
  t.Add(Queued("waiting"), kT0);
  t.Add(Queued("inflight"), kT0);
  Changes ch;
  REQUIRE(t.TakeDue(kT0, [](const proto::CommandState& c) { return c.id() == "waiting" ? Gate::kSend : Gate::kPark; },
                    ch).size() == 1);
  t.OnTimeout("waiting", t.Generation("waiting"), kT0);  // backoff: 8 s
  t.Unpark("ship1", kT0 + absl::Seconds(1));  // "inflight" was parked: due now
  REQUIRE(t.TakeDue(kT0 + absl::Seconds(1), SendAll, ch).size() == 2);
  const uint64_t first = t.Generation("inflight");
  t.OnTimeout("waiting", t.Generation("waiting"), kT0 + absl::Seconds(1));  // an 8 s backoff again ...
  // ... cut short by a sign of life, which also sends "inflight" again at once (the
  // path its dispatch went out on may be dead).
  t.Unpark("ship1", kT0 + absl::Seconds(2));
  std::vector<Dispatch> d = t.TakeDue(kT0 + absl::Seconds(2), SendAll, ch);
  CHECK(d.size() == 2);
  CHECK(t.Generation("inflight") == first + 1);
  // The old dispatch's timeout changes nothing; its answer still counts.
  t.OnTimeout("inflight", first, kT0 + absl::Seconds(3));
  CHECK(t.NextDue() == absl::InfiniteFuture());  // both in flight
  t.OnReply("inflight", first, Received("inflight"), kT0 + absl::Seconds(3), ch);
  CHECK(t.Find("inflight")->state() == proto::STATE_RUNNING);
}

TEST_CASE("a released command goes out alone: its node's others keep their dispatch and backoff",
          "[station][commands]") {
  CommandTable t({.initial_backoff = absl::Seconds(8), .max_backoff = absl::Seconds(30)});
  t.Add(Queued("held"), kT0);
  t.Add(Queued("inflight"), kT0);
  t.Add(Queued("waiting"), kT0);
  Changes ch;
  REQUIRE(t.TakeDue(kT0, [](const proto::CommandState& c) { return c.id() == "held" ? Gate::kPark : Gate::kSend; },
                    ch).size() == 2);
  t.OnTimeout("waiting", t.Generation("waiting"), kT0);  // backoff: 8 s
  const uint64_t inflight = t.Generation("inflight");
  t.Release("held", kT0 + absl::Seconds(1));
  t.Release("inflight", kT0 + absl::Seconds(1));  // in flight: left alone
  std::vector<Dispatch> d = t.TakeDue(kT0 + absl::Seconds(1), SendAll, ch);
  REQUIRE(d.size() == 1);
  CHECK(d[0].id == "held");
  CHECK(t.Generation("inflight") == inflight);
  CHECK(t.NextDue() == kT0 + absl::Seconds(8));  // "waiting" keeps its backoff
  t.Release("held", kT0 + absl::Seconds(2));  // in flight now: nothing
  CHECK(t.TakeDue(kT0 + absl::Seconds(2), SendAll, ch).empty());
}

TEST_CASE("a reinstalled node's commands that may have reached the old installation end lost",
          "[station][commands]") {
  CommandTable t;
  t.Add(Queued("never-sent"), kT0);
  t.Add(Queued("running"), kT0);
  t.Add(Queued("from-ledger"), kT0, /*fresh=*/false);  // the station restarted: maybe sent
  Changes ch;
  REQUIRE(t.TakeDue(kT0, [](const proto::CommandState& c) { return c.id() == "running" ? Gate::kSend : Gate::kPark; },
                    ch).size() == 1);
  t.OnReply("running", t.Generation("running"), Received("running"), kT0, ch);
  std::vector<std::string> lost =
      t.Reinstalled("ship1", "A", "B", /*previous_online=*/false, kT0 + absl::Seconds(1), ch);
  std::sort(lost.begin(), lost.end());
  CHECK(lost == std::vector<std::string>{"from-ledger", "running"});
  CHECK(t.Find("running")->state() == proto::STATE_LOST);
  CHECK_THAT(t.Find("running")->result().error(), Catch::Contains("was reinstalled (installation A replaced by B)"));
  CHECK(t.Find("never-sent")->state() == proto::STATE_QUEUED);
  CHECK(t.Pending("ship1") == 1);
  // Not sent again by themselves; the late answer of the old installation changes nothing.
  t.OnReply("running", t.Generation("running"), Result("running", proto::OUTCOME_SUCCEEDED), kT0 + absl::Seconds(2), ch);
  CHECK(t.Find("running")->state() == proto::STATE_LOST);
}

TEST_CASE("a reinstalled node's commands that met only no responders were never delivered and stay",
          "[station][commands]") {
  CommandTable t;
  t.Add(Queued("nobody"), kT0);
  t.Add(Queued("timed-out"), kT0);
  t.Add(Queued("timed-out-then-nobody"), kT0);
  Changes ch;
  REQUIRE(t.TakeDue(kT0, SendAll, ch).size() == 3);
  t.OnNoResponders("nobody", t.Generation("nobody"));
  t.OnTimeout("timed-out", t.Generation("timed-out"), kT0);
  t.OnTimeout("timed-out-then-nobody", t.Generation("timed-out-then-nobody"), kT0);
  // Sent again: the second dispatch meets no responders, the first may still be there.
  REQUIRE(t.TakeDue(kT0 + absl::Minutes(1), [](const proto::CommandState& c) {
            return c.id() == "timed-out-then-nobody" ? Gate::kSend : Gate::kPark;
          }, ch).size() == 1);
  t.OnNoResponders("timed-out-then-nobody", t.Generation("timed-out-then-nobody"));
  std::vector<std::string> lost =
      t.Reinstalled("ship1", "A", "B", /*previous_online=*/false, kT0 + absl::Minutes(2), ch);
  std::sort(lost.begin(), lost.end());
  CHECK(lost == std::vector<std::string>{"timed-out", "timed-out-then-nobody"});
  CHECK(t.Find("nobody")->state() == proto::STATE_SENT);
  // Parked for the node, it goes to the new installation when the node is heard from.
  t.Unpark("ship1", kT0 + absl::Minutes(2));
  std::vector<Dispatch> d = t.TakeDue(kT0 + absl::Minutes(2), SendAll, ch);
  REQUIRE(d.size() == 1);
  CHECK(d[0].id == "nobody");
}

TEST_CASE("a reinstalled node's command whose only dispatch is still out waits for that dispatch's answer",
          "[station][commands]") {
  CommandTable t;
  for (const char* id : {"nobody", "answered", "unanswered", "resent"}) t.Add(Queued(id), kT0);
  Changes ch;
  REQUIRE(t.TakeDue(kT0, SendAll, ch).size() == 4);
  t.OnTimeout("resent", t.Generation("resent"), kT0);
  REQUIRE(t.TakeDue(kT0 + absl::Minutes(1), SendAll, ch).size() == 1);  // "resent", its second dispatch
  // The new installation says hello while the four dispatches are out: only the one sent
  // before (which may have reached the old installation) ends now.
  const absl::Time hello = kT0 + absl::Minutes(2);
  CHECK(t.Reinstalled("ship1", "A", "B", /*previous_online=*/false, hello, ch) == std::vector<std::string>{"resent"});
  CHECK(t.Find("resent")->state() == proto::STATE_LOST);
  for (const char* id : {"nobody", "answered", "unanswered"}) CHECK(t.Find(id)->state() == proto::STATE_SENT);
  // Its hello does not send them again beside the dispatch that is out, nor ends them.
  t.Unpark("ship1", hello);
  CHECK(t.TakeDue(hello, SendAll, ch).empty());
  for (const char* id : {"nobody", "answered", "unanswered"}) CHECK(t.Find(id)->state() == proto::STATE_SENT);
  // The broker had nobody to give it to: never delivered, it goes to the new one.
  t.OnNoResponders("nobody", t.Generation("nobody"));
  // The new installation answered: it took it.
  t.OnReply("answered", t.Generation("answered"), Received("answered"), hello, ch);
  CHECK(t.Find("answered")->state() == proto::STATE_RUNNING);
  // No answer: the old installation may have taken it before it went. It ends at once,
  // not after a backoff.
  t.OnTimeout("unanswered", t.Generation("unanswered"), hello + absl::Seconds(5));
  CHECK(t.TakeDue(hello + absl::Seconds(5), SendAll, ch).empty());
  CHECK(t.Find("unanswered")->state() == proto::STATE_LOST);
  t.Unpark("ship1", hello + absl::Seconds(6));
  std::vector<Dispatch> d = t.TakeDue(hello + absl::Seconds(6), SendAll, ch);
  REQUIRE(d.size() == 1);
  CHECK(d[0].id == "nobody");
  CHECK(t.Find("unanswered")->state() == proto::STATE_LOST);
  CHECK_THAT(t.Find("unanswered")->result().error(), Catch::Contains("was reinstalled (installation A replaced by B)"));
  CHECK(t.Find("answered")->state() == proto::STATE_RUNNING);
}

// Adds command `id` of ship1, bound to its installation A, and sends it at kT0.
void SendBoundToA(CommandTable& t, const char* id, Changes& ch) {
  proto::CommandState s = Queued(id);
  s.mutable_command()->set_target_instance("A");
  t.Add(std::move(s), kT0);
  REQUIRE(t.TakeDue(kT0, SendAll, ch).size() == 1);
}

TEST_CASE("a reinstalled node's command whose only dispatch is out ends lost when the old installation was online",
          "[station][commands]") {
  CommandTable t;
  Changes ch;
  SendBoundToA(t, "out", ch);
  // A replacement started beside a live installation: the dispatch may reach both, and
  // the new one's refusal would not say the old one did not take it.
  CHECK(t.Reinstalled("ship1", "A", "B", /*previous_online=*/true, kT0, ch) == std::vector<std::string>{"out"});
  CHECK(t.Find("out")->state() == proto::STATE_LOST);
  t.OnStaleBinding("out", t.Generation("out"), kT0 + absl::Seconds(1));
  CHECK(t.TakeDue(kT0 + absl::Seconds(1), SendAll, ch).empty());
  CHECK(t.Find("out")->state() == proto::STATE_LOST);
}

// Sends commands `a` and `b` bound to A; B's hello comes while both dispatches are out
// (A offline), so both wait for their answers. `ch` holds the hello's writes only.
void BothWaitAtReinstall(CommandTable& t, const char* a, const char* b, Changes& ch) {
  SendBoundToA(t, a, ch);
  SendBoundToA(t, b, ch);
  ch = Changes{};
  REQUIRE(t.Reinstalled("ship1", "A", "B", /*previous_online=*/false, kT0, ch).empty());
}

TEST_CASE("a reinstall's wait for a dispatch's answer is written to the ledger until the answer ends it",
          "[station][commands]") {
  CommandTable t;
  Changes ch;
  BothWaitAtReinstall(t, "nobody", "unanswered", ch);
  // Written at the hello: a station restarted before the answer ends them lost (Core::Load).
  REQUIRE(ch.writes.size() == 2);
  for (const CommandWrite& w : ch.writes) {
    CHECK_THAT(w.record.marks().lost_unless_answered(),
               Catch::Contains("was reinstalled (installation A replaced by B)"));
  }
  CommitAll(t, ch);
  // The broker had nobody to give it to: the wait ends with nothing else to write, and
  // the next housekeeping writes the record without it, once.
  t.OnNoResponders("nobody", t.Generation("nobody"));
  CHECK(t.Find("nobody")->marks().lost_unless_answered().empty());
  CHECK(ch.writes.empty());
  t.Housekeep(kT0 + absl::Seconds(1), ch);
  REQUIRE(ch.writes.size() == 1);
  CHECK(ch.writes[0].record.id() == "nobody");
  CHECK(ch.writes[0].record.marks().lost_unless_answered().empty());
  CommitAll(t, ch);
  t.Housekeep(kT0 + absl::Seconds(2), ch);
  CHECK(ch.writes.empty());
  // No answer: lost, and its final record carries the error, not the wait.
  t.OnTimeout("unanswered", t.Generation("unanswered"), kT0 + absl::Seconds(3));
  CHECK(t.TakeDue(kT0 + absl::Seconds(3), SendAll, ch).empty());
  REQUIRE(ch.writes.size() == 1);
  CHECK(ch.writes[0].record.state() == proto::STATE_LOST);
  CHECK(ch.writes[0].record.marks().lost_unless_answered().empty());
  CHECK_THAT(ch.writes[0].record.result().error(), Catch::Contains("was reinstalled (installation A replaced by B)"));
}

TEST_CASE("a reinstall's wait ended by the new installation's answer is written at shutdown and never after the end",
          "[station][commands]") {
  CommandTable t;
  Changes ch;
  BothWaitAtReinstall(t, "taken", "ran", ch);
  CommitAll(t, ch);
  // B took both; "ran" also ends before any housekeeping.
  t.OnReply("taken", t.Generation("taken"), Received("taken"), kT0, ch);
  t.OnReply("ran", t.Generation("ran"), Received("ran"), kT0, ch);
  t.OnReply("ran", t.Generation("ran"), Result("ran", proto::OUTCOME_SUCCEEDED, "out"), kT0, ch);
  REQUIRE(t.Find("ran")->state() == proto::STATE_SUCCEEDED);
  CommitAll(t, ch);
  // The shutdown's flush writes the record of the one still running without the wait;
  // the finished one's last write carried that already and is not written again (its
  // committed record may hold output that memory no longer does).
  t.FlushRunning(ch);
  REQUIRE(ch.writes.size() == 1);
  CHECK(ch.writes[0].record.id() == "taken");
  CHECK(ch.writes[0].record.marks().lost_unless_answered().empty());
  CommitAll(t, ch);
  t.Housekeep(kT0 + absl::Seconds(1), ch);
  CHECK(ch.writes.empty());
}

TEST_CASE("a command the new installation refuses for being bound to the old one goes again at once",
          "[station][commands]") {
  CommandTable t;
  Changes ch;
  SendBoundToA(t, "bound", ch);
  CHECK(t.Reinstalled("ship1", "A", "B", /*previous_online=*/false, kT0, ch).empty());  // its dispatch is out
  CHECK_FALSE(t.BoundElsewhere("bound", "A"));
  REQUIRE(t.BoundElsewhere("bound", "B"));
  t.OnStaleBinding("bound", t.Generation("bound"), kT0 + absl::Seconds(1));
  // Neither lost nor backed off: sent again now (the dispatcher's gate binds it to B).
  std::vector<Dispatch> d = t.TakeDue(kT0 + absl::Seconds(1), SendAll, ch);
  REQUIRE(d.size() == 1);
  CHECK(d[0].id == "bound");
  CHECK(t.Find("bound")->state() == proto::STATE_SENT);
  // That dispatch gets no answer: the earlier one reached nobody, so it is not lost.
  t.OnTimeout("bound", t.Generation("bound"), kT0 + absl::Seconds(3));
  CHECK(t.TakeDue(kT0 + absl::Seconds(3), SendAll, ch).empty());
  CHECK(t.Find("bound")->state() == proto::STATE_SENT);
}

TEST_CASE("a dispatch that was never sent is no delivery and is tried again with backoff", "[station][commands]") {
  CommandTable t;
  t.Add(Queued("unsent"), kT0);
  Changes ch;
  REQUIRE(t.TakeDue(kT0, SendAll, ch).size() == 1);
  t.OnNotSent("unsent", t.Generation("unsent"), kT0);
  // Not at once (the broker connection is down), and not parked: later, by itself.
  CHECK(t.TakeDue(kT0, SendAll, ch).empty());
  std::vector<Dispatch> again = t.TakeDue(kT0 + absl::Minutes(1), SendAll, ch);
  REQUIRE(again.size() == 1);
  t.OnNotSent("unsent", t.Generation("unsent"), kT0 + absl::Minutes(1));
  // It reached no installation: a reinstall keeps it for the new one.
  CHECK(t.Reinstalled("ship1", "A", "B", /*previous_online=*/false, kT0 + absl::Minutes(2), ch).empty());
  CHECK(t.Find("unsent")->state() == proto::STATE_SENT);
}

TEST_CASE("a gate parks commands without sending them", "[station][commands]") {
  CommandTable t;
  t.Add(Queued("c1"), kT0);
  Changes ch;
  CHECK(t.TakeDue(kT0, [](const proto::CommandState&) { return Gate::kPark; }, ch).empty());
  CHECK(t.Find("c1")->state() == proto::STATE_QUEUED);
  CHECK(t.Find("c1")->attempts() == 0);
  t.Unpark("ship1", kT0 + absl::Seconds(1));
  CHECK(t.TakeDue(kT0 + absl::Seconds(1), SendAll, ch).size() == 1);
}

TEST_CASE("an undelivered command expires, and a late result still tells the truth", "[station][commands]") {
  CommandTable t;
  const int64_t expires = absl::ToUnixMillis(kT0 + absl::Seconds(10));
  t.Add(Queued("c1", "ship1", expires), kT0);
  Changes ch;
  REQUIRE(t.TakeDue(kT0, SendAll, ch).size() == 1);
  t.OnNoResponders("c1", t.Generation("c1"));
  // Parked, yet due at its expiry.
  CHECK(t.NextDue() == absl::FromUnixMillis(expires + 1));
  CHECK(t.TakeDue(kT0 + absl::Seconds(11), SendAll, ch).empty());
  CHECK(t.Find("c1")->state() == proto::STATE_EXPIRED);
  // Why, in the ledger: nobody listened at the node's subjects, so it did not run.
  CHECK(t.Find("c1")->result().outcome() == proto::OUTCOME_ERROR);
  CHECK_THAT(t.Find("c1")->result().error(), Catch::Matchers::StartsWith("expired at "));
  CHECK_THAT(t.Find("c1")->result().error(), Catch::Matchers::EndsWith(" before it reached ship1: it did not run"));
  REQUIRE(ch.writes.size() == 1);
  CHECK(CommitAll(t, ch) == std::vector<std::string>{"c1"});
  // The node did get it after all: its result overrides "expired".
  CHECK(t.OnResult("c1", "ship1", Result("c1", proto::OUTCOME_SUCCEEDED), kT0 + absl::Seconds(12), ch) ==
        CommandTable::ResultFate::kApplied);
  CHECK(t.Find("c1")->state() == proto::STATE_SUCCEEDED);
}

TEST_CASE("a command never sent expires saying it did not run, and a late received clears what the station said",
          "[station][commands]") {
  CommandTable t;
  const int64_t expires = absl::ToUnixMillis(kT0 + absl::Seconds(10));
  t.Add(Queued("parked", "ship1", expires), kT0);
  t.Add(Queued("sent", "ship1", expires), kT0);
  Changes ch;
  // One is held back (the node offline, say), the other sent and never answered.
  const auto gate = [](const proto::CommandState& s) { return s.id() == "parked" ? Gate::kPark : Gate::kSend; };
  REQUIRE(t.TakeDue(kT0, gate, ch).size() == 1);
  t.OnTimeout("sent", t.Generation("sent"), kT0 + absl::Seconds(1));  // it may have arrived
  CHECK(t.TakeDue(kT0 + absl::Seconds(11), gate, ch).empty());
  REQUIRE(t.Find("parked")->state() == proto::STATE_EXPIRED);
  CHECK(t.Find("parked")->attempts() == 0);
  CHECK_THAT(t.Find("parked")->result().error(), Catch::Matchers::EndsWith("before it reached ship1: it did not run"));
  CHECK(t.Find("parked")->result().finished_unix_ms() == absl::ToUnixMillis(kT0 + absl::Seconds(11)));
  REQUIRE(t.Find("sent")->state() == proto::STATE_EXPIRED);
  CHECK_THAT(t.Find("sent")->result().error(),
             Catch::Matchers::Contains("with no answer from ship1 (sent 1 time): it did not run unless ship1 took it"));
  // The node had taken it: it runs now, and the station's "expired" is no longer the word on it.
  t.OnReply("sent", t.Generation("sent"), Received("sent"), kT0 + absl::Seconds(12), ch);
  CHECK(t.Find("sent")->state() == proto::STATE_RUNNING);
  CHECK_FALSE(t.Find("sent")->has_result());
}

TEST_CASE("a running command whose result is late is asked about again", "[station][commands]") {
  CommandTable t({.result_grace = absl::Seconds(10)});
  t.Add(Queued("c1", "ship1", 0, /*timeout_ms=*/5000), kT0);
  Changes ch;
  REQUIRE(t.TakeDue(kT0, SendAll, ch).size() == 1);
  t.OnReply("c1", t.Generation("c1"), Received("c1"), kT0, ch);
  CHECK(t.NextDue() == kT0 + absl::Seconds(15));
  CHECK(t.TakeDue(kT0 + absl::Seconds(14), SendAll, ch).empty());
  std::vector<Dispatch> d = t.TakeDue(kT0 + absl::Seconds(15), SendAll, ch);
  REQUIRE(d.size() == 1);
  // The node answers from its record: the result comes with the reply.
  t.OnReply("c1", t.Generation("c1"), Result("c1", proto::OUTCOME_FAILED), kT0 + absl::Seconds(15), ch);
  CHECK(t.Find("c1")->state() == proto::STATE_FAILED);
}

TEST_CASE("cancel ends undelivered commands only", "[station][commands]") {
  CommandTable t;
  t.Add(Queued("queued"), kT0);
  t.Add(Queued("inflight"), kT0);
  t.Add(Queued("running"), kT0);
  Changes ch;
  REQUIRE(t.TakeDue(kT0, [](const proto::CommandState& c) { return c.id() == "queued" ? Gate::kPark : Gate::kSend; },
                    ch).size() == 2);
  t.OnReply("running", t.Generation("running"), Received("running"), kT0, ch);
  CHECK(t.Cancel("queued", kT0, ch).ok());
  CHECK(t.Find("queued")->state() == proto::STATE_CANCELED);
  CHECK(absl::IsFailedPrecondition(t.Cancel("inflight", kT0, ch)));
  CHECK(absl::IsFailedPrecondition(t.Cancel("running", kT0, ch)));
  const absl::Status again = t.Cancel("queued", kT0, ch);
  CHECK(absl::IsFailedPrecondition(again));
  CHECK(again.message() == "command queued already canceled");
  CHECK(absl::IsNotFound(t.Cancel("nope", kT0, ch)));
}

TEST_CASE("a failed ledger write is not durable and is written again", "[station][commands]") {
  CommandTable t;
  t.Add(Queued("c1"), kT0);
  Changes ch;
  REQUIRE(t.TakeDue(kT0, SendAll, ch).size() == 1);
  REQUIRE(t.OnResult("c1", "ship1", Result("c1", proto::OUTCOME_SUCCEEDED), kT0, ch) ==
          CommandTable::ResultFate::kApplied);
  CHECK(CommitAll(t, ch, /*ok=*/false).empty());  // disk full: nobody is answered
  CHECK_FALSE(t.Durable("c1"));
  // Not forgotten while its final word is not in the ledger.
  t.Housekeep(kT0 + absl::Hours(1), ch);
  REQUIRE(ch.writes.size() == 1);  // written again
  CHECK(ch.writes[0].record.state() == proto::STATE_SUCCEEDED);
  CHECK(t.Find("c1") != nullptr);
  CHECK(CommitAll(t, ch) == std::vector<std::string>{"c1"});
  CHECK(t.Durable("c1"));
  t.Housekeep(kT0 + absl::Hours(2), ch);
  CHECK(t.Find("c1") == nullptr);  // now it may go
}

TEST_CASE("a state change is written without the envelope the ledger holds, a re-bound one with it",
          "[station][commands]") {
  CommandTable t;
  proto::CommandState q = Queued("c1");
  q.mutable_command()->add_argv("uptime");
  t.Add(q, kT0);
  t.Add(Queued("c2"), kT0);
  Changes ch;
  // c2 is bound to its node's installation on its way out (Core::BindLocked).
  const auto bind_c2 = [](proto::CommandState& c) {
    if (c.id() == "c2") c.mutable_command()->set_target_instance("inst-2");
    return Gate::kSend;
  };
  REQUIRE(t.TakeDue(kT0, bind_c2, ch).size() == 2);
  REQUIRE(t.OnResult("c1", "ship1", Result("c1", proto::OUTCOME_SUCCEEDED, "up"), kT0, ch) ==
          CommandTable::ResultFate::kApplied);
  REQUIRE(t.OnResult("c2", "ship1", Result("c2", proto::OUTCOME_SUCCEEDED, "up"), kT0, ch) ==
          CommandTable::ResultFate::kApplied);
  REQUIRE(ch.writes.size() == 2);
  // c1: the ledger holds its envelope as it is: the record alone.
  CHECK(ch.writes[0].record.id() == "c1");
  CHECK(ch.writes[0].record.state() == proto::STATE_SUCCEEDED);
  CHECK(ch.writes[0].record.result().stdout() == "up");
  CHECK_FALSE(ch.writes[0].record.has_command());
  // The table keeps it whole (answers about the command carry it).
  REQUIRE(t.Find("c1")->has_command());
  CHECK(t.Find("c1")->command().argv(0) == "uptime");
  // c2 was bound since: its envelope goes with the write.
  CHECK(ch.writes[1].record.id() == "c2");
  REQUIRE(ch.writes[1].record.has_command());
  CHECK(ch.writes[1].record.command().target_instance() == "inst-2");
  CHECK(CommitAll(t, ch) == std::vector<std::string>{"c1", "c2"});

  // Loaded at start: its ledger may keep envelopes inside the records (before schema
  // step 7), so its writes carry it.
  t.Add(Queued("old"), kT0, /*fresh=*/false);
  REQUIRE(t.TakeDue(kT0, SendAll, ch).size() == 1);
  REQUIRE(t.OnResult("old", "ship1", Result("old", proto::OUTCOME_SUCCEEDED, "up"), kT0, ch) ==
          CommandTable::ResultFate::kApplied);
  REQUIRE(ch.writes.size() == 1);
  CHECK(ch.writes[0].record.has_command());
}

TEST_CASE("a copy chunk's payload leaves the table at its end and goes to that write alone",
          "[station][commands]") {
  CommandTable t;
  proto::CommandState q = Queued("k1");
  q.mutable_command()->set_method(kMethodCopy);
  q.mutable_command()->set_payload(std::string(64 << 10, 'c'));
  t.Add(q, kT0);
  Changes ch;
  std::vector<Dispatch> d = t.TakeDue(kT0, SendAll, ch);
  REQUIRE(d.size() == 1);
  proto::Envelope sent;
  REQUIRE(sent.ParseFromString(d[0].wire));
  CHECK(sent.payload().size() == (64u << 10));  // sent whole
  CHECK(sent.id() == "k1");
  t.Housekeep(kT0 + absl::Milliseconds(1), ch);
  CHECK(CommitAll(t, ch).empty());
  // Until its end the table keeps it (a restart or a retry sends it again).
  CHECK(t.Find("k1")->command().payload().size() == (64u << 10));
  REQUIRE(t.OnResult("k1", "ship1", Result("k1", proto::OUTCOME_SUCCEEDED, "have 65536\n"), kT0, ch) ==
          CommandTable::ResultFate::kApplied);
  REQUIRE(ch.writes.size() == 1);
  // The write takes it (the ledger drops it from its row); the table keeps none, so an
  // answer about the chunk does not carry it back to its sender.
  CHECK(ch.writes[0].record.command().payload().size() == (64u << 10));
  CHECK(t.Find("k1")->command().payload().empty());
  CHECK(t.Find("k1")->command().method() == kMethodCopy);
  CHECK(CommitAll(t, ch, /*ok=*/false).empty());
  // Written again after a failed write: without it (the ledger drops it all the same).
  t.Housekeep(kT0 + absl::Hours(1), ch);
  REQUIRE(ch.writes.size() == 1);
  CHECK(ch.writes[0].record.command().payload().empty());
  CHECK(CommitAll(t, ch) == std::vector<std::string>{"k1"});
}

TEST_CASE("finished commands are forgotten after keep_finished, large outputs once committed",
          "[station][commands]") {
  CommandTable t({.keep_finished = absl::Seconds(30), .keep_output_bytes = 8});
  t.Add(Queued("small"), kT0);
  t.Add(Queued("large"), kT0);
  Changes ch;
  REQUIRE(t.TakeDue(kT0, SendAll, ch).size() == 2);
  t.OnResult("small", "ship1", Result("small", proto::OUTCOME_SUCCEEDED, "tiny"), kT0, ch);
  t.OnResult("large", "ship1", Result("large", proto::OUTCOME_SUCCEEDED, "far too long"), kT0, ch);
  CHECK_FALSE(t.OutputInLedgerOnly("large"));  // not committed yet: kept
  CommitAll(t, ch);
  size_t bytes = 0;
  CHECK(t.OutputInLedgerOnly("large", &bytes));
  CHECK(bytes == 12);
  CHECK(t.Find("large")->result().stdout().empty());
  CHECK(t.Find("small")->result().stdout() == "tiny");
  t.Housekeep(kT0 + absl::Seconds(30), ch);
  CHECK(t.Find("small") != nullptr);
  t.Housekeep(kT0 + absl::Seconds(31), ch);
  CHECK(t.Find("small") == nullptr);
  CHECK(t.Find("large") == nullptr);
}

}  // namespace
}  // namespace steward::station
