// http_bench: the cost of the station's HTTP surfaces, in one run.
//
// a. GET /api/v1/nodes (and the dashboard's /api/v1/fleet) with 10,000 nodes: p50/p99.
//    The nodes are made by hello events over raw NATS, each with its node's own inbox
//    as the reply subject (the station answers nothing else).
// b. Dispatch throughput (durable echo commands to one real agent, 32 in flight, as
//    `stewardctl send`) with no event stream open, then with 10 SSE clients following
//    every event, then none again; raw NATS request/reply in the same run for scale.
//
// Run: scripts/bench, or build/bench/http_bench [--seconds 5] [--nodes 10000]
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "common/mutex_mode.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "ctl/client.h"
#include "proto/steward.pb.h"

namespace {

using steward::bench::BenchDir;
using steward::bench::Children;
using steward::bench::RunResult;

constexpr char kNode[] = "bench1";
constexpr int kInFlight = 32;
constexpr int kSseClients = 10;
constexpr int kGets = 40;

struct Args {
  double seconds = 5;
  int nodes = 10000;
};

// The HTTP port from the station's log line "... /metrics on http://127.0.0.1:PORT/".
// Hellos for `n` nodes "node00001".. over raw NATS, each replying to its own inbox.
absl::Status Hellos(const std::string& url, int n) {
  STEWARD_ASSIGN_OR_RETURN(steward::nats::ConnectionPtr nc, steward::bench::RawConnect(url, "http_bench hellos"));
  steward::proto::Hello hello;
  hello.set_version("bench");
  hello.set_hostname("bench-host");
  hello.set_os("Linux");
  hello.set_heartbeat_ms(3600 * 1000);  // they stay online for the whole run
  hello.add_methods("shellcommand");
  hello.mutable_stats()->set_rss_bytes(10 << 20);
  for (int i = 1; i <= n; ++i) {
    const std::string node = fmt::format("node{:05}", i);
    hello.set_started_unix_ms(steward::NowUnixMillis());
    steward::proto::Envelope ev =
        steward::NewEnvelope(node, "station", steward::proto::KIND_EVENT, steward::kEventHello, "agent");
    ev.set_payload(hello.SerializeAsString());
    const std::string data = ev.SerializeAsString();
    const std::string reply = absl::StrCat(steward::kNodeInboxPrefix, node, ".hello");
    if (natsConnection_PublishRequest(nc.get(), "station.event.hello.agent", reply.c_str(), data.data(),
                                      static_cast<int>(data.size())) != NATS_OK) {
      return absl::UnavailableError("publishing hellos failed");
    }
    if (i % 1000 == 0) natsConnection_FlushTimeout(nc.get(), 5000);
  }
  natsConnection_FlushTimeout(nc.get(), 5000);
  return absl::OkStatus();
}

struct GetStats {
  double p50_ms = 0, p99_ms = 0;
  size_t bytes = 0;
};

absl::StatusOr<GetStats> TimeGets(int port, const std::string& path) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(60);
  std::vector<int64_t> ns;
  GetStats s;
  for (int i = 0; i < kGets + 3; ++i) {
    const auto t0 = steward::bench::Clock::now();
    httplib::Result r = cli.Get(path.c_str());
    const auto t1 = steward::bench::Clock::now();
    if (!r || r->status != 200) return absl::InternalError(absl::StrCat("GET ", path, " failed"));
    s.bytes = r->body.size();
    if (i >= 3) ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
  std::sort(ns.begin(), ns.end());
  s.p50_ms = steward::bench::PercentileUs(ns, 0.50) / 1000;
  s.p99_ms = steward::bench::PercentileUs(ns, 0.99) / 1000;
  return s;
}

// A durable echo command to kNode, waited for in the same round trip.
absl::Status Durable(steward::ctl::Client& c, int thread) {
  steward::proto::SubmitRequest req;
  req.add_nodes(kNode);
  req.mutable_command()->set_method(steward::kMethodEcho);
  req.mutable_command()->set_domain(absl::StrCat("d", thread));
  req.mutable_command()->add_argv("x");
  req.set_wait_ms(10000);
  STEWARD_ASSIGN_OR_RETURN(steward::proto::SubmitReply r, c.Submit(req, absl::Seconds(15)));
  if (r.states_size() != 1 || r.states(0).state() != steward::proto::STATE_SUCCEEDED) {
    return absl::InternalError("a command did not succeed");
  }
  return absl::OkStatus();
}

// kSseClients streams of every event until `stop`; counts the events they received.
class SseClients {
 public:
  SseClients(int port, int n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, port] {
        httplib::Client cli("127.0.0.1", port);
        cli.set_read_timeout(60);
        cli.Get("/api/v1/events", [this](const char* data, size_t len) {
          for (size_t k = 0; k + 6 < len; ++k) {
            if (std::memcmp(data + k, "event:", 6) == 0) ++events_;
          }
          return !stop_.load();
        });
      });
    }
  }
  ~SseClients() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
  }
  uint64_t events() const { return events_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> events_{0};
  std::vector<std::thread> threads_;
};

