// roundtrip_bench: request/reply round trips through steward against raw NATS, on one
// private nats-server. steward: Client::Ping (client -> station -> agent -> station ->
// client) with a real steward-station and steward-agent; raw: natsConnection_Request to
// an echo responder in its own process. 1 and 32 in flight; prints req/s, p50 and p99.
// Run: scripts/bench, or build/bench/roundtrip_bench [--seconds N] (default 3 s per run).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "proto/steward.pb.h"
#include "station/client.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kNode[] = "bench1";
constexpr char kRawSubject[] = "bench.raw.echo";
constexpr char kRawResponderFlag[] = "--raw-responder";
constexpr int kInFlight[] = {1, 32};
constexpr int kWarmupRequests = 200;
constexpr absl::Duration kWarmupLimit = absl::Seconds(5);
constexpr absl::Duration kPingWait = absl::Seconds(1);  // Client::Ping allows 2 s more
constexpr int64_t kRawTimeoutMs = 3000;
constexpr absl::Duration kStartupLimit = absl::Seconds(15);
constexpr absl::Duration kStopLimit = absl::Seconds(3);
constexpr double kThroughputGoal = 0.40;  // steward/raw req/s at 32 in flight, at least
constexpr double kLatencyGoal = 3.0;      // steward/raw p50 at 1 in flight, at most

// ---------------------------------------------------------------------------------------
// Child processes. Their pids are also kept where a signal handler can reach them, so a
// Ctrl-C or the overall time limit (SIGALRM) still kills every child.

constexpr int kMaxChildren = 8;
std::atomic<pid_t> g_child_pids[kMaxChildren];
static_assert(std::atomic<pid_t>::is_always_lock_free);

char g_dir[512];  // The bench's temp dir, named when a signal leaves it behind.

void WriteStderr(const char* text) {
  if (::write(STDERR_FILENO, text, std::strlen(text)) < 0) {
  }
}

extern "C" void OnFatalSignal(int sig) {
  for (std::atomic<pid_t>& p : g_child_pids) {
    const pid_t pid = p.load();
    if (pid > 0) ::kill(pid, SIGKILL);
  }
  for (std::atomic<pid_t>& p : g_child_pids) {
    const pid_t pid = p.load();
    int st = 0;
    if (pid > 0) ::waitpid(pid, &st, 0);
  }
  WriteStderr(sig == SIGALRM ? "roundtrip_bench: overall time limit passed"
                              : "roundtrip_bench: interrupted");
  WriteStderr("; children killed; their logs are in ");
  WriteStderr(g_dir);
  WriteStderr("\n");
  ::_exit(sig == SIGALRM ? 3 : 128 + sig);
}

std::string ErrnoText(const char* what) { return absl::StrCat(what, ": ", std::strerror(errno)); }

// FindInPath resolves a program name the way execvp would, before fork (the child must
// not allocate).
absl::StatusOr<std::string> FindInPath(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return name;
    return absl::NotFoundError(absl::StrCat(name, " is not an executable file"));
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(name, " not found in PATH"));
}

// The last `lines` lines of a file, indented, for error reports.
std::string Tail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  if (!in) return "    (no log)\n";
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(std::move(line));
    if (last.size() > lines) last.pop_front();
  }
  if (last.empty()) return "    (empty)\n";
  std::string out;
  for (const std::string& l : last) absl::StrAppend(&out, "    ", l, "\n");
  return out;
}

class Children {
 public:
  Children() = default;
  Children(const Children&) = delete;
  Children& operator=(const Children&) = delete;
  ~Children() { StopAll(); }

  // Spawn runs `argv` (argv[0] is looked up in PATH) with stdin from /dev/null and
  // stdout and stderr appended to `log`. The child is killed if this process dies.
  absl::Status Spawn(const std::string& name, std::vector<std::string> argv,
                     const std::string& log) {
    if (children_.size() >= static_cast<size_t>(kMaxChildren)) {
      return absl::InternalError("too many child processes");
    }
    absl::StatusOr<std::string> program = FindInPath(argv[0]);
    if (!program.ok()) {
      return absl::NotFoundError(
          absl::StrCat("cannot start ", name, ": ", program.status().message()));
    }
    argv[0] = *std::move(program);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return absl::InternalError(ErrnoText("fork"));
    if (pid == 0) {
      // Async-signal-safe calls only from here on.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (out < 0 || in < 0) ::_exit(127);
      ::dup2(in, STDIN_FILENO);
      ::dup2(out, STDOUT_FILENO);
      ::dup2(out, STDERR_FILENO);
      ::execv(args[0], args.data());
      WriteStderr("roundtrip_bench: exec failed\n");
      ::_exit(127);
    }
    g_child_pids[children_.size()].store(pid);
    children_.push_back(Child{name, pid, log, children_.size()});
    return absl::OkStatus();
  }

