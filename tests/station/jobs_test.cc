// JobTable (station/jobs.h): staged rollouts, splayed runs and continuous jobs over a
// real CommandTable, with an injected clock and the ledger's commits played by hand.
#include "station/jobs.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/protocol.h"

namespace steward::station {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

std::string Node(int i) { return absl::StrFormat("n%02d", i); }

// A station in miniature: the command table, the job table, and the ledger's commits.
struct Station {
  CommandTable commands;
  JobTable jobs{"station"};
  absl::Time now = kT0;
  bool fail_job_writes = false;
  std::vector<std::string> log;
  std::set<std::string> ran;  // nodes whose command was dispatched, ever

  // Commits every command write in `changes`.
  void Commit(Changes& changes) {
    for (const CommandWrite& w : changes.writes) commands.Committed(w.record.id(), w.seq, true);
    changes = Changes{};
  }

  // Does what `work` asks: job writes commit (or fail), held commands are let go.
  void Do(JobTable::Work work) {
    while (!work.writes.empty() || !work.release.empty()) {
      JobTable::Work next;
      for (const std::string& id : work.release) commands.Release(id, now);
      for (const proto::Job& j : work.writes) jobs.Written(j.id(), !fail_job_writes, next);
      for (std::string& l : work.log) log.push_back(std::move(l));
      for (std::string& l : next.log) log.push_back(std::move(l));
      next.log.clear();
      work = std::move(next);
    }
  }

  // Launches `job` (its targets filled here, one per node, in batches from the spec) as
  // JobRunner does: follow, then the commands reach the table once the launch commits.
  proto::Job Launch(proto::Job job, int nodes) {
    job.set_id("J1");
    std::vector<int> sizes = job.has_rollout() ? PlanBatches(job.rollout(), nodes) : std::vector<int>{nodes};
    int i = 0;
    for (size_t b = 0; b < sizes.size(); ++b) {
      for (int k = 0; k < sizes[b]; ++k, ++i) {
        proto::JobTarget* t = job.add_targets();
        t->set_node(Node(i + 1));
        t->set_command_id(absl::StrCat("c", Node(i + 1)));
        t->set_batch(static_cast<int>(b));
      }
    }
    if (job.has_rollout()) {
      job.set_state(proto::JOB_RUNNING);
      job.mutable_progress()->set_released(1);
      job.mutable_progress()->add_batch_released_unix_ms(absl::ToUnixMillis(now));
    }
    jobs.Add(job, now);
    for (const proto::JobTarget& t : job.targets()) AddCommand(t);
    JobTable::Work w;
    jobs.Written(job.id(), true, w);
    Do(std::move(w));
    return job;
  }

