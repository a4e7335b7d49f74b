// node_simulator: many simulated edge nodes in one process, for fan-out and scale
// benchmarks and tests. Prints "ready N" once every node is subscribed on the broker.
//
// A simulated node speaks the agent's protocol (DESIGN "Every message is acknowledged")
// with the agent's own parts, but owns no thread and no connection:
//   - nodes are spread over --connections NATS connections (node i on i % K); each
//     node has one async subscription on <node>.command.*.* and one reply inbox
//     (_INBOX_<node>.>, where the station answers its events) on its connection's
//     RequestPump; nats.c's delivery pool (--delivery-pool threads) runs the callbacks;
//   - a command is checked as the agent's dispatcher checks it (subject, envelope,
//     address, expiry, known method; unsigned mode: no trusted station key, no ACL)
//     and queued for --workers threads under one supervisor, which run the agent's
//     CommandProcessor::Handle: `received` ACK in the reply, the agent's methods
//     (echo, ping, shellcommand run for real), the result recorded in the node's
//     command log and sent through its connection's Outbox until the station stores it
//     (echo, a quick method: its recorded result is the reply, as with an agent);
//   - one thread sends every node's hello, each on its own phase of --heartbeat.
// What differs from a real agent, on purpose: command logs and outboxes are in memory
// (a redelivery is never run twice while the simulator runs; a restarted simulator is
// a fresh installation), one outbox per connection is shared by its nodes, commands of
// one node may run on several workers at once, and hellos carry no resource stats.
//
// --facts-dir gives each node its own facts (targeting tests); otherwise every node
// reports this host's.
// Run: node_simulator --nats URL --nodes 10000 [--connections 8]; SIGTERM stops.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/command_log.h"
#include "agent/command_runner.h"
#include "agent/events.h"
#include "agent/facts.h"
#include "agent/method.h"
#include "agent/process.h"
#include "agent/supervisor.h"
#include "bench/bench_util.h"
#include "common/bounded_queue.h"
#include "common/cli.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/mutex_mode.h"
#include "common/nats.h"
#include "common/outbox.h"
#include "common/protocol.h"
#include "common/request_pump.h"
#include "common/status_macros.h"
#include "subjects/subject.h"

namespace {

using steward::agent::CommandProcessor;
using steward::agent::EventWriter;

struct Config {
  int nodes = 1000;
  std::string prefix = "sim";
  int connections = 8;
  int delivery_pool = 4;
  int workers = 4;
  absl::Duration heartbeat = absl::Seconds(5);
  absl::Duration spread = absl::Seconds(1);  // first hellos spread over this
  std::string url;
  std::string station = "station";
  // Facts per node for targeting tests: DIR/<node>.facts (key=value lines, as
  // steward-agent --facts) and DIR/<node>.os-release, each when present.
  std::string facts_dir;
};

constexpr absl::Duration kHelloTimeout = absl::Seconds(5);
constexpr absl::Duration kHelloRetry = absl::Seconds(1);
constexpr size_t kQueueCapacity = 200000;

// One connection and what its nodes share: the pump (one timer thread) and the outbox
// (one sender thread) of their events.
struct Group {
  steward::nats::ConnectionPtr conn;
  std::unique_ptr<steward::RequestPump> pump;
  std::unique_ptr<steward::Outbox> outbox;
};

class Simulator;

// A random number of milliseconds in [0, below), for jitter.
int64_t Jitter(int64_t below) {
  thread_local std::minstd_rand gen(static_cast<unsigned>(
      std::hash<std::thread::id>()(std::this_thread::get_id()) ^ static_cast<size_t>(::getpid())));
  return below <= 0 ? 0 : static_cast<int64_t>(gen() % static_cast<uint64_t>(below));
}

// One simulated node: identity, command log, processor, subscription, hello schedule.
struct SimNode {
  SimNode(Simulator* s, Group* g, std::string n, uint32_t inbox, const Config& cfg);
  Simulator* sim;
  Group* group;
  const std::string name;
  const uint32_t inbox;  // on group->pump
  const EventWriter events;
  std::unique_ptr<steward::agent::CommandLog> log;
  std::unique_ptr<CommandProcessor> processor;
  steward::nats::SubscriptionPtr sub;
  steward::proto::Facts facts;  // read once at start
  std::atomic<int64_t> hello_due_ms{0};
  std::atomic<bool> hello_in_flight{false};
};

struct Job {
  SimNode* node;
  steward::agent::Work work;
};

class Simulator {
 public:
  explicit Simulator(Config cfg)
      : cfg_(std::move(cfg)),
        methods_(steward::agent::BuiltinMethods()),
        runner_(steward::agent::NewPosixCommandRunner()),
        queue_(kQueueCapacity),
        supervisor_({}, [](const steward::agent::DecisionRecord& d) {
          STEWARD_LOG_WARNING("{}: {} ({})", d.process, d.error,
                              steward::agent::DecisionName(d.decision));
        }) {}

