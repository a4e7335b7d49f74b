// Runbooks end to end (issue 13 part 5) with real parts: nats-server, station, agent
// and stewardctl. Two steps and a check that passes on its second try; the job keeps
// the node between its steps (another exclusive job is busy) and a higher priority
// preempts it (no later step runs); cancel of the job kills its running step; a station
// killed with -9 in the middle goes on after its restart and runs no step twice.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/testing/cluster.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path Write(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
  return p;
}

// A runbook whose steps append their names to `log`; step 1 first runs `first` (in the shell).
std::string TwoSteps(const fs::path& log, const std::string& first = "true", int priority = 0) {
  return absl::StrCat("name = \"two-steps\"\npriority = ", priority, "\n",
                      "[[step]]\nname = \"one\"\nshell = \"", first, "; echo one >> ", log.string(), "\"\n",
                      "[[step]]\nname = \"two\"\nshell = \"echo two >> ", log.string(), "\"\n");
}

// `stewardctl run --no-wait` prints the job id.
std::string RunNoWait(Cluster& c, const fs::path& book) {
  RunResult r = c.Ctl({"run", book.string(), "--target", "ship1", "--no-wait"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string id = r.out.substr(0, r.out.find('\n'));
  REQUIRE(id.size() == 26);
  return id;
}

// Starts TwoSteps on ship1, step 1 running `sleep SECONDS` after it touched `started`,
// and waits until it runs: the job's id. Step 2 appends to `log`.
std::string StartLongStep(Cluster& c, const fs::path& log, int seconds, int priority = 0) {
  const fs::path started = c.dir().path() / "started";
  const fs::path book = Write(c.dir().path() / "book.toml",
                              TwoSteps(log, absl::StrCat("touch ", started.string(), "; sleep ", seconds), priority));
  std::string id = RunNoWait(c, book);
  REQUIRE(WaitUntil([&] { return fs::exists(started); }, absl::Seconds(20)));
  return id;
}

}  // namespace

TEST_CASE("a runbook runs its steps in order and a check is tried again until it passes",
          "[integration][runbook]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path log = c.dir().path() / "steps.log";
  const fs::path tries = c.dir().path() / "tries";
  // The check fails on its first try and passes on its second.
  const fs::path book = Write(c.dir().path() / "book.toml",
                              absl::StrCat(TwoSteps(log), "[step.check]\nshell = \"echo x >> ", tries.string(),
                                           "; test $(wc -l < ", tries.string(), ") -ge 2\"\nretries = 2\n"
                                           "interval = \"200ms\"\n"));
  RunResult r = c.Ctl({"run", book.string(), "--target", "ship1"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(Read(log) == "one\ntwo\n");
  CHECK_THAT(r.out, Catch::Contains("ship1  step 1 (one): succeeded"));
  CHECK_THAT(r.out, Catch::Contains("ship1  step 2 (two), check try 1: failed"));
  CHECK_THAT(r.out, Catch::Contains("ship1  step 2 (two), check try 2: succeeded"));
  CHECK_THAT(r.out, Catch::Contains("ship1: succeeded: 2 steps passed"));
  const std::string id = r.err.substr(r.err.find("job ") + 4, 26);

  // show JOB: the runs, then every command of the job (steps and check tries).
  r = c.Ctl({"show", id});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("runbook two-steps"));
  CHECK_THAT(r.out, Catch::Contains("ship1: succeeded: 2 steps passed"));
  CHECK_THAT(r.out, Catch::Contains("step 2 (two), check try 2"));
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
  int commands = 0;
  for (const std::string& l : lines) commands += l.find("  ship1  step") == 0 ? 1 : 0;
  CHECK(commands == 4);  // two steps, two tries of the check

  // A step that fails stops the run: exit 1, the second step never runs.
  const fs::path log2 = c.dir().path() / "steps2.log";
  const fs::path failing = Write(c.dir().path() / "failing.toml", TwoSteps(log2, "exit 3"));
  r = c.Ctl({"run", failing.string(), "--target", "ship1"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("ship1: failed: step 1 (one) failed: failed"));
  CHECK_FALSE(fs::exists(log2));

  // A bad file is refused before anything is sent.
  const fs::path bad = Write(c.dir().path() / "bad.toml", "[[step]]\nname = \"x\"\n");
  r = c.Ctl({"run", bad.string(), "--target", "ship1"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("step 1 (x) has no command"));
}

TEST_CASE("a runbook keeps its node between steps and a higher priority preempts it", "[integration][runbook]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path log = c.dir().path() / "steps.log";
  const std::string id = StartLongStep(c, log, 60, /*priority=*/2);

  // Another exclusive job is busy (exit 75), naming the runbook's step.
  RunResult r = c.Ctl({"send", "--exclusive", "ship1", "--", "true"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 75);
  CHECK_THAT(r.out + r.err, Catch::Contains(absl::StrCat("a step of runbook job ", id)));
  // Not a higher priority: refused.
  r = c.Ctl({"send", "--exclusive", "--on-busy", "preempt", "--priority", "2", "ship1", "--", "true"});
  CHECK(r.exit_code == 75);
  // A higher one stops the running step and runs; the runbook ends preempted, step 2 never runs.
  r = c.Ctl({"send", "--exclusive", "--on-busy", "preempt", "--priority", "5", "ship1", "--", "echo", "urgent"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("urgent"));
  REQUIRE(WaitUntil([&] { return c.Ctl({"show", id}).out.find("ship1: preempted") != std::string::npos; },
                    absl::Seconds(20)));
  r = c.Ctl({"show", id});
  CHECK_THAT(r.out, Catch::Contains("step 1 (one)"));
  CHECK_THAT(r.out, Catch::Contains("preempted"));
  CHECK(r.out.find("step 2 (two)") == std::string::npos);
  absl::SleepFor(absl::Seconds(1));
  CHECK_FALSE(fs::exists(log));
  // The node is free again.
  r = c.Ctl({"send", "--exclusive", "ship1", "--", "true"});
  CHECK(r.exit_code == 0);
}

TEST_CASE("cancel of a runbook job kills its running step and runs no later step", "[integration][runbook]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path log = c.dir().path() / "steps.log";
  const std::string id = StartLongStep(c, log, 60);
  RunResult r = c.Ctl({"cancel", id});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  REQUIRE(WaitUntil([&] { return c.Ctl({"show", id}).out.find("step 1 (one)  canceled") != std::string::npos; },
                    absl::Seconds(10)));
  r = c.Ctl({"show", id});
  CHECK_THAT(r.out, Catch::Contains("ship1: canceled: canceled by"));
  CHECK_THAT(r.out, Catch::Contains("closed"));
  absl::SleepFor(absl::Seconds(1));
  CHECK_FALSE(fs::exists(log));
  r = c.Ctl({"send", "--exclusive", "ship1", "--", "true"});
  CHECK(r.exit_code == 0);
  // Closing it again says what it came to.
  r = c.Ctl({"close", id});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("closed"));
  // A job is no command to retry: said so, with where its commands are.
  r = c.Ctl({"retry", id});
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains(id + " is a job, not a command"));
}

TEST_CASE("a station killed in the middle of a runbook goes on after its restart and runs no step twice",
          "[integration][runbook]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path log = c.dir().path() / "steps.log";
  // Step 1 runs for 3 s: the station is killed while it runs and comes back before it ends.
  const std::string id = StartLongStep(c, log, 3);
  c.StopStation(SIGKILL);
  c.StartStation();
  REQUIRE(WaitUntil([&] { return c.Ctl({"show", id}).out.find("ship1: succeeded") != std::string::npos; },
                    absl::Seconds(30)));
  CHECK(Read(log) == "one\ntwo\n");
  // Killed again between steps' ends: nothing runs again after a second restart.
  c.StopStation(SIGKILL);
  c.StartStation();
  absl::SleepFor(absl::Seconds(2));
  CHECK(Read(log) == "one\ntwo\n");
  RunResult r = c.Ctl({"show", id});
  CHECK_THAT(r.out, Catch::Contains("ship1: succeeded: 2 steps passed"));
}
