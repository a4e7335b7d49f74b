// Runbooks (issue 13 part 5), pure: Decide (where a run is, from the commands it made)
// and RunbookTable with a real CommandTable (the job keeps its node's slot between
// steps; busy, preemption and cancel). No broker, no ledger, an explicit clock.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/protocol.h"
#include "common/runbook.h"
#include "station/commands.h"
#include "station/runbooks.h"
#include "tests/station/command_fixtures.h"

namespace steward::station {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

proto::Runbook Book(const std::string& text) {
  absl::StatusOr<proto::Runbook> rb = runbook::Parse(text, "test.toml");
  INFO(rb.status().ToString());
  REQUIRE(rb.ok());
  return *rb;
}

const char kTwoSteps[] = R"(
name = "two"
[[step]]
name = "stop"
run = ["stop-radar"]
[[step]]
name = "start"
run = ["start-radar"]
)";

RunbookCommand Cmd(const std::string& id, int step, proto::State state, absl::Time finished = kT0, bool check = false,
                   int attempt = 0) {
  RunbookCommand c;
  c.id = id;
  c.ref.set_step(step);
  c.ref.set_check(check);
  c.ref.set_attempt(attempt);
  c.state = state;
  c.finished = IsTerminal(state) ? finished : absl::InfiniteFuture();
  return c;
}