  ~Simulator() { Shutdown(); }

  absl::Status Start() {
    for (int k = 0; k < cfg_.connections; ++k) {
      auto g = std::make_unique<Group>();
      Group* raw = g.get();
      STEWARD_ASSIGN_OR_RETURN(
          g->conn,
          steward::nats::Connect(
              {.url = cfg_.url,
               .name = absl::StrCat("node_simulator ", k + 1, "/", cfg_.connections),
               .global_delivery = true,
               .on_reconnected = [this, raw] { OnReconnected(*raw); }}));
      STEWARD_ASSIGN_OR_RETURN(g->pump, steward::RequestPump::Create(g->conn.get()));
      g->outbox = std::make_unique<steward::Outbox>(g->pump.get(), steward::NewMemorySpool(),
                                                    steward::OutboxOptions{.max_in_flight = 1024});
      STEWARD_RETURN_IF_ERROR(g->outbox->Start());
      groups_.push_back(std::move(g));
    }
    for (int w = 0; w < cfg_.workers; ++w) {
      STEWARD_RETURN_IF_ERROR(supervisor_.Start(
          absl::StrCat("worker-", w + 1),
          [this](steward::agent::ProcessContext& ctx) { return Work(ctx); }));
    }
    const int64_t now = steward::NowUnixMillis();
    const int64_t spread = absl::ToInt64Milliseconds(cfg_.spread);
    nodes_.reserve(static_cast<size_t>(cfg_.nodes));
    for (int i = 0; i < cfg_.nodes; ++i) {
      Group* g = groups_[static_cast<size_t>(i % cfg_.connections)].get();
      std::string name = steward::bench::SimNodeName(cfg_.prefix, i + 1, cfg_.nodes);
      STEWARD_RETURN_IF_ERROR(steward::subjects::ValidateToken(name));
      STEWARD_ASSIGN_OR_RETURN(uint32_t inbox,
                               g->pump->AddInbox(steward::kNodeInboxPrefix + name));
      auto node = std::make_unique<SimNode>(this, g, std::move(name), inbox, cfg_);
      node->facts = ReadNodeFacts(node->name);
      node->processor = std::make_unique<CommandProcessor>(CommandProcessor::Parts{
          .methods = &methods_,
          .limits = &limits_,
          .runner = runner_.get(),
          .log = node->log.get(),
          .cancel = &cancel_,
          .conn = g->conn.get(),
          .outbox = g->outbox.get(),
          .events = &node->events,
      });
      STEWARD_ASSIGN_OR_RETURN(
          std::string pattern,
          steward::subjects::KindPattern(node->name, steward::subjects::Kind::kCommand));
      STEWARD_ASSIGN_OR_RETURN(node->sub,
                               steward::nats::SubscribeAsync(g->conn.get(), pattern, &OnCommand,
                                                             node.get(), 65536));
      node->hello_due_ms = now + (cfg_.nodes > 1 ? spread * i / (cfg_.nodes - 1) : 0);
      nodes_.push_back(std::move(node));
    }
    // PING/PONG: the server has every subscription.
    for (const auto& g : groups_) {
      STEWARD_RETURN_IF_ERROR(steward::nats::Flush(g->conn.get(), absl::Seconds(30)));
    }
    nodes_ready_ = true;
    hello_thread_ = std::thread([this] { HelloLoop(); });
    return absl::OkStatus();
  }

  void Shutdown() {
    if (shut_down_.exchange(true)) return;
    for (const auto& n : nodes_) {
      if (n->sub) natsSubscription_Unsubscribe(n->sub.get());
    }
    {
      absl::MutexLock lock(&hello_mu_);
      stop_hellos_ = true;
    }
    if (hello_thread_.joinable()) hello_thread_.join();
    cancel_.Notify();
    queue_.Close();
    supervisor_.Shutdown();
    for (const auto& g : groups_) {
      if (!g->outbox->WaitEmpty(absl::Seconds(2))) {
        STEWARD_LOG_WARNING("{} results not yet confirmed by the station at shutdown",
                            g->outbox->pending());
      }
    }
    for (const auto& g : groups_) g->pump->Shutdown();
    for (const auto& g : groups_) g->outbox->Shutdown();
    for (const auto& g : groups_) natsConnection_Close(g->conn.get());
  }

