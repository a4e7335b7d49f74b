// Integration tests for agent/agent.h in-process, against a real nats-server and a fake
// station that stores (answers) every event: a command runs once, its result reaches
// the station and leaves the spool, a redelivery is answered from the command log; a
// failing process is restarted by the error kernel and serves the next command; an
// agent whose threads sleep waiting for work still shuts down at once.
#include "agent/agent.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/agent_store.h"
#include "agent/command_log.h"
#include "agent/command_runner.h"
#include "agent/method.h"
#include "common/nats.h"
#include "common/outbox.h"
#include "common/protocol.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/wait.h"

namespace steward::agent {
namespace {

using steward::testing::NatsServer;
using steward::testing::TempDir;

constexpr char kNode[] = "ship1";

using steward::testing::WaitUntil;

using steward::testing::MustConnect;

// A fake station: stores every event it gets on station.event.> (answers SUCCEEDED)
// and keeps the result ACKs by command id.
class Station {
 public:
  explicit Station(const std::string& url) {
    nc_ = MustConnect(url, "station");
    absl::StatusOr<nats::SubscriptionPtr> sub = nats::SubscribeSync(nc_.get(), "station.event.>", 100000);
    REQUIRE(sub.ok());
    sub_ = *std::move(sub);
    REQUIRE(nats::Flush(nc_.get(), absl::Seconds(5)).ok());
    thread_ = std::thread([this] { Loop(); });
  }
  ~Station() {
    stop_ = true;
    thread_.join();
  }

  std::vector<proto::Ack> results(const std::string& command_id) const {
    absl::MutexLock lock(&mu_);
    auto it = results_.find(command_id);
    return it == results_.end() ? std::vector<proto::Ack>{} : it->second;
  }
  int events(const std::string& method) const {
    absl::MutexLock lock(&mu_);
    auto it = events_.find(method);
    return it == events_.end() ? 0 : it->second;
  }

 private:
  void Loop() {
    while (!stop_) {
      absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub_.get(), absl::Milliseconds(50));
      if (!msg.ok()) continue;
      absl::StatusOr<proto::Envelope> ev = DecodeEnvelope(nats::Data(msg->get()));
      if (!ev.ok()) continue;
      {
        absl::MutexLock lock(&mu_);
        ++events_[ev->method()];
        proto::Ack ack;
        if (ev->method() == kEventResult && ack.ParseFromString(ev->payload())) {
          results_[ack.envelope_id()].push_back(ack);
        }
      }
      const std::string reply =
          NewAck(ev->id(), "station", proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED).SerializeAsString();
      const char* to = natsMsg_GetReply(msg->get());
      if (to != nullptr) {
        natsConnection_Publish(nc_.get(), to, reply.data(), static_cast<int>(reply.size()));
      }
    }
  }

  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<proto::Ack>> results_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> events_ ABSL_GUARDED_BY(mu_);
  nats::ConnectionPtr nc_;
  nats::SubscriptionPtr sub_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A durable method that counts its runs; with `fail_first`, its first run reports a
// broken process (an error status) instead of a result.
// With `quick`, a quick method (Method::quick): its result comes in the reply.
class CountMethod final : public Method {
 public:
  CountMethod(std::atomic<int>* runs, bool fail_first, bool quick = false)
      : runs_(runs), fail_first_(fail_first), quick_(quick) {}
  bool quick() const override { return quick_; }
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    if (runs_->fetch_add(1) == 0 && fail_first_) return absl::InternalError("broken on purpose");
    proto::Ack ack = NewAck(ctx.command.id(), ctx.node, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
    ack.set_stdout(absl::StrCat("run ", runs_->load(), "\n"));
    return ack;
  }

 private:
  std::atomic<int>* const runs_;
  const bool fail_first_;
  const bool quick_;
};

// A durable method whose command with argv {"hold"} runs until `release` is notified;
// any other returns at once. Counts its runs.
class HoldMethod final : public Method {
 public:
  HoldMethod(std::atomic<int>* runs, absl::Notification* release) : runs_(runs), release_(release) {}
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    ++*runs_;
    if (ctx.command.argv_size() > 0 && ctx.command.argv(0) == "hold") {
      release_->WaitForNotificationWithTimeout(absl::Seconds(20));
    }
    return NewAck(ctx.command.id(), ctx.node, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
  }

 private:
  std::atomic<int>* const runs_;
  absl::Notification* const release_;
};

// A quick method that notes the thread each of its commands ran on. Its first run may
// fail: kStatus reports a broken method (an error status) instead of a result, kThrow
// throws.
class ThreadMethod final : public Method {
 public:
  enum class First { kRuns, kStatus, kThrow };
  struct Seen {
    absl::Mutex mu;
    std::vector<std::thread::id> threads ABSL_GUARDED_BY(mu);
    std::atomic<int> runs{0};
  };
  ThreadMethod(Seen* seen, First first) : seen_(seen), first_(first) {}
  bool quick() const override { return true; }
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    {
      absl::MutexLock lock(&seen_->mu);
      seen_->threads.push_back(std::this_thread::get_id());
    }
    if (seen_->runs.fetch_add(1) == 0) {
      if (first_ == First::kStatus) return absl::InternalError("broken on purpose");
      if (first_ == First::kThrow) throw std::runtime_error("thrown on purpose");
    }
    return NewAck(ctx.command.id(), ctx.node, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
  }

 private:
  Seen* const seen_;
  const First first_;
};

// A quick method that cancels the command named in its argv (through the agent's
// CommandControl, as the cancel method does) and answers with what that said: taken
// right after its target in one batch, it runs while the target waits for the batch's
// write.
class CancelProbeMethod final : public Method {
 public:
  bool quick() const override { return true; }
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    proto::Ack ack = NewAck(ctx.command.id(), ctx.node, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
    absl::StatusOr<std::string> said = ctx.control->CancelCommand(ctx.command.argv(0), ctx.command.domain(), "probe");
    ack.set_stdout(said.ok() ? *said : std::string(said.status().message()));
    return ack;
  }
};

struct Harness {
  explicit Harness(const std::string& url) : client(MustConnect(url, "operator")) {}

