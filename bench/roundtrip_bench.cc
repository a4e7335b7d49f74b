// roundtrip_bench: request/reply round trips through steward against raw NATS, on one
// private nats-server. steward: Client::Ping (client -> station -> agent -> client: the
// node's own ACK answers) with a real steward-station and steward-agent; station: the
// same ping answered by the station (one message more: what HTTP callers get); raw:
// natsConnection_Request to an echo responder in its own process. 1 and 32 in flight;
// prints req/s, p50 and p99, then the 1-in-flight latency again in short paired slices.
// Run: scripts/bench, or build/bench/roundtrip_bench [--seconds N] (default 3 s per run).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "common/mutex_mode.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "proto/steward.pb.h"
#include "ctl/client.h"

namespace {

using steward::bench::BenchDir;
using steward::bench::Children;
using steward::bench::RequestFn;
using steward::bench::RunResult;

constexpr char kNode[] = "bench1";
constexpr int kInFlight[] = {1, 32};
constexpr int kWarmupRequests = 200;
constexpr absl::Duration kPingWait = absl::Seconds(1);  // Client::Ping allows 2 s more
constexpr double kThroughputGoal = 0.40;  // steward/raw req/s at 32 in flight, at least
constexpr double kLatencyGoal = 2.0;      // steward/raw p50 at 1 in flight, at most (issue 11)
constexpr int kLatencyPairs = 15;
constexpr absl::Duration kLatencySlice = absl::Milliseconds(300);

// ---------------------------------------------------------------------------------------
// The benchmark.

// Sizes of a steward ping request and its reply as Client and Station build them.
std::pair<size_t, size_t> StewardPingSizes() {
  steward::proto::PingRequest req;
  req.set_node(kNode);
  req.set_wait_ms(absl::ToInt64Milliseconds(kPingWait));
  req.set_direct(true);
  steward::proto::Envelope env =
      steward::NewEnvelope("stewardctl", "station", steward::proto::KIND_COMMAND,
                           steward::kStationPing, steward::kCliDomain);
  env.set_payload(req.SerializeAsString());
  // The node's own ACK answers (Client::Ping asks for it directly).
  steward::proto::Ack ack = steward::NewAck(env.id(), kNode, steward::proto::STAGE_RESULT,
                                            steward::proto::OUTCOME_SUCCEEDED);
  ack.set_started_unix_ms(1);
  ack.set_finished_unix_ms(1);
  return {env.ByteSizeLong(), ack.ByteSizeLong()};
}

void PrintRow(const RunResult& r) {
  fmt::print("{:<8} {:>9} {:>10} {:>10.0f} {:>9.0f} {:>9.0f} {:>7}", r.path, r.in_flight,
             r.requests, r.rps, r.p50_us, r.p99_us, r.errors);
  if (r.inner_p50_us >= 0) fmt::print("   station<->agent p50 {:.0f} us", r.inner_p50_us);
  fmt::print("\n");
}

absl::Status RunBench(const std::string& self, absl::Duration duration, Children& children,
                      const BenchDir& dir) {
  STEWARD_ASSIGN_OR_RETURN(const std::string url, steward::bench::StartBroker(children, dir));
  STEWARD_RETURN_IF_ERROR(steward::bench::SpawnStewardAndRaw(children, dir, url, self,
                                                             "steward-station", "steward-agent",
                                                             kNode));

  // steward: one Client shared by every thread, as the header allows.
  absl::StatusOr<std::unique_ptr<steward::ctl::Client>> client =
      steward::ctl::Client::Connect(
          steward::ctl::ClientOptions{.nats = {.url = url, .name = "roundtrip_bench"}});
  if (!client.ok()) return client.status();
  steward::ctl::Client& steward_client = **client;
  const RequestFn steward_ping = [&steward_client](int, int64_t*) -> absl::Status {
    absl::StatusOr<steward::proto::PingReply> pong = steward_client.Ping(kNode, kPingWait);
    if (!pong.ok()) return pong.status();
    if (!pong->direct()) return absl::InternalError("answered by the station, not by the node");
    return absl::OkStatus();
  };
  // The station's own round trip (what HTTP callers get): four messages.
  const RequestFn station_ping = [&steward_client](int, int64_t* inner_us) -> absl::Status {
    absl::StatusOr<steward::proto::PingReply> pong = steward_client.Ping(kNode, kPingWait, false);
    if (!pong.ok()) return pong.status();
    *inner_us = pong->station_rtt_us();
    return absl::OkStatus();
  };
  STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil("ping through the station", children, [&] {
    int64_t ignored = 0;
    return steward_ping(0, &ignored);
  }));

