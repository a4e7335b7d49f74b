// Control policies end to end (issue 13) with real parts: nats-server, station,
// agents and stewardctl. Cancel of a running command (killed on its node within the
// grace, partial output kept, audited), exclusive jobs (busy with exit 75, queue,
// preempt by priority), and a queue that survives a station restart.
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/protocol.h"
#include "ctl/client.h"
#include "station/commands.h"
#include "tests/testing/cluster.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

namespace {

namespace fs = std::filesystem;

// `stewardctl send --no-wait ...` prints "NODE ID": the id.
std::string SendNoWait(Cluster& c, std::vector<std::string> args) {
  args.insert(args.begin(), {"send", "--no-wait"});
  RunResult r = c.Ctl(args);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find(' ') != std::string::npos);
  return r.out.substr(r.out.find(' ') + 1, 26);
}

// The command as the station has it now (reconnecting: the station may be restarting).
steward::proto::CommandState Show(Cluster& c, const std::string& id) {
  auto client = steward::ctl::Client::Connect({.nats = {.url = c.url()}});
  if (!client.ok()) return {};
  auto s = (*client)->Show({id}, "", absl::Seconds(5));
  if (!s.ok() || s->commands_size() == 0) return {};
  return s->commands(0);
}

steward::proto::State StateOf(Cluster& c, const std::string& id) { return Show(c, id).state(); }

bool Exists(const fs::path& p) { return fs::exists(p); }

// Alive and not a zombie (an orphan's zombie may wait for a subreaper).
bool Running(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

int ReadPid(const fs::path& p) {
  std::ifstream in(p);
  int pid = 0;
  in >> pid;
  return pid;
}

// A shell command that prints `word`, writes its pid (that of the sleep it becomes) to
// `pidfile`, and sleeps a minute.
std::vector<std::string> Sleeper(const std::string& word, const fs::path& pidfile) {
  return {"--shell", "--", absl::StrCat("echo ", word, "; echo $$ > ", pidfile.string(), ".tmp; mv ",
                                        pidfile.string(), ".tmp ", pidfile.string(), "; exec sleep 60")};
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("cancel of a running sleep 60 kills it on its node within the grace, keeping its output",
          "[integration][control]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path pidfile = c.dir().path() / "sleep.pid";
  const std::string id = SendNoWait(c, Concat({"ship1"}, Sleeper("started", pidfile)));
  REQUIRE(WaitUntil([&] { return Exists(pidfile); }, absl::Seconds(20)));
  const int pid = ReadPid(pidfile);
  REQUIRE(pid > 0);
  REQUIRE(WaitUntil([&] { return StateOf(c, id) == steward::proto::STATE_RUNNING; }, absl::Seconds(10)));

  const absl::Time start = absl::Now();
  RunResult r = c.Ctl({"cancel", id});
  const absl::Duration took = absl::Now() - start;
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains(absl::StrCat(id, " ship1 canceled")));
  CHECK_THAT(r.out, Catch::Contains("canceled by"));
  CHECK(took < absl::Seconds(5));  // SIGTERM ends sleep at once; the grace is 500ms
  // The process is gone (reaped by the agent), not left running.
  CHECK(WaitUntil([&] { return ::kill(pid, 0) != 0; }, absl::Seconds(5)));

  const steward::proto::CommandState s = Show(c, id);
  CHECK(s.state() == steward::proto::STATE_CANCELED);
  CHECK(s.result().stdout() == "started\n");  // the partial output is kept
  CHECK(s.result().term_signal() == SIGTERM);
  CHECK(s.marks().cancel_by() != "");

  // A second cancel is answered with what it came to; the operator's cancel is audited.
  r = c.Ctl({"cancel", id});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("already finished: canceled"));
  r = c.Ctl({"audit"});
  CHECK_THAT(r.out, Catch::Contains("cancel"));
  CHECK_THAT(r.out, Catch::Contains(id));

  // The cancel the station sent ship1 is a command of its own, which only the station
  // sends: retrying it is refused, and nothing new is queued.
  r = c.Ctl({"--json", "history", "--node", "ship1"});
  REQUIRE(r.exit_code == 0);
  std::string cancel_id;
  int commands = 0;
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    const nlohmann::json row = nlohmann::json::parse(line, nullptr, false);
    ++commands;
    if (row.is_object() && row.contains("command") && row["command"].is_object() &&
        row["command"].value("method", "") == "cancel") {
      cancel_id = row.value("id", "");
    }
  }
  REQUIRE_FALSE(cancel_id.empty());
  r = c.Ctl({"retry", cancel_id});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("cancel is sent by the station"));
  r = c.Ctl({"--json", "history", "--node", "ship1"});
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == commands);
  // An id named twice is retried once, and each new command names the one it retries.
  const std::string first = SendNoWait(c, {"ship1", "--", "true"});
  const std::string second = SendNoWait(c, {"ship1", "--", "false"});
  REQUIRE(WaitUntil([&] { return steward::IsTerminal(StateOf(c, first)) && steward::IsTerminal(StateOf(c, second)); },
                    absl::Seconds(10)));
  r = c.Ctl({"retry", first, first, second});
  REQUIRE(r.exit_code == 0);
  const std::vector<std::string> retried = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  REQUIRE(retried.size() == 2);
  CHECK_THAT(retried[0], Catch::EndsWith("(retry of " + first + ")"));
  CHECK_THAT(retried[1], Catch::EndsWith("(retry of " + second + ")"));

  // Restarting the agent (its command log is on disk) never runs it again.
  fs::remove(pidfile);
  c.StopAgent("ship1");
  c.StartAgent("ship1");
  RunResult again = c.Ctl({"send", "ship1", "--", "true"});
  CHECK(again.exit_code == 0);
  CHECK_FALSE(Exists(pidfile));
}