  // `restart_backoff`: how long the error kernel waits before it starts a broken
  // process again.
  std::unique_ptr<Agent> Start(const std::string& url, std::unique_ptr<CommandLog> log,
                               std::unique_ptr<Spool> spool,
                               absl::Duration restart_backoff = absl::Milliseconds(20)) {
    AgentOptions options;
    options.node = kNode;
    options.nats.url = url;
    options.heartbeat = absl::Seconds(30);
    options.restart.initial_backoff = restart_backoff;
    MethodRegistry methods = BuiltinMethods();
    methods.Register("count", [this] { return std::make_unique<CountMethod>(&count_runs, false); });
    methods.Register("flaky", [this] { return std::make_unique<CountMethod>(&flaky_runs, true); });
    methods.Register("quick", [this] { return std::make_unique<CountMethod>(&quick_runs, false, true); });
    methods.Register("hold", [this] { return std::make_unique<HoldMethod>(&hold_runs, &release); });
    methods.Register("where", [this] { return std::make_unique<ThreadMethod>(&where, ThreadMethod::First::kRuns); });
    methods.Register("quickflaky",
                     [this] { return std::make_unique<ThreadMethod>(&quick_flaky, ThreadMethod::First::kStatus); });
    methods.Register("cancelprobe", [] { return std::make_unique<CancelProbeMethod>(); });
    methods.Register("quickthrows",
                     [this] { return std::make_unique<ThreadMethod>(&quick_throws, ThreadMethod::First::kThrow); });
    absl::StatusOr<std::unique_ptr<Agent>> agent =
        Agent::Start(std::move(options), std::move(methods), NewPosixCommandRunner(),
                     std::move(log), std::move(spool));
    INFO(agent.status().ToString());
    REQUIRE(agent.ok());
    return *std::move(agent);
  }

  // Sends `cmd` to the agent as the station does; the ACK in the reply.
  absl::StatusOr<proto::Ack> Send(const proto::Envelope& cmd, absl::Duration timeout = absl::Seconds(5)) {
    const std::string subject = absl::StrCat(kNode, ".command.", cmd.method(), ".", cmd.domain());
    absl::StatusOr<nats::MsgPtr> reply =
        nats::Request(client.get(), subject, cmd.SerializeAsString(), timeout);
    if (!reply.ok()) return reply.status();
    return DecodeAck(nats::Data(reply->get()));
  }

  // Sends until the agent answers (it subscribes in the background at start).
  absl::StatusOr<proto::Ack> SendWhenUp(const proto::Envelope& cmd) {
    absl::StatusOr<proto::Ack> ack;
    WaitUntil([&] {
      ack = Send(cmd);
      return !absl::IsUnavailable(ack.status());  // no responders yet
    });
    return ack;
  }

  static proto::Envelope Command(const std::string& method, const std::string& domain = "default") {
    return NewEnvelope("station", kNode, proto::KIND_COMMAND, method, domain);
  }

  nats::ConnectionPtr client;
  std::atomic<int> count_runs{0};
  std::atomic<int> flaky_runs{0};
  std::atomic<int> quick_runs{0};
  std::atomic<int> hold_runs{0};
  absl::Notification release;  // ends the "hold" command
  ThreadMethod::Seen where;
  ThreadMethod::Seen quick_flaky;
  ThreadMethod::Seen quick_throws;
};

// A command log (in memory) that counts its writes and can be told to fail RecordAll,
// as a full disk would.
class CountingLog final : public CommandLog {
 public:
  std::optional<proto::Ack> Lookup(const std::string& id) override { return log_->Lookup(id); }
  absl::Status Record(const proto::Ack& ack) override {
    ++records;
    return log_->Record(ack);
  }
  absl::Status RecordAll(const std::vector<proto::Ack>& acks) override {
    absl::MutexLock lock(&mu);
    record_alls.push_back(acks.size());
    if (fail_record_all) return absl::ResourceExhaustedError("disk full (on purpose)");
    return log_->RecordAll(acks);
  }
  absl::Mutex mu;
  std::vector<size_t> record_alls ABSL_GUARDED_BY(mu);  // the size of each RecordAll
  std::atomic<int> records{0};
  std::atomic<bool> fail_record_all{false};