  // raw: one natsConnection shared by every thread; payload as big as a steward ping.
  STEWARD_ASSIGN_OR_RETURN(steward::nats::ConnectionPtr raw_conn,
                           steward::bench::RawConnect(url, "roundtrip_bench raw client"));
  natsConnection* nc = raw_conn.get();
  const auto [request_bytes, reply_bytes] = StewardPingSizes();
  const std::string payload(request_bytes, 'x');
  const RequestFn raw_request = [nc, &payload](int, int64_t*) -> absl::Status {
    return steward::bench::RawRequest(nc, payload);
  };
  STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil("raw responder", children, [&] {
    int64_t ignored = 0;
    return raw_request(0, &ignored);
  }));

  fmt::print("roundtrip_bench: {} per run after {} warm-up requests; {} CPUs\n",
             absl::FormatDuration(duration), kWarmupRequests,
             std::thread::hardware_concurrency());
  fmt::print("  steward: Client::Ping(\"{}\"): client -> station -> agent -> client; "
             "request {} B, reply {} B\n",
             kNode, request_bytes, reply_bytes);
  fmt::print("  station: Client::Ping(\"{}\", direct = false): client -> station -> agent -> "
             "station -> client\n", kNode);
  fmt::print("  raw:     natsConnection_Request to an echo responder process; {} B each way\n",
             payload.size());
  fmt::print("  one nats-server at {}; in flight = threads sharing one connection\n\n", url);
  fmt::print("{:<8} {:>9} {:>10} {:>10} {:>9} {:>9} {:>7}\n", "path", "in flight", "requests",
             "req/s", "p50 us", "p99 us", "errors");
  std::fflush(stdout);

  std::vector<RunResult> results;
  // Paths in turns at each load, so a noisy moment on this shared machine hits them alike.
  for (int in_flight : kInFlight) {
    for (const auto& [name, fn] : {std::pair<const char*, const RequestFn*>{"steward", &steward_ping},
                                   std::pair<const char*, const RequestFn*>{"station", &station_ping},
                                   std::pair<const char*, const RequestFn*>{"raw", &raw_request}}) {
      STEWARD_RETURN_IF_ERROR(children.CheckAlive());
      RunResult r = steward::bench::RunLoad(name, in_flight, duration, *fn,
                                            {.warmup_requests = kWarmupRequests});
      PrintRow(r);
      std::fflush(stdout);
      if (r.requests == 0) {
        return absl::UnavailableError(absl::StrCat("every ", name, " request failed (", r.errors,
                                                   "); first error: ", r.first_error));
      }
      if (r.errors > 0) {
        fmt::print("         {} errors; first: {}\n", r.errors, r.first_error);
      }
      results.push_back(std::move(r));
    }
  }
  STEWARD_RETURN_IF_ERROR(children.CheckAlive());

  // The 1-in-flight latency again, in short slices taking turns (steward, raw, steward,
  // ...): a burst of load from another process on this shared machine then hits both
  // sides of one pair, and the median of the pairs' ratios ignores the pairs it spoiled.
  std::vector<double> pair_ratios;
  for (int round = 0; round < kLatencyPairs; ++round) {
    const RunResult s = steward::bench::RunLoad("steward", 1, kLatencySlice, steward_ping,
                                                {.warmup_requests = 20});
    const RunResult r = steward::bench::RunLoad("raw", 1, kLatencySlice, raw_request,
                                                {.warmup_requests = 20});
    if (s.requests > 0 && r.requests > 0 && r.p50_us > 0) pair_ratios.push_back(s.p50_us / r.p50_us);
  }
  if (pair_ratios.empty()) return absl::UnavailableError("no latency pair completed");
  std::sort(pair_ratios.begin(), pair_ratios.end());
  const double paired = pair_ratios[(pair_ratios.size() - 1) / 2];
  STEWARD_RETURN_IF_ERROR(children.CheckAlive());

  auto find = [&results](const std::string& path, int in_flight) -> const RunResult& {
    for (const RunResult& r : results) {
      if (r.path == path && r.in_flight == in_flight) return r;
    }
    std::abort();  // Every combination ran above.
  };
  const double throughput = find("steward", 32).rps / find("raw", 32).rps;
  const double latency = find("steward", 1).p50_us / find("raw", 1).p50_us;
  fmt::print("\nsteward/raw throughput at 32 in flight: {:.0f}%\n", throughput * 100);
  fmt::print("steward/raw p50 latency at 1 in flight: {:.2f}x\n", latency);
  fmt::print("station path (no direct answer): {:.0f}% of raw at 32 in flight, p50 {:.2f}x at 1\n",
             find("station", 32).rps / find("raw", 32).rps * 100,
             find("station", 1).p50_us / find("raw", 1).p50_us);
  fmt::print("goal 32-in-flight throughput >= {:.0f}% of raw: {} ({:.0f}%)\n",
             kThroughputGoal * 100, throughput >= kThroughputGoal ? "PASS" : "FAIL",
             throughput * 100);
  fmt::print("steward/raw p50 latency at 1 in flight, {} paired {} slices: median {:.2f}x (from {:.2f}x to {:.2f}x)\n",
             pair_ratios.size(), absl::FormatDuration(kLatencySlice), paired, pair_ratios.front(),
             pair_ratios.back());
  fmt::print("goal 1-in-flight p50 latency <= {:.0f}x raw (median of the pairs): {} ({:.2f}x)\n", kLatencyGoal,
             paired <= kLatencyGoal ? "PASS" : "FAIL", paired);
  return absl::OkStatus();
}

