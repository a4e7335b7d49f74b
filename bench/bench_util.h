// Helpers shared by the benchmarks: child processes that die with the bench (on every
// exit path, Ctrl-C and an overall time limit included), a temp dir, a private
// nats-server, a raw nats.c echo responder and a closed-loop load generator that reports
// req/s, p50 and p99. Starting a child and a nats-server is tests/testing's (the
// Catch2-free steward_test_support library), the same code the tests use.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/nats.h"

namespace steward::bench {

using Clock = std::chrono::steady_clock;

// The first argument that makes a bench binary run as the raw echo responder:
// `<bench> --raw-responder URL`.
inline constexpr char kRawResponderFlag[] = "--raw-responder";
inline constexpr char kRawSubject[] = "bench.raw.echo";

// The name in front of every message ("roundtrip_bench: ..."). `name` must be a string
// literal or otherwise live forever (the signal handler reads it).
void SetProgramName(const char* name);
const char* ProgramName();

// On SIGINT, SIGTERM, SIGHUP or SIGALRM: kill every child, say where their logs are and
// _exit (3 past the time limit, 128+N for a signal). Arms an alarm of `limit_seconds`.
void InstallFatalSignalHandlers(unsigned limit_seconds);

std::string ErrnoText(const char* what);

// The last `lines` lines of a file, indented, for error reports.
std::string Tail(const std::string& path, size_t lines);

// Child processes. Their pids are also kept where the signal handler can reach them.
class Children {
 public:
  static constexpr absl::Duration kDefaultStopLimit = absl::Seconds(3);

  Children() = default;
  Children(const Children&) = delete;
  Children& operator=(const Children&) = delete;
  ~Children() { StopAll(); }

  // Spawn runs `argv` (argv[0] is looked up in PATH) with stdin from /dev/null and
  // stdout and stderr appended to `log`. The child is killed if this process dies.
  // Stopping it sends SIGTERM, then SIGKILL after `stop_limit`. Names must be unique.
  absl::Status Spawn(const std::string& name, std::vector<std::string> argv,
                     const std::string& log, absl::Duration stop_limit = kDefaultStopLimit);

  // -1 when there is no child of that name.
  pid_t pid(const std::string& name) const;

  // CheckAlive fails naming the first child that has exited (and was not stopped on
  // purpose), with the end of its log.
  absl::Status CheckAlive();

  // LogTails: the end of every child's log, for error reports.
  std::string LogTails() const;

  // Stop one child (SIGTERM, then SIGKILL after its stop limit). Returns how long it
  // took to go away.
  absl::Duration Stop(const std::string& name);

  // StopAll: every child. The broker (the first child) goes last, so the others can
  // shut down cleanly.
  void StopAll();

 private:
  struct Child {
    std::string name;
    pid_t pid;
    std::string log;
    size_t slot;
    absl::Duration stop_limit;
    bool reaped = false;
    bool stopped = false;  // on purpose: not an error for CheckAlive
    int status = 0;
  };

  static std::string Describe(int st);
  void Reaped(Child& c, int st);
  void StopGroup(const std::vector<Child*>& group);

  std::vector<Child> children_;
};

// A fresh directory under the system temp dir, removed with everything in it.
class BenchDir {
 public:
  BenchDir() = default;
  BenchDir(const BenchDir&) = delete;
  BenchDir& operator=(const BenchDir&) = delete;
  ~BenchDir();
  absl::Status Create();
  std::string File(const std::string& name) const;
  const std::string& path() const { return path_; }
  void Keep() { keep_ = true; }  // leave it for a post-mortem