  size_t queue_dropped() const { return queue_.dropped(); }
  size_t confirmed_hellos() const { return hellos_confirmed_.load(); }

 private:
  static void OnCommand(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
    steward::nats::MsgPtr msg(raw);
    auto* node = static_cast<SimNode*>(closure);
    node->sim->Route(*node, std::move(msg));
  }

  void Reject(const SimNode& node, const std::string& reply, const std::string& id,
              const std::string& why) {
    (void)steward::agent::ReplyAck(node.group->conn.get(), node.events, reply,
                                   steward::RejectAck(id, node.name, why));
  }

  // The agent dispatcher's checks, then the work queue. A full queue gets no ACK: the
  // station sends the command again later.
  void Route(SimNode& node, steward::nats::MsgPtr msg) {
    const std::string subject_text = steward::nats::Subject(msg.get());
    const std::string reply = steward::nats::Reply(msg.get());
    absl::StatusOr<steward::subjects::Subject> subject = steward::subjects::Parse(subject_text);
    if (!subject.ok()) return Reject(node, reply, "", std::string(subject.status().message()));
    absl::StatusOr<steward::proto::Envelope> env =
        steward::DecodeEnvelope(steward::nats::Data(msg.get()));
    if (!env.ok()) {
      return Reject(node, reply, "", absl::StrCat(subject_text, ": ", env.status().message()));
    }
    if (env->to_node() != node.name || env->kind() != steward::proto::KIND_COMMAND ||
        env->method() != subject->method || env->domain() != subject->domain) {
      return Reject(node, reply, env->id(), absl::StrCat("misaddressed: arrived on ", subject_text));
    }
    if (steward::Expired(*env, steward::NowUnixMillis())) {
      // As the agent's dispatcher: answered from the record, or by the copy still queued.
      if (std::optional<steward::proto::Ack> seen = node.processor->Recorded(env->id())) {
        (void)steward::agent::ReplyAck(node.group->conn.get(), node.events, reply, *seen);
        return;
      }
      if (waiting_.Move(env->id(), reply)) return;
      return Reject(node, reply, env->id(), "expired");
    }
    if (methods_.Find(subject->method) == nullptr) {
      return Reject(node, reply, env->id(), absl::StrCat("unknown method ", subject->method));
    }
    // As the agent's dispatcher: a copy of a command still queued is not queued again.
    const std::string id = env->id();
    if (!waiting_.Add(id, reply)) return;
    if (!queue_.TryPush(Job{&node, steward::agent::Work{*std::move(env), reply}})) {
      waiting_.Forget(id);
      if (!cancel_.HasBeenNotified()) {
        STEWARD_LOG_WARNING("work queue full ({}): {} left for the station to resend", kQueueCapacity,
                            subject_text);
      }
    }
  }

  // A worker: runs queued commands with the agent's CommandProcessor.
  absl::Status Work(steward::agent::ProcessContext& ctx) {
    std::map<std::string, std::unique_ptr<steward::agent::Method>> methods;  // this worker's
    while (std::optional<Job> job = queue_.Pop()) {
      if (ctx.stopping()) break;
      // In hand until handled, as in the agent's process (CommandProcessor::Run).
      const std::string id = job->work.command.id();
      job->work.reply = waiting_.Take(id, std::move(job->work.reply));
      auto handled = absl::MakeCleanup([this, &id] { waiting_.Release(id); });
      const std::string& name = job->work.command.method();
      auto it = methods.find(name);
      if (it == methods.end()) it = methods.emplace(name, (*methods_.Find(name))()).first;
      STEWARD_RETURN_IF_ERROR(job->node->processor->Handle(ctx, *it->second, job->work));
    }
    return absl::OkStatus();
  }

  // Each simulated node is a unit of its own kind when --facts-dir gives its facts.
  steward::proto::Facts ReadNodeFacts(const std::string& node) const {
    steward::agent::FactsOptions opts;
    if (!cfg_.facts_dir.empty()) {
      const std::string base = absl::StrCat(cfg_.facts_dir, "/", node);
      if (std::filesystem::exists(base + ".facts")) opts.file = base + ".facts";
      if (std::filesystem::exists(base + ".os-release")) opts.os_release = base + ".os-release";
    }
    std::vector<std::string> problems;
    steward::proto::Facts facts = steward::agent::ReadFacts(opts, &problems);
    for (const std::string& p : problems) STEWARD_LOG_WARNING("{}: facts: {}", node, p);
    return facts;
  }