 private:
  const std::unique_ptr<CommandLog> log_ = NewMemoryCommandLog();
};

// The threads a ThreadMethod's commands ran on, in order.
std::vector<std::thread::id> ThreadsOf(ThreadMethod::Seen& seen) {
  absl::MutexLock lock(&seen.mu);
  return seen.threads;
}

// The process serving `subject` ("<method>/<domain>") as the agent reports it.
std::optional<proto::ProcessStatus> ProcessOf(const Agent& agent, const std::string& name) {
  for (const proto::ProcessStatus& p : agent.Processes()) {
    if (p.name() == name) return p;
  }
  return std::nullopt;
}

// A long command (method "hold", until h.release) occupies the process of hold/default.
void HoldProcess(Harness& h, const Agent& agent) {
  proto::Envelope first = Harness::Command("hold");
  first.add_argv("hold");
  absl::StatusOr<proto::Ack> ack = h.SendWhenUp(first);
  REQUIRE(ack.ok());
  CHECK(ack->stage() == proto::STAGE_RECEIVED);
  REQUIRE(WaitUntil([&] {
    std::optional<proto::ProcessStatus> p = ProcessOf(agent, "hold/default");
    return p.has_value() && p->current_command() == first.id();
  }));
}

// Sends `cmd` and ends the hold 300 ms later: the answer that comes (up to 10 s).
absl::StatusOr<proto::Ack> SendAndRelease(Harness& h, const proto::Envelope& cmd) {
  std::thread release([&h] {
    absl::SleepFor(absl::Milliseconds(300));
    h.release.Notify();
  });
  absl::StatusOr<proto::Ack> ack = h.Send(cmd, absl::Seconds(10));
  release.join();
  return ack;
}

TEST_CASE("Agent runs a command once, delivers its result and answers a redelivery",
          "[agent][integration]") {
  nats::Library lib;
  NatsServer server;
  TempDir dir;
  Station station(server.url());
  Harness h(server.url());
  absl::StatusOr<std::shared_ptr<AgentStore>> store = AgentStore::Open(dir.str());
  REQUIRE(store.ok());
  std::unique_ptr<Agent> agent =
      h.Start(server.url(), (*store)->NewCommandLog(), (*store)->NewSpool());

  const proto::Envelope cmd = Harness::Command("count");
  absl::StatusOr<proto::Ack> ack = h.SendWhenUp(cmd);
  INFO(ack.status().ToString());
  REQUIRE(ack.ok());
  CHECK(ack->stage() == proto::STAGE_RECEIVED);
  REQUIRE(WaitUntil([&] { return !station.results(cmd.id()).empty(); }));
  CHECK(station.results(cmd.id())[0].outcome() == proto::OUTCOME_SUCCEEDED);
  REQUIRE(WaitUntil([&] { return agent->outbox_pending() == 0; }));

  // Redelivered: answered with the recorded result, not run again.
  ack = h.Send(cmd);
  REQUIRE(ack.ok());
  CHECK(ack->stage() == proto::STAGE_RESULT);
  CHECK(ack->outcome() == proto::OUTCOME_SUCCEEDED);
  CHECK(h.count_runs == 1);

  agent->Shutdown();
  agent.reset();
  // The log holds the result; the spool, once the station confirmed it, nothing.
  std::optional<proto::Ack> recorded = (*store)->NewCommandLog()->Lookup(cmd.id());
  REQUIRE(recorded.has_value());
  CHECK(recorded->stage() == proto::STAGE_RESULT);
  absl::StatusOr<std::vector<OutboxItem>> spooled = (*store)->NewSpool()->LoadAll();
  REQUIRE(spooled.ok());
  CHECK(spooled->empty());
  absl::StatusOr<std::vector<proto::Ack>> interrupted = (*store)->Interrupted();
  REQUIRE(interrupted.ok());
  CHECK(interrupted->empty());
}

TEST_CASE("A quick command answers with its recorded result, runs once across a lost reply and a restart",
          "[agent][integration]") {
  nats::Library lib;
  NatsServer server;
  TempDir dir;
  Station station(server.url());
  Harness h(server.url());
  absl::StatusOr<std::shared_ptr<AgentStore>> store = AgentStore::Open(dir.str());
  REQUIRE(store.ok());
  std::unique_ptr<Agent> agent = h.Start(server.url(), (*store)->NewCommandLog(), (*store)->NewSpool());

  // One exchange: the reply is the result (its receipt implied), and no result event.
  const proto::Envelope cmd = Harness::Command("quick");
  absl::StatusOr<proto::Ack> ack = h.SendWhenUp(cmd);
  INFO(ack.status().ToString());
  REQUIRE(ack.ok());
  CHECK(ack->envelope_id() == cmd.id());
  CHECK(ack->stage() == proto::STAGE_RESULT);
  CHECK(ack->outcome() == proto::OUTCOME_SUCCEEDED);
  CHECK(ack->stdout() == "run 1\n");
  CHECK(h.quick_runs == 1);
  // Recorded before it was answered.
  std::optional<proto::Ack> recorded = (*store)->NewCommandLog()->Lookup(cmd.id());
  REQUIRE(recorded.has_value());
  CHECK(recorded->stage() == proto::STAGE_RESULT);
  CHECK(recorded->stdout() == "run 1\n");
  CHECK(agent->outbox_pending() == 0);

  // The reply lost on its way: the station sends the command again and gets the same
  // result from the record; it does not run again.
  ack = h.Send(cmd);
  REQUIRE(ack.ok());
  CHECK(ack->stage() == proto::STAGE_RESULT);
  CHECK(ack->stdout() == "run 1\n");
  CHECK(h.quick_runs == 1);
  // Also when the copy comes after the command's expiry: it ran in time, and its result
  // is the answer, not "expired".
  {
    proto::Envelope expiring = Harness::Command("quick");
    expiring.set_expires_unix_ms(NowUnixMillis() + 300);
    ack = h.Send(expiring);
    REQUIRE(ack.ok());
    CHECK(ack->outcome() == proto::OUTCOME_SUCCEEDED);
    absl::SleepFor(absl::Milliseconds(400));
    ack = h.Send(expiring);
    REQUIRE(ack.ok());
    CHECK(ack->stage() == proto::STAGE_RESULT);
    CHECK(ack->outcome() == proto::OUTCOME_SUCCEEDED);
    CHECK(ack->stdout() == "run 2\n");
    CHECK(h.quick_runs == 2);
    // A command it never saw is refused once expired.
    proto::Envelope late = Harness::Command("quick");
    late.set_expires_unix_ms(NowUnixMillis() - 1);
    ack = h.Send(late);
    REQUIRE(ack.ok());
    CHECK(ack->outcome() == proto::OUTCOME_REJECTED);
    CHECK(h.quick_runs == 2);
  }

  // The agent stopped between its record and the station's having the result (killed
  // before its reply went out looks the same from here: the record is committed first):
  // a new run of the agent answers from the record too.
  agent->Shutdown();
  agent.reset();
  agent = h.Start(server.url(), (*store)->NewCommandLog(), (*store)->NewSpool());
  ack = h.SendWhenUp(cmd);
  REQUIRE(ack.ok());
  CHECK(ack->stage() == proto::STAGE_RESULT);
  CHECK(ack->stdout() == "run 1\n");
  CHECK(h.quick_runs == 2);  // the first, and the expiring one above

  // The built-in echo is quick: its arguments come back in the reply.
  proto::Envelope echo = Harness::Command(kMethodEcho);
  echo.add_argv("hello");
  echo.add_argv("there");
  ack = h.Send(echo);
  REQUIRE(ack.ok());
  CHECK(ack->stage() == proto::STAGE_RESULT);
  CHECK(ack->stdout() == "hello there\n");

  // Nothing was spooled for the station: no result events at all.
  absl::SleepFor(absl::Milliseconds(200));
  CHECK(station.events(kEventResult) == 0);
  agent->Shutdown();
  agent.reset();
  absl::StatusOr<std::vector<OutboxItem>> spooled = (*store)->NewSpool()->LoadAll();
  REQUIRE(spooled.ok());
  CHECK(spooled->empty());
}

TEST_CASE("Copies of a command still waiting in its queue are not queued again and the latest is answered",
          "[agent][integration]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url());
  Harness h(server.url());
  std::unique_ptr<Agent> agent = h.Start(server.url(), NewMemoryCommandLog(), NewMemorySpool());

  HoldProcess(h, *agent);
  absl::StatusOr<proto::Ack> ack;

  // The next waits behind it, unanswered: the station's ACK timeout passes and it sends
  // the same command again, three times. One copy waits in the queue.
  const proto::Envelope second = Harness::Command("hold");
  for (int i = 0; i < 3; ++i) {
    ack = h.Send(second, absl::Milliseconds(200));
    INFO(i << ": " << ack.status().ToString());
    CHECK(absl::IsDeadlineExceeded(ack.status()));
  }
  std::optional<proto::ProcessStatus> p = ProcessOf(*agent, "hold/default");
  REQUIRE(p.has_value());
  CHECK(p->queue_depth() == 1);

  // A fourth copy, answered once the first command ends: the queued one answers on this
  // copy's reply subject, and the command runs once.
  ack = SendAndRelease(h, second);
  INFO(ack.status().ToString());
  REQUIRE(ack.ok());
  CHECK(ack->envelope_id() == second.id());
  CHECK(ack->stage() == proto::STAGE_RECEIVED);
  REQUIRE(WaitUntil([&] { return !station.results(second.id()).empty(); }));
  CHECK(station.results(second.id())[0].outcome() == proto::OUTCOME_SUCCEEDED);
  CHECK(h.hold_runs == 2);
  p = ProcessOf(*agent, "hold/default");
  REQUIRE(p.has_value());
  CHECK(p->queue_depth() == 0);
  CHECK(p->handled() == 2);

  // Taken from the queue, a copy is queued again as before: answered from the record.
  ack = h.Send(second);
  REQUIRE(ack.ok());
  CHECK(ack->stage() == proto::STAGE_RESULT);
  CHECK(h.hold_runs == 2);
}

TEST_CASE("A command that expires while it waits behind a long one never runs and no copy is refused before it",
          "[agent][integration]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url());
  Harness h(server.url());
  std::unique_ptr<Agent> agent = h.Start(server.url(), NewMemoryCommandLog(), NewMemorySpool());

  HoldProcess(h, *agent);

  // Valid when it comes, it waits; its expiry passes in the queue.
  proto::Envelope second = Harness::Command("hold");
  second.set_expires_unix_ms(NowUnixMillis() + 800);
  absl::StatusOr<proto::Ack> ack = h.Send(second, absl::Milliseconds(200));
  CHECK(absl::IsDeadlineExceeded(ack.status()));
  absl::SleepFor(absl::Milliseconds(1000));
  REQUIRE(Expired(second, NowUnixMillis()));

  // The station's copy after the expiry is not refused while the command still waits:
  // a refusal is a final word, and the queued one could still be taken.
  ack = h.Send(second, absl::Milliseconds(300));
  INFO(ack.status().ToString() << (ack.ok() ? " " + ack->error() : ""));
  CHECK(absl::IsDeadlineExceeded(ack.status()));

  // Its turn comes after its expiry: refused then, on the latest copy's reply subject,
  // and never run.
  ack = SendAndRelease(h, second);
  INFO(ack.status().ToString());
  REQUIRE(ack.ok());
  CHECK(ack->envelope_id() == second.id());
  CHECK(ack->stage() == proto::STAGE_RESULT);
  CHECK(ack->outcome() == proto::OUTCOME_REJECTED);
  CHECK_THAT(ack->error(), Catch::Matchers::Contains("expired"));
  std::optional<proto::ProcessStatus> p;
  REQUIRE(WaitUntil([&] {
    p = ProcessOf(*agent, "hold/default");
    return p.has_value() && p->handled() == 2;
  }));
  CHECK(p->queue_depth() == 0);
  CHECK(h.hold_runs == 1);
}

TEST_CASE("A command may not set the agent's own environment variables and never runs when it tries",
          "[agent][integration]") {
  nats::Library lib;
  NatsServer server;
  TempDir dir;
  Station station(server.url());
  Harness h(server.url());
  std::unique_ptr<Agent> agent = h.Start(server.url(), NewMemoryCommandLog(), NewMemorySpool());
  const std::string ran = dir.str() + "/ran";
  for (const std::string& env : {std::string("STEWARD_COMMAND_ID=other"), std::string("STEWARD_NODE=ship9"),
                                 std::string("NOVALUE"), std::string("A=b\0c", 5)}) {
    INFO(env);
    proto::Envelope cmd = Harness::Command(kMethodShell);
    cmd.add_argv("touch");
    cmd.add_argv(ran);
    cmd.mutable_shell()->add_env(env);
    REQUIRE(h.SendWhenUp(cmd).ok());
    REQUIRE(WaitUntil([&] { return !station.results(cmd.id()).empty(); }));
    const proto::Ack result = station.results(cmd.id())[0];
    CHECK(result.outcome() == proto::OUTCOME_REJECTED);
    CHECK_THAT(result.error(), Catch::Matchers::Contains(env == "NOVALUE"         ? "not KEY=VALUE"
                                                         : env.size() == 5 ? "contains a NUL byte"
                                                                           : "is set by the agent"));
  }
  // Nor may its arguments hold a NUL byte (exec would cut them short).
  proto::Envelope nul = Harness::Command(kMethodShell);
  nul.add_argv("touch");
  nul.add_argv(ran + std::string("\0.x", 3));
  REQUIRE(h.SendWhenUp(nul).ok());
  REQUIRE(WaitUntil([&] { return !station.results(nul.id()).empty(); }));
  CHECK(station.results(nul.id())[0].outcome() == proto::OUTCOME_REJECTED);
  CHECK_THAT(station.results(nul.id())[0].error(), Catch::Matchers::Contains("argv[1] contains a NUL byte"));
  CHECK_FALSE(std::filesystem::exists(ran));
}

TEST_CASE("WaitingCommands: the first delivery is queued, copies only move its reply subject",
          "[agent]") {
  WaitingCommands w;
  CHECK(w.Add("A", "_INBOX.1"));
  CHECK_FALSE(w.Add("A", "_INBOX.2"));
  CHECK_FALSE(w.Add("A", ""));  // a bare publish takes no answer away
  CHECK(w.Add("B", "_INBOX.3"));
  CHECK(w.size() == 2);
  CHECK(w.Take("A", "_INBOX.1") == "_INBOX.2");
  CHECK(w.Take("C", "_INBOX.9") == "_INBOX.9");  // never added: its own
  // In hand: a copy is neither queued nor refused, and takes no answer.
  CHECK_FALSE(w.Add("A", "_INBOX.4"));
  CHECK(w.Move("A", "_INBOX.5"));
  CHECK_FALSE(w.Move("C", "_INBOX.6"));
  w.Release("A");                 // answered
  CHECK(w.Add("A", "_INBOX.7"));  // queued again: answered from the record
  w.Release("A");                 // the first one's end does not drop the copy queued since
  CHECK_FALSE(w.Add("A", "_INBOX.8"));
  w.Release("B");                 // not in hand: nothing changes
  CHECK_FALSE(w.Add("B", "_INBOX.3"));
  w.Forget("B");                  // the queue did not take it
  CHECK(w.Add("B", "_INBOX.8"));
  CHECK(w.Move("B", "_INBOX.9"));
  CHECK(w.Take("B", "") == "_INBOX.9");
  CHECK(w.size() == 2);
}

TEST_CASE("Agent restarts a broken process, which then serves the next command",
          "[agent][integration]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url());
  Harness h(server.url());
  std::unique_ptr<Agent> agent = h.Start(server.url(), NewMemoryCommandLog(), NewMemorySpool());

  // The first run breaks the process: the command still gets a final (error) result,
  // and the error kernel restarts the process.
  const proto::Envelope first = Harness::Command("flaky");
  absl::StatusOr<proto::Ack> ack = h.SendWhenUp(first);
  REQUIRE(ack.ok());
  CHECK(ack->stage() == proto::STAGE_RECEIVED);
  REQUIRE(WaitUntil([&] { return !station.results(first.id()).empty(); }));
  CHECK(station.results(first.id())[0].outcome() == proto::OUTCOME_ERROR);
  REQUIRE(WaitUntil([&] { return station.events(kEventErrorLog) >= 1; }));

  const proto::Envelope second = Harness::Command("flaky");
  ack = h.Send(second);
  REQUIRE(ack.ok());
  CHECK(ack->stage() == proto::STAGE_RECEIVED);
  REQUIRE(WaitUntil([&] { return !station.results(second.id()).empty(); }));
  CHECK(station.results(second.id())[0].outcome() == proto::OUTCOME_SUCCEEDED);
  CHECK(h.flaky_runs == 2);
}

TEST_CASE("Quick commands of idle processes are taken on the intake thread and a failing method leaves it",
          "[agent][integration]") {
  nats::Library lib;
  NatsServer server;
  TempDir dir;
  Station station(server.url());
  Harness h(server.url());
  absl::StatusOr<std::shared_ptr<AgentStore>> store = AgentStore::Open(dir.str());
  REQUIRE(store.ok());
  std::unique_ptr<Agent> agent = h.Start(server.url(), (*store)->NewCommandLog(), (*store)->NewSpool());

  // Three subjects, three processes: each command is answered with its result, recorded,
  // and all ran on one thread (the dispatcher's), none on its process's own.
  std::vector<proto::Envelope> sent;
  for (const char* domain : {"a", "b", "c", "a", "b", "c"}) {
    sent.push_back(Harness::Command("where", domain));
    absl::StatusOr<proto::Ack> ack = h.SendWhenUp(sent.back());
    REQUIRE(ack.ok());
    CHECK(ack->stage() == proto::STAGE_RESULT);
    CHECK(ack->outcome() == proto::OUTCOME_SUCCEEDED);
  }
  for (const proto::Envelope& e : sent) CHECK((*store)->NewCommandLog()->Lookup(e.id()).has_value());
  const std::vector<std::thread::id> threads = ThreadsOf(h.where);
  REQUIRE(threads.size() == 6);
  const std::thread::id intake = threads.front();
  for (const std::thread::id& t : threads) CHECK(t == intake);
  CHECK(h.where.runs == 6);
  // Their processes count them as theirs.
  for (const char* name : {"where/a", "where/b", "where/c"}) {
    std::optional<proto::ProcessStatus> p = ProcessOf(*agent, name);
    REQUIRE(p.has_value());
    CHECK(p->handled() == 2);
  }
  // A copy is answered from the record: no second run.
  absl::StatusOr<proto::Ack> again = h.Send(sent.front());
  REQUIRE(again.ok());
  CHECK(again->stage() == proto::STAGE_RESULT);
  CHECK(h.where.runs == 6);

  // One batch naming the same quick command twice: it runs once, and the second copy is
  // left out of the answer (the station sends it again alone).
  {
    const proto::Envelope twice = Harness::Command("where", "b");
    proto::CommandBatch batch;
    batch.add_commands(twice.SerializeAsString());
    batch.add_commands(twice.SerializeAsString());
    proto::Envelope carrier = Harness::Command(kMethodBatch, "station");
    carrier.set_payload(batch.SerializeAsString());
    absl::StatusOr<proto::Ack> answer = h.Send(carrier);
    REQUIRE(answer.ok());
    proto::AckBatch acks;
    REQUIRE(acks.ParseFromString(answer->payload()));
    REQUIRE(acks.acks_size() == 1);
    CHECK(acks.acks(0).envelope_id() == twice.id());
    CHECK(acks.acks(0).outcome() == proto::OUTCOME_SUCCEEDED);
    CHECK(h.where.runs == 7);
  }

  // A quick method that fails here: its command still gets a truthful final word in the
  // reply, the error kernel hears of it, and the intake goes on; that method's commands
  // go through its own process (thread) from then on, where the error kernel counts its
  // failures as that process's.
  const int errorlogs = station.events(kEventErrorLog);
  const proto::Envelope broken = Harness::Command("quickflaky");
  absl::StatusOr<proto::Ack> ack = h.Send(broken);
  REQUIRE(ack.ok());
  CHECK(ack->stage() == proto::STAGE_RESULT);
  CHECK(ack->outcome() == proto::OUTCOME_ERROR);
  REQUIRE(WaitUntil([&] { return station.events(kEventErrorLog) > errorlogs; }));
  ack = h.Send(Harness::Command("quickflaky"));
  REQUIRE(ack.ok());
  CHECK(ack->outcome() == proto::OUTCOME_SUCCEEDED);
  CHECK(h.quick_flaky.runs == 2);
  {
    std::optional<proto::ProcessStatus> p = ProcessOf(*agent, "quickflaky/default");
    REQUIRE(p.has_value());
    CHECK(p->handled() == 2);
    CHECK(p->failed() == 1);
  }
  std::vector<std::thread::id> flaky = ThreadsOf(h.quick_flaky);
  REQUIRE(flaky.size() == 2);
  CHECK(flaky[0] == intake);
  CHECK(flaky[1] != intake);

  // One that throws: that command gets no answer (the station would send it again), the
  // intake survives, and the copy runs on the method's own thread and is answered.
  const proto::Envelope throws = Harness::Command("quickthrows");
  ack = h.Send(throws, absl::Milliseconds(500));
  CHECK(absl::IsDeadlineExceeded(ack.status()));
  ack = h.Send(throws);
  REQUIRE(ack.ok());
  CHECK(ack->outcome() == proto::OUTCOME_SUCCEEDED);
  std::vector<std::thread::id> thrown = ThreadsOf(h.quick_throws);
  REQUIRE(thrown.size() == 2);
  CHECK(thrown[0] == intake);
  CHECK(thrown[1] != intake);
  // Other quick methods are still taken on the intake thread.
  ack = h.Send(Harness::Command("where", "a"));
  REQUIRE(ack.ok());
  CHECK(ack->outcome() == proto::OUTCOME_SUCCEEDED);
  CHECK(ThreadsOf(h.where).back() == intake);
}

TEST_CASE("A batch's quick commands are recorded in one write before its answer and go the long way if it fails",
          "[agent][integration][batch]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url());
  Harness h(server.url());
  auto owned = std::make_unique<CountingLog>();
  CountingLog* log = owned.get();
  std::unique_ptr<Agent> agent = h.Start(server.url(), std::move(owned), NewMemorySpool());
  REQUIRE(h.SendWhenUp(Harness::Command("where", "warm")).ok());  // alone: a write of one
  const int records_before = log->records;

  // Four quick commands, two of one subject: one write of four, then the answer, which
  // holds their results.
  auto batch_of = [](const std::vector<proto::Envelope>& commands) {
    proto::CommandBatch batch;
    for (const proto::Envelope& e : commands) batch.add_commands(e.SerializeAsString());
    proto::Envelope carrier = Harness::Command(kMethodBatch, "station");
    carrier.set_payload(batch.SerializeAsString());
    return carrier;
  };
  const std::vector<proto::Envelope> four = {Harness::Command("where", "a"), Harness::Command("where", "b"),
                                             Harness::Command("where", "a"), Harness::Command("quick", "c")};
  absl::StatusOr<proto::Ack> answer = h.Send(batch_of(four));
  REQUIRE(answer.ok());
  proto::AckBatch acks;
  REQUIRE(acks.ParseFromString(answer->payload()));
  REQUIRE(acks.acks_size() == 4);  // all answered here, in order
  for (int i = 0; i < 4; ++i) {
    CHECK(acks.acks(i).envelope_id() == four[static_cast<size_t>(i)].id());
    CHECK(acks.acks(i).stage() == proto::STAGE_RESULT);
    CHECK(acks.acks(i).outcome() == proto::OUTCOME_SUCCEEDED);
    CHECK(log->Lookup(four[static_cast<size_t>(i)].id()).has_value());
  }
  {
    absl::MutexLock lock(&log->mu);
    REQUIRE(log->record_alls.size() == 2);
    CHECK(log->record_alls[0] == 1);  // the one sent alone
    CHECK(log->record_alls[1] == 4);
  }
  CHECK(log->records == records_before);

  // A cancel of a quick command that ran and waits for its batch's write finds it
  // finished, never "stopping" it (the probe runs right after it, before that write).
  {
    const proto::Envelope target = Harness::Command("where", "d");
    proto::Envelope probe = Harness::Command("cancelprobe", "d");
    probe.add_argv(target.id());
    answer = h.Send(batch_of({target, probe}));
    REQUIRE(answer.ok());
    REQUIRE(acks.ParseFromString(answer->payload()));
    REQUIRE(acks.acks_size() == 2);
    CHECK(acks.acks(0).envelope_id() == target.id());
    CHECK(acks.acks(0).outcome() == proto::OUTCOME_SUCCEEDED);
    CHECK(acks.acks(1).envelope_id() == probe.id());
    CHECK(acks.acks(1).stdout() == absl::StrCat(target.id(), " already finished here: succeeded"));
    std::optional<proto::Ack> recorded = log->Lookup(target.id());
    REQUIRE(recorded.has_value());
    CHECK(recorded->outcome() == proto::OUTCOME_SUCCEEDED);
  }

  // That write fails (a full disk): each command is answered `received`, and its result
  // reaches the station as a result event, the long way (which records it again, alone:
  // that write succeeds here).
  log->fail_record_all = true;
  const std::vector<proto::Envelope> two = {Harness::Command("where", "a"), Harness::Command("where", "b")};
  const int runs_before = h.where.runs;
  answer = h.Send(batch_of(two));
  REQUIRE(answer.ok());
  REQUIRE(acks.ParseFromString(answer->payload()));
  REQUIRE(acks.acks_size() == 2);
  for (const proto::Ack& a : acks.acks()) CHECK(a.stage() == proto::STAGE_RECEIVED);
  for (const proto::Envelope& e : two) {
    REQUIRE(WaitUntil([&] { return !station.results(e.id()).empty(); }));
    CHECK(station.results(e.id())[0].outcome() == proto::OUTCOME_SUCCEEDED);
  }
  CHECK(h.where.runs == runs_before + 2);
  // Only those two results came as events: every other one was in its answer.
  CHECK(station.events(kEventResult) == 2);
  // (The long way recorded each result with its event.) The station's copies are
  // answered from the record: nothing runs twice.
  log->fail_record_all = false;
  answer = h.Send(batch_of(two));
  REQUIRE(answer.ok());
  REQUIRE(acks.ParseFromString(answer->payload()));
  REQUIRE(acks.acks_size() == 2);
  for (const proto::Ack& a : acks.acks()) {
    CHECK(a.stage() == proto::STAGE_RESULT);
    CHECK(a.outcome() == proto::OUTCOME_SUCCEEDED);
  }
  CHECK(h.where.runs == runs_before + 2);
}

TEST_CASE("An idle agent shuts down at once", "[agent][integration]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url());
  Harness h(server.url());
  std::unique_ptr<Agent> agent = h.Start(server.url(), NewMemoryCommandLog(), NewMemorySpool());
  // Start a few processes, let everything go idle: the dispatcher and the processes
  // then sleep until there is work, with no tick to notice a shutdown by.
  for (const char* method : {"count", "flaky", "ping"}) {
    REQUIRE(h.SendWhenUp(Harness::Command(method)).ok());
  }
  REQUIRE(WaitUntil([&] { return agent->outbox_pending() == 0; }));
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Time start = absl::Now();
  agent->Shutdown();
  const absl::Duration took = absl::Now() - start;
  INFO("Shutdown took " << absl::FormatDuration(took));
  CHECK(took < absl::Seconds(1));
}

TEST_CASE("A batch leaves out a command whose process waits for its restart, which runs once restarted",
          "[agent][integration][batch]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url());
  Harness h(server.url());
  // Long enough that the batch below arrives while flaky/default waits for its restart.
  std::unique_ptr<Agent> agent =
      h.Start(server.url(), NewMemoryCommandLog(), NewMemorySpool(), /*restart_backoff=*/absl::Seconds(4));
  const proto::Envelope breaks = Harness::Command("flaky");  // its first run breaks the process
  REQUIRE(h.SendWhenUp(breaks).ok());
  REQUIRE(WaitUntil([&] { return !station.results(breaks.id()).empty(); }));

  const proto::Envelope waits = Harness::Command("flaky"), quick = Harness::Command("quick", "a");
  proto::CommandBatch batch;
  batch.add_commands(waits.SerializeAsString());
  batch.add_commands(quick.SerializeAsString());
  proto::Envelope carrier = Harness::Command(kMethodBatch, "station");
  carrier.set_payload(batch.SerializeAsString());
  // Answered at once: a slot for the waiting one would hold the answer until the restart.
  const absl::Time sent = absl::Now();
  absl::StatusOr<proto::Ack> ack = h.Send(carrier, absl::Seconds(2));
  INFO(ack.status().ToString());
  REQUIRE(ack.ok());
  CHECK(absl::Now() - sent < absl::Seconds(2));
  proto::AckBatch answers;
  REQUIRE(answers.ParseFromString(ack->payload()));
  REQUIRE(answers.acks_size() == 1);
  CHECK(answers.acks(0).envelope_id() == quick.id());
  CHECK(answers.acks(0).stage() == proto::STAGE_RESULT);
  CHECK(h.flaky_runs == 1);  // not yet: its process has not started again

  // Once the process is back, the left-out command runs, once, and its result goes as
  // an event.
  REQUIRE(WaitUntil([&] { return !station.results(waits.id()).empty(); }, absl::Seconds(15)));
  CHECK(station.results(waits.id())[0].outcome() == proto::OUTCOME_SUCCEEDED);
  CHECK(h.flaky_runs == 2);
}

}  // namespace
}  // namespace steward::agent