  pid_t pid(const std::string& name) const {
    for (const Child& c : children_) {
      if (c.name == name) return c.pid;
    }
    return -1;
  }

  // CheckAlive fails naming the first child that has exited, with the end of its log.
  absl::Status CheckAlive() {
    for (Child& c : children_) {
      if (!c.reaped) {
        int st = 0;
        if (::waitpid(c.pid, &st, WNOHANG) == c.pid) Reaped(c, st);
      }
      if (c.reaped) {
        return absl::UnavailableError(absl::StrCat(c.name, " (pid ", c.pid, ") exited: ",
                                                   Describe(c.status), "; its log ", c.log,
                                                   " ends with:\n", Tail(c.log, 15)));
      }
    }
    return absl::OkStatus();
  }

  // LogTails: the end of every child's log, for error reports.
  std::string LogTails() const {
    std::string out;
    for (const Child& c : children_) {
      absl::StrAppend(&out, "  ", c.name, " log ", c.log, ":\n", Tail(c.log, 10));
    }
    return out;
  }

  // StopAll: SIGTERM, then SIGKILL after kStopLimit. The broker (the first child) goes
  // last, so the others can shut down cleanly.
  void StopAll() {
    if (children_.empty()) return;
    std::vector<Child*> rest;
    for (size_t i = 1; i < children_.size(); ++i) rest.push_back(&children_[i]);
    Stop(rest);
    Stop({&children_[0]});
  }

 private:
  struct Child {
    std::string name;
    pid_t pid;
    std::string log;
    size_t slot;
    bool reaped = false;
    int status = 0;
  };

  static std::string Describe(int st) {
    if (WIFEXITED(st)) return absl::StrCat("exit status ", WEXITSTATUS(st));
    if (WIFSIGNALED(st)) return absl::StrCat("killed by signal ", WTERMSIG(st));
    return "stopped";
  }

  void Reaped(Child& c, int st) {
    c.reaped = true;
    c.status = st;
    g_child_pids[c.slot].store(0);
  }

  void Stop(const std::vector<Child*>& group) {
    for (Child* c : group) {
      if (!c->reaped) ::kill(c->pid, SIGTERM);
    }
    const absl::Time deadline = absl::Now() + kStopLimit;
    while (true) {
      bool all_gone = true;
      for (Child* c : group) {
        int st = 0;
        if (!c->reaped && ::waitpid(c->pid, &st, WNOHANG) == c->pid) Reaped(*c, st);
        all_gone = all_gone && c->reaped;
      }
      if (all_gone) return;
      if (absl::Now() >= deadline) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    for (Child* c : group) {
      if (c->reaped) continue;
      fmt::print(stderr, "roundtrip_bench: {} ignored SIGTERM for {}; killing it\n", c->name,
                 absl::FormatDuration(kStopLimit));
      ::kill(c->pid, SIGKILL);
      int st = 0;
      ::waitpid(c->pid, &st, 0);
      Reaped(*c, st);
    }
  }

  std::vector<Child> children_;
};

// A fresh directory under the system temp dir, removed with everything in it.
class BenchDir {
 public:
  BenchDir() = default;
  BenchDir(const BenchDir&) = delete;
  BenchDir& operator=(const BenchDir&) = delete;
  ~BenchDir() {
    if (path_.empty() || keep_) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  absl::Status Create() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "steward-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return absl::InternalError(ErrnoText("mkdtemp"));
    path_ = tmpl;
    std::snprintf(g_dir, sizeof(g_dir), "%s", path_.c_str());
    return absl::OkStatus();
  }
  std::string File(const std::string& name) const { return absl::StrCat(path_, "/", name); }
  const std::string& path() const { return path_; }
  void Keep() { keep_ = true; }  // leave it for a post-mortem

