// End-to-end: `stewardctl debug` (issue 14 part 4) with real processes: the agent's own
// log lines at a chosen level, live, to the operator; the stream ends on time, when
// the client is killed, on Ctrl-C; a bad level starts nothing.
#include <catch2/catch.hpp>

#include <csignal>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/nats.h"
#include "tests/testing/cluster.h"
#include "tests/testing/process.h"
#include "tests/testing/wait.h"

using steward::testing::BinPath;
using steward::testing::Cluster;
using steward::testing::Process;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

namespace {

// `stewardctl debug NODE ARGS...` against the cluster, running in the background.
std::unique_ptr<Process> Debug(Cluster& c, std::vector<std::string> args) {
  std::vector<std::string> argv = {BinPath("ctl/stewardctl"), "--nats", c.url()};
  if (c.secure()) argv.insert(argv.end(), {"--keys", c.keys()});
  argv.insert(argv.end(), {"debug", "ship1"});
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<Process>(argv);
}

// The command id `send --no-wait` printed ("NODE ID").
std::string IdOf(const RunResult& r) {
  const size_t space = r.out.find(' ');
  REQUIRE(space != std::string::npos);
  return r.out.substr(space + 1, 26);
}

// Every message the broker carries under _DEBUG.>, as the test sees it (a third reader).
class StreamWatch {
 public:
  explicit StreamWatch(const Cluster& c) {
    auto nc = steward::nats::Connect({.url = c.url(), .name = "test-watch", .keep_trying = false});
    REQUIRE(nc.ok());
    nc_ = *std::move(nc);
    auto sub = steward::nats::SubscribeAsync(nc_.get(), "_DEBUG.>", OnMsg, this, 100000);
    REQUIRE(sub.ok());
    sub_ = *std::move(sub);
    REQUIRE(steward::nats::Flush(nc_.get(), absl::Seconds(2)).ok());
  }
  ~StreamWatch() { sub_.reset(); }
  absl::Time last() {
    absl::MutexLock lock(&mu_);
    return last_;
  }
  int count() {
    absl::MutexLock lock(&mu_);
    return count_;
  }

 private:
  static void OnMsg(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
    steward::nats::MsgPtr m(msg);
    auto* w = static_cast<StreamWatch*>(self);
    absl::MutexLock lock(&w->mu_);
    w->last_ = absl::Now();
    ++w->count_;
  }
  absl::Mutex mu_;
  absl::Time last_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int count_ ABSL_GUARDED_BY(mu_) = 0;
  steward::nats::ConnectionPtr nc_;
  steward::nats::SubscriptionPtr sub_;
};

}  // namespace

TEST_CASE("debug streams the agent's debug lines to each operator at its level and ends on time",
          "[integration][agentops][debug]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");  // logs at info: its debug lines go to nobody but the streams
  // Two sessions at once: one at debug, one at warning.
  auto debug = Debug(c, {"--level", "debug", "--for", "3s"});
  auto warning = Debug(c, {"--level", "warning", "--for", "3s"});
  REQUIRE(debug->WaitForOutput("Ctrl-C to stop", absl::Seconds(20)));
  REQUIRE(warning->WaitForOutput("Ctrl-C to stop", absl::Seconds(20)));
  const absl::Time started = absl::Now();
  RunResult sent = c.Ctl({"send", "--no-wait", "--method", "echo", "ship1", "--", "hello"});
  REQUIRE(sent.exit_code == 0);
  const std::string id = IdOf(sent);
  // The agent logs "command ID echo/...: received" at debug level.
  const std::string line = "DEBUG command " + id + " echo/";
  CHECK(debug->WaitForOutput(line, absl::Seconds(10)));

  std::optional<RunResult> done = debug->Wait(absl::Seconds(20));
  REQUIRE(done.has_value());
  INFO(done->out << done->err);
  CHECK(done->exit_code == 0);
  CHECK_THAT(done->err, Catch::Contains("the debug stream ended: its time is up"));
  // It ended on time: 3 s after it started, give or take the tick and a loaded machine.
  CHECK(absl::Now() - started < absl::Seconds(12));

  std::optional<RunResult> warned = warning->Wait(absl::Seconds(20));
  REQUIRE(warned.has_value());
  INFO(warned->out << warned->err);
  CHECK(warned->exit_code == 0);
  CHECK_THAT(warned->out, !Catch::Contains(id));  // below its level
  CHECK_THAT(warned->err, Catch::Contains("its time is up"));

  // The agent's own log level did not change for anybody else.
  CHECK_THAT(c.agent("ship1").Stderr(), !Catch::Contains(line));
  // And the request went through the ledger like any command.
  RunResult history = c.Ctl({"history", "--node", "ship1"});
  CHECK_THAT(history.out, Catch::Contains("debug"));
}