 private:
  std::string path_;
  bool keep_ = false;
};

// The body of a benchmark's main: runs `run` with a fresh BenchDir and its Children;
// on failure prints "<name>: error: ..." with the children's log tails and keeps the
// directory. Returns main's exit status.
int RunInBenchDir(const char* name,
                  const std::function<absl::Status(Children& children, BenchDir& dir)>& run);

// This program's path, for children that run it in another role.
absl::StatusOr<std::string> SelfPath();

// Where the steward binaries are: STEWARD_BENCH_BIN_DIR when set (another build's
// tree with the same layout, e.g. main's, to compare in the same session), else this
// build's.
std::string BinDir();

// Spawns, on `url`: steward-station as child `station` (data in <dir>/<station>),
// steward-agent for `node` as child `agent` (1 s heartbeat, data in <dir>/<agent>),
// and `self` as the raw responder, child "raw-responder" (see kRawResponderFlag).
// `station_flags` go to the station after its own. `responder_cpus`, when set, goes to
// the responder after its URL: a program that takes it keeps the responder on those
// CPUs (ledger_bench --station-cpus, to run it as the station runs).
absl::Status SpawnStewardAndRaw(Children& children, const BenchDir& dir, const std::string& url,
                                const std::string& self, const std::string& station, const std::string& agent,
                                const std::string& node, const std::vector<std::string>& station_flags = {},
                                const std::string& responder_cpus = "");

// StartBroker runs nats-server on a free port and returns its URL, read from the ports
// file it writes (`{"nats":["nats://127.0.0.1:PORT"], ...}`).
absl::StatusOr<std::string> StartBroker(Children& children, const BenchDir& dir);

// The port of the broker's monitoring endpoint (StartBroker turns it on, on a free
// port, listed in its ports file).
absl::StatusOr<int> BrokerMonitoringPort(const BenchDir& dir, const Children& children);

// A plain nats.c connection with SendAsap and no reconnect, as a raw client uses it.
absl::StatusOr<nats::ConnectionPtr> RawConnect(const std::string& url, const char* name);

// RunRawResponder answers every request on kRawSubject with its own data until SIGTERM,
// SIGINT, its parent going away or the connection closing. Returns the exit code.
int RunRawResponder(const std::string& url);

// A raw request of `payload` to the responder; checks the echo.
absl::Status RawRequest(natsConnection* nc, const std::string& payload);

// Retry `attempt` until it succeeds or `limit` passes, checking the children.
absl::Status WaitUntil(const char* what, Children& children,
                       const std::function<absl::Status()>& attempt,
                       absl::Duration limit = absl::Seconds(15));

// ---------------------------------------------------------------------------------------
// Closed-loop load.

// One request from load thread `thread` (0 .. in_flight-1). `inner_us` may be set to a
// latency measured inside the path.
using RequestFn = std::function<absl::Status(int thread, int64_t* inner_us)>;

struct LoadOptions {
  int warmup_requests = 200;  // shared by the threads, before the clock starts
  absl::Duration warmup_limit = absl::Seconds(5);
  // Called once when the warm-up is over and every thread waits to start (so it may
  // reset what the request function collects without locking).
  std::function<void()> on_start;
};

struct RunResult {
  std::string path;
  int in_flight = 0;
  int64_t requests = 0;
  int64_t errors = 0;
  std::string first_error;
  double seconds = 0;
  double rps = 0;
  double p50_us = 0;
  double p99_us = 0;
  double inner_p50_us = -1;  // < 0: not measured
};

// Nearest-rank percentile of sorted values, in microseconds from nanoseconds.
double PercentileUs(const std::vector<int64_t>& sorted_ns, double p);

// RunLoad: `in_flight` threads each send requests one after another: a shared warm-up,
// then all start together and run for `duration`. Errors are counted, not timed.
RunResult RunLoad(const std::string& path, int in_flight, absl::Duration duration,
                  const RequestFn& request, const LoadOptions& options = {});

// ---------------------------------------------------------------------------------------
// Small things.

// "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i past a separate value.
bool FlagValue(int argc, char** argv, int* i, const char* name, std::string* value);

// Simulated node names: prefix + index (1-based) zero-padded to at least 4 digits, e.g.
// sim0001 .. sim1000. node_simulator and ledger_bench both use this.
std::string SimNodeName(const std::string& prefix, int index, int count);

// The HTTP port of a station started with --http 127.0.0.1:0, from its log.
absl::StatusOr<int> StationHttpPort(Children& children, const std::string& log);

// A "Key:   123 kB" line of /proc/<pid>/status, in kB (or the raw number); -1 if absent.
int64_t ProcStatusValue(pid_t pid, const char* key);

// CPU time (user + system) in seconds from /proc/<pid>/stat: of the process itself, or
// of its children that it has reaped; -1 when it cannot be read.
double ProcCpuSeconds(pid_t pid, bool reaped_children = false);

// The kernel work of a process so far: its read and write system calls (/proc/<pid>/io:
// syscr, syscw: read, write, pread, pwrite and their vector forms, on files and sockets
// alike; send and recv are not counted) and its threads' context switches
// (/proc/<pid>/task/*/status; threads that ended are not counted). -1 when unreadable
// (another user's process).
struct ProcWork {
  int64_t reads = -1;
  int64_t writes = -1;
  int64_t voluntary_switches = -1;
  int64_t involuntary_switches = -1;
};
ProcWork ReadProcWork(pid_t pid);

}  // namespace steward::bench
