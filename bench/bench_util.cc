// Helpers shared by the benchmarks (see bench_util.h): child processes, temp dir,
// private nats-server, raw echo responder, closed-loop load. Moved out of
// roundtrip_bench.cc so ledger_bench measures its raw baseline exactly the same way.
#include "bench/bench_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <thread>
#include <utility>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/process.h"

namespace steward::bench {
namespace {

constexpr int kMaxChildren = 256;  // ha_bench starts a station per round
std::atomic<pid_t> g_child_pids[kMaxChildren];
static_assert(std::atomic<pid_t>::is_always_lock_free);

std::atomic<const char*> g_program{"bench"};
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
  WriteStderr(g_program.load());
  WriteStderr(sig == SIGALRM ? ": overall time limit passed" : ": interrupted");
  WriteStderr("; children killed; their logs are in ");
  WriteStderr(g_dir);
  WriteStderr("\n");
  ::_exit(sig == SIGALRM ? 3 : 128 + sig);
}

void EchoRequest(natsConnection* nc, natsSubscription*, natsMsg* raw, void*) {
  nats::MsgPtr msg(raw);
  const char* reply = natsMsg_GetReply(raw);
  if (reply == nullptr) return;
  natsConnection_Publish(nc, reply, natsMsg_GetData(raw), natsMsg_GetDataLength(raw));
}

}  // namespace

void SetProgramName(const char* name) { g_program.store(name); }
const char* ProgramName() { return g_program.load(); }

void InstallFatalSignalHandlers(unsigned limit_seconds) {
  struct sigaction sa = {};
  sa.sa_handler = OnFatalSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGALRM}) sigaction(sig, &sa, nullptr);
  ::alarm(limit_seconds);
}

std::string ErrnoText(const char* what) { return absl::StrCat(what, ": ", std::strerror(errno)); }

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

// ---------------------------------------------------------------------------------------
// Children.

absl::Status Children::Spawn(const std::string& name, std::vector<std::string> argv,
                             const std::string& log, absl::Duration stop_limit) {
  if (children_.size() >= static_cast<size_t>(kMaxChildren)) {
    return absl::InternalError("too many child processes");
  }
  if (pid(name) > 0) return absl::InternalError(absl::StrCat("child ", name, " exists"));
  // Killed with the bench however it dies (PR_SET_PDEATHSIG), and by the fatal signal
  // handler, which finds the pid in g_child_pids.
  absl::StatusOr<pid_t> started = testing::StartChild({.argv = std::move(argv),
                                                       .stdout_path = log,
                                                       .stderr_path = log,
                                                       .append = true,
                                                       .die_with_parent = true});
  if (!started.ok()) {
    return absl::Status(started.status().code(), absl::StrCat("cannot start ", name, ": ",
                                                              started.status().message()));
  }
  const pid_t pid = *started;
  g_child_pids[children_.size()].store(pid);
  children_.push_back(Child{name, pid, log, children_.size(), stop_limit});
  return absl::OkStatus();
}

pid_t Children::pid(const std::string& name) const {
  for (const Child& c : children_) {
    if (c.name == name) return c.pid;
  }
  return -1;
}