TEST_CASE("the agent stops streaming within its lease when the client is killed", "[integration][agentops][debug]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  StreamWatch watch(c);
  auto debug = Debug(c, {"--level", "debug", "--for", "5m"});
  REQUIRE(debug->WaitForOutput("Ctrl-C to stop", absl::Seconds(20)));
  // Its probes flow while the client lives.
  REQUIRE(WaitUntil([&] { return watch.count() >= 2; }, absl::Seconds(15)));
  debug->Signal(SIGKILL);
  const absl::Time killed = absl::Now();
  // The next probe finds nobody there: the session ends (probe every 2 s).
  CHECK(c.agent("ship1").WaitForOutput("ended: the operator went away", absl::Seconds(10)));
  CHECK(absl::Now() - killed < absl::Seconds(10));
  // What the agent sent just before it ended may still be on its way when the test sees
  // the log line: let it land, then nothing more comes for longer than a probe interval.
  absl::SleepFor(absl::Milliseconds(500));
  const int settled = watch.count();
  const absl::Time quiet_from = absl::Now();
  absl::SleepFor(absl::Seconds(3));
  CHECK(watch.count() == settled);
  CHECK(watch.last() <= quiet_from);
}

TEST_CASE("Ctrl-C ends a debug stream cleanly and the agent stops it", "[integration][agentops][debug]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  auto debug = Debug(c, {"--for", "5m"});
  REQUIRE(debug->WaitForOutput("Ctrl-C to stop", absl::Seconds(20)));
  debug->Signal(SIGINT);
  std::optional<RunResult> done = debug->Wait(absl::Seconds(10));
  REQUIRE(done.has_value());
  INFO(done->out << done->err);
  CHECK(done->exit_code == 0);
  CHECK_THAT(done->err, Catch::Contains("stopped"));
  CHECK(c.agent("ship1").WaitForOutput("ended: the operator went away", absl::Seconds(10)));
}

TEST_CASE("debug with a bad level or span gets a clear error and starts nothing", "[integration][agentops][debug]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  RunResult bad = c.Ctl({"debug", "ship1", "--level", "verbose", "--for", "3s"});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("unknown log level \"verbose\" (debug, info, warning or error)"));
  RunResult zero = c.Ctl({"debug", "ship1", "--for", "0s"});
  CHECK(zero.exit_code == 2);
  CHECK_THAT(zero.err, Catch::Contains("--for must be more than 0s"));
  // Nothing reached the station, nor the agent.
  RunResult history = c.Ctl({"history", "--node", "ship1"});
  CHECK_THAT(history.out, !Catch::Contains("debug"));
  CHECK_THAT(c.agent("ship1").Stderr(), !Catch::Contains("debug stream"));

  // The agent checks too (a client that skipped the check): refused with the reason.
  RunResult direct = c.Ctl({"send", "--method", "debug", "--domain", "agent", "ship1", "--", "loud", "3000",
                            "_DEBUG._.ship1.x"});
  CHECK(direct.exit_code != 0);
  CHECK_THAT(direct.out + direct.err, Catch::Contains("unknown log level \"loud\""));
  // A stream subject that is not this node's: refused, nothing is published there.
  RunResult elsewhere = c.Ctl({"send", "--method", "debug", "--domain", "agent", "ship1", "--", "debug", "3000",
                               "station.event.result.x"});
  CHECK(elsewhere.exit_code != 0);
  CHECK_THAT(elsewhere.out + elsewhere.err, Catch::Contains("not a debug stream of ship1"));
}

TEST_CASE("debug works under the broker's permissions: the node writes, only its operator reads",
          "[integration][agentops][debug][security]") {
  Cluster c(Cluster::Secure{});
  c.StartStation();
  c.StartAgent("ship1");
  auto debug = Debug(c, {"--level", "debug", "--for", "4s"});
  REQUIRE(debug->WaitForOutput("Ctrl-C to stop", absl::Seconds(20)));
  RunResult sent = c.Ctl({"send", "--no-wait", "--method", "echo", "ship1", "--", "hello"});
  REQUIRE(sent.exit_code == 0);
  CHECK(debug->WaitForOutput("DEBUG command " + IdOf(sent), absl::Seconds(10)));
  std::optional<RunResult> done = debug->Wait(absl::Seconds(20));
  REQUIRE(done.has_value());
  INFO(done->out << done->err);
  CHECK(done->exit_code == 0);
  // Ended on time, not because a probe went unanswered (the operator may answer).
  CHECK_THAT(done->err, Catch::Contains("its time is up"));
}