  void SendHello(SimNode& node) {
    steward::proto::Hello hello;
    hello.set_version(STEWARD_VERSION);
    hello.set_started_unix_ms(absl::ToUnixMillis(started_));
    hello.set_hostname("node_simulator");
    hello.set_os("simulated");
    for (const std::string& m : methods_.Names()) hello.add_methods(m);
    hello.set_heartbeat_ms(absl::ToInt64Milliseconds(cfg_.heartbeat));
    hello.set_instance_id(node.events.instance_id());
    *hello.mutable_facts() = node.facts;
    hello.mutable_stats()->set_at_unix_ms(steward::NowUnixMillis());
    absl::StatusOr<steward::OutboxItem> ev =
        node.events.Make(steward::kEventHello, "agent", hello.SerializeAsString());
    if (!ev.ok()) return;  // "agent" is a valid domain: cannot happen
    node.hello_in_flight = true;
    const int64_t interval = absl::ToInt64Milliseconds(cfg_.heartbeat);
    const int64_t retry = absl::ToInt64Milliseconds(kHelloRetry);
    absl::Status st = node.group->pump->Send(
        ev->subject, ev->data, kHelloTimeout,
        [this, &node, interval, retry](steward::RequestPump::Result r, steward::nats::MsgPtr msg) {
          bool ok = false;
          if (r == steward::RequestPump::Result::kReply) {
            absl::StatusOr<steward::proto::Ack> ack = steward::DecodeAck(steward::nats::Data(msg.get()));
            ok = ack.ok() && ack->outcome() == steward::proto::OUTCOME_SUCCEEDED;
          }
          if (ok) ++hellos_confirmed_;
          // Unconfirmed: again sooner (the station is down or busy), not all at once.
          node.hello_due_ms = steward::NowUnixMillis() + (ok ? interval : retry + Jitter(retry));
          node.hello_in_flight = false;
        },
        node.inbox);
    if (!st.ok()) {
      node.hello_due_ms = steward::NowUnixMillis() + retry;
      node.hello_in_flight = false;
    }
  }

  // Sends each node's hello when due: one thread for every node.
  void HelloLoop() {
    absl::MutexLock lock(&hello_mu_);
    while (!stop_hellos_) {
      hello_mu_.AwaitWithTimeout(absl::Condition(&stop_hellos_), absl::Milliseconds(20));
      if (stop_hellos_) break;
      const int64_t now = steward::NowUnixMillis();
      for (const auto& n : nodes_) {
        if (!n->hello_in_flight.load() && n->hello_due_ms.load() <= now) SendHello(*n);
      }
    }
  }

  // The broker came back: every node of the connection says hello within a second
  // (jittered, as agents reconnecting at random moments), and results go out again.
  void OnReconnected(Group& g) {
    STEWARD_LOG_INFO("a connection came back: its nodes say hello again");
    if (!nodes_ready_.load()) return;  // still starting: their first hellos are due anyway
    const int64_t now = steward::NowUnixMillis();
    for (const auto& n : nodes_) {
      if (n->group == &g) n->hello_due_ms = now + Jitter(1000);
    }
    g.outbox->Kick();
  }