TEST_CASE("exclusive jobs: busy exits 75 naming the running job, preempt by priority, then the queue",
          "[integration][control]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path pidfile = c.dir().path() / "first.pid";
  const std::string first = SendNoWait(c, Concat({"--exclusive", "ship1"}, Sleeper("first", pidfile)));
  REQUIRE(WaitUntil([&] { return Exists(pidfile); }, absl::Seconds(20)));
  REQUIRE(WaitUntil([&] { return StateOf(c, first) == steward::proto::STATE_RUNNING; }, absl::Seconds(10)));

  // Busy: refused at once, naming the running job; ordinary commands still run.
  RunResult busy = c.Ctl({"send", "--exclusive", "ship1", "--", "true"});
  INFO(busy.out << busy.err);
  CHECK(busy.exit_code == 75);
  CHECK_THAT(busy.err, Catch::Contains(absl::StrCat("ship1 is busy with ", first)));
  CHECK_THAT(busy.err, Catch::Contains("running"));
  // (In another domain: one domain's commands run one after another on the agent.)
  CHECK(c.Ctl({"send", "--domain", "other", "ship1", "--", "true"}).exit_code == 0);

  // Queued: waits its turn.
  const fs::path queued_ran = c.dir().path() / "queued.ran";
  const std::string queued =
      SendNoWait(c, {"--exclusive", "--on-busy", "queue", "ship1", "--", "touch", queued_ran.string()});
  // A lower or equal priority does not preempt.
  RunResult low = c.Ctl({"send", "--exclusive", "--on-busy", "preempt", "ship1", "--", "true"});
  CHECK(low.exit_code == 75);
  CHECK_THAT(low.err, Catch::Contains("does not preempt"));
  CHECK(StateOf(c, queued) == steward::proto::STATE_QUEUED);
  CHECK_FALSE(Exists(queued_ran));

  // Preempt: the running job is killed on the node and the urgent one runs first.
  RunResult urgent =
      c.Ctl({"send", "--exclusive", "--on-busy", "preempt", "--priority", "5", "ship1", "--", "echo", "urgent"});
  INFO(urgent.out << urgent.err);
  CHECK(urgent.exit_code == 0);
  CHECK(urgent.out == "urgent\n");
  const steward::proto::CommandState pre = Show(c, first);
  CHECK(pre.state() == steward::proto::STATE_PREEMPTED);
  CHECK(pre.result().stdout() == "first\n");
  CHECK(pre.marks().preempted_by() != "");
  // Then the queued one, on its own.
  CHECK(WaitUntil([&] { return Exists(queued_ran); }, absl::Seconds(20)));
  CHECK(WaitUntil([&] { return StateOf(c, queued) == steward::proto::STATE_SUCCEEDED; }, absl::Seconds(10)));
  CHECK(::kill(ReadPid(pidfile), 0) != 0);
}

