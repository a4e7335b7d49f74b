// copy_bench: a file to a node with `stewardctl copy` (client -> station ledger ->
// agent, chunk by chunk, SHA-256 checked, renamed into place) against raw NATS
// request/reply moving the same bytes in chunks of the same size to an echo responder
// (which sends each chunk back: raw carries twice the bytes). One private nats-server,
// a real steward-station and steward-agent. Goal (issue 14): steward at least half of
// raw's MiB/s.
// It prints the CPU seconds each process spent on each path (where a copy's time goes).
// Run: build/bench/copy_bench [--mib N] (default 100). Another build's station, agent
// and stewardctl (main's, to compare in the same session): STEWARD_BENCH_BIN_DIR=DIR
// with DIR/station/steward-station, DIR/agent/steward-agent, DIR/ctl/stewardctl.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/core.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "common/mutex_mode.h"
#include "common/nats.h"
#include "common/signing.h"
#include "common/status_macros.h"
#include "tests/testing/process.h"

namespace {

using steward::bench::BenchDir;
using steward::bench::Children;

constexpr char kNode[] = "bench1";
constexpr double kGoal = 0.5;  // steward MiB/s / raw MiB/s, at least

absl::Status RunBench(const std::string& self, int mib, Children& children, const BenchDir& dir) {
  STEWARD_ASSIGN_OR_RETURN(const std::string url, steward::bench::StartBroker(children, dir));
  STEWARD_RETURN_IF_ERROR(
      steward::bench::SpawnStewardAndRaw(children, dir, url, self, "steward-station", "steward-agent", kNode));
  const std::string ctl = steward::bench::BinDir() + "/ctl/stewardctl";
  STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil("ping through the station", children, [&] {
    steward::testing::RunResult r = steward::testing::RunProgram({ctl, "--nats", url, "ping", kNode, "--timeout", "1s"});
    return r.exit_code == 0 ? absl::OkStatus() : absl::UnavailableError(r.err);
  }));

  const uint64_t bytes = static_cast<uint64_t>(mib) << 20;
  const std::string src = dir.File("src");
  {
    std::string block(1 << 20, '\0');
    uint32_t x = 2463534242u;
    std::ofstream out(src, std::ios::binary);
    for (int i = 0; i < mib; ++i) {
      for (char& ch : block) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        ch = static_cast<char>(x);
      }
      out.write(block.data(), static_cast<std::streamsize>(block.size()));
    }
  }

  // raw: the same bytes in chunks of the size stewardctl uses.
  STEWARD_ASSIGN_OR_RETURN(steward::nats::ConnectionPtr raw_conn, steward::bench::RawConnect(url, "copy_bench raw"));
  const size_t max_payload = static_cast<size_t>(steward::nats::MaxPayload(raw_conn.get()));
  const size_t chunk = max_payload - (size_t{128} << 10);
  const std::string payload(chunk, 'x');
  STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil(
      "raw responder", children, [&] { return steward::bench::RawRequest(raw_conn.get(), "x"); }));

  fmt::print("copy_bench: {} MiB, chunks of {} KiB (broker max_payload {} KiB)\n", mib, chunk >> 10,
             max_payload >> 10);
  fmt::print("  steward: stewardctl copy FILE {}:PATH (process start, hashing, ledger, rename included)\n", kNode);
  fmt::print("  raw:     natsConnection_Request of each chunk to an echo responder (chunk back)\n\n");

  // CPU seconds of each process over each path: where a copy's time goes.
  const std::vector<std::string> names = {"nats-server", "steward-station", "steward-agent", "raw-responder"};
  auto cpu = [&] {
    std::vector<double> v;
    for (const std::string& n : names) v.push_back(steward::bench::ProcCpuSeconds(children.pid(n)));
    v.push_back(steward::bench::ProcCpuSeconds(::getpid()));        // this process: the raw client
    v.push_back(steward::bench::ProcCpuSeconds(::getpid(), true));  // reaped children: stewardctl
    return v;
  };
  const std::vector<double> cpu0 = cpu();
  const absl::Time raw_start = absl::Now();
  for (uint64_t sent = 0; sent < bytes; sent += chunk) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, bytes - sent));
    STEWARD_RETURN_IF_ERROR(steward::bench::RawRequest(raw_conn.get(), payload.substr(0, n)));
  }
  const double raw_s = absl::ToDoubleSeconds(absl::Now() - raw_start);
  const std::vector<double> cpu1 = cpu();

  const std::string dst = dir.File("dst");
  const absl::Time start = absl::Now();
  steward::testing::RunResult r = steward::testing::RunProgram(
      {ctl, "--nats", url, "copy", src, absl::StrCat(kNode, ":", dst)}, absl::Minutes(10));
  const double steward_s = absl::ToDoubleSeconds(absl::Now() - start);
  const std::vector<double> cpu2 = cpu();
  if (r.exit_code != 0) return absl::InternalError(absl::StrCat("stewardctl copy failed: ", r.err));
  STEWARD_ASSIGN_OR_RETURN(const std::string a, steward::signing::Sha256File(src));
  STEWARD_ASSIGN_OR_RETURN(const std::string b, steward::signing::Sha256File(dst));
  if (a != b) return absl::DataLossError("the copy differs from the source");

  const double raw_rate = mib / raw_s, steward_rate = mib / steward_s;
  fmt::print("{:<8} {:>10} {:>10}\n", "path", "seconds", "MiB/s");
  fmt::print("{:<8} {:>10.2f} {:>10.1f}\n", "steward", steward_s, steward_rate);
  fmt::print("{:<8} {:>10.2f} {:>10.1f}\n", "raw", raw_s, raw_rate);
  fmt::print("\nCPU seconds {:<8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "path", "nats", "station",
             "agent", "responder", "client", "stewardctl");
  for (const auto& [path, from, to] : {std::tuple{"steward", &cpu1, &cpu2}, std::tuple{"raw", &cpu0, &cpu1}}) {
    fmt::print("            {:<8}", path);
    for (size_t i = 0; i < from->size(); ++i) fmt::print(" {:>10.2f}", (*to)[i] - (*from)[i]);
    fmt::print("\n");
  }
  const double ratio = steward_rate / raw_rate;
  fmt::print("\nsteward/raw: {:.2f} (goal >= {:.2f}): {}\n", ratio, kGoal, ratio >= kGoal ? "met" : "NOT met");
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  steward::SkipLockOrderChecks();  // as stewardctl, station and agent do (common/mutex_mode.h)
  steward::bench::SetProgramName("copy_bench");
  steward::nats::Library lib;
  if (argc == 3 && std::string(argv[1]) == steward::bench::kRawResponderFlag) {
    return steward::bench::RunRawResponder(argv[2]);
  }
  int mib = 100;
  for (int i = 1; i < argc; ++i) {
    std::string value;
    // --seconds (scripts/bench passes it to every benchmark) does not apply: one copy.
    if (steward::bench::FlagValue(argc, argv, &i, "seconds", &value)) continue;
    if (!steward::bench::FlagValue(argc, argv, &i, "mib", &value) || !absl::SimpleAtoi(value, &mib) || mib < 1 ||
        mib > 1000) {
      fmt::print(stderr, "usage: copy_bench [--mib N]   (1..1000, default 100)\n");
      return 2;
    }
  }
  steward::bench::InstallFatalSignalHandlers(900);
  return steward::bench::RunInBenchDir("copy_bench", [&](Children& children, BenchDir& dir) {
    STEWARD_ASSIGN_OR_RETURN(const std::string self, steward::bench::SelfPath());
    return RunBench(self, mib, children, dir);
  });
}