void PrintRow(const RunResult& r) {
  fmt::print("  {:<22} {:>9} {:>10.0f} {:>9.0f} {:>9.0f} {:>7}\n", r.path, r.requests, r.rps, r.p50_us, r.p99_us,
             r.errors);
  if (r.errors > 0) fmt::print("    first error: {}\n", r.first_error);
  std::fflush(stdout);
}

absl::Status Run(const Args& args, Children& children, BenchDir& dir) {
  STEWARD_ASSIGN_OR_RETURN(std::string url, steward::bench::StartBroker(children, dir));
  STEWARD_ASSIGN_OR_RETURN(std::string self, steward::bench::SelfPath());
  const std::string bin = STEWARD_BIN_DIR;
  STEWARD_RETURN_IF_ERROR(children.Spawn("station",
                                         {bin + "/station/steward-station", "--nats", url, "--data-dir",
                                          dir.File("station"), "--http", "127.0.0.1:0"},
                                         dir.File("station.log")));
  STEWARD_RETURN_IF_ERROR(children.Spawn("agent",
                                         {bin + "/agent/steward-agent", "--node", kNode, "--nats", url,
                                          "--heartbeat", "1s", "--data-dir", dir.File("agent")},
                                         dir.File("agent.log")));
  STEWARD_RETURN_IF_ERROR(
      children.Spawn("raw-responder", {self, steward::bench::kRawResponderFlag, url}, dir.File("raw-responder.log")));
  STEWARD_ASSIGN_OR_RETURN(int port, steward::bench::StationHttpPort(children, dir.File("station.log")));

  // a. 10,000 nodes.
  const absl::Time t0 = absl::Now();
  STEWARD_RETURN_IF_ERROR(Hellos(url, args.nodes));
  httplib::Client probe("127.0.0.1", port);
  probe.set_read_timeout(60);
  STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil(
      "every node online", children,
      [&]() -> absl::Status {
        httplib::Result r = probe.Get("/metrics");
        if (!r) return absl::UnavailableError("no /metrics");
        std::smatch m;
        if (std::regex_search(r->body, m, std::regex("steward_nodes\\{status=\"online\"\\} ([0-9]+)")) &&
            std::stoi(m[1]) >= args.nodes) {
          return absl::OkStatus();
        }
        return absl::UnavailableError("not every node is online yet");
      },
      absl::Seconds(120)));
  fmt::print("a. {} nodes (hellos over raw NATS, all online after {:.1f} s); {} sequential GETs each\n",
             args.nodes, absl::ToDoubleSeconds(absl::Now() - t0), kGets);
  fmt::print("  {:<22} {:>9} {:>9} {:>10} {:>12}\n", "path", "p50 ms", "p99 ms", "KiB", "us per node");
  for (const char* path : {"/api/v1/nodes?limit=100000", "/api/v1/fleet", "/metrics"}) {
    STEWARD_ASSIGN_OR_RETURN(GetStats s, TimeGets(port, path));
    fmt::print("  {:<22} {:>9.1f} {:>9.1f} {:>10.0f} {:>12.1f}\n", std::string(path).substr(0, 22), s.p50_ms, s.p99_ms,
               static_cast<double>(s.bytes) / 1024, s.p50_ms * 1000 / args.nodes);
    std::fflush(stdout);
  }

  // b. Dispatch with and without event streams.
  STEWARD_ASSIGN_OR_RETURN(std::unique_ptr<steward::ctl::Client> client,
                           steward::ctl::Client::Connect(steward::ctl::ClientOptions{
                               .nats = {.url = url, .name = "http_bench"}, .operator_name = "http_bench"}));
  STEWARD_ASSIGN_OR_RETURN(steward::nats::ConnectionPtr raw, steward::bench::RawConnect(url, "http_bench raw"));
  STEWARD_RETURN_IF_ERROR(
      steward::bench::WaitUntil("a command through the station", children, [&] { return Durable(*client, 0); }));
  const absl::Duration duration = absl::Seconds(args.seconds);
  fmt::print("\nb. durable echo commands to {}, {} in flight, {} per run ({} nodes known to the station)\n", kNode,
             kInFlight, absl::FormatDuration(duration), args.nodes);
  fmt::print("  {:<22} {:>9} {:>10} {:>9} {:>9} {:>7}\n", "path", "requests", "req/s", "p50 us", "p99 us", "errors");
  const std::string payload(200, 'x');
  RunResult raw_run = steward::bench::RunLoad("raw NATS", kInFlight, duration, [&](int, int64_t*) {
    return steward::bench::RawRequest(raw.get(), payload);
  });
  PrintRow(raw_run);
  auto durable = [&](const char* label) {
    return steward::bench::RunLoad(label, kInFlight, duration,
                                   [&](int thread, int64_t*) { return Durable(*client, thread); });
  };
  RunResult none = durable("durable, no SSE");
  PrintRow(none);
  uint64_t events = 0;
  RunResult with;
  {
    SseClients sse(port, kSseClients);
    STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil("10 event streams", children, [&]() -> absl::Status {
      httplib::Result r = probe.Get("/metrics");
      std::smatch m;
      if (r && std::regex_search(r->body, m, std::regex("steward_http_event_streams ([0-9]+)")) &&
          std::stoi(m[1]) >= kSseClients) {
        return absl::OkStatus();
      }
      return absl::UnavailableError("streams not open yet");
    }));
    with = durable("durable, 10 SSE");
    PrintRow(with);
    events = sse.events();
  }
  RunResult again = durable("durable, no SSE again");
  PrintRow(again);
  const double base = (none.rps + again.rps) / 2;
  fmt::print("  with 10 SSE clients: {:.0f}% of the throughput without (mean of the runs before and after); "
             "{} events delivered ({:.0f} per client per second); durable/raw {:.1f}%\n",
             base > 0 ? 100 * with.rps / base : 0, events,
             static_cast<double>(events) / kSseClients / absl::ToDoubleSeconds(duration),
             raw_run.rps > 0 ? 100 * base / raw_run.rps : 0);
  return children.CheckAlive();
}

}  // namespace