  void AddCommand(const proto::JobTarget& t) {
    proto::CommandState s;
    s.set_id(t.command_id());
    s.set_node(t.node());
    s.set_request_id("J1");
    s.set_state(proto::STATE_QUEUED);
    s.mutable_command()->set_id(t.command_id());
    s.mutable_command()->set_timeout_ms(60'000);
    s.mutable_command()->set_expires_unix_ms(absl::ToUnixMillis(kT0 + absl::Hours(24)));
    commands.Add(s, now);
    commands.Committed(t.command_id(), 0, true);
  }

  // The dispatcher: sends what is due and not held; each node answers "received".
  std::vector<std::string> Dispatch(const std::set<std::string>& offline = {}) {
    Changes changes;
    std::vector<station::Dispatch> sends = commands.TakeDue(
        now, [this](const proto::CommandState& c) { return jobs.Held(c.id()) ? Gate::kPark : Gate::kSend; }, changes);
    std::vector<std::string> nodes;
    for (const station::Dispatch& d : sends) {
      const std::string node = commands.Find(d.id)->node();
      if (offline.count(node) > 0) {
        commands.OnNoResponders(d.id, d.gen);
        continue;
      }
      proto::Ack received;
      received.set_envelope_id(d.id);
      received.set_stage(proto::STAGE_RECEIVED);
      commands.OnReply(d.id, d.gen, received, now, changes);
      nodes.push_back(node);
      ran.insert(node);
    }
    Commit(changes);
    std::sort(nodes.begin(), nodes.end());
    return nodes;
  }

  // Node `node`'s command ends with `outcome` (committed).
  void End(const std::string& node, proto::Outcome outcome) {
    proto::Ack r;
    r.set_envelope_id(absl::StrCat("c", node));
    r.set_stage(proto::STAGE_RESULT);
    r.set_outcome(outcome);
    Changes changes;
    REQUIRE(commands.OnResult(absl::StrCat("c", node), node, r, now, changes) == CommandTable::ResultFate::kApplied);
    Commit(changes);
  }

  void Tick() {
    Changes changes;
    JobTable::Work work;
    jobs.Tick(now, commands, changes, work);
    Commit(changes);
    Do(std::move(work));
  }

  proto::State StateOf(const std::string& node) const { return commands.Find(absl::StrCat("c", node))->state(); }
  const proto::Job& Job() const { return *jobs.Find("J1"); }
};

proto::Job Rollout(int canary, int batch, int abort_after = 0, double abort_percent = 0) {
  proto::Job job;
  proto::RolloutSpec* r = job.mutable_rollout();
  r->set_canary(canary);
  r->set_batch_size(batch);
  r->set_abort_after(abort_after);
  r->set_abort_percent(abort_percent);
  r->set_timed_out_fails(true);
  return job;
}

using V = std::vector<std::string>;

TEST_CASE("batches: a canary first, then N or P% of the targets", "[station][jobs]") {
  proto::RolloutSpec r;
  CHECK(PlanBatches(r, 5) == std::vector<int>{5});
  r.set_batch_size(2);
  CHECK(PlanBatches(r, 5) == std::vector<int>{2, 2, 1});
  r.set_canary(1);
  CHECK(PlanBatches(r, 5) == std::vector<int>{1, 2, 2});
  r.set_batch_size(0);
  r.set_batch_percent(10);
  CHECK(PlanBatches(r, 20) == std::vector<int>{1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1});
  r.set_canary(0);
  r.set_batch_percent(33);
  CHECK(PlanBatches(r, 10) == std::vector<int>{4, 4, 2});  // 3.3 rounds up
  r.set_canary(8);
  CHECK(PlanBatches(r, 5) == std::vector<int>{5});
  CHECK(PlanBatches(r, 0).empty());
}

TEST_CASE("abort criteria: a count, or a share of the targets reached exactly", "[station][jobs]") {
  proto::RolloutSpec r;
  r.set_abort_percent(15);
  CHECK_FALSE(ShouldAbort(r, 2, 20));
  CHECK(ShouldAbort(r, 3, 20));  // 15% of 20
  r.set_abort_percent(10);
  CHECK_FALSE(ShouldAbort(r, 1, 15));
  CHECK(ShouldAbort(r, 2, 15));  // 1.5 rounds up
  r.set_abort_percent(0);
  r.set_abort_after(3);
  CHECK_FALSE(ShouldAbort(r, 2, 100));
  CHECK(ShouldAbort(r, 3, 100));
  CHECK_FALSE(ShouldAbort(proto::RolloutSpec(), 50, 100));  // no criteria: never
  proto::JobCounts c;
  c.set_failed(1);
  c.set_timed_out(2);
  c.set_not_answered(4);
  r.set_timed_out_fails(false);
  CHECK(Failures(r, c) == 1);
  r.set_timed_out_fails(true);
  CHECK(Failures(r, c) == 3);
  r.set_not_answered_fails(true);
  CHECK(Failures(r, c) == 7);
}

TEST_CASE("a rollout releases batch after batch once each ended, and only after the write", "[station][jobs]") {
  Station s;
  s.Launch(Rollout(1, 2), 5);
  CHECK(s.jobs.held() == 4);
  CHECK(s.Dispatch() == V{"n01"});  // the canary only
  s.Tick();
  CHECK(s.Dispatch().empty());  // the canary runs: nothing more
  s.End("n01", proto::OUTCOME_SUCCEEDED);
  // The release is written first: while the write is on its way nothing goes out.
  s.fail_job_writes = true;
  s.Tick();
  CHECK(s.Dispatch().empty());
  CHECK(s.Job().progress().released() == 2);  // decided, not in effect
  s.fail_job_writes = false;
  s.Tick();  // the failed write is made again; now it commits and the batch goes
  CHECK(s.Dispatch() == V{"n02", "n03"});
  s.End("n02", proto::OUTCOME_SUCCEEDED);
  s.Tick();
  CHECK(s.Dispatch().empty());  // n03 still runs
  s.End("n03", proto::OUTCOME_SUCCEEDED);
  s.Tick();
  CHECK(s.Dispatch() == V{"n04", "n05"});
  s.End("n04", proto::OUTCOME_SUCCEEDED);
  s.End("n05", proto::OUTCOME_FAILED);
  s.Tick();
  CHECK(s.jobs.Find("J1") == nullptr);  // done, written, forgotten
  CHECK(s.jobs.held() == 0);
  CHECK(s.log.back() == "job J1 done");
}

TEST_CASE("a rollout aborts at exactly its threshold and cancels what was not sent", "[station][jobs]") {
  Station s;
  // 20 nodes, a canary and batches of 2; abort after 3 failures; n03, n06 and n09 fail.
  s.Launch(Rollout(1, 2, /*abort_after=*/3), 20);
  const std::set<std::string> fails = {"n03", "n06", "n09"};
  int rounds = 0;
  while (s.jobs.Find("J1") != nullptr && rounds++ < 50) {
    for (const std::string& n : s.Dispatch()) {
      s.End(n, fails.count(n) > 0 ? proto::OUTCOME_FAILED : proto::OUTCOME_SUCCEEDED);
      // Two failures are below the threshold: the rollout goes on.
      if (n == "n06") CHECK(s.Job().state() == proto::JOB_RUNNING);
    }
    s.Tick();
  }
  REQUIRE(s.jobs.Find("J1") == nullptr);
  // Batches: [n01] [n02 n03] [n04 n05] [n06 n07] [n08 n09] then stop.
  CHECK(s.ran == std::set<std::string>{"n01", "n02", "n03", "n04", "n05", "n06", "n07", "n08", "n09"});
  int succeeded = 0, failed = 0, canceled = 0;
  for (int i = 1; i <= 20; ++i) {
    const proto::State st = s.StateOf(Node(i));
    succeeded += st == proto::STATE_SUCCEEDED;
    failed += st == proto::STATE_FAILED;
    if (st == proto::STATE_CANCELED) {
      ++canceled;
      CHECK(s.commands.Find(absl::StrCat("c", Node(i)))->result().error() == "rollout aborted: 3 of 20 failed");
    }
  }
  CHECK(succeeded == 6);
  CHECK(failed == 3);
  CHECK(canceled == 11);
  CHECK(s.jobs.held() == 0);
  CHECK(s.log.back() == "job J1 aborted: rollout aborted: 3 of 20 failed");
}

TEST_CASE("an abort on a share counts timed-out commands when asked", "[station][jobs]") {
  Station s;
  // 15% of 20 is 3: one failed and two timed out.
  s.Launch(Rollout(0, 5, 0, /*abort_percent=*/15), 20);
  std::vector<std::string> first = s.Dispatch();
  REQUIRE(first.size() == 5);
  s.End("n01", proto::OUTCOME_FAILED);
  s.End("n02", proto::OUTCOME_TIMED_OUT);
  s.Tick();
  CHECK(s.Job().state() == proto::JOB_RUNNING);
  s.End("n03", proto::OUTCOME_TIMED_OUT);
  s.Tick();
  CHECK(s.jobs.Find("J1") == nullptr);
  // n04 and n05 were delivered and run: left to end. The 15 held ones are canceled.
  CHECK(s.StateOf("n04") == proto::STATE_RUNNING);
  CHECK(s.StateOf("n06") == proto::STATE_CANCELED);
  CHECK(s.StateOf("n20") == proto::STATE_CANCELED);
}

TEST_CASE("a rollout waits --batch-wait between batches", "[station][jobs]") {
  Station s;
  proto::Job job = Rollout(0, 1);
  job.mutable_rollout()->set_batch_wait_ms(30'000);
  s.Launch(job, 2);
  CHECK(s.Dispatch() == V{"n01"});
  s.End("n01", proto::OUTCOME_SUCCEEDED);
  s.Tick();
  CHECK(s.Job().state() == proto::JOB_WAITING);
  CHECK(s.Job().progress().next_release_unix_ms() == absl::ToUnixMillis(kT0 + absl::Seconds(30)));
  s.now += absl::Seconds(29);
  s.Tick();
  CHECK(s.Dispatch().empty());
  s.now += absl::Seconds(1);
  s.Tick();
  CHECK(s.Dispatch() == V{"n02"});
}

TEST_CASE("a batch past its timeout counts what did not answer, cancels it, and goes on", "[station][jobs]") {
  Station s;
  proto::Job job = Rollout(0, 2);
  job.mutable_rollout()->set_batch_timeout_ms(60'000);
  s.Launch(job, 4);
  // n01 is away: its command is parked. n02 answers.
  CHECK(s.Dispatch({"n01"}) == V{"n02"});
  s.End("n02", proto::OUTCOME_SUCCEEDED);
  s.now += absl::Seconds(59);
  s.Tick();
  CHECK(s.Dispatch().empty());
  s.now += absl::Seconds(1);
  s.Tick();
  CHECK(s.StateOf("n01") == proto::STATE_CANCELED);
  CHECK_THAT(s.commands.Find("cn01")->result().error(), Catch::StartsWith("rollout: no result within 1m"));
  CHECK(s.Job().progress().not_answered_size() == 1);
  s.Tick();  // the release decided with the timeout's write goes out with the next look
  CHECK(s.Dispatch() == V{"n03", "n04"});
}

TEST_CASE("not answered counts as a failure when the operator says so", "[station][jobs]") {
  Station s;
  proto::Job job = Rollout(0, 2, /*abort_after=*/1);
  job.mutable_rollout()->set_batch_timeout_ms(1000);
  job.mutable_rollout()->set_not_answered_fails(true);
  s.Launch(job, 4);
  s.Dispatch({"n01", "n02"});
  s.now += absl::Seconds(1);
  s.Tick();
  CHECK(s.jobs.Find("J1") == nullptr);
  CHECK(s.log.back() == "job J1 aborted: rollout aborted: 2 of 4 failed");
  CHECK(s.StateOf("n03") == proto::STATE_CANCELED);
}

TEST_CASE("a rollout loaded after a restart resumes where it was", "[station][jobs]") {
  // The ledger says: batches 1 and 2 of 3 released; batch 1 ended, n03 of batch 2 ended,
  // n04 still runs.
  proto::Job job = Rollout(0, 2);
  job.set_id("J1");
  job.set_state(proto::JOB_RUNNING);
  job.mutable_progress()->set_released(2);
  std::vector<proto::CommandState> states;
  Station s;
  for (int i = 1; i <= 6; ++i) {
    proto::JobTarget* t = job.add_targets();
    t->set_node(Node(i));
    t->set_command_id(absl::StrCat("c", Node(i)));
    t->set_batch((i - 1) / 2);
    s.AddCommand(*t);
    proto::CommandState st;
    st.set_id(t->command_id());
    st.set_state(i <= 3 ? proto::STATE_SUCCEEDED : proto::STATE_QUEUED);
    states.push_back(st);
  }
  s.jobs.Load(job, states, s.now);
  CHECK(s.jobs.held() == 2);  // batch 3 only
  CHECK(s.jobs.Held("cn05"));
  CHECK_FALSE(s.jobs.Held("cn04"));
  // Batch 1 and n03 ended before the restart: in this table they are gone (only
  // unfinished commands are loaded), and asked of the ledger only if the rollout needs
  // them: it does not, they were counted from the ledger's states.
  s.Tick();
  CHECK(s.Dispatch() == V{"n01", "n02", "n03", "n04"});  // this test table holds them all as queued
  s.End("n04", proto::OUTCOME_SUCCEEDED);
  s.Tick();
  CHECK(s.Dispatch() == V{"n05", "n06"});
}

TEST_CASE("a splayed run holds each command until its time, then is done", "[station][jobs]") {
  Station s;
  proto::Job job;
  job.set_id("J1");
  job.set_state(proto::JOB_RUNNING);
  job.set_splay_ms(60'000);
  for (int i = 1; i <= 3; ++i) {
    proto::JobTarget* t = job.add_targets();
    t->set_node(Node(i));
    t->set_command_id(absl::StrCat("c", Node(i)));
    t->set_release_unix_ms(absl::ToUnixMillis(kT0 + absl::Seconds(20 * (i - 1))));  // n01 at once
  }
  s.jobs.Add(job, s.now);
  for (const proto::JobTarget& t : job.targets()) s.AddCommand(t);
  JobTable::Work w;
  s.jobs.Written("J1", true, w);
  s.Do(std::move(w));
  CHECK(s.Dispatch() == V{"n01"});
  s.now += absl::Seconds(20);
  s.Tick();
  CHECK(s.Dispatch() == V{"n02"});
  CHECK(s.jobs.Find("J1") != nullptr);
  s.now += absl::Seconds(20);
  s.Tick();
  CHECK(s.Dispatch() == V{"n03"});
  s.Tick();
  CHECK(s.jobs.Find("J1") == nullptr);
}

TEST_CASE("a continuous job gives its command once per node, takes back a failed write, closes", "[station][jobs]") {
  Station s;
  proto::Job job;
  job.set_id("J1");
  job.set_continuous(true);
  job.set_state(proto::JOB_OPEN);
  job.set_expires_unix_ms(absl::ToUnixMillis(kT0 + absl::Hours(1)));
  s.Launch(job, 1);
  CHECK(s.jobs.Continuous() == V{"J1"});
  CHECK(s.jobs.Gave("J1", "n01"));
  proto::JobTarget t;
  t.set_node("n02");
  t.set_command_id("cn02");
  proto::Job record = s.jobs.AddTargets("J1", {t});
  CHECK(record.targets_size() == 2);
  CHECK(s.jobs.Continuous().empty());  // a write on its way
  JobTable::Work w;
  s.jobs.Written("J1", false, w);  // the commands were not stored: taken back
  CHECK_FALSE(s.jobs.Gave("J1", "n02"));
  CHECK(s.Job().targets_size() == 1);
  s.jobs.AddTargets("J1", {t});
  s.jobs.Written("J1", true, w);
  CHECK(s.jobs.Gave("J1", "n02"));
  // Closing takes no more nodes and cancels nothing (what was given stays given).
  Changes changes;
  JobTable::Work closing;
  REQUIRE(s.jobs.Close("J1", "alice", s.now, s.commands, changes, closing).ok());
  CHECK(changes.writes.empty());
  CHECK(closing.writes.front().state() == proto::JOB_CLOSED);
  CHECK(closing.writes.front().reason() == "closed by alice");
  s.Do(std::move(closing));
  CHECK(s.jobs.Find("J1") == nullptr);
  CHECK(absl::IsNotFound(s.jobs.Close("J1", "bob", s.now, s.commands, changes, w)));
}

TEST_CASE("a continuous job expires", "[station][jobs]") {
  Station s;
  proto::Job job;
  job.set_continuous(true);
  job.set_state(proto::JOB_OPEN);
  job.set_expires_unix_ms(absl::ToUnixMillis(kT0 + absl::Minutes(5)));
  s.Launch(job, 0);
  s.now += absl::Minutes(5);
  s.Tick();
  CHECK(s.jobs.Find("J1") == nullptr);
  CHECK(s.log.back() == "job J1 expired: expired");
}

TEST_CASE("closing a rollout cancels the batches not released", "[station][jobs]") {
  Station s;
  s.Launch(Rollout(0, 2), 6);
  CHECK(s.Dispatch() == V{"n01", "n02"});
  Changes changes;
  JobTable::Work w;
  REQUIRE(s.jobs.Close("J1", "alice", s.now, s.commands, changes, w).ok());
  s.Commit(changes);
  s.Do(std::move(w));
  CHECK(s.StateOf("n01") == proto::STATE_RUNNING);
  CHECK(s.StateOf("n03") == proto::STATE_CANCELED);
  CHECK(s.commands.Find("cn06")->result().error() == "rollout stopped by alice");
  CHECK(s.jobs.held() == 0);
}

TEST_CASE("a launch that was not stored is forgotten with its holds", "[station][jobs]") {
  Station s;
  proto::Job job = Rollout(0, 1);
  job.set_id("J1");
  job.set_state(proto::JOB_RUNNING);
  job.mutable_progress()->set_released(1);
  for (int i = 1; i <= 3; ++i) {
    proto::JobTarget* t = job.add_targets();
    t->set_node(Node(i));
    t->set_command_id(absl::StrCat("c", Node(i)));
    t->set_batch(i - 1);
  }
  s.jobs.Add(job, s.now);
  CHECK(s.jobs.held() == 2);
  JobTable::Work w;
  s.jobs.Written("J1", false, w);
  CHECK(s.jobs.held() == 0);
  CHECK(s.jobs.Find("J1") == nullptr);
}

}  // namespace
}  // namespace steward::station