TEST_CASE("a runbook file reads into steps, and bad files are refused naming the place", "[station][runbook]") {
  proto::Runbook rb = Book(R"(
name = "radar"
priority = 5
on_busy = "preempt"
[[step]]
name = "restart"
shell = "systemctl restart radar"
timeout = "1m"
on_failure = "continue"
[step.check]
run = ["systemctl", "is-active", "radar"]
retries = 3
interval = "2s"
observe = "10s"
)");
  REQUIRE(rb.steps_size() == 1);
  CHECK(rb.priority() == 5);
  CHECK(rb.on_busy() == proto::ON_BUSY_PREEMPT);
  const proto::RunbookStep& s = rb.steps(0);
  CHECK(s.action().shell());
  CHECK(s.action().timeout_ms() == 60'000);
  CHECK(s.on_failure() == proto::ON_FAILURE_CONTINUE);
  CHECK(s.check().retries() == 3);
  CHECK(s.check().observe_ms() == 10'000);
  CHECK(runbook::ActionTemplate(s.check().action()).argv_size() == 3);
  CHECK(runbook::ActionTemplate(s.action()).domain() == "operatingsystem");

  auto refused = [](const std::string& text) {
    absl::StatusOr<proto::Runbook> r = runbook::Parse(text, "bad.toml");
    REQUIRE_FALSE(r.ok());
    return std::string(r.status().message());
  };
  CHECK_THAT(refused("name = \"x\"\n"), Catch::Contains("no step"));
  CHECK_THAT(refused("[[step]]\nname = \"a\"\n"), Catch::Contains("step 1 (a) has no command"));
  CHECK_THAT(refused("[[step]]\nrun = [\"a\"]\nshell = \"b\"\n"), Catch::Contains("both `run` and `shell`"));
  CHECK_THAT(refused("[[step]]\nrun = [\"a\"]\nretry = 3\n"), Catch::Contains("bad.toml:3: unknown key `retry`"));
  CHECK_THAT(refused("[[step]]\nrun = [\"a\"]\ntimeout = \"soon\"\n"), Catch::Contains("not a duration"));
  CHECK_THAT(refused("[[step]]\nrun = [\"a\"]\non_failure = \"ignore\"\n"), Catch::Contains("`stop` or `continue`"));
  CHECK_THAT(refused("[[step]]\nrun = [\"a\"]\n[step.check]\nrun = [\"b\"]\nobserve = \"5s\"\n"),
             Catch::Contains("needs an interval"));
  CHECK_THAT(refused("[[step\n"), Catch::Contains("bad.toml:1"));
}

TEST_CASE("a run makes each step after the one before it succeeded", "[station][runbook]") {
  const proto::Runbook rb = Book(kTwoSteps);
  RunbookNext n = Decide(rb, {}, kT0);
  CHECK(n.kind == RunbookNext::kMake);
  CHECK(n.ref.step() == 0);
  n = Decide(rb, {Cmd("a", 0, proto::STATE_RUNNING)}, kT0);
  CHECK(n.kind == RunbookNext::kWait);
  CHECK(n.reason == "step 1 (stop): running");
  n = Decide(rb, {Cmd("a", 0, proto::STATE_SUCCEEDED)}, kT0);
  CHECK(n.kind == RunbookNext::kMake);
  CHECK(n.ref.step() == 1);
  n = Decide(rb, {Cmd("a", 0, proto::STATE_SUCCEEDED), Cmd("b", 1, proto::STATE_SUCCEEDED)}, kT0);
  CHECK(n.kind == RunbookNext::kEnd);
  CHECK(n.state == proto::RUN_SUCCEEDED);
  CHECK(n.reason == "2 steps passed");
}

TEST_CASE("a failed step stops the run, or is noted and passed with on_failure continue", "[station][runbook]") {
  proto::Runbook rb = Book(kTwoSteps);
  RunbookCommand failed = Cmd("a", 0, proto::STATE_FAILED);
  failed.error = "exit 3";
  RunbookNext n = Decide(rb, {failed}, kT0);
  CHECK(n.kind == RunbookNext::kEnd);
  CHECK(n.state == proto::RUN_FAILED);
  CHECK(n.reason == "step 1 (stop) failed: failed: exit 3");
  rb.mutable_steps(0)->set_on_failure(proto::ON_FAILURE_CONTINUE);
  n = Decide(rb, {failed}, kT0);
  CHECK(n.kind == RunbookNext::kMake);
  CHECK(n.ref.step() == 1);
  n = Decide(rb, {failed, Cmd("b", 1, proto::STATE_SUCCEEDED)}, kT0);
  CHECK(n.state == proto::RUN_SUCCEEDED);
  CHECK(n.reason == "1 of 2 steps passed; failed and continued: step 1 (stop): failed: exit 3");
  // Canceled or preempted ends the run whatever on_failure says; busy at the start is busy.
  CHECK(Decide(rb, {Cmd("a", 0, proto::STATE_CANCELED)}, kT0).state == proto::RUN_CANCELED);
  CHECK(Decide(rb, {Cmd("a", 0, proto::STATE_PREEMPTED)}, kT0).state == proto::RUN_PREEMPTED);
  CHECK(Decide(rb, {Cmd("a", 0, proto::STATE_BUSY)}, kT0).state == proto::RUN_BUSY);
  CHECK(Decide(rb, {failed, Cmd("b", 1, proto::STATE_BUSY)}, kT0).state == proto::RUN_PREEMPTED);
}

TEST_CASE("a check is tried again after its interval, up to its retries, then observed", "[station][runbook]") {
  const proto::Runbook rb = Book(R"(
[[step]]
run = ["start"]
[step.check]
run = ["is-up"]
retries = 2
interval = "2s"
observe = "5s"
)");
  const absl::Time t1 = kT0 + absl::Seconds(1);
  std::vector<RunbookCommand> made = {Cmd("s", 0, proto::STATE_SUCCEEDED, t1)};
  RunbookNext n = Decide(rb, made, t1);
  CHECK(n.kind == RunbookNext::kMake);  // the first try right after the step
  CHECK(n.ref.check());
  CHECK(n.ref.attempt() == 0);
  CHECK(n.at == t1);
  made.push_back(Cmd("c0", 0, proto::STATE_FAILED, t1 + absl::Seconds(1), true, 0));
  n = Decide(rb, made, t1);
  CHECK(n.ref.attempt() == 1);
  CHECK(n.at == t1 + absl::Seconds(3));  // its interval after the failed try
  made.push_back(Cmd("c1", 0, proto::STATE_FAILED, t1 + absl::Seconds(4), true, 1));
  made.push_back(Cmd("c2", 0, proto::STATE_SUCCEEDED, t1 + absl::Seconds(7), true, 2));
  // Passed on the last allowed try: now observed for 5 s, a check every 2 s.
  n = Decide(rb, made, t1);
  CHECK(n.kind == RunbookNext::kMake);
  CHECK(n.ref.attempt() == 3);
  CHECK(n.at == t1 + absl::Seconds(9));
  CHECK_THAT(n.reason, Catch::Contains("observing until"));
  made.push_back(Cmd("c3", 0, proto::STATE_SUCCEEDED, t1 + absl::Seconds(10), true, 3));
  CHECK(Decide(rb, made, t1).kind == RunbookNext::kMake);
  SECTION("it stays up for the whole observe period: passed") {
    made.push_back(Cmd("c4", 0, proto::STATE_SUCCEEDED, t1 + absl::Seconds(12), true, 4));
    n = Decide(rb, made, t1);
    CHECK(n.kind == RunbookNext::kEnd);
    CHECK(n.state == proto::RUN_SUCCEEDED);
  }
  SECTION("it fails while observed: the step fails") {
    made.push_back(Cmd("c4", 0, proto::STATE_FAILED, t1 + absl::Seconds(12), true, 4));
    n = Decide(rb, made, t1);
    CHECK(n.state == proto::RUN_FAILED);
    CHECK_THAT(n.reason, Catch::Contains("its check failed while observed (try 5"));
  }
  SECTION("one failure more than its retries: the step fails") {
    made.resize(3);
    made.push_back(Cmd("c2", 0, proto::STATE_FAILED, t1 + absl::Seconds(7), true, 2));
    n = Decide(rb, made, t1);
    CHECK(n.state == proto::RUN_FAILED);
    CHECK_THAT(n.reason, Catch::Contains("its check failed 3 times"));
  }
}

// --- RunbookTable with a real CommandTable ---

proto::Ack Ack(const std::string& id, proto::Stage stage, proto::Outcome outcome = proto::OUTCOME_UNSPECIFIED) {
  proto::Ack a;
  a.set_envelope_id(id);
  a.set_stage(stage);
  a.set_outcome(outcome);
  return a;
}

Gate SendAll(const proto::CommandState&) { return Gate::kSend; }

// The station's side, as JobRunner does it: each Make becomes a command in the table.
struct Station {
  CommandTable commands;
  RunbookTable runbooks;
  Changes changes;
  int next_id = 0;
  std::vector<std::string> log;

  std::vector<std::string> Tick(absl::Time now) {
    RunbookTable::Work work;
    runbooks.Tick(now, commands, work);
    std::vector<std::string> made;
    for (const RunbookTable::Make& m : work.make) {
      proto::CommandState s = Queued(absl::StrCat("c", next_id++), m.node);
      s.set_request_id(m.job);
      *s.mutable_control() = m.control;
      *s.mutable_runbook() = m.ref;
      s.mutable_command()->MergeFrom(m.command);
      commands.Add(s, now);
      runbooks.Made(m.job, m.node, s.id(), m.ref, true, now, commands, changes);
      made.push_back(s.id());
    }
    for (const proto::Job& j : work.writes) runbooks.Written(j.id(), true);
    for (const std::string& l : work.log) log.push_back(l);
    return made;
  }
  // Sends what is due; the node receives it.
  std::vector<std::string> Run(absl::Time now) {
    std::vector<std::string> out;
    for (const Dispatch& d : commands.TakeDue(now, SendAll, changes)) {
      commands.OnReply(d.id, d.gen, Ack(d.id, proto::STAGE_RECEIVED), now, changes);
      out.push_back(d.id);
    }
    return out;
  }
  void Result(const std::string& id, proto::Outcome o, absl::Time now) {
    commands.OnResult(id, "ship1", Ack(id, proto::STAGE_RESULT, o), now, changes);
  }
  proto::State StateOf(const std::string& id) { return commands.Find(id)->state(); }
};

proto::Job RunbookJob(const std::string& id, const proto::Runbook& rb) {
  proto::Job job;
  job.set_id(id);
  job.set_operator_("alice");
  job.set_state(proto::JOB_RUNNING);
  *job.mutable_runbook() = rb;
  job.add_targets()->set_node("ship1");
  return job;
}

proto::CommandState Exclusive(const std::string& id, proto::OnBusy on_busy, int priority = 0) {
  proto::CommandState s = Queued(id, "ship1");
  s.mutable_command()->add_argv("other-" + id);
  s.mutable_control()->set_exclusive(true);
  s.mutable_control()->set_on_busy(on_busy);
  s.mutable_control()->set_priority(priority);
  return s;
}

TEST_CASE("a runbook keeps its node's slot between steps, and lets it go at its end", "[station][runbook]") {
  Station st;
  st.runbooks.Add(RunbookJob("J", Book(kTwoSteps)));
  absl::Time now = kT0;
  CHECK(st.Tick(now) == std::vector<std::string>{"c0"});
  CHECK(st.Tick(now).empty());  // nothing more while step 1 runs
  CHECK(st.Run(now) == std::vector<std::string>{"c0"});
  CHECK(st.commands.SlotJob("ship1") == "J");
  st.Result("c0", proto::OUTCOME_SUCCEEDED, now += absl::Seconds(1));
  // Between steps: the job keeps the slot; another exclusive job is busy, naming it.
  CHECK(st.commands.SlotHolder("ship1").empty());
  CHECK(st.commands.SlotJob("ship1") == "J");
  st.commands.Add(Exclusive("x", proto::ON_BUSY_REJECT), now);
  st.commands.Add(Exclusive("q", proto::ON_BUSY_QUEUE), now);
  CHECK(st.Run(now).empty());
  CHECK(st.StateOf("x") == proto::STATE_BUSY);
  CHECK_THAT(st.commands.Find("x")->result().error(), Catch::Contains("busy with runbook job J"));
  // Step 2 goes straight in, ahead of the queued job.
  CHECK(st.Tick(now) == std::vector<std::string>{"c1"});
  CHECK(st.Run(now) == std::vector<std::string>{"c1"});
  CHECK(st.StateOf("q") == proto::STATE_QUEUED);
  st.Result("c1", proto::OUTCOME_SUCCEEDED, now += absl::Seconds(1));
  CHECK(st.Tick(now).empty());
  const proto::Job* job = st.runbooks.Find("J");
  CHECK(job == nullptr);  // ended and written
  CHECK(st.commands.SlotJob("ship1").empty());
  CHECK(st.Run(now) == std::vector<std::string>{"q"});  // the queue moves
  REQUIRE(st.log.size() == 1);
  CHECK(st.log[0] == "runbook job J on ship1: succeeded: 2 steps passed");
}

TEST_CASE("a higher priority preempts a runbook between its steps or during one, a lower one does not",
          "[station][runbook]") {
  Station st;
  proto::Runbook rb = Book(kTwoSteps);
  rb.set_priority(3);
  st.runbooks.Add(RunbookJob("J", rb));
  absl::Time now = kT0;
  st.Tick(now);
  st.Run(now);
  SECTION("between steps") {
    st.Result("c0", proto::OUTCOME_SUCCEEDED, now += absl::Seconds(1));
    st.commands.Add(Exclusive("low", proto::ON_BUSY_PREEMPT, 3), now);
    CHECK(st.Run(now).empty());
    CHECK(st.StateOf("low") == proto::STATE_BUSY);  // not higher: refused
    st.commands.Add(Exclusive("high", proto::ON_BUSY_PREEMPT, 4), now);
    CHECK(st.Run(now) == std::vector<std::string>{"high"});
    CHECK(st.Tick(now).empty());  // no step 2
    CHECK(st.runbooks.Find("J") == nullptr);
    REQUIRE(st.log.size() == 1);
    CHECK(st.log[0] == "runbook job J on ship1: preempted: preempted by high before step 2 (start)");
  }
  SECTION("during a step") {
    st.commands.Add(Exclusive("high", proto::ON_BUSY_PREEMPT, 4), now);
    CHECK(st.Run(now).empty());  // the step is asked to stop first
    REQUIRE(st.changes.kills.size() == 1);
    CHECK(st.changes.kills[0].id == "c0");
    st.Result("c0", proto::OUTCOME_CANCELED, now += absl::Seconds(1));
    CHECK(st.StateOf("c0") == proto::STATE_PREEMPTED);
    CHECK(st.Run(now) == std::vector<std::string>{"high"});
    CHECK(st.Tick(now).empty());
    CHECK(st.runbooks.Find("J") == nullptr);
    REQUIRE(st.log.size() == 1);
    CHECK_THAT(st.log[0], Catch::StartsWith("runbook job J on ship1: preempted: step 1 (stop): preempted"));
  }
}

TEST_CASE("a runbook meeting a busy node ends busy, or queues, as its on_busy says", "[station][runbook]") {
  Station st;
  absl::Time now = kT0;
  st.commands.Add(Exclusive("x", proto::ON_BUSY_REJECT), now);
  CHECK(st.Run(now) == std::vector<std::string>{"x"});
  proto::Runbook rb = Book(kTwoSteps);
  SECTION("reject") {
    st.runbooks.Add(RunbookJob("J", rb));
    st.Tick(now);
    st.Run(now);
    CHECK(st.StateOf("c0") == proto::STATE_BUSY);
    st.Tick(now);
    CHECK(st.runbooks.Find("J") == nullptr);
    CHECK_THAT(st.log.at(0), Catch::Contains("busy: step 1 (stop): busy: ship1 is busy with x"));
  }
  SECTION("queue") {
    rb.set_on_busy(proto::ON_BUSY_QUEUE);
    st.runbooks.Add(RunbookJob("J", rb));
    st.Tick(now);
    CHECK(st.Run(now).empty());
    st.Result("x", proto::OUTCOME_SUCCEEDED, now += absl::Seconds(1));
    CHECK(st.Run(now) == std::vector<std::string>{"c0"});
    CHECK(st.commands.SlotJob("ship1") == "J");
  }
}

TEST_CASE("closing a runbook job stops its running step and makes no more", "[station][runbook]") {
  Station st;
  st.runbooks.Add(RunbookJob("J", Book(kTwoSteps)));
  absl::Time now = kT0;
  st.Tick(now);
  st.Run(now);
  RunbookTable::Work work;
  REQUIRE(st.runbooks.Close("J", "bob", now, st.commands, st.changes, work).ok());
  REQUIRE(st.changes.kills.size() == 1);  // c0 is on its node: asked to stop there
  CHECK(st.changes.kills[0].id == "c0");
  REQUIRE(work.writes.size() == 1);
  CHECK(work.writes[0].state() == proto::JOB_CLOSED);
  CHECK(work.writes[0].runs(0).state() == proto::RUN_CANCELED);
  // Asked, not known to be stopped: the node may finish it first, and its own result says.
  CHECK(work.writes[0].runs(0).reason() ==
        "canceled by bob at step 1 (stop) (its node was asked to stop c0; that command's result says how it ended)");
  CHECK(st.commands.SlotJob("ship1").empty());
  CHECK(st.Tick(now).empty());
  st.runbooks.Written("J", true);
  CHECK(st.runbooks.Find("J") == nullptr);
  CHECK_FALSE(st.runbooks.Close("J", "bob", now, st.commands, st.changes, work).ok());
}

TEST_CASE("closing a runbook job whose step was never sent says so", "[station][runbook]") {
  Station st;
  st.runbooks.Add(RunbookJob("J", Book(kTwoSteps)));
  absl::Time now = kT0;
  st.Tick(now);  // c0 made, not sent
  RunbookTable::Work work;
  REQUIRE(st.runbooks.Close("J", "bob", now, st.commands, st.changes, work).ok());
  CHECK(st.changes.kills.empty());
  REQUIRE(work.writes.size() == 1);
  CHECK(work.writes[0].runs(0).reason() == "canceled by bob at step 1 (stop) (c0 was never sent)");
}

TEST_CASE("a step stored just after its run ended is refused at admission and never sent", "[station][runbook]") {
  Station st;
  st.runbooks.Add(RunbookJob("J", Book(kTwoSteps)));
  absl::Time now = kT0;
  RunbookTable::Work work;
  st.runbooks.Tick(now, st.commands, work);  // step 1 is being stored...
  REQUIRE(work.make.size() == 1);
  RunbookTable::Work closed;
  REQUIRE(st.runbooks.Close("J", "bob", now, st.commands, st.changes, closed).ok());  // ... when the job is closed
  proto::CommandState s = Queued("late", "ship1");
  *s.mutable_control() = work.make[0].control;
  *s.mutable_runbook() = work.make[0].ref;
  st.commands.Add(s, now);
  CHECK(st.Run(now).empty());
  CHECK(st.StateOf("late") == proto::STATE_BUSY);
  CHECK_THAT(st.commands.Find("late")->result().error(), Catch::Contains("runbook job J no longer runs on ship1"));
  CHECK(st.commands.SlotJob("ship1").empty());
  // The node's slot is free for others.
  st.commands.Add(Exclusive("x", proto::ON_BUSY_REJECT), now);
  CHECK(st.Run(now) == std::vector<std::string>{"x"});
}

TEST_CASE("a run that ended is written at once and stays ended after a restart", "[station][runbook]") {
  Station st;
  proto::Job job = RunbookJob("J", Book(kTwoSteps));
  job.add_targets()->set_node("ship2");
  st.runbooks.Add(job);
  absl::Time now = kT0;
  st.Tick(now);
  st.Run(now);
  st.Result("c0", proto::OUTCOME_SUCCEEDED, now += absl::Seconds(1));  // ship1 between steps
  st.commands.Add(Exclusive("high", proto::ON_BUSY_PREEMPT, 4), now);
  CHECK(st.Run(now) == std::vector<std::string>{"high"});
  RunbookTable::Work work;
  st.runbooks.Tick(now, st.commands, work);
  REQUIRE(work.progress.size() == 1);  // ship1's run ended; ship2's goes on
  const proto::Job written = work.progress[0];
  CHECK(written.runs(0).state() == proto::RUN_PREEMPTED);
  CHECK(written.runs(1).state() == proto::RUN_RUNNING);
  // A restart: ship1's run is not taken up again, and takes no slot.
  CommandTable commands;
  RunbookTable runbooks;
  proto::CommandState done = *st.commands.Find("c0");
  runbooks.Load(written, {done}, commands);
  CHECK(commands.SlotJob("ship1").empty());
  RunbookTable::Work after;
  runbooks.Tick(now, commands, after);
  for (const RunbookTable::Make& m : after.make) CHECK(m.node == "ship2");
}

TEST_CASE("after a restart a run goes on from its commands: a made step is never made again",
          "[station][runbook]") {
  CommandTable commands;
  RunbookTable runbooks;
  const proto::Runbook rb = Book(kTwoSteps);
  proto::CommandState done = Queued("c0", "ship1");
  done.set_request_id("J");
  done.mutable_runbook()->set_step(0);
  done.set_state(proto::STATE_SUCCEEDED);
  done.set_created_unix_ms(absl::ToUnixMillis(kT0));
  done.set_updated_unix_ms(absl::ToUnixMillis(kT0));
  runbooks.Load(RunbookJob("J", rb), {done}, commands);
  CHECK(commands.SlotJob("ship1") == "J");  // between steps when the station stopped
  RunbookTable::Work work;
  runbooks.Tick(kT0 + absl::Seconds(1), commands, work);
  REQUIRE(work.make.size() == 1);
  CHECK(work.make[0].ref.step() == 1);
  CHECK(work.make[0].control.slot_job() == "J");
}

}  // namespace
}  // namespace steward::station