 private:
  std::string path_;
  bool keep_ = false;
};

// StartBroker runs nats-server on a free port and returns its URL, read from the ports
// file it writes (`{"nats":["nats://127.0.0.1:PORT"], ...}`).
absl::StatusOr<std::string> StartBroker(Children& children, const BenchDir& dir) {
  if (absl::Status st = children.Spawn("nats-server",
                                        {"nats-server", "-a", "127.0.0.1", "-p", "-1",
                                         "--ports_file_dir", dir.path(), "-l",
                                         dir.File("nats-server.log")},
                                        dir.File("nats-server.out"));
      !st.ok()) {
    return absl::Status(st.code(), absl::StrCat(st.message(), " (Debian package nats-server)"));
  }
  const std::string ports = dir.File(absl::StrCat("nats-server_", children.pid("nats-server"),
                                                  ".ports"));
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    STEWARD_RETURN_IF_ERROR(children.CheckAlive());
    std::ifstream in(ports);
    std::stringstream buf;
    buf << in.rdbuf();
    const std::string text = buf.str();
    const std::string key = "nats://127.0.0.1:";
    const size_t at = text.find(key);
    if (at != std::string::npos) {
      size_t end = at + key.size();
      while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
      int port = 0;
      if (absl::SimpleAtoi(text.substr(at + key.size(), end - at - key.size()), &port) &&
          port > 0) {
        return absl::StrCat(key, port);
      }
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("nats-server did not write its ports file ", ports, " within 5s"));
}

// ---------------------------------------------------------------------------------------
// Raw NATS: connection and the echo responder (a separate process: --raw-responder URL).

absl::StatusOr<steward::nats::ConnectionPtr> RawConnect(const std::string& url,
                                                        const char* name) {
  natsOptions* raw_opts = nullptr;
  STEWARD_RETURN_IF_ERROR(steward::nats::ToStatus(natsOptions_Create(&raw_opts), "options"));
  steward::nats::OptionsPtr opts(raw_opts);
  STEWARD_RETURN_IF_ERROR(
      steward::nats::ToStatus(natsOptions_SetURL(opts.get(), url.c_str()), "SetURL"));
  STEWARD_RETURN_IF_ERROR(
      steward::nats::ToStatus(natsOptions_SetName(opts.get(), name), "SetName"));
  // Without this nats.c holds each publish in its buffer for its flusher (~1 ms a reply).
  STEWARD_RETURN_IF_ERROR(
      steward::nats::ToStatus(natsOptions_SetSendAsap(opts.get(), true), "SetSendAsap"));
  STEWARD_RETURN_IF_ERROR(steward::nats::ToStatus(
      natsOptions_SetAllowReconnect(opts.get(), false), "SetAllowReconnect"));
  natsConnection* nc = nullptr;
  STEWARD_RETURN_IF_ERROR(steward::nats::ToStatus(natsConnection_Connect(&nc, opts.get()),
                                                  absl::StrCat("connect to ", url)));
  return steward::nats::ConnectionPtr(nc);
}

void EchoRequest(natsConnection* nc, natsSubscription*, natsMsg* raw, void*) {
  steward::nats::MsgPtr msg(raw);
  const char* reply = natsMsg_GetReply(raw);
  if (reply == nullptr) return;
  natsConnection_Publish(nc, reply, natsMsg_GetData(raw), natsMsg_GetDataLength(raw));
}

// RunRawResponder answers every request on kRawSubject with its own data until SIGTERM,
// SIGINT, its parent going away or the connection closing.
int RunRawResponder(const std::string& url) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before nats.c starts threads
  const pid_t parent = ::getppid();
  absl::StatusOr<steward::nats::ConnectionPtr> nc = RawConnect(url, "roundtrip_bench responder");
  if (!nc.ok()) {
    fmt::print(stderr, "raw responder: {}\n", nc.status().ToString());
    return 2;
  }
  natsSubscription* raw_sub = nullptr;
  if (natsStatus s = natsConnection_Subscribe(&raw_sub, nc->get(), kRawSubject, EchoRequest,
                                              nullptr);
      s != NATS_OK) {
    fmt::print(stderr, "raw responder: subscribe: {}\n", natsStatus_GetText(s));
    return 2;
  }
  steward::nats::SubscriptionPtr sub(raw_sub);
  natsConnection_FlushTimeout(nc->get(), 2000);
  const timespec tick{0, 100'000'000};
  while (::getppid() == parent && !natsConnection_IsClosed(nc->get())) {
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) break;
  }
  natsSubscription_Unsubscribe(sub.get());
  return 0;
}