int main(int argc, char** argv) {
  steward::SkipLockOrderChecks();  // as stewardctl, station and agent do (common/mutex_mode.h)
  if (argc >= 3 && std::string(argv[1]) == steward::bench::kRawResponderFlag) {
    return steward::bench::RunRawResponder(argv[2]);
  }
  steward::bench::SetProgramName("http_bench");
  steward::bench::InstallFatalSignalHandlers(900);
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string value;
    if (steward::bench::FlagValue(argc, argv, &i, "seconds", &value)) {
      if (!absl::SimpleAtod(value, &args.seconds) || args.seconds <= 0 || args.seconds > 600) {
        fmt::print(stderr, "http_bench: --seconds wants a number in (0, 600]\n");
        return 2;
      }
    } else if (steward::bench::FlagValue(argc, argv, &i, "nodes", &value)) {
      if (!absl::SimpleAtoi(value, &args.nodes) || args.nodes < 1 || args.nodes > 100000) {
        fmt::print(stderr, "http_bench: --nodes wants 1..100000\n");
        return 2;
      }
    } else {
      fmt::print(stderr, "usage: http_bench [--seconds N] [--nodes N]\n");
      return 2;
    }
  }
  return steward::bench::RunInBenchDir("http_bench", [&](Children& children, BenchDir& dir) {
    return Run(args, children, dir);
  });
}