TEST_CASE("a queued job survives a station restart and runs when the slot frees", "[integration][control]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path pidfile = c.dir().path() / "holder.pid";
  const std::string holder = SendNoWait(c, Concat({"--exclusive", "ship1"}, Sleeper("holding", pidfile)));
  REQUIRE(WaitUntil([&] { return Exists(pidfile); }, absl::Seconds(20)));
  REQUIRE(WaitUntil([&] { return StateOf(c, holder) == steward::proto::STATE_RUNNING; }, absl::Seconds(10)));
  const fs::path ran = c.dir().path() / "queued.ran";
  const std::string queued =
      SendNoWait(c, {"--exclusive", "--on-busy", "queue", "ship1", "--", "touch", ran.string()});

  c.StopStation(SIGKILL);
  c.StartStation();
  // Still waiting after the restart: the holder runs on, the queued job is not sent.
  CHECK(StateOf(c, queued) == steward::proto::STATE_QUEUED);
  RunResult busy = c.Ctl({"send", "--exclusive", "ship1", "--", "true"});
  CHECK(busy.exit_code == 75);
  CHECK_FALSE(Exists(ran));

  RunResult r = c.Ctl({"cancel", holder});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(WaitUntil([&] { return Exists(ran); }, absl::Seconds(20)));
  CHECK(WaitUntil([&] { return StateOf(c, queued) == steward::proto::STATE_SUCCEEDED; }, absl::Seconds(10)));
  CHECK(StateOf(c, holder) == steward::proto::STATE_CANCELED);
}

TEST_CASE("a cancel for a node that is offline waits for it, and the command never runs",
          "[integration][control]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path pidfile = c.dir().path() / "offline.pid";
  const std::string id = SendNoWait(c, Concat({"ship1"}, Sleeper("before", pidfile)));
  REQUIRE(WaitUntil([&] { return Exists(pidfile); }, absl::Seconds(20)));
  REQUIRE(WaitUntil([&] { return StateOf(c, id) == steward::proto::STATE_RUNNING; }, absl::Seconds(10)));
  // The agent stops (the command ends "failed: the agent is shutting down") ... is what
  // a SIGTERM does; a link cut is what leaves it running: SIGSTOP the agent.
  const int agent_pid = c.agent("ship1").pid();
  ::kill(agent_pid, SIGSTOP);
  RunResult r = c.Ctl({"cancel", "--timeout", "2s", id});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.out, Catch::Contains("cancel sent: still running"));
  ::kill(agent_pid, SIGCONT);
  CHECK(WaitUntil([&] { return StateOf(c, id) == steward::proto::STATE_CANCELED; }, absl::Seconds(20)));
  CHECK(Show(c, id).result().stdout() == "before\n");
}

TEST_CASE("a command waiting on its node behind another is canceled there and never runs",
          "[integration][control]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path pidfile = c.dir().path() / "ahead.pid";
  const std::string ahead = SendNoWait(c, Concat({"--domain", "d1", "ship1"}, Sleeper("ahead", pidfile)));
  REQUIRE(WaitUntil([&] { return Exists(pidfile); }, absl::Seconds(20)));
  // Delivered to the agent, which holds it in d1's queue: no "received" yet.
  const fs::path ran = c.dir().path() / "behind.ran";
  const std::string behind = SendNoWait(c, {"--domain", "d1", "ship1", "--", "touch", ran.string()});
  REQUIRE(WaitUntil([&] { return Show(c, behind).attempts() >= 1; }, absl::Seconds(10)));
  RunResult r = c.Ctl({"cancel", behind});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(StateOf(c, behind) == steward::proto::STATE_CANCELED);
  // The command ahead ends; d1's queue moves on; a later d1 command runs after it.
  CHECK(c.Ctl({"cancel", ahead}).exit_code == 0);
  RunResult after = c.Ctl({"send", "--domain", "d1", "ship1", "--", "echo", "after"});
  CHECK(after.exit_code == 0);
  CHECK_FALSE(Exists(ran));
  CHECK(StateOf(c, behind) == steward::proto::STATE_CANCELED);
}