  const Config cfg_;
  const steward::agent::MethodRegistry methods_;
  const steward::agent::MethodLimits limits_;
  const std::unique_ptr<steward::agent::CommandRunner> runner_;
  const absl::Time started_ = absl::Now();
  absl::Notification cancel_;
  std::atomic<size_t> hellos_confirmed_{0};
  std::atomic<bool> shut_down_{false};
  std::atomic<bool> nodes_ready_{false};  // nodes_ is complete (read by nats.c threads)
  steward::BoundedQueue<Job> queue_;
  steward::agent::WaitingCommands waiting_;  // what queue_ holds, by command id
  // Destroyed in reverse: nodes (their subscriptions) before the groups' connections.
  std::vector<std::unique_ptr<Group>> groups_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  steward::agent::Supervisor supervisor_;
  absl::Mutex hello_mu_;
  bool stop_hellos_ ABSL_GUARDED_BY(hello_mu_) = false;
  std::thread hello_thread_;
};

SimNode::SimNode(Simulator* s, Group* g, std::string n, uint32_t in, const Config& cfg)
    : sim(s),
      group(g),
      name(std::move(n)),
      inbox(in),
      events(name, cfg.station, steward::NewId(), std::nullopt, in),
      log(steward::agent::NewMemoryCommandLog(1000)) {}

bool SignalArrived(const sigset_t& signals, absl::Duration timeout) {
  const timespec tick = absl::ToTimespec(timeout);
  const int sig = sigtimedwait(&signals, nullptr, &tick);
  return sig == SIGINT || sig == SIGTERM;
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t signals = steward::BlockTerminationSignals();  // before any thread
  steward::SkipLockOrderChecks();  // as stewardctl, station and agent do (common/mutex_mode.h)
  Config cfg;
  CLI::App app("node_simulator: many simulated steward nodes over a few threads and "
               "connections (see the top of bench/node_simulator.cc)",
               "node_simulator");
  steward::cli::Setup(app);
  cfg.url = steward::DefaultNatsUrl();
  app.add_option("--nats", cfg.url, "NATS URL ($STEWARD_NATS_URL, else nats://127.0.0.1:4222)");
  app.add_option("--nodes", cfg.nodes, "How many simulated nodes to serve")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--prefix", cfg.prefix, "Node names: PREFIX0001 .. PREFIXNNNN")
      ->check(steward::cli::Checked(steward::subjects::ValidateToken));
  app.add_option("--connections", cfg.connections,
                 "NATS connections the nodes share (node i uses i % K)")
      ->check(CLI::Range(1, 256));
  app.add_option("--delivery-pool", cfg.delivery_pool,
                 "nats.c threads delivering every connection's messages")
      ->check(CLI::Range(1, 64));
  app.add_option("--workers", cfg.workers, "Threads running the nodes' commands")
      ->check(CLI::Range(1, 256));
  steward::cli::AddDuration(app, "--heartbeat", &cfg.heartbeat, "Interval between each node's hellos");
  steward::cli::AddDuration(app, "--spread", &cfg.spread,
                            "The first hellos are spread over this (then each node keeps its phase)");
  app.add_option("--station", cfg.station, "Name of the station node")
      ->check(steward::cli::Checked(steward::subjects::ValidateToken));
  app.add_option("--facts-dir", cfg.facts_dir,
                 "Facts per node for targeting: DIR/<node>.facts (key=value lines, as "
                 "steward-agent --facts) and DIR/<node>.os-release, each when present")
      ->check(CLI::ExistingDirectory);
  if (std::optional<int> done = steward::cli::Parse(app, argc, argv)) return *done;
  if (cfg.heartbeat <= absl::ZeroDuration()) {
    return steward::cli::UsageError(app, "--heartbeat must be positive");
  }
  if (std::getenv("STEWARD_LOG_LEVEL") == nullptr) {
    steward::SetLogLevel(steward::LogLevel::kWarning);
  }
  steward::SetLogTag("node_simulator");

  steward::nats::Library lib;  // destroyed last
  if (natsStatus s = nats_SetMessageDeliveryPoolSize(cfg.delivery_pool); s != NATS_OK) {
    fmt::print(stderr, "node_simulator: nats_SetMessageDeliveryPoolSize: {}\n",
               natsStatus_GetText(s));
    return 2;
  }
  const absl::Time start = absl::Now();
  int rc = 0;
  {
    Simulator sim(cfg);
    if (absl::Status st = sim.Start(); !st.ok()) {
      fmt::print(stderr, "node_simulator: {}\n", st.ToString());
      rc = 2;
    } else {
      fmt::print("ready {}\n", cfg.nodes);
      std::fflush(stdout);
      fmt::print(stderr,
                 "node_simulator: {} nodes subscribed in {} over {} connections; {} threads, "
                 "VmRSS {} kB\n",
                 cfg.nodes, absl::FormatDuration(absl::Now() - start), cfg.connections,
                 steward::bench::ProcStatusValue(::getpid(), "Threads"),
                 steward::bench::ProcStatusValue(::getpid(), "VmRSS"));
      while (!SignalArrived(signals, absl::Milliseconds(500))) {
      }
    }
    const absl::Time stopping = absl::Now();
    sim.Shutdown();
    fmt::print(stderr, "node_simulator: stopped in {}; {} hellos confirmed; {} commands dropped "
               "by a full work queue\n",
               absl::FormatDuration(absl::Now() - stopping), sim.confirmed_hellos(),
               sim.queue_dropped());
  }
  return rc;
}
