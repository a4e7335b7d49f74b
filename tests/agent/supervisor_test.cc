// Tests for the error kernel (agent/supervisor.h): decisions per severity, restarts
// with exponential backoff, the restart rate limit, exceptions, the decision sink,
// and a Shutdown that interrupts backoff sleeps.
#include "agent/supervisor.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/testing/wait.h"

namespace steward::agent {
namespace {

// Polls `done` every millisecond until it holds or `timeout` passes.
using steward::testing::WaitUntil;

// A DecisionSink that keeps every record.
class Recorder {
 public:
  DecisionSink Sink() {
    return [this](const DecisionRecord& r) {
      absl::MutexLock lock(&mu_);
      records_.push_back(r);
    };
  }
  std::vector<DecisionRecord> records() const {
    absl::MutexLock lock(&mu_);
    return records_;
  }
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return records_.size();
  }
  size_t CountFor(const std::string& process) const {
    absl::MutexLock lock(&mu_);
    size_t n = 0;
    for (const DecisionRecord& r : records_) n += r.process == process ? 1 : 0;
    return n;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<DecisionRecord> records_ ABSL_GUARDED_BY(mu_);
};

// Start times of each run of a body, thread-safe.
class Runs {
 public:
  int Add() {
    absl::MutexLock lock(&mu_);
    starts_.push_back(absl::Now());
    return static_cast<int>(starts_.size());
  }
  int count() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(starts_.size());
  }
  std::vector<absl::Time> starts() const {
    absl::MutexLock lock(&mu_);
    return starts_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<absl::Time> starts_ ABSL_GUARDED_BY(mu_);
};

// Waits for shutdown, bounded so a broken supervisor fails the test instead of hanging.
absl::Status WaitForStop(ProcessContext& ctx) {
  ctx.stop().WaitForNotificationWithTimeout(absl::Seconds(20));
  return absl::OkStatus();
}

RestartPolicy FastPolicy() {
  RestartPolicy p;
  p.initial_backoff = absl::Milliseconds(1);
  p.max_backoff = absl::Milliseconds(10);
  p.max_restarts = 100;
  p.window = absl::Minutes(1);
  return p;
}

TEST_CASE("Supervisor: a process that beats and then hangs is named by Stalled", "[supervisor]") {
  Supervisor sup(RestartPolicy{}, nullptr);
  absl::Notification hang, release;
  std::atomic<int> beats{0};
  REQUIRE(sup.Start("watched", [&](ProcessContext& ctx) {
    while (!ctx.stopping() && !hang.HasBeenNotified()) {
      ctx.Beat();
      ++beats;
      absl::SleepFor(absl::Milliseconds(5));
    }
    release.WaitForNotification();  // hung: no more beats
    return absl::OkStatus();
  }).ok());
  REQUIRE(sup.Start("quiet", [](ProcessContext& ctx) {  // never beats: not watched
    ctx.stop().WaitForNotification();
    return absl::OkStatus();
  }).ok());
  REQUIRE(WaitUntil([&] { return beats.load() > 3; }));
  absl::SleepFor(absl::Milliseconds(300));
  CHECK(sup.Stalled(absl::Milliseconds(200)).empty());  // beating
  hang.Notify();
  CHECK(WaitUntil([&] { return sup.Stalled(absl::Milliseconds(200)) == std::vector<std::string>{"watched"}; }));
  release.Notify();
  sup.Shutdown();
}

TEST_CASE("Supervisor restarts a failing process with growing backoff", "[supervisor]") {
  Recorder rec;
  Runs runs;
  RestartPolicy policy;
  policy.initial_backoff = absl::Milliseconds(20);
  policy.max_backoff = absl::Seconds(10);
  policy.max_restarts = 10;
  policy.window = absl::Minutes(1);
  Supervisor sup(policy, rec.Sink());

  REQUIRE(sup.Start("p", [&](ProcessContext& ctx) -> absl::Status {
                if (runs.Add() <= 4) return absl::InternalError("boom");
                return WaitForStop(ctx);
              }).ok());
  REQUIRE(WaitUntil([&] { return runs.count() >= 5; }));
  CHECK(sup.IsRunning("p"));
  CHECK(sup.Restarts("p") == 4);

  const std::vector<absl::Time> t = runs.starts();
  REQUIRE(t.size() == 5);
  std::vector<absl::Duration> gaps;
  for (size_t i = 1; i < t.size(); ++i) gaps.push_back(t[i] - t[i - 1]);
  INFO("gaps: " << absl::FormatDuration(gaps[0]) << " " << absl::FormatDuration(gaps[1]) << " "
                << absl::FormatDuration(gaps[2]) << " " << absl::FormatDuration(gaps[3]));
  // Nominal backoffs 20, 40, 80, 160 ms: every gap is at least its backoff (minus a
  // little clock slack), and the gaps grow (compared two apart to tolerate jitter).
  CHECK(gaps[0] >= absl::Milliseconds(18));
  CHECK(gaps[1] >= absl::Milliseconds(38));
  CHECK(gaps[2] >= absl::Milliseconds(78));
  CHECK(gaps[3] >= absl::Milliseconds(158));
  CHECK(gaps[2] > gaps[0]);
  CHECK(gaps[3] > gaps[1]);
  CHECK(gaps[3] > gaps[0] * 3);

  // The sink saw four restart decisions carrying exactly those backoffs.
  const std::vector<DecisionRecord> r = rec.records();
  REQUIRE(r.size() == 4);
  const absl::Duration want[] = {absl::Milliseconds(20), absl::Milliseconds(40),
                                 absl::Milliseconds(80), absl::Milliseconds(160)};
  for (size_t i = 0; i < r.size(); ++i) {
    CHECK(r[i].process == "p");
    CHECK(r[i].severity == Severity::kError);
    CHECK(r[i].decision == Decision::kRestart);
    CHECK(absl::StrContains(r[i].error, "boom"));
    CHECK(r[i].backoff == want[i]);
  }
}

TEST_CASE("Supervisor caps the backoff at max_backoff", "[supervisor]") {
  Recorder rec;
  Runs runs;
  RestartPolicy policy;
  policy.initial_backoff = absl::Milliseconds(5);
  policy.max_backoff = absl::Milliseconds(15);
  policy.max_restarts = 10;
  Supervisor sup(policy, rec.Sink());
  REQUIRE(sup.Start("cap", [&](ProcessContext& ctx) -> absl::Status {
                if (runs.Add() <= 5) return absl::UnavailableError("down");
                return WaitForStop(ctx);
              }).ok());
  REQUIRE(WaitUntil([&] { return runs.count() >= 6; }));
  const std::vector<DecisionRecord> r = rec.records();
  REQUIRE(r.size() == 5);
  const absl::Duration want[] = {absl::Milliseconds(5), absl::Milliseconds(10),
                                 absl::Milliseconds(15), absl::Milliseconds(15),
                                 absl::Milliseconds(15)};
  for (size_t i = 0; i < r.size(); ++i) {
    INFO("decision " << i);
    CHECK(r[i].decision == Decision::kRestart);
    CHECK(r[i].backoff == want[i]);
  }
}

TEST_CASE("Report: error restarts, warning and info continue", "[supervisor]") {
  Recorder rec;
  Runs runs;
  std::atomic<int> info_decision{-1};
  std::atomic<int> warning_decision{-1};
  std::atomic<int> error_decision{-1};
  std::atomic<bool> ran_after_warning{false};
  Supervisor sup(FastPolicy(), rec.Sink());

  REQUIRE(sup.Start("r", [&](ProcessContext& ctx) -> absl::Status {
                if (runs.Add() == 1) {
                  info_decision = static_cast<int>(
                      ctx.Report(Severity::kInfo, absl::NotFoundError("just so you know")));
                  warning_decision = static_cast<int>(
                      ctx.Report(Severity::kWarning, absl::DeadlineExceededError("slow")));
                  ran_after_warning = true;
                  error_decision = static_cast<int>(
                      ctx.Report(Severity::kError, absl::InternalError("broken")));
                  // Returning OK after a restart decision still restarts.
                  return absl::OkStatus();
                }
                return WaitForStop(ctx);
              }).ok());
  REQUIRE(WaitUntil([&] { return runs.count() >= 2; }));
  CHECK(info_decision == static_cast<int>(Decision::kContinue));
  CHECK(warning_decision == static_cast<int>(Decision::kContinue));
  CHECK(error_decision == static_cast<int>(Decision::kRestart));
  CHECK(ran_after_warning);
  CHECK(sup.IsRunning("r"));
  CHECK(sup.Restarts("r") == 1);

  const std::vector<DecisionRecord> r = rec.records();
  REQUIRE(r.size() == 3);  // No second decision for the run that Report already decided.
  CHECK(r[0].severity == Severity::kInfo);
  CHECK(r[0].decision == Decision::kContinue);
  CHECK(absl::StrContains(r[0].error, "just so you know"));
  CHECK(r[1].severity == Severity::kWarning);
  CHECK(r[1].decision == Decision::kContinue);
  CHECK(absl::StrContains(r[1].error, "slow"));
  CHECK(r[2].severity == Severity::kError);
  CHECK(r[2].decision == Decision::kRestart);
  CHECK(absl::StrContains(r[2].error, "broken"));
  for (const DecisionRecord& d : r) CHECK(d.process == "r");
}

TEST_CASE("Report kError then returning the error decides once", "[supervisor]") {
  Recorder rec;
  Runs runs;
  std::atomic<int> decision{-1};
  Supervisor sup(FastPolicy(), rec.Sink());
  REQUIRE(sup.Start("once", [&](ProcessContext& ctx) -> absl::Status {
                if (runs.Add() == 1) {
                  absl::Status st = absl::InternalError("bad state");
                  decision = static_cast<int>(ctx.Report(Severity::kError, st));
                  return st;
                }
                return WaitForStop(ctx);
              }).ok());
  REQUIRE(WaitUntil([&] { return runs.count() >= 2; }));
  CHECK(decision == static_cast<int>(Decision::kRestart));
  CHECK(rec.size() == 1);
  CHECK(sup.Restarts("once") == 1);
}

TEST_CASE("Warnings alone never restart a process", "[supervisor]") {
  Recorder rec;
  Runs runs;
  std::atomic<int> reported{0};
  absl::Notification done_reporting;
  Supervisor sup(FastPolicy(), rec.Sink());
  REQUIRE(sup.Start("w", [&](ProcessContext& ctx) -> absl::Status {
                runs.Add();
                for (int i = 0; i < 20; ++i) {
                  if (ctx.Report(i % 2 == 0 ? Severity::kWarning : Severity::kInfo,
                                 absl::UnknownError("meh")) != Decision::kContinue) {
                    return absl::InternalError("unexpected decision");
                  }
                  ++reported;
                }
                done_reporting.Notify();
                return WaitForStop(ctx);
              }).ok());
  REQUIRE(done_reporting.WaitForNotificationWithTimeout(absl::Seconds(5)));
  CHECK(reported == 20);
  CHECK(runs.count() == 1);
  CHECK(sup.IsRunning("w"));
  CHECK(sup.Restarts("w") == 0);
  CHECK(rec.size() == 20);
  sup.Shutdown();
  CHECK(runs.count() == 1);
  CHECK_FALSE(sup.IsRunning("w"));
}

TEST_CASE("Report kFatal stops the process without restart", "[supervisor]") {
  Recorder rec;
  Runs runs;
  std::atomic<int> decision{-1};
  Supervisor sup(FastPolicy(), rec.Sink());
  REQUIRE(sup.Start("f", [&](ProcessContext& ctx) -> absl::Status {
                runs.Add();
                decision = static_cast<int>(
                    ctx.Report(Severity::kFatal, absl::FailedPreconditionError("disk gone")));
                return absl::InternalError("disk gone");
              }).ok());
  // running=false is the last thing the process thread does: no run can follow.
  REQUIRE(WaitUntil([&] { return !sup.IsRunning("f"); }));
  CHECK(decision == static_cast<int>(Decision::kStop));
  CHECK(runs.count() == 1);
  CHECK(sup.Restarts("f") == 0);
  CHECK(sup.Exists("f"));
  const std::vector<DecisionRecord> r = rec.records();
  REQUIRE(r.size() == 1);
  CHECK(r[0].process == "f");
  CHECK(r[0].severity == Severity::kFatal);
  CHECK(r[0].decision == Decision::kStop);
  CHECK(absl::StrContains(r[0].error, "disk gone"));
}

TEST_CASE("Too many restarts within the window stop the process", "[supervisor]") {
  Recorder rec;
  Runs runs;
  RestartPolicy policy;
  policy.initial_backoff = absl::Milliseconds(1);
  policy.max_backoff = absl::Milliseconds(5);
  policy.max_restarts = 3;
  policy.window = absl::Minutes(1);
  Supervisor sup(policy, rec.Sink());
  REQUIRE(sup.Start("flappy", [&](ProcessContext&) -> absl::Status {
                runs.Add();
                return absl::InternalError("flap");
              }).ok());
  REQUIRE(WaitUntil([&] { return !sup.IsRunning("flappy"); }));
  CHECK(runs.count() == 4);  // the first run and three restarts
  CHECK(sup.Restarts("flappy") == 3);
  const std::vector<DecisionRecord> r = rec.records();
  REQUIRE(r.size() == 4);
  for (size_t i = 0; i < 3; ++i) CHECK(r[i].decision == Decision::kRestart);
  CHECK(r[3].decision == Decision::kStop);
  CHECK(r[3].severity == Severity::kError);
  CHECK(absl::StrContains(r[3].error, "flap"));
  for (const DecisionRecord& d : r) CHECK(d.process == "flappy");
}

TEST_CASE("Restart limit via Report also stops", "[supervisor]") {
  Recorder rec;
  Runs runs;
  std::vector<Decision> decisions;  // written by the process thread only
  RestartPolicy policy = FastPolicy();
  policy.max_restarts = 2;
  Supervisor sup(policy, rec.Sink());
  REQUIRE(sup.Start("rep", [&](ProcessContext& ctx) -> absl::Status {
                runs.Add();
                decisions.push_back(ctx.Report(Severity::kError, absl::InternalError("x")));
                return absl::OkStatus();
              }).ok());
  REQUIRE(WaitUntil([&] { return !sup.IsRunning("rep"); }));
  CHECK(runs.count() == 3);
  REQUIRE(decisions.size() == 3);
  CHECK(decisions[0] == Decision::kRestart);
  CHECK(decisions[1] == Decision::kRestart);
  CHECK(decisions[2] == Decision::kStop);
  CHECK(rec.size() == 3);
}

TEST_CASE("Restarts outside the window are forgotten and the backoff resets", "[supervisor]") {
  Recorder rec;
  Runs runs;
  RestartPolicy policy;
  policy.initial_backoff = absl::Milliseconds(10);
  policy.max_backoff = absl::Seconds(1);
  policy.max_restarts = 2;
  policy.window = absl::Milliseconds(150);
  Supervisor sup(policy, rec.Sink());
  REQUIRE(sup.Start("heal", [&](ProcessContext& ctx) -> absl::Status {
                const int n = runs.Add();
                if (n <= 2) return absl::InternalError("early");
                if (n == 3) {
                  // Healthy for longer than the window, then fail again.
                  ctx.stop().WaitForNotificationWithTimeout(absl::Milliseconds(400));
                  return absl::InternalError("late");
                }
                return WaitForStop(ctx);
              }).ok());
  REQUIRE(WaitUntil([&] { return runs.count() >= 4; }));
  CHECK(sup.IsRunning("heal"));
  const std::vector<DecisionRecord> r = rec.records();
  REQUIRE(r.size() == 3);
  CHECK(r[0].decision == Decision::kRestart);
  CHECK(r[0].backoff == absl::Milliseconds(10));
  CHECK(r[1].decision == Decision::kRestart);
  CHECK(r[1].backoff == absl::Milliseconds(20));
  // Without forgetting, this would be the third restart of two allowed.
  CHECK(r[2].decision == Decision::kRestart);
  CHECK(r[2].backoff == absl::Milliseconds(10));
  CHECK(absl::StrContains(r[2].error, "late"));
}

TEST_CASE("The sink gets the process name, severity, error text and decision",
          "[supervisor]") {
  Recorder rec;
  Supervisor sup(FastPolicy(), rec.Sink());
  absl::Notification a_done;
  absl::Notification b_done;
  const absl::Time before = absl::Now();
  REQUIRE(sup.Start("ship1.command.ping.default", [&](ProcessContext& ctx) -> absl::Status {
                if (!a_done.HasBeenNotified()) {
                  ctx.Report(Severity::kWarning, absl::ResourceExhaustedError("queue full"));
                  a_done.Notify();
                  return absl::InvalidArgumentError("bad message 17");
                }
                return WaitForStop(ctx);
              }).ok());
  REQUIRE(sup.Start("ship1.command.shellcommand.os", [&](ProcessContext& ctx) -> absl::Status {
                ctx.Report(Severity::kFatal, absl::PermissionDeniedError("no shell"));
                b_done.Notify();
                return absl::OkStatus();
              }).ok());
  REQUIRE(a_done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  REQUIRE(b_done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  REQUIRE(WaitUntil([&] {
    return rec.CountFor("ship1.command.ping.default") >= 2 &&
           !sup.IsRunning("ship1.command.shellcommand.os");
  }));

  std::vector<DecisionRecord> ping;
  std::vector<DecisionRecord> shell;
  for (const DecisionRecord& d : rec.records()) {
    (d.process == "ship1.command.ping.default" ? ping : shell).push_back(d);
  }
  REQUIRE(ping.size() == 2);
  REQUIRE(shell.size() == 1);
  CHECK(ping[0].severity == Severity::kWarning);
  CHECK(ping[0].decision == Decision::kContinue);
  CHECK(absl::StrContains(ping[0].error, "queue full"));
  CHECK(ping[1].severity == Severity::kError);
  CHECK(ping[1].decision == Decision::kRestart);
  CHECK(absl::StrContains(ping[1].error, "bad message 17"));
  CHECK(ping[1].backoff == absl::Milliseconds(1));
  CHECK(shell[0].process == "ship1.command.shellcommand.os");
  CHECK(shell[0].severity == Severity::kFatal);
  CHECK(shell[0].decision == Decision::kStop);
  CHECK(absl::StrContains(shell[0].error, "no shell"));
  for (const DecisionRecord& d : rec.records()) {
    CHECK(d.at >= before - absl::Milliseconds(1));
    CHECK(d.at <= absl::Now());
  }
  CHECK(std::string(SeverityName(Severity::kFatal)) == "fatal");
  CHECK(std::string(DecisionName(Decision::kRestart)) == "restart");
}

TEST_CASE("A throwing body is caught and restarted", "[supervisor]") {
  Recorder rec;
  Runs runs;
  Supervisor sup(FastPolicy(), rec.Sink());
  REQUIRE(sup.Start("thrower", [&](ProcessContext& ctx) -> absl::Status {
                const int n = runs.Add();
                if (n == 1) throw std::runtime_error("kaboom");
                if (n == 2) throw 42;  // not a std::exception
                return WaitForStop(ctx);
              }).ok());
  REQUIRE(WaitUntil([&] { return runs.count() >= 3; }));
  CHECK(sup.IsRunning("thrower"));
  CHECK(sup.Restarts("thrower") == 2);
  const std::vector<DecisionRecord> r = rec.records();
  REQUIRE(r.size() == 2);
  CHECK(r[0].severity == Severity::kError);
  CHECK(r[0].decision == Decision::kRestart);
  CHECK(absl::StrContains(r[0].error, "kaboom"));
  CHECK(r[1].severity == Severity::kError);
  CHECK(r[1].decision == Decision::kRestart);
  CHECK(absl::StrContains(r[1].error, "exception"));
}

TEST_CASE("A body that returns OK finishes without restart", "[supervisor]") {
  Recorder rec;
  Runs runs;
  Supervisor sup(FastPolicy(), rec.Sink());
  REQUIRE(sup.Start("oneshot", [&](ProcessContext&) -> absl::Status {
                runs.Add();
                return absl::OkStatus();
              }).ok());
  REQUIRE(WaitUntil([&] { return !sup.IsRunning("oneshot"); }));
  CHECK(runs.count() == 1);
  CHECK(sup.Exists("oneshot"));
  CHECK(sup.Restarts("oneshot") == 0);
  CHECK(rec.size() == 0);
}

TEST_CASE("Shutdown interrupts backoff sleeps and running bodies quickly", "[supervisor]") {
  Recorder rec;
  Runs runs;
  std::atomic<bool> saw_stopping{false};
  absl::Notification body_started;
  RestartPolicy policy;
  policy.initial_backoff = absl::Hours(1);
  policy.max_backoff = absl::Hours(1);
  auto sup = std::make_unique<Supervisor>(policy, rec.Sink());

  constexpr int kFailing = 8;
  for (int i = 0; i < kFailing; ++i) {
    REQUIRE(sup->Start("failing" + std::to_string(i), [&](ProcessContext&) -> absl::Status {
                  runs.Add();
                  return absl::InternalError("fail then sleep an hour");
                }).ok());
  }
  REQUIRE(sup->Start("worker", [&](ProcessContext& ctx) -> absl::Status {
                body_started.Notify();
                const absl::Time deadline = absl::Now() + absl::Seconds(20);
                while (!ctx.stopping() && absl::Now() < deadline) {
                  absl::SleepFor(absl::Milliseconds(1));
                }
                saw_stopping = ctx.stopping();
                return absl::OkStatus();
              }).ok());
  REQUIRE(body_started.WaitForNotificationWithTimeout(absl::Seconds(5)));
  // Every failing process has had its restart decision, so each is in (or about to
  // enter) its one-hour backoff.
  REQUIRE(WaitUntil([&] { return rec.size() >= size_t{kFailing}; }));
  for (int i = 0; i < kFailing; ++i) CHECK(sup->IsRunning("failing" + std::to_string(i)));
  CHECK(sup->IsRunning("worker"));
  CHECK_FALSE(sup->stopping().HasBeenNotified());

  const absl::Time start = absl::Now();
  sup->Shutdown();
  const absl::Duration took = absl::Now() - start;
  INFO("Shutdown took " << absl::FormatDuration(took));
  CHECK(took < absl::Milliseconds(500));
  CHECK(sup->stopping().HasBeenNotified());
  CHECK(saw_stopping);
  CHECK(runs.count() == kFailing);  // nobody was restarted
  for (int i = 0; i < kFailing; ++i) CHECK_FALSE(sup->IsRunning("failing" + std::to_string(i)));
  CHECK_FALSE(sup->IsRunning("worker"));

  // Idempotent, and the destructor after Shutdown is fine.
  const absl::Time again = absl::Now();
  sup->Shutdown();
  CHECK(absl::Now() - again < absl::Milliseconds(100));
  sup.reset();
}

TEST_CASE("The destructor shuts down like Shutdown", "[supervisor]") {
  Recorder rec;
  std::atomic<int> finished{0};
  RestartPolicy policy;
  policy.initial_backoff = absl::Hours(1);
  absl::Notification started;
  const absl::Time start = absl::Now();
  {
    Supervisor sup(policy, rec.Sink());
    REQUIRE(sup.Start("a", [&](ProcessContext& ctx) -> absl::Status {
                  started.Notify();
                  WaitForStop(ctx).IgnoreError();
                  ++finished;
                  return absl::InternalError("ignored while stopping");
                }).ok());
    REQUIRE(started.WaitForNotificationWithTimeout(absl::Seconds(5)));
  }
  CHECK(absl::Now() - start < absl::Seconds(5));
  CHECK(finished == 1);
  CHECK(rec.size() == 0);  // errors returned while stopping are not decided
}

TEST_CASE("Start after Shutdown fails with FailedPrecondition", "[supervisor]") {
  Recorder rec;
  Supervisor sup(FastPolicy(), rec.Sink());
  sup.Shutdown();
  std::atomic<bool> ran{false};
  absl::Status st = sup.Start("late", [&](ProcessContext&) -> absl::Status {
    ran = true;
    return absl::OkStatus();
  });
  CHECK(absl::IsFailedPrecondition(st));
  CHECK_FALSE(sup.Exists("late"));
  CHECK_FALSE(sup.IsRunning("late"));
  CHECK_FALSE(ran);
}

TEST_CASE("Start with a duplicate name fails with AlreadyExists", "[supervisor]") {
  Recorder rec;
  Supervisor sup(FastPolicy(), rec.Sink());
  std::atomic<int> first_runs{0};
  std::atomic<int> second_runs{0};
  REQUIRE(sup.Start("dup", [&](ProcessContext& ctx) -> absl::Status {
                ++first_runs;
                return WaitForStop(ctx);
              }).ok());
  absl::Status st = sup.Start("dup", [&](ProcessContext&) -> absl::Status {
    ++second_runs;
    return absl::OkStatus();
  });
  CHECK(absl::IsAlreadyExists(st));
  REQUIRE(WaitUntil([&] { return first_runs.load() == 1; }));

  // Also when the first one has finished.
  REQUIRE(sup.Start("done", [](ProcessContext&) { return absl::OkStatus(); }).ok());
  REQUIRE(WaitUntil([&] { return !sup.IsRunning("done"); }));
  CHECK(absl::IsAlreadyExists(sup.Start("done", [&](ProcessContext&) -> absl::Status {
    ++second_runs;
    return absl::OkStatus();
  })));

  sup.Shutdown();
  CHECK(first_runs == 1);
  CHECK(second_runs == 0);
}

TEST_CASE("Unknown process names are not running", "[supervisor]") {
  Supervisor sup(FastPolicy(), nullptr);  // a null sink is allowed
  CHECK_FALSE(sup.Exists("nope"));
  CHECK_FALSE(sup.IsRunning("nope"));
  CHECK(sup.Restarts("nope") == 0);
  Runs runs;
  REQUIRE(sup.Start("nosink", [&](ProcessContext& ctx) -> absl::Status {
                if (runs.Add() == 1) return absl::InternalError("no sink to tell");
                return WaitForStop(ctx);
              }).ok());
  REQUIRE(WaitUntil([&] { return runs.count() >= 2; }));
  CHECK(sup.Restarts("nosink") == 1);
}

TEST_CASE("Many processes fail and restart independently", "[supervisor]") {
  Recorder rec;
  constexpr int kProcs = 10;
  std::vector<std::unique_ptr<Runs>> runs;
  for (int i = 0; i < kProcs; ++i) runs.push_back(std::make_unique<Runs>());
  Supervisor sup(FastPolicy(), rec.Sink());
  for (int i = 0; i < kProcs; ++i) {
    Runs* mine = runs[static_cast<size_t>(i)].get();
    const int fails = i % 4;
    REQUIRE(sup.Start("proc" + std::to_string(i), [mine, fails](ProcessContext& ctx) {
                  if (mine->Add() <= fails) return absl::InternalError("fail");
                  return WaitForStop(ctx);
                }).ok());
  }
  REQUIRE(WaitUntil([&] {
    for (int i = 0; i < kProcs; ++i) {
      if (runs[static_cast<size_t>(i)]->count() < i % 4 + 1) return false;
    }
    return true;
  }));
  for (int i = 0; i < kProcs; ++i) {
    const std::string name = "proc" + std::to_string(i);
    INFO(name);
    CHECK(sup.Restarts(name) == i % 4);
    CHECK(rec.CountFor(name) == static_cast<size_t>(i % 4));
    CHECK(sup.IsRunning(name));
  }
  sup.Shutdown();
}

TEST_CASE("StartAgain runs an ended process afresh under its name, never a running one", "[supervisor]") {
  Supervisor sup(FastPolicy(), nullptr);
  std::atomic<int> runs{0};
  auto body = [&](ProcessContext& ctx) -> absl::Status {
    ++runs;
    return WaitForStop(ctx);
  };
  // Not yet ended: refused.
  REQUIRE(sup.Start("h", body).ok());
  REQUIRE(WaitUntil([&] { return runs.load() == 1; }));
  CHECK(absl::IsAlreadyExists(sup.StartAgain("h", body)));

  REQUIRE(sup.Start("once", [](ProcessContext&) { return absl::OkStatus(); }).ok());
  REQUIRE(WaitUntil([&] { return !sup.IsRunning("once"); }));
  std::atomic<bool> again{false};
  REQUIRE(sup.StartAgain("once", [&](ProcessContext& ctx) -> absl::Status {
                again = true;
                return WaitForStop(ctx);
              }).ok());
  REQUIRE(WaitUntil([&] { return again.load(); }));
  CHECK(sup.IsRunning("once"));
  bool listed = false;
  for (const auto& p : sup.Processes()) {
    if (p.name == "once") listed = p.running;
  }
  CHECK(listed);
  sup.Shutdown();
  CHECK(runs == 1);
}

}  // namespace
}  // namespace steward::agent