TEST_CASE("a job interrupted by an agent kill ends truthfully, never runs twice, and frees the slot",
          "[integration][control]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path runs = c.dir().path() / "runs";
  const fs::path pidfile = c.dir().path() / "job.pid";
  // Counts its runs, then sleeps (its pid in pidfile).
  const std::string job = SendNoWait(
      c, {"--exclusive", "ship1", "--shell", "--",
          absl::StrCat("echo run >> ", runs.string(), "; echo $$ > ", pidfile.string(), ".tmp; mv ",
                       pidfile.string(), ".tmp ", pidfile.string(), "; exec sleep 60")});
  REQUIRE(WaitUntil([&] { return Exists(pidfile); }, absl::Seconds(20)));
  const fs::path ran = c.dir().path() / "queued.ran";
  const std::string queued =
      SendNoWait(c, {"--exclusive", "--on-busy", "queue", "ship1", "--", "touch", ran.string()});
  c.StopAgent("ship1", SIGKILL);
  // What outlives its agent (its own process group) runs on, unsupervised...
  const int pid = ReadPid(pidfile);
  REQUIRE(pid > 0);
  absl::SleepFor(absl::Milliseconds(300));
  CHECK(Running(pid));
  c.StartAgent("ship1");
  // ... until the restarted agent stops it, reports the command interrupted (outcome
  // unknown) and never runs it again.
  CHECK(WaitUntil([&] { return !Running(pid); }, absl::Seconds(10)));
  CHECK(WaitUntil([&] { return StateOf(c, job) == steward::proto::STATE_FAILED; }, absl::Seconds(20)));
  CHECK_THAT(Show(c, job).result().error(), Catch::Contains("interrupted"));
  CHECK_THAT(Show(c, job).result().error(), Catch::Contains("1 process it left running was stopped"));
  // The slot is free again: the queued job runs by itself.
  CHECK(WaitUntil([&] { return Exists(ran); }, absl::Seconds(20)));
  // A cancel now says what it came to.
  RunResult r = c.Ctl({"cancel", job});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("already finished: failed"));
  std::ifstream in(runs);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(all == "run\n");
}

TEST_CASE("send exclusive and with approval applies per node to a targeted send", "[integration][control]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  c.StartAgent("ship2");
  const fs::path pidfile = c.dir().path() / "sleep.pid";
  const std::string holder = SendNoWait(c, Concat({"--exclusive", "ship1"}, Sleeper("holding", pidfile)));
  REQUIRE(WaitUntil([&] { return Exists(pidfile); }, absl::Seconds(20)));
  // A glob: ship1 is busy with the holder, ship2 runs it; the fan-out does not exit 0.
  RunResult r = c.Ctl({"send", "--exclusive", "ship*", "--", "echo", "fanned"});
  INFO(r.out << r.err);
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.out + r.err, Catch::Contains(absl::StrCat("ship1 is busy with ", holder)));
  CHECK_THAT(r.out, Catch::Contains("fanned"));
  // Held for approval on each node, never sent until approved.
  r = c.Ctl({"send", "--require-approval", "ship*", "--", "echo", "approved"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("awaiting approval"));
  r = c.Ctl({"approvals"});
  CHECK_THAT(r.out, Catch::Contains("ship1"));
  CHECK_THAT(r.out, Catch::Contains("ship2"));
  CHECK(c.Ctl({"cancel", holder}).exit_code == 0);
}