absl::Status Children::CheckAlive() {
  for (Child& c : children_) {
    if (c.stopped) continue;
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

std::string Children::LogTails() const {
  std::string out;
  for (const Child& c : children_) {
    absl::StrAppend(&out, "  ", c.name, " log ", c.log, ":\n", Tail(c.log, 10));
  }
  return out;
}

absl::Duration Children::Stop(const std::string& name) {
  const absl::Time start = absl::Now();
  for (Child& c : children_) {
    if (c.name == name) StopGroup({&c});
  }
  return absl::Now() - start;
}

void Children::StopAll() {
  if (children_.empty()) return;
  std::vector<Child*> rest;
  for (size_t i = 1; i < children_.size(); ++i) rest.push_back(&children_[i]);
  StopGroup(rest);
  StopGroup({&children_[0]});
}

std::string Children::Describe(int st) {
  if (WIFEXITED(st)) return absl::StrCat("exit status ", WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return absl::StrCat("killed by signal ", WTERMSIG(st));
  return "stopped";
}

void Children::Reaped(Child& c, int st) {
  c.reaped = true;
  c.status = st;
  g_child_pids[c.slot].store(0);
}

void Children::StopGroup(const std::vector<Child*>& group) {
  for (Child* c : group) {
    c->stopped = true;
    if (!c->reaped) ::kill(c->pid, SIGTERM);
  }
  const absl::Time start = absl::Now();
  while (true) {
    bool all_gone = true;
    for (Child* c : group) {
      if (c->reaped) continue;
      int st = 0;
      if (::waitpid(c->pid, &st, WNOHANG) == c->pid) {
        Reaped(*c, st);
        continue;
      }
      if (absl::Now() - start >= c->stop_limit) {
        fmt::print(stderr, "{}: {} ignored SIGTERM for {}; killing it\n", ProgramName(),
                   c->name, absl::FormatDuration(c->stop_limit));
        ::kill(c->pid, SIGKILL);
        ::waitpid(c->pid, &st, 0);
        Reaped(*c, st);
        continue;
      }
      all_gone = false;
    }
    if (all_gone) return;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

// ---------------------------------------------------------------------------------------
// BenchDir.

BenchDir::~BenchDir() {
  if (path_.empty() || keep_) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

absl::Status BenchDir::Create() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "steward-bench-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return absl::InternalError(ErrnoText("mkdtemp"));
  path_ = tmpl;
  std::snprintf(g_dir, sizeof(g_dir), "%s", path_.c_str());
  return absl::OkStatus();
}

std::string BenchDir::File(const std::string& name) const { return absl::StrCat(path_, "/", name); }

// ---------------------------------------------------------------------------------------
// Broker and raw NATS.

absl::StatusOr<std::string> StartBroker(Children& children, const BenchDir& dir) {
  std::vector<std::string> argv = testing::NatsServerArgv("-1", dir.path(), dir.File("nats-server.log"));
  // Monitoring on a free port (BrokerMonitoringPort), listed in the same ports file.
  argv.insert(argv.end(), {"-m", "-1"});
  if (absl::Status st = children.Spawn("nats-server", std::move(argv), dir.File("nats-server.out"));
      !st.ok()) {
    return absl::Status(st.code(), absl::StrCat(st.message(), " (Debian package nats-server)"));
  }
  STEWARD_ASSIGN_OR_RETURN(const int port,
                           testing::WaitForNatsPort(dir.path(), children.pid("nats-server"),
                                                    [&children] { return children.CheckAlive(); }));
  return absl::StrCat("nats://127.0.0.1:", port);
}

absl::StatusOr<int> BrokerMonitoringPort(const BenchDir& dir, const Children& children) {
  const std::string ports_file = absl::StrCat(dir.path(), "/nats-server_", children.pid("nats-server"), ".ports");
  std::ifstream in(ports_file);
  const std::string ports((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const nlohmann::json listed = nlohmann::json::parse(ports, nullptr, /*allow_exceptions=*/false);
  if (listed.is_object() && listed.contains("monitoring") && listed["monitoring"].is_array()) {
    for (const nlohmann::json& url : listed["monitoring"]) {
      const std::string text = url.is_string() ? url.get<std::string>() : "";
      const std::string key = "http://127.0.0.1:";
      int port = 0;
      if (text.rfind(key, 0) == 0 && absl::SimpleAtoi(text.substr(key.size()), &port) && port > 0) return port;
    }
  }
  return absl::NotFoundError(absl::StrCat("no monitoring port in ", ports_file));
}

absl::StatusOr<nats::ConnectionPtr> RawConnect(const std::string& url, const char* name) {
  natsOptions* raw_opts = nullptr;
  STEWARD_RETURN_IF_ERROR(nats::ToStatus(natsOptions_Create(&raw_opts), "options"));
  nats::OptionsPtr opts(raw_opts);
  STEWARD_RETURN_IF_ERROR(nats::ToStatus(natsOptions_SetURL(opts.get(), url.c_str()), "SetURL"));
  STEWARD_RETURN_IF_ERROR(nats::ToStatus(natsOptions_SetName(opts.get(), name), "SetName"));
  // Without this nats.c holds each publish in its buffer for its flusher (~1 ms a reply).
  STEWARD_RETURN_IF_ERROR(
      nats::ToStatus(natsOptions_SetSendAsap(opts.get(), true), "SetSendAsap"));
  STEWARD_RETURN_IF_ERROR(
      nats::ToStatus(natsOptions_SetAllowReconnect(opts.get(), false), "SetAllowReconnect"));
  natsConnection* nc = nullptr;
  STEWARD_RETURN_IF_ERROR(nats::ToStatus(natsConnection_Connect(&nc, opts.get()),
                                         absl::StrCat("connect to ", url)));
  return nats::ConnectionPtr(nc);
}

int RunRawResponder(const std::string& url) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before nats.c starts threads
  const pid_t parent = ::getppid();
  const std::string name = absl::StrCat(ProgramName(), " responder");
  absl::StatusOr<nats::ConnectionPtr> nc = RawConnect(url, name.c_str());
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
  nats::SubscriptionPtr sub(raw_sub);
  natsConnection_FlushTimeout(nc->get(), 2000);
  const timespec tick{0, 100'000'000};
  while (::getppid() == parent && !natsConnection_IsClosed(nc->get())) {
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) break;
  }
  natsSubscription_Unsubscribe(sub.get());
  return 0;
}

absl::Status RawRequest(natsConnection* nc, const std::string& payload) {
  constexpr int64_t kRawTimeoutMs = 3000;
  natsMsg* raw = nullptr;
  const natsStatus s = natsConnection_Request(&raw, nc, kRawSubject, payload.data(),
                                              static_cast<int>(payload.size()), kRawTimeoutMs);
  if (s != NATS_OK) return nats::ToStatus(s, "raw request");
  nats::MsgPtr msg(raw);
  if (natsMsg_IsNoResponders(raw)) return absl::UnavailableError("raw request: no responders");
  if (natsMsg_GetDataLength(raw) != static_cast<int>(payload.size())) {
    return absl::InternalError("raw request: reply is not an echo");
  }
  return absl::OkStatus();
}

absl::Status WaitUntil(const char* what, Children& children,
                       const std::function<absl::Status()>& attempt, absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  absl::Status last = absl::UnknownError("no attempt made");
  while (absl::Now() < deadline) {
    STEWARD_RETURN_IF_ERROR(children.CheckAlive());
    last = attempt();
    if (last.ok()) return last;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat(what, " not ready within ",
                                                  absl::FormatDuration(limit),
                                                  "; last error: ", last.ToString()));
}

// ---------------------------------------------------------------------------------------
// Load.

double PercentileUs(const std::vector<int64_t>& sorted_ns, double p) {
  if (sorted_ns.empty()) return 0;
  const double n = static_cast<double>(sorted_ns.size());
  size_t rank = static_cast<size_t>(std::ceil(p * n));
  rank = std::clamp<size_t>(rank, 1, sorted_ns.size());
  return static_cast<double>(sorted_ns[rank - 1]) / 1000.0;
}

RunResult RunLoad(const std::string& path, int in_flight, absl::Duration duration,
                  const RequestFn& request, const LoadOptions& options) {
  struct PerThread {
    std::vector<int64_t> latency_ns;
    std::vector<int64_t> inner_us;
    int64_t errors = 0;
    std::string first_error;
    Clock::time_point last_done;
  };
  std::vector<PerThread> per(static_cast<size_t>(in_flight));
  const int warmup_each = (options.warmup_requests + in_flight - 1) / in_flight;
  const Clock::time_point warmup_deadline =
      Clock::now() + absl::ToChronoNanoseconds(options.warmup_limit);
  Clock::time_point start;
  Clock::time_point end;
  std::barrier go(in_flight, [&]() noexcept {
    if (options.on_start) options.on_start();
    start = Clock::now();
    end = start + absl::ToChronoNanoseconds(duration);
  });
  auto body = [&](int thread) {
    PerThread& me = per[static_cast<size_t>(thread)];
    int64_t ignored = -1;
    for (int i = 0; i < warmup_each && Clock::now() < warmup_deadline; ++i) {
      (void)request(thread, &ignored);
    }
    me.latency_ns.reserve(1 << 16);
    go.arrive_and_wait();
    while (true) {
      const Clock::time_point t0 = Clock::now();
      if (t0 >= end) break;
      int64_t inner = -1;
      const absl::Status st = request(thread, &inner);
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
  for (int t = 1; t < in_flight; ++t) threads.emplace_back(body, t);
  body(0);
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
// Small things.

bool FlagValue(int argc, char** argv, int* i, const char* name, std::string* value) {
  const std::string arg = argv[*i];
  const std::string flag = absl::StrCat("--", name);
  if (arg == flag && *i + 1 < argc) {
    *value = argv[++*i];
    return true;
  }
  if (arg.rfind(flag + "=", 0) == 0) {
    *value = arg.substr(flag.size() + 1);
    return true;
  }
  return false;
}

absl::StatusOr<int> StationHttpPort(Children& children, const std::string& log) {
  int port = 0;
  STEWARD_RETURN_IF_ERROR(WaitUntil("the station's HTTP server", children, [&]() -> absl::Status {
    std::ifstream in(log);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::smatch m;
    if (std::regex_search(text, m, std::regex("metrics on http://127\\.0\\.0\\.1:([0-9]+)/"))) {
      port = std::stoi(m[1]);
      return absl::OkStatus();
    }
    return absl::UnavailableError("no HTTP port in the station's log yet");
  }));
  return port;
}

std::string SimNodeName(const std::string& prefix, int index, int count) {
  const size_t width = std::max<size_t>(4, std::to_string(count).size());
  std::string digits = std::to_string(index);
  if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
  return prefix + digits;
}

namespace {

// The number after "key:" on the first line of `path` that starts with it; -1 if none.
int64_t KeyValue(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  const std::string prefix = key + ":";
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::istringstream fields(line.substr(prefix.size()));
    int64_t v = -1;
    fields >> v;
    return v;
  }
  return -1;
}

}  // namespace

int64_t ProcStatusValue(pid_t pid, const char* key) { return KeyValue(absl::StrCat("/proc/", pid, "/status"), key); }

double ProcCpuSeconds(pid_t pid, bool reaped_children) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces; the fields after it follow its ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 1));
  std::string field;
  int64_t ticks = 0;
  // Fields 3.. after the name: utime, stime are the 14th and 15th overall; cutime,
  // cstime the 16th and 17th.
  const int first = reaped_children ? 16 : 14;
  for (int n = 3; n <= first + 1 && fields >> field; ++n) {
    if (n < first) continue;
    int64_t v = 0;
    if (!absl::SimpleAtoi(field, &v)) return -1;
    ticks += v;
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  return hz > 0 ? static_cast<double>(ticks) / static_cast<double>(hz) : -1;
}

ProcWork ReadProcWork(pid_t pid) {
  ProcWork w;
  const std::string dir = absl::StrCat("/proc/", pid);
  w.reads = KeyValue(dir + "/io", "syscr");
  w.writes = KeyValue(dir + "/io", "syscw");
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(dir + "/task", ec)) {
    const std::string status = (task.path() / "status").string();
    const int64_t vol = KeyValue(status, "voluntary_ctxt_switches");
    const int64_t invol = KeyValue(status, "nonvoluntary_ctxt_switches");
    if (vol < 0 || invol < 0) continue;  // the thread ended meanwhile
    w.voluntary_switches = std::max<int64_t>(w.voluntary_switches, 0) + vol;
    w.involuntary_switches = std::max<int64_t>(w.involuntary_switches, 0) + invol;
  }
  return w;
}

int RunInBenchDir(const char* name,
                  const std::function<absl::Status(Children& children, BenchDir& dir)>& run) {
  BenchDir dir;
  absl::Status st = dir.Create();
  if (!st.ok()) {
    fmt::print(stderr, "{}: error: {}\n", name, st.ToString());
    return 1;
  }
  Children children;
  st = run(children, dir);
  if (!st.ok()) {
    fmt::print(stderr, "{}: error: {}\n{}(logs kept in {})\n", name, st.ToString(),
               children.LogTails(), dir.path());
    dir.Keep();
  }
  return st.ok() ? 0 : 1;
}

absl::Status SpawnStewardAndRaw(Children& children, const BenchDir& dir, const std::string& url,
                                const std::string& self, const std::string& station, const std::string& agent,
                                const std::string& node, const std::vector<std::string>& station_flags,
                                const std::string& responder_cpus) {
  const std::string bin = BinDir();
  std::vector<std::string> station_args = {bin + "/station/steward-station", "--nats", url, "--data-dir",
                                           dir.File(station)};
  station_args.insert(station_args.end(), station_flags.begin(), station_flags.end());
  STEWARD_RETURN_IF_ERROR(children.Spawn(station, station_args, dir.File(station + ".log")));
  STEWARD_RETURN_IF_ERROR(children.Spawn(agent,
                                         {bin + "/agent/steward-agent", "--node", node, "--nats",
                                          url, "--heartbeat", "1s", "--data-dir", dir.File(agent)},
                                         dir.File(agent + ".log")));
  std::vector<std::string> responder = {self, kRawResponderFlag, url};
  if (!responder_cpus.empty()) responder.push_back(responder_cpus);
  return children.Spawn("raw-responder", responder, dir.File("raw-responder.log"));
}

std::string BinDir() {
  const char* dir = std::getenv("STEWARD_BENCH_BIN_DIR");
  return dir != nullptr && *dir != '\0' ? std::string(dir) : std::string(STEWARD_BIN_DIR);
}

absl::StatusOr<std::string> SelfPath() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::canonical("/proc/self/exe", ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot find this program: ", ec.message()));
  return self.string();
}

}  // namespace steward::bench