// ---------------------------------------------------------------------------------------
// Load runs.

// One request. `inner_us` may be set to a latency measured inside the path.
using RequestFn = std::function<absl::Status(int64_t* inner_us)>;

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
double PercentileUs(const std::vector<int64_t>& sorted_ns, double p) {
  if (sorted_ns.empty()) return 0;
  const double n = static_cast<double>(sorted_ns.size());
  size_t rank = static_cast<size_t>(std::ceil(p * n));
  rank = std::clamp<size_t>(rank, 1, sorted_ns.size());
  return static_cast<double>(sorted_ns[rank - 1]) / 1000.0;
}

// RunLoad: `in_flight` threads each send requests one after another: a shared warm-up of
// kWarmupRequests, then all start together and run for `duration`.
RunResult RunLoad(const std::string& path, int in_flight, absl::Duration duration,
                  const RequestFn& request) {
  struct PerThread {
    std::vector<int64_t> latency_ns;
    std::vector<int64_t> inner_us;
    int64_t errors = 0;
    std::string first_error;
    Clock::time_point last_done;
  };
  std::vector<PerThread> per(static_cast<size_t>(in_flight));
  const int warmup_each = (kWarmupRequests + in_flight - 1) / in_flight;
  const Clock::time_point warmup_deadline =
      Clock::now() + absl::ToChronoNanoseconds(kWarmupLimit);
  Clock::time_point start;
  Clock::time_point end;
  std::barrier go(in_flight, [&]() noexcept {
    start = Clock::now();
    end = start + absl::ToChronoNanoseconds(duration);
  });
  auto body = [&](PerThread& me) {
    int64_t ignored = -1;
    for (int i = 0; i < warmup_each && Clock::now() < warmup_deadline; ++i) {
      (void)request(&ignored);
    }
    me.latency_ns.reserve(1 << 16);
    go.arrive_and_wait();
    while (true) {
      const Clock::time_point t0 = Clock::now();
      if (t0 >= end) break;
      int64_t inner = -1;
      const absl::Status st = request(&inner);
      const Clock::time_point t1 = Clock::now();
      me.last_done = t1;
      if (st.ok()) {
        me.latency_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
        if (inner >= 0) me.inner_us.push_back(inner);
      } else if (me.errors++ == 0) {
        me.first_error = st.ToString();
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < in_flight; ++t) {
    threads.emplace_back(body, std::ref(per[static_cast<size_t>(t)]));
  }
  body(per[0]);
  for (std::thread& t : threads) t.join();

  RunResult r;
  r.path = path;
  r.in_flight = in_flight;
  std::vector<int64_t> all;
  std::vector<int64_t> inner;
  Clock::time_point last = end;
  for (PerThread& p : per) {
    all.insert(all.end(), p.latency_ns.begin(), p.latency_ns.end());
    inner.insert(inner.end(), p.inner_us.begin(), p.inner_us.end());
    r.errors += p.errors;
    if (r.first_error.empty()) r.first_error = p.first_error;
    last = std::max(last, p.last_done);
  }
  std::sort(all.begin(), all.end());
  r.requests = static_cast<int64_t>(all.size());
  r.seconds = std::chrono::duration<double>(last - start).count();
  r.rps = r.seconds > 0 ? static_cast<double>(r.requests) / r.seconds : 0;
  r.p50_us = PercentileUs(all, 0.50);
  r.p99_us = PercentileUs(all, 0.99);
  if (!inner.empty()) {
    std::sort(inner.begin(), inner.end());
    r.inner_p50_us = static_cast<double>(inner[(inner.size() + 1) / 2 - 1]);
  }
  return r;
}

// ---------------------------------------------------------------------------------------
// The benchmark.

// Sizes of a steward ping request and its reply as Client and Station build them.
std::pair<size_t, size_t> StewardPingSizes() {
  steward::proto::PingRequest req;
  req.set_node(kNode);
  req.set_wait_ms(absl::ToInt64Milliseconds(kPingWait));
  steward::proto::Envelope env =
      steward::NewEnvelope("stewardctl", "station", steward::proto::KIND_COMMAND,
                           steward::kStationPing, steward::kCliDomain);
  env.set_payload(req.SerializeAsString());
  steward::proto::PingReply pong;
  pong.set_node(kNode);
  pong.set_station_rtt_us(1234);
  steward::proto::Ack ack = steward::NewAck(env.id(), "station", steward::proto::STAGE_RESULT,
                                            steward::proto::OUTCOME_SUCCEEDED);
  ack.set_payload(pong.SerializeAsString());
  return {env.ByteSizeLong(), ack.ByteSizeLong()};
}

// Retry `attempt` until it succeeds or kStartupLimit passes, checking the children.
absl::Status WaitUntil(const char* what, Children& children,
                       const std::function<absl::Status()>& attempt) {
  const absl::Time deadline = absl::Now() + kStartupLimit;
  absl::Status last = absl::UnknownError("no attempt made");
  while (absl::Now() < deadline) {
    STEWARD_RETURN_IF_ERROR(children.CheckAlive());
    last = attempt();
    if (last.ok()) return last;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat(what, " not ready within ",
                                                  absl::FormatDuration(kStartupLimit),
                                                  "; last error: ", last.ToString()));
}

void PrintRow(const RunResult& r) {
  fmt::print("{:<8} {:>9} {:>10} {:>10.0f} {:>9.0f} {:>9.0f} {:>7}", r.path, r.in_flight,
             r.requests, r.rps, r.p50_us, r.p99_us, r.errors);
  if (r.inner_p50_us >= 0) fmt::print("   station<->agent p50 {:.0f} us", r.inner_p50_us);
  fmt::print("\n");
}

absl::Status RunBench(const std::string& self, absl::Duration duration, Children& children,
                      const BenchDir& dir) {
  STEWARD_ASSIGN_OR_RETURN(const std::string url, StartBroker(children, dir));
  const std::string bin = STEWARD_BIN_DIR;
  STEWARD_RETURN_IF_ERROR(children.Spawn(
      "steward-station",
      {bin + "/station/steward-station", "--nats", url, "--data-dir", dir.File("station")},
      dir.File("station.log")));
  STEWARD_RETURN_IF_ERROR(children.Spawn("steward-agent",
                                         {bin + "/agent/steward-agent", "--node", kNode, "--nats",
                                          url, "--heartbeat", "1s", "--data-dir",
                                          dir.File("agent")},
                                         dir.File("agent.log")));
  STEWARD_RETURN_IF_ERROR(children.Spawn("raw-responder", {self, kRawResponderFlag, url},
                                         dir.File("raw-responder.log")));

  // steward: one Client shared by every thread, as the header allows.
  absl::StatusOr<std::unique_ptr<steward::station::Client>> client =
      steward::station::Client::Connect(
          steward::station::ClientOptions{.nats = {.url = url, .name = "roundtrip_bench"}});
  if (!client.ok()) return client.status();
  steward::station::Client& steward_client = **client;
  const RequestFn steward_ping = [&steward_client](int64_t* inner_us) -> absl::Status {
    absl::StatusOr<steward::proto::PingReply> pong = steward_client.Ping(kNode, kPingWait);
    if (!pong.ok()) return pong.status();
    *inner_us = pong->station_rtt_us();
    return absl::OkStatus();
  };
  STEWARD_RETURN_IF_ERROR(WaitUntil("ping through the station", children, [&] {
    int64_t ignored = 0;
    return steward_ping(&ignored);
  }));

  // raw: one natsConnection shared by every thread; payload as big as a steward ping.
  STEWARD_ASSIGN_OR_RETURN(steward::nats::ConnectionPtr raw_conn,
                           RawConnect(url, "roundtrip_bench raw client"));
  natsConnection* nc = raw_conn.get();
  const auto [request_bytes, reply_bytes] = StewardPingSizes();
  const std::string payload(request_bytes, 'x');
  const RequestFn raw_request = [nc, &payload](int64_t*) -> absl::Status {
    natsMsg* raw = nullptr;
    const natsStatus s = natsConnection_Request(&raw, nc, kRawSubject, payload.data(),
                                                static_cast<int>(payload.size()), kRawTimeoutMs);
    if (s != NATS_OK) return steward::nats::ToStatus(s, "raw request");
    steward::nats::MsgPtr msg(raw);
    if (natsMsg_IsNoResponders(raw)) return absl::UnavailableError("raw request: no responders");
    if (natsMsg_GetDataLength(raw) != static_cast<int>(payload.size())) {
      return absl::InternalError("raw request: reply is not an echo");
    }
    return absl::OkStatus();
  };
  STEWARD_RETURN_IF_ERROR(WaitUntil("raw responder", children, [&] {
    int64_t ignored = 0;
    return raw_request(&ignored);
  }));

  fmt::print("roundtrip_bench: {} per run after {} warm-up requests; {} CPUs\n",
             absl::FormatDuration(duration), kWarmupRequests,
             std::thread::hardware_concurrency());
  fmt::print("  steward: Client::Ping(\"{}\"): client -> station -> agent -> station -> client; "
             "request {} B, reply {} B\n",
             kNode, request_bytes, reply_bytes);
  fmt::print("  raw:     natsConnection_Request to an echo responder process; {} B each way\n",
             payload.size());
  fmt::print("  one nats-server at {}; in flight = threads sharing one connection\n\n", url);
  fmt::print("{:<8} {:>9} {:>10} {:>10} {:>9} {:>9} {:>7}\n", "path", "in flight", "requests",
             "req/s", "p50 us", "p99 us", "errors");
  std::fflush(stdout);

  std::vector<RunResult> results;
  for (const auto& [name, fn] : {std::pair<const char*, const RequestFn*>{"steward", &steward_ping},
                                 std::pair<const char*, const RequestFn*>{"raw", &raw_request}}) {
    for (int in_flight : kInFlight) {
      STEWARD_RETURN_IF_ERROR(children.CheckAlive());
      RunResult r = RunLoad(name, in_flight, duration, *fn);
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
  fmt::print("goal 32-in-flight throughput >= {:.0f}% of raw: {} ({:.0f}%)\n",
             kThroughputGoal * 100, throughput >= kThroughputGoal ? "PASS" : "FAIL",
             throughput * 100);
  fmt::print("goal 1-in-flight p50 latency <= {:.0f}x raw: {} ({:.2f}x)\n", kLatencyGoal,
             latency <= kLatencyGoal ? "PASS" : "FAIL", latency);
  return absl::OkStatus();
}

int Usage(const char* error) {
  if (error != nullptr) fmt::print(stderr, "roundtrip_bench: {}\n", error);
  fmt::print(stderr, "usage: roundtrip_bench [--seconds N]   (N seconds per run, default 3)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  steward::nats::Library lib;
  if (argc == 3 && std::string(argv[1]) == kRawResponderFlag) return RunRawResponder(argv[2]);

  double seconds = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string value;
    if (arg == "--seconds" && i + 1 < argc) {
      value = argv[++i];
    } else if (arg.rfind("--seconds=", 0) == 0) {
      value = arg.substr(sizeof("--seconds=") - 1);
    } else if (arg == "--help" || arg == "-h") {
      return Usage(nullptr);
    } else {
      return Usage(absl::StrCat("unknown argument ", arg).c_str());
    }
    if (!absl::SimpleAtod(value, &seconds) || !(seconds > 0) || seconds > 600) {
      return Usage("--seconds wants a number in (0, 600]");
    }
  }
  const absl::Duration duration = absl::Seconds(seconds);

  // Whatever happens, children die with us: on Ctrl-C, SIGTERM, or past a time limit
  // that covers setup, four runs with their warm-ups and draining, and shutdown.
  struct sigaction sa = {};
  sa.sa_handler = OnFatalSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGALRM}) sigaction(sig, &sa, nullptr);
  ::alarm(static_cast<unsigned>(std::ceil(4 * seconds)) + 40);

  BenchDir dir;
  absl::Status st = dir.Create();
  if (st.ok()) {
    Children children;
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::canonical("/proc/self/exe", ec);
    st = ec ? absl::InternalError(absl::StrCat("cannot find this program: ", ec.message()))
            : RunBench(self.string(), duration, children, dir);
    if (!st.ok()) {
      fmt::print(stderr, "roundtrip_bench: error: {}\n{}(logs kept in {})\n", st.ToString(),
                 children.LogTails(), dir.path());
      dir.Keep();
    }
  } else {
    fmt::print(stderr, "roundtrip_bench: error: {}\n", st.ToString());
  }
  return st.ok() ? 0 : 1;
}