TEST_CASE("a job preempted before its node accepted it never runs there", "[integration][control]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  c.StopAgent("ship1");  // away: the first job waits at the station, holding the slot
  const fs::path marker = c.dir().path() / "low-ran";
  const std::string low = SendNoWait(c, {"--exclusive", "ship1", "--shell", "--", "touch " + marker.string()});
  // Not delivered: queued, or sent with no answer (parked, nobody listens).
  REQUIRE(WaitUntil([&] { return steward::station::Undelivered(StateOf(c, low)); }, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(500));  // it went out once and was parked
  REQUIRE(steward::station::Undelivered(StateOf(c, low)));
  const std::string high = SendNoWait(
      c, {"--exclusive", "--on-busy", "preempt", "--priority", "5", "ship1", "--", "echo", "high"});
  REQUIRE(WaitUntil([&] { return StateOf(c, low) == steward::proto::STATE_PREEMPTED; }, absl::Seconds(10)));
  CHECK(Show(c, low).marks().preempted_by() == high);
  c.StartAgent("ship1");
  REQUIRE(WaitUntil([&] { return StateOf(c, high) == steward::proto::STATE_SUCCEEDED; }, absl::Seconds(20)));
  CHECK(Show(c, high).result().stdout() == "high\n");
  absl::SleepFor(absl::Seconds(1));
  CHECK_FALSE(Exists(marker));
  CHECK(StateOf(c, low) == steward::proto::STATE_PREEMPTED);
}

TEST_CASE("an exclusive rule makes matching commands exclusive jobs without --exclusive", "[integration][control]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  RunResult r = c.Ctl({"exclusive-rules", "set", "ship1", "--require", "shellcommand:*exec sleep 60"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("ship1 runs as exclusive jobs: shellcommand:*exec sleep 60"));
  const fs::path pidfile = c.dir().path() / "sleep.pid";
  const std::string holder = SendNoWait(c, Concat({"ship1"}, Sleeper("holding", pidfile)));
  REQUIRE(WaitUntil([&] { return Exists(pidfile); }, absl::Seconds(20)));
  const steward::proto::CommandState s = Show(c, holder);
  CHECK(s.control().exclusive());
  CHECK(s.marks().exclusive_rule() == "ship1 shellcommand:*exec sleep 60");
  CHECK_THAT(c.Ctl({"show", holder}).out, Catch::Contains("exclusive by rule: ship1 shellcommand:*exec sleep 60"));
  // Another exclusive job is busy; a command the rule does not match is not affected.
  r = c.Ctl({"send", "--exclusive", "ship1", "--", "true"});
  CHECK(r.exit_code == 75);
  CHECK(c.Ctl({"send", "--method", "echo", "ship1", "--", "hi"}).exit_code == 0);
  // Kept across a station restart; cleared by an empty set, audited.
  c.StopStation();
  c.StartStation();
  CHECK_THAT(c.Ctl({"exclusive-rules", "show", "ship1"}).out, Catch::Contains("shellcommand:*exec sleep 60"));
  CHECK(c.Ctl({"exclusive-rules", "set", "ship1"}).exit_code == 0);
  CHECK_THAT(c.Ctl({"exclusive-rules", "show", "ship1"}).out, Catch::Contains("no exclusive rule"));
  CHECK_THAT(c.Ctl({"audit"}).out, Catch::Contains("exclusive-rules"));
  CHECK(c.Ctl({"cancel", holder}).exit_code == 0);
}

TEST_CASE("send to one node waits --timeout in all, then says the command still runs", "[integration][control]") {
  // The station waits for the result first (send-and-wait); stewardctl's own wait after
  // its answer counted again from the start, so a send waited twice as long as asked.
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const absl::Time start = absl::Now();
  RunResult r = c.Ctl({"send", "--timeout", "3s", "ship1", "--", "sleep", "8"});
  const absl::Duration took = absl::Now() - start;
  INFO(r.out << r.err);
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("still running on ship1 after 3s"));
  CHECK(took < absl::Milliseconds(5500));  // 6 s and more before
}