int Usage(const char* error) {
  if (error != nullptr) fmt::print(stderr, "roundtrip_bench: {}\n", error);
  fmt::print(stderr, "usage: roundtrip_bench [--seconds N]   (N seconds per run, default 3)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  steward::bench::SetProgramName("roundtrip_bench");
  steward::SkipLockOrderChecks();  // as stewardctl, station and agent do (common/mutex_mode.h)
  steward::nats::Library lib;
  if (argc == 3 && std::string(argv[1]) == steward::bench::kRawResponderFlag) {
    return steward::bench::RunRawResponder(argv[2]);
  }

  double seconds = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string value;
    if (arg == "--help" || arg == "-h") return Usage(nullptr);
    if (!steward::bench::FlagValue(argc, argv, &i, "seconds", &value)) {
      return Usage(absl::StrCat("unknown argument ", arg).c_str());
    }
    if (!absl::SimpleAtod(value, &seconds) || !(seconds > 0) || seconds > 600) {
      return Usage("--seconds wants a number in (0, 600]");
    }
  }
  const absl::Duration duration = absl::Seconds(seconds);

  // Whatever happens, children die with us: on Ctrl-C, SIGTERM, or past a time limit
  // that covers setup, six runs with their warm-ups and draining, the latency pairs,
  // and shutdown.
  steward::bench::InstallFatalSignalHandlers(static_cast<unsigned>(std::ceil(6 * seconds)) + 60);

  return steward::bench::RunInBenchDir("roundtrip_bench", [&](Children& children, BenchDir& dir) {
    STEWARD_ASSIGN_OR_RETURN(const std::string self, steward::bench::SelfPath());
    return RunBench(self, duration, children, dir);
  });
}