namespace steward::agent {
namespace {

TEST_CASE("A connection closed for good stops the agent instead of spinning",
          "[agent][integration]") {
  nats::Library lib;
  NatsServer server;
  nats::ConnectionPtr conn = MustConnect(server.url(), "agent's own");
  AgentOptions options;
  options.node = kNode;
  options.shared_connection = conn.get();
  options.heartbeat = absl::Seconds(30);
  options.restart.initial_backoff = absl::Milliseconds(20);
  options.shutdown_flush = absl::Milliseconds(100);
  absl::StatusOr<std::unique_ptr<Agent>> agent =
      Agent::Start(std::move(options), BuiltinMethods(), NewPosixCommandRunner(),
                   NewMemoryCommandLog(), NewMemorySpool());
  REQUIRE(agent.ok());
  absl::SleepFor(absl::Milliseconds(100));
  natsConnection_Close(conn.get());
  // The dispatcher fails, is restarted with backoff, and past the restart limit (5 in a
  // minute) the error kernel stops it: the agent reports itself fatal.
  CHECK((*agent)->fatal().WaitForNotificationWithTimeout(absl::Seconds(10)));
  (*agent)->Shutdown();
}

TEST_CASE("A batch is answered at once with what its prompt commands say, and leaves out what waits",
          "[agent][integration][batch]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url());
  Harness h(server.url());
  std::unique_ptr<Agent> agent = h.Start(server.url(), NewMemoryCommandLog(), NewMemorySpool());
  HoldProcess(h, *agent);  // hold/default is busy until h.release

  // quick/a twice (the second behind the first: both prompt), count/b twice (the second
  // behind the first, which runs once received), one behind the held command, one for
  // another node, and bytes that are no envelope.
  const proto::Envelope q1 = Harness::Command("quick", "a"), q2 = Harness::Command("quick", "a");
  const proto::Envelope c1 = Harness::Command("count", "b"), c2 = Harness::Command("count", "b");
  const proto::Envelope held = Harness::Command("hold");
  proto::Envelope other = Harness::Command("count", "c");
  other.set_to_node("ship2");
  proto::CommandBatch batch;
  for (const proto::Envelope* e : std::initializer_list<const proto::Envelope*>{&q1, &q2, &c1, &c2, &held, &other}) {
    batch.add_commands(e->SerializeAsString());
  }
  batch.add_commands("not an envelope");
  proto::Envelope carrier = Harness::Command(kMethodBatch, "station");
  carrier.set_payload(batch.SerializeAsString());

  absl::StatusOr<proto::Ack> ack = h.Send(carrier, absl::Seconds(5));  // the hold is still on
  REQUIRE(ack.ok());
  CHECK(ack->envelope_id() == carrier.id());
  CHECK(ack->outcome() == proto::OUTCOME_SUCCEEDED);
  proto::AckBatch answers;
  REQUIRE(answers.ParseFromString(ack->payload()));
  std::map<std::string, proto::Ack> by_id;
  for (const proto::Ack& a : answers.acks()) by_id[a.envelope_id()] = a;
  REQUIRE(by_id.count(q1.id()) == 1);
  CHECK(by_id[q1.id()].stage() == proto::STAGE_RESULT);
  REQUIRE(by_id.count(q2.id()) == 1);
  CHECK(by_id[q2.id()].stage() == proto::STAGE_RESULT);
  REQUIRE(by_id.count(c1.id()) == 1);
  CHECK(by_id[c1.id()].stage() == proto::STAGE_RECEIVED);
  CHECK(by_id.count(c2.id()) == 0);    // behind c1, which runs once received
  CHECK(by_id.count(held.id()) == 0);  // behind the held command
  REQUIRE(by_id.count(other.id()) == 1);
  CHECK(by_id[other.id()].outcome() == proto::OUTCOME_REJECTED);
  REQUIRE(by_id.count("") == 1);  // the bytes that are no envelope
  CHECK(by_id[""].outcome() == proto::OUTCOME_REJECTED);
  CHECK(answers.acks_size() == 5);

  // What was left out still runs, once, and its result goes as an event.
  h.release.Notify();
  REQUIRE(WaitUntil([&] { return !station.results(c2.id()).empty() && !station.results(held.id()).empty(); }));
  CHECK(station.results(c2.id())[0].outcome() == proto::OUTCOME_SUCCEEDED);
  CHECK(station.results(held.id())[0].outcome() == proto::OUTCOME_SUCCEEDED);
  CHECK(h.quick_runs == 2);
  CHECK(h.count_runs == 2);

  // A batch inside a batch, and one over the limit, are refused.
  proto::CommandBatch nested;
  nested.add_commands(carrier.SerializeAsString());
  proto::Envelope outer = Harness::Command(kMethodBatch, "station");
  outer.set_payload(nested.SerializeAsString());
  ack = h.Send(outer);
  REQUIRE(ack.ok());
  REQUIRE(answers.ParseFromString(ack->payload()));
  REQUIRE(answers.acks_size() == 1);
  CHECK(answers.acks(0).outcome() == proto::OUTCOME_REJECTED);
  CHECK_THAT(answers.acks(0).error(), Catch::Matchers::Contains("a batch inside a batch"));
  proto::CommandBatch big;
  for (int i = 0; i <= kMaxBatchCommands; ++i) big.add_commands(Harness::Command("quick", "a").SerializeAsString());
  proto::Envelope too_big = Harness::Command(kMethodBatch, "station");
  too_big.set_payload(big.SerializeAsString());
  ack = h.Send(too_big);
  REQUIRE(ack.ok());
  CHECK(ack->outcome() == proto::OUTCOME_REJECTED);
  CHECK(h.quick_runs == 2);
}

}  // namespace
}  // namespace steward::agent
