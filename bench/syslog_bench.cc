// syslog_bench: syslog forwarding throughput of one steward-agent into one steward-station
// on a private nats-server: RFC 3164 lines blasted at the agent's UDP, TCP and file inputs,
// counted on the wire (a tap on the agent's batches) and in the station (its node table),
// next to raw NATS baselines. Run: scripts/bench, or build/bench/syslog_bench [--lines N].
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/syslog/parser.h"
#include "bench/bench_util.h"
#include "common/mutex_mode.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "common/request_pump.h"
#include "common/status_macros.h"
#include "proto/steward.pb.h"
#include "ctl/client.h"

namespace {

using steward::bench::BenchDir;
using steward::bench::Children;
using steward::bench::Clock;

constexpr char kNode[] = "bench1";
constexpr char kFileDomain[] = "bench";
constexpr char kAppDomain[] = "app";  // the lines' app-name: the domain UDP and TCP use
constexpr char kRawLineSubject[] = "bench.syslog.line";
constexpr char kRawBatchSubject[] = "bench.syslog.batch";
constexpr size_t kLineBytes = 120;  // without the newline
constexpr int kBatchLines = 500;    // the agent's batch (SyslogOptions::batch_lines)
constexpr int kRawWindows[] = {1, 256};  // 256: the outbox's max_in_flight
constexpr absl::Duration kRawRequestRun = absl::Seconds(2);
constexpr absl::Duration kRawDeliverLimit = absl::Seconds(15);
constexpr absl::Duration kPollInterval = absl::Milliseconds(100);
// A phase ends when every line is stored; or when nothing new went on the wire for
// kWireQuiet and the station has stored all that did; or when neither count moved for
// kQuietLimit (the station commits a backlog in one long transaction, so its count
// moves in steps seconds apart under load); or at the phase limit.
constexpr absl::Duration kWireQuiet = absl::Seconds(2);
constexpr absl::Duration kQuietLimit = absl::Seconds(10);
// Before a phase: wait until the station has stored every line published so far and
// nothing moved for kSettleQuiet, at most kSettleLimit.
constexpr absl::Duration kSettleQuiet = absl::Seconds(1);
constexpr absl::Duration kSettleLimit = absl::Seconds(20);
// The station may have a backlog of log writes to commit when it is stopped.
constexpr absl::Duration kStationStopLimit = absl::Seconds(10);
constexpr absl::Duration kRpcTimeout = absl::Seconds(2);
constexpr size_t kUdpBatch = 256;               // datagrams per sendmmsg
constexpr size_t kStreamChunk = 256 * 1024;     // bytes per TCP send
constexpr size_t kFileChunk = 1024 * 1024;      // bytes per file write
constexpr double kAgentGoal = 100000;   // lines/s parsed and published by one agent
constexpr double kStationGoal = 50000;  // lines/s stored by the station

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
double Rate(int64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0; }

// ---------------------------------------------------------------------------------------
// Lines.

// One RFC 3164 line of exactly kLineBytes (no newline); `tag` keeps the phases apart.
std::string SyslogLine(absl::string_view tag, int64_t i) {
  std::string line = absl::StrCat(
      "<14>Jan  5 10:11:12 host app[123]: ", tag, " line ", absl::Dec(i, absl::kZeroPad7),
      " some payload text to make it about 120 bytes: lorem ipsum dolor sit amet, consectetur");
  line.resize(kLineBytes, '.');
  return line;
}

// `count` lines, each followed by '\n'; line i starts at i * (kLineBytes + 1).
std::string SyslogText(absl::string_view tag, int64_t count) {
  std::string text;
  text.reserve(static_cast<size_t>(count) * (kLineBytes + 1));
  for (int64_t i = 0; i < count; ++i) absl::StrAppend(&text, SyslogLine(tag, i), "\n");
  return text;
}

// ---------------------------------------------------------------------------------------
// CPU use of the processes involved, per thread, from /proc/<pid>/task/<tid>/schedstat.

// Nanoseconds a thread ran on a CPU, and was runnable but waiting for one.
struct ThreadTimes {
  int64_t cpu_ns = 0;
  int64_t wait_ns = 0;
};

struct ProcCpu {
  std::map<int, ThreadTimes> threads;  // by tid
};

struct Watched {
  std::string name;
  pid_t pid;
};

struct CpuSnapshot {
  Clock::time_point at;
  std::vector<ProcCpu> procs;  // as the Watched list
};

ProcCpu SampleProc(pid_t pid) {
  ProcCpu p;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    int tid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &tid)) continue;
    std::ifstream in(entry.path().string() + "/schedstat");
    ThreadTimes t;
    if (in >> t.cpu_ns >> t.wait_ns) p.threads[tid] = t;
  }
  return p;
}

CpuSnapshot SampleCpu(const std::vector<Watched>& watched) {
  CpuSnapshot s;
  s.at = Clock::now();
  for (const Watched& w : watched) s.procs.push_back(SampleProc(w.pid));
  return s;
}

// CPU seconds one process used between two snapshots: in all, and in its busiest thread
// with the time that thread was runnable but waited for a CPU (other processes had them).
struct CpuUse {
  std::string name;
  double seconds = 0;
  double busiest = 0;
  double busiest_wait = 0;
};

std::vector<CpuUse> CpuBetween(const std::vector<Watched>& watched, const CpuSnapshot& a,
                               const CpuSnapshot& b) {
  std::vector<CpuUse> out;
  for (size_t i = 0; i < watched.size() && i < a.procs.size() && i < b.procs.size(); ++i) {
    CpuUse use{.name = watched[i].name};
    for (const auto& [tid, after] : b.procs[i].threads) {
      const auto it = a.procs[i].threads.find(tid);
      const ThreadTimes before = it == a.procs[i].threads.end() ? ThreadTimes{} : it->second;
      const double cpu = static_cast<double>(after.cpu_ns - before.cpu_ns) / 1e9;
      use.seconds += cpu;
      if (cpu > use.busiest) {
        use.busiest = cpu;
        use.busiest_wait = static_cast<double>(after.wait_ns - before.wait_ns) / 1e9;
      }
    }
    out.push_back(std::move(use));
  }
  return out;
}

// "agent 1.62 (0.99 +0.20)": cores used over `wall` seconds (busiest thread, and the
// share of `wall` it waited for a CPU).
std::string CoresText(const std::vector<CpuUse>& use, double wall) {
  if (wall <= 0 || use.empty()) return "(not measured)";
  std::string out;
  for (const CpuUse& u : use) {
    absl::StrAppend(&out, out.empty() ? "" : ", ",
                    fmt::format("{} {:.2f} ({:.2f} +{:.2f})", u.name, u.seconds / wall,
                                u.busiest / wall, u.busiest_wait / wall));
  }
  return out;
}

// The receive-queue drops the kernel counted for the UDP socket bound to 127.0.0.1:port
// (last column of /proc/net/udp); -1 when not found.
int64_t KernelUdpDrops(uint16_t port) {
  std::ifstream in("/proc/net/udp");
  const std::string local = fmt::format("0100007F:{:04X}", port);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot;
    std::string addr;
    fields >> slot >> addr;
    if (addr != local) continue;
    std::string field;
    std::string last;
    while (fields >> field) last = field;
    int64_t drops = -1;
    return absl::SimpleAtoi(last, &drops) ? drops : -1;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------
// Tap: a second subscriber on the agent's syslog subjects. Counts the lines of each batch
// once (by envelope id: a retry publishes it again), per phase (the first word of each
// message), and when the last new one came. In ack mode it also answers every batch as
// the station does (stored): a station that never limits the agent.

class Tap {
 public:
  struct Count {
    int64_t lines = 0;
    int64_t batches = 0;
    int64_t messages = 0;  // batches, each time it was sent (retries too)
    Clock::time_point last;
  };

  static absl::StatusOr<std::unique_ptr<Tap>> Start(const std::string& url) {
    std::unique_ptr<Tap> tap(new Tap());
    STEWARD_ASSIGN_OR_RETURN(tap->conn_,
                             steward::nats::Connect({.url = url, .name = "syslog_bench tap",
                                                     .keep_trying = false}));
    const std::string subject = absl::StrCat("station.event.", steward::kEventSyslog, ".>");
    STEWARD_ASSIGN_OR_RETURN(tap->sub_, steward::nats::SubscribeAsync(tap->conn_.get(), subject,
                                                                      &Tap::OnMsg, tap.get(),
                                                                      1 << 20));
    STEWARD_RETURN_IF_ERROR(steward::nats::Flush(tap->conn_.get(), absl::Seconds(2)));
    return tap;
  }
  Tap(const Tap&) = delete;
  Tap& operator=(const Tap&) = delete;
  ~Tap() {
    // No callback may run once this is gone.
    if (sub_ != nullptr && natsSubscription_Drain(sub_.get()) == NATS_OK) {
      natsSubscription_WaitForDrainCompletion(sub_.get(), 3000);
    }
    sub_.reset();
    conn_.reset();
  }

  // All lines, or those of one phase tag.
  Count Get() const {
    absl::MutexLock lock(&mu_);
    return count_;
  }
  Count Get(const std::string& tag) const {
    absl::MutexLock lock(&mu_);
    const auto it = by_tag_.find(tag);
    return it == by_tag_.end() ? Count{} : it->second;
  }
  void SetAckMode(bool on) { ack_.store(on); }

 private:
  Tap() = default;

  static void OnMsg(natsConnection* nc, natsSubscription*, natsMsg* raw, void* closure) {
    steward::nats::MsgPtr msg(raw);
    Tap* tap = static_cast<Tap*>(closure);
    steward::proto::Envelope env;
    if (!env.ParseFromArray(natsMsg_GetData(raw), natsMsg_GetDataLength(raw))) return;
    const Clock::time_point now = Clock::now();
    const char* reply = natsMsg_GetReply(raw);
    if (tap->ack_.load() && reply != nullptr) {  // first: counting must not delay the ACK
      const std::string ack = steward::NewAck(env.id(), "station", steward::proto::STAGE_RESULT,
                                              steward::proto::OUTCOME_SUCCEEDED)
                                  .SerializeAsString();
      natsConnection_Publish(nc, reply, ack.data(), static_cast<int>(ack.size()));
    }
    steward::proto::LogBatch batch;
    if (!batch.ParseFromString(env.payload())) return;
    absl::MutexLock lock(&tap->mu_);
    ++tap->count_.messages;
    if (!tap->seen_.insert(env.id()).second) return;
    tap->count_.lines += batch.records_size();
    ++tap->count_.batches;
    tap->count_.last = now;
    for (const steward::proto::LogRecord& r : batch.records()) {
      const absl::string_view message = r.message();
      Count& c = tap->by_tag_[std::string(message.substr(0, message.find(' ')))];
      ++c.lines;
      c.last = now;
    }
  }

  mutable absl::Mutex mu_;
  std::unordered_set<std::string> seen_ ABSL_GUARDED_BY(mu_);
  Count count_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Count> by_tag_ ABSL_GUARDED_BY(mu_);  // lines and last only
  std::atomic<bool> ack_{false};
  steward::nats::ConnectionPtr conn_;
  steward::nats::SubscriptionPtr sub_;  // destroyed (after draining) before conn_
};

// ---------------------------------------------------------------------------------------
// Raw NATS baselines.

// Counts what a subscription receives, and when the last message came.
struct Counter {
  std::atomic<int64_t> received{0};
  std::atomic<int64_t> last_ns{0};  // Clock ticks since epoch, as nanoseconds
};

void CountMsg(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
  steward::nats::MsgPtr msg(raw);
  Counter* c = static_cast<Counter*>(closure);
  c->received.fetch_add(1, std::memory_order_relaxed);
  c->last_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                       Clock::now().time_since_epoch())
                       .count(),
                   std::memory_order_relaxed);
}

// Answers every request with `closure` (a std::string), as the station answers a batch.
void AnswerMsg(natsConnection* nc, natsSubscription*, natsMsg* raw, void* closure) {
  steward::nats::MsgPtr msg(raw);
  const std::string* answer = static_cast<const std::string*>(closure);
  const char* reply = natsMsg_GetReply(raw);
  if (reply != nullptr) {
    natsConnection_Publish(nc, reply, answer->data(), static_cast<int>(answer->size()));
  }
}

// Drains `sub` so that no callback runs after this returns.
void DrainSub(steward::nats::SubscriptionPtr& sub) {
  if (sub != nullptr && natsSubscription_Drain(sub.get()) == NATS_OK) {
    natsSubscription_WaitForDrainCompletion(sub.get(), 3000);
  }
  sub.reset();
}

struct PublishResult {
  int64_t sent = 0;
  int64_t received = 0;
  int64_t dropped = 0;
  double publish_s = 0;  // publish loop and final flush
  double deliver_s = 0;  // first publish to last message received
};

// (a) `count` messages of one syslog line each, natsConnection_Publish with nats.c's
// default buffering (SendAsap off), to a subscriber on another connection.
absl::StatusOr<PublishResult> RawPublish(const std::string& url, const std::string& text,
                                         int64_t count) {
  natsOptions* raw_opts = nullptr;
  STEWARD_RETURN_IF_ERROR(steward::nats::ToStatus(natsOptions_Create(&raw_opts), "options"));
  steward::nats::OptionsPtr opts(raw_opts);
  STEWARD_RETURN_IF_ERROR(
      steward::nats::ToStatus(natsOptions_SetURL(opts.get(), url.c_str()), "SetURL"));
  STEWARD_RETURN_IF_ERROR(steward::nats::ToStatus(
      natsOptions_SetName(opts.get(), "syslog_bench publisher"), "SetName"));
  natsConnection* raw_pub = nullptr;
  STEWARD_RETURN_IF_ERROR(
      steward::nats::ToStatus(natsConnection_Connect(&raw_pub, opts.get()), "connect"));
  steward::nats::ConnectionPtr pub(raw_pub);
  STEWARD_ASSIGN_OR_RETURN(steward::nats::ConnectionPtr sub_conn,
                           steward::bench::RawConnect(url, "syslog_bench subscriber"));

  auto counter = std::make_unique<Counter>();
  STEWARD_ASSIGN_OR_RETURN(steward::nats::SubscriptionPtr sub,
                           steward::nats::SubscribeAsync(sub_conn.get(), kRawLineSubject,
                                                         CountMsg, counter.get(), 1 << 22));
  STEWARD_RETURN_IF_ERROR(steward::nats::Flush(sub_conn.get(), absl::Seconds(2)));

  PublishResult r;
  const Clock::time_point start = Clock::now();
  for (int64_t i = 0; i < count; ++i) {
    const char* line = text.data() + static_cast<size_t>(i) * (kLineBytes + 1);
    if (natsStatus s = natsConnection_Publish(pub.get(), kRawLineSubject, line,
                                              static_cast<int>(kLineBytes));
        s != NATS_OK) {
      DrainSub(sub);
      return steward::nats::ToStatus(s, "raw publish");
    }
    ++r.sent;
  }
  absl::Status flushed = steward::nats::Flush(pub.get(), absl::Seconds(10));
  r.publish_s = Seconds(Clock::now() - start);
  const Clock::time_point deadline = Clock::now() + absl::ToChronoNanoseconds(kRawDeliverLimit);
  while (counter->received.load() < r.sent && Clock::now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  natsSubscription_GetDropped(sub.get(), &r.dropped);
  DrainSub(sub);
  r.received = counter->received.load();
  const Clock::time_point last{std::chrono::duration_cast<Clock::duration>(
      std::chrono::nanoseconds(counter->last_ns.load()))};
  r.deliver_s = r.received > 0 ? Seconds(last - start) : 0;
  if (!flushed.ok()) return flushed;
  return r;
}

// A syslog batch event as the agent sends it: kBatchLines parsed lines in a LogBatch in
// an Envelope; and the station's answer to it.
std::pair<std::string, std::string> BatchAndAnswer(const std::string& text) {
  steward::proto::LogBatch batch;
  const absl::Time now = absl::Now();
  for (int i = 0; i < kBatchLines; ++i) {
    const absl::string_view line(text.data() + static_cast<size_t>(i) * (kLineBytes + 1),
                                 kLineBytes);
    steward::proto::LogRecord r = steward::agent::syslog::Parse(line, now, {});
    r.set_source("udp:127.0.0.1:5514");
    r.set_domain(kAppDomain);
    *batch.add_records() = std::move(r);
  }
  steward::proto::Envelope env = steward::NewEnvelope(
      kNode, "station", steward::proto::KIND_EVENT, steward::kEventSyslog, kAppDomain);
  env.set_payload(batch.SerializeAsString());
  const std::string answer = steward::NewAck(env.id(), "station", steward::proto::STAGE_RESULT,
                                             steward::proto::OUTCOME_SUCCEEDED)
                                 .SerializeAsString();
  return {env.SerializeAsString(), answer};
}

struct RequestResult {
  int window = 0;
  int64_t replies = 0;
  int64_t errors = 0;
  double seconds = 0;
};

// (b) Requests of `payload` through a RequestPump (as the agent's outbox sends batches),
// keeping `window` in flight for `duration`, to a responder that answers like the station.
RequestResult PumpRequests(steward::RequestPump& pump, const std::string& payload, int window,
                           absl::Duration duration) {
  struct State {
    absl::Mutex mu;
    int in_flight ABSL_GUARDED_BY(mu) = 0;
    int64_t replies ABSL_GUARDED_BY(mu) = 0;
    int64_t errors ABSL_GUARDED_BY(mu) = 0;
  };
  auto state = std::make_shared<State>();  // callbacks may outlive a timed-out wait
  RequestResult r;
  r.window = window;
  const absl::Time start = absl::Now();
  const absl::Time end = start + duration;
  while (absl::Now() < end) {
    {
      absl::MutexLock lock(&state->mu);
      auto room = [&state, window]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
        return state->in_flight < window;
      };
      if (!state->mu.AwaitWithDeadline(absl::Condition(&room), end)) break;
      ++state->in_flight;
    }
    absl::Status st = pump.Send(
        kRawBatchSubject, payload, absl::Seconds(3),
        [state](steward::RequestPump::Result result, steward::nats::MsgPtr) {
          absl::MutexLock lock(&state->mu);
          --state->in_flight;
          if (result == steward::RequestPump::Result::kReply) {
            ++state->replies;
          } else {
            ++state->errors;
          }
        });
    if (!st.ok()) {
      absl::MutexLock lock(&state->mu);
      --state->in_flight;
      ++state->errors;
    }
  }
  absl::MutexLock lock(&state->mu);
  auto idle = [&state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) { return state->in_flight == 0; };
  state->mu.AwaitWithTimeout(absl::Condition(&idle), absl::Seconds(5));
  r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  r.replies = state->replies;
  r.errors = state->errors + state->in_flight;
  return r;
}

// Both raw baselines, printed.
absl::Status RunRawBaselines(const std::string& url, int64_t lines) {
  const std::string text = SyslogText("raw", std::max<int64_t>(lines, kBatchLines));
  STEWARD_ASSIGN_OR_RETURN(const PublishResult pr, RawPublish(url, text, lines));
  fmt::print("raw NATS baselines (same nats-server, from this process):\n");
  fmt::print("  (a) natsConnection_Publish of {} B lines, one per message, nats.c default "
             "buffering (SendAsap off), to a subscriber on a second connection:\n",
             kLineBytes);
  fmt::print("      {} published in {:.2f} s = {:.0f} msgs/s; {} received, last after {:.2f} s "
             "= {:.0f} msgs/s; {} dropped by the subscriber\n",
             pr.sent, pr.publish_s, Rate(pr.sent, pr.publish_s), pr.received, pr.deliver_s,
             Rate(pr.received, pr.deliver_s), pr.dropped);
  std::fflush(stdout);

  const auto [batch, answer] = BatchAndAnswer(text);
  STEWARD_ASSIGN_OR_RETURN(steward::nats::ConnectionPtr responder_conn,
                           steward::bench::RawConnect(url, "syslog_bench responder"));
  STEWARD_ASSIGN_OR_RETURN(
      steward::nats::SubscriptionPtr responder,
      steward::nats::SubscribeAsync(responder_conn.get(), kRawBatchSubject, AnswerMsg,
                                    const_cast<std::string*>(&answer), 1 << 16));
  STEWARD_RETURN_IF_ERROR(steward::nats::Flush(responder_conn.get(), absl::Seconds(2)));
  STEWARD_ASSIGN_OR_RETURN(steward::nats::ConnectionPtr req_conn,
                           steward::nats::Connect({.url = url, .name = "syslog_bench requester",
                                                   .keep_trying = false}));
  absl::StatusOr<std::unique_ptr<steward::RequestPump>> pump =
      steward::RequestPump::Create(req_conn.get());
  if (!pump.ok()) {
    DrainSub(responder);
    return pump.status();
  }
  fmt::print("  (b) request/reply of {}-line batch events ({} B, as the agent builds them) "
             "through a RequestPump (SendAsap on, as the agent) to a responder answering "
             "{} B, as the station:\n",
             kBatchLines, batch.size(), answer.size());
  for (int window : kRawWindows) {
    const RequestResult rr = PumpRequests(**pump, batch, window, kRawRequestRun);
    const double rps = Rate(rr.replies, rr.seconds);
    fmt::print("      {:>3} in flight: {:.0f} req/s = {:.0f} lines/s, {:.0f} MB/s; {} errors\n",
               window, rps, rps * kBatchLines,
               rps * static_cast<double>(batch.size()) / 1e6, rr.errors);
    std::fflush(stdout);
  }
  (*pump)->Shutdown();
  DrainSub(responder);
  fmt::print("\n");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Senders.

absl::Status ErrnoError(const char* what) {
  return absl::InternalError(steward::bench::ErrnoText(what));
}

// Every line as its own datagram, sendmmsg as fast as it goes. Returns lines sent.
absl::StatusOr<int64_t> SendUdp(uint16_t port, const std::string& text) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("udp socket");
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0) {
    const absl::Status st = ErrnoError("udp connect");
    close(fd);
    return st;
  }
  const size_t count = text.size() / (kLineBytes + 1);
  std::vector<iovec> iov(kUdpBatch);
  std::vector<mmsghdr> msgs(kUdpBatch);
  size_t next = 0;
  int64_t sent = 0;
  while (next < count) {
    const size_t n = std::min(kUdpBatch, count - next);
    for (size_t k = 0; k < n; ++k) {
      iov[k].iov_base = const_cast<char*>(text.data() + (next + k) * (kLineBytes + 1));
      iov[k].iov_len = kLineBytes;
      msgs[k] = mmsghdr{};
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    const int rc = sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), 0);
    if (rc < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS || errno == ECONNREFUSED) {
        std::this_thread::yield();
        continue;
      }
      const absl::Status st = ErrnoError("sendmmsg");
      close(fd);
      return st;
    }
    next += static_cast<size_t>(rc);
    sent += rc;
  }
  close(fd);
  return sent;
}

// All of `text` over one TCP connection (newline framing), then close.
absl::StatusOr<int64_t> SendTcp(uint16_t port, const std::string& text, absl::Duration limit) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("tcp socket");
  const timeval tv{.tv_sec = static_cast<time_t>(absl::ToInt64Seconds(limit)), .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));  // no send waits past the limit
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0) {
    const absl::Status st = ErrnoError("tcp connect");
    close(fd);
    return st;
  }
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n =
        send(fd, text.data() + off, std::min(kStreamChunk, text.size() - off), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      const absl::Status st = (errno == EAGAIN || errno == EWOULDBLOCK)
                                  ? absl::DeadlineExceededError(absl::StrCat(
                                        "tcp send stalled for ", absl::FormatDuration(limit)))
                                  : ErrnoError("tcp send");
      close(fd);
      return st;
    }
    off += static_cast<size_t>(n);
  }
  close(fd);
  return static_cast<int64_t>(text.size() / (kLineBytes + 1));
}

// Appends `text` to `path` in big writes.
absl::StatusOr<int64_t> AppendFile(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open the tailed file");
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = write(fd, text.data() + off, std::min(kFileChunk, text.size() - off));
    if (n < 0) {
      if (errno == EINTR) continue;
      const absl::Status st = ErrnoError("write the tailed file");
      close(fd);
      return st;
    }
    off += static_cast<size_t>(n);
  }
  close(fd);
  return static_cast<int64_t>(text.size() / (kLineBytes + 1));
}

// ---------------------------------------------------------------------------------------
// Phases.

struct Phase {
  std::string name;
  std::string tag;      // the first word of this phase's lines
  bool station = true;  // counted by the station (else by the tap only)
  bool settled = true;  // the previous phase's lines had stopped arriving before the start
  int64_t sent = 0;
  double send_s = 0;
  int64_t published = 0;  // this phase's lines the tap saw in the agent's batches
  double publish_s = 0;   // first send to the last of them on the wire
  int64_t stored = 0;     // growth of the node's log_lines
  double store_s = 0;     // first send to the last poll that saw it grow
  int64_t resent = 0;           // batches the agent sent again (no ACK within its timeout)
  int64_t agent_dropped = 0;    // growth of the node's log_dropped (reported by the agent)
  int64_t kernel_dropped = -1;  // UDP only
  bool timed_out = false;
  int polls = 0;              // Client::Nodes calls while waiting
  int polls_failed = 0;       // of which the station did not answer in kRpcTimeout
  double slowest_poll_s = 0;
  double cpu_wall = 0;  // first send to the last progress
  std::vector<CpuUse> cpu;
};

struct Env {
  Children& children;
  steward::ctl::Client& client;
  Tap& tap;
  std::vector<Watched> watched;
  absl::Duration phase_limit;
  int64_t published_total = 0;  // lines published in station phases so far
};

absl::StatusOr<steward::proto::NodeInfo> NodeInfo(steward::ctl::Client& client) {
  STEWARD_ASSIGN_OR_RETURN(steward::proto::NodesReply reply, client.Nodes(kNode, kRpcTimeout));
  if (reply.nodes_size() != 1) return absl::NotFoundError("the station does not list the node");
  return reply.nodes(0);
}

// Waits until the station has stored every line published so far (`station`) and nothing
// moved for kSettleQuiet, at most kSettleLimit: a phase's stragglers must not count for
// the next one. Returns whether it settled.
absl::StatusOr<bool> Settle(Env& env, bool station) {
  const Clock::time_point deadline = Clock::now() + absl::ToChronoNanoseconds(kSettleLimit);
  Clock::time_point changed = Clock::now();
  int64_t stored = -1;
  int64_t seen = env.tap.Get().lines;
  while (Clock::now() < deadline) {
    absl::SleepFor(kPollInterval);
    STEWARD_RETURN_IF_ERROR(env.children.CheckAlive());
    int64_t now_stored = stored;
    if (station) {
      absl::StatusOr<steward::proto::NodeInfo> info = NodeInfo(env.client);
      if (info.ok()) now_stored = info->log_lines();
    }
    const int64_t now_seen = env.tap.Get().lines;
    if (now_stored != stored || now_seen != seen) {
      stored = now_stored;
      seen = now_seen;
      changed = Clock::now();
    } else if (Clock::now() - changed >= absl::ToChronoNanoseconds(kSettleQuiet) &&
               (!station || stored >= env.published_total)) {
      return true;
    }
  }
  return false;
}

using SendFn = std::function<absl::StatusOr<int64_t>()>;

// Sends, then polls until every line is counted (stored by the station, or seen by the
// tap when `station` is false), nothing moved (stored or on the wire) for kQuietLimit,
// or the phase limit.
absl::StatusOr<Phase> RunPhase(Env& env, const std::string& name, const std::string& tag,
                               bool station, const SendFn& send) {
  Phase p;
  p.name = name;
  p.tag = tag;
  p.station = station;
  STEWARD_ASSIGN_OR_RETURN(p.settled, Settle(env, station));
  steward::proto::NodeInfo base;
  if (station) {
    STEWARD_ASSIGN_OR_RETURN(base, NodeInfo(env.client));
  }
  const Tap::Count wire_base = env.tap.Get();
  const CpuSnapshot cpu_start = SampleCpu(env.watched);
  CpuSnapshot cpu_end = cpu_start;
  const Clock::time_point start = Clock::now();
  STEWARD_ASSIGN_OR_RETURN(p.sent, send());
  const Clock::time_point sent_at = Clock::now();
  p.send_s = Seconds(sent_at - start);

  const Clock::duration quiet = absl::ToChronoNanoseconds(kQuietLimit);
  const Clock::duration wire_quiet = absl::ToChronoNanoseconds(kWireQuiet);
  const Clock::time_point deadline = start + absl::ToChronoNanoseconds(env.phase_limit);
  Clock::time_point last_progress = sent_at;
  Clock::time_point last_seen = sent_at;
  int64_t counted = 0;
  int64_t seen = 0;
  steward::proto::NodeInfo last = base;
  while (true) {
    absl::SleepFor(kPollInterval);
    STEWARD_RETURN_IF_ERROR(env.children.CheckAlive());
    const Clock::time_point now = Clock::now();
    const int64_t now_seen = env.tap.Get(tag).lines;
    int64_t now_counted = now_seen;
    if (station) {
      // A poll the busy station did not answer counts as no change.
      const Clock::time_point asked = Clock::now();
      absl::StatusOr<steward::proto::NodeInfo> info = NodeInfo(env.client);
      ++p.polls;
      p.slowest_poll_s = std::max(p.slowest_poll_s, Seconds(Clock::now() - asked));
      if (info.ok()) {
        last = *info;
      } else {
        ++p.polls_failed;
      }
      now_counted = last.log_lines() - base.log_lines();
    }
    if (now_counted > counted) {
      p.store_s = Seconds(now - start);
      cpu_end = SampleCpu(env.watched);
    }
    if (now_counted > counted || now_seen > seen) last_progress = now;
    if (now_seen > seen) last_seen = now;
    counted = std::max(counted, now_counted);
    seen = std::max(seen, now_seen);
    if (counted >= p.sent || now - last_progress >= quiet) break;
    if (now - last_seen >= wire_quiet && counted >= seen) break;
    if (now >= deadline) {
      p.timed_out = true;
      break;
    }
  }
  const Tap::Count wire_now = env.tap.Get();
  p.resent = (wire_now.messages - wire_base.messages) - (wire_now.batches - wire_base.batches);
  const Tap::Count tap_now = env.tap.Get(tag);
  p.published = tap_now.lines;
  p.publish_s = p.published > 0 ? Seconds(tap_now.last - start) : 0;
  if (station) {
    p.stored = last.log_lines() - base.log_lines();
    p.agent_dropped = static_cast<int64_t>(last.log_dropped() - base.log_dropped());
    env.published_total += p.published;
  } else {
    p.store_s = 0;
  }
  p.cpu_wall = Seconds(cpu_end.at - cpu_start.at);
  p.cpu = CpuBetween(env.watched, cpu_start, cpu_end);
  return p;
}

void PrintPhase(const Phase& p) {
  const std::string stored = p.station ? fmt::format("{}", p.stored) : "-";
  const std::string stored_rate =
      p.station ? fmt::format("{:.0f}", Rate(p.stored, p.store_s)) : "-";
  const int64_t lost = p.sent - (p.station ? p.stored : p.published);
  fmt::print("{:<12} {:>9} {:>10.0f} {:>10} {:>10.0f} {:>7} {:>9} {:>10} {:>8} {:>8} {:>8}{}{}\n",
             p.name, p.sent, Rate(p.sent, p.send_s), p.published, Rate(p.published, p.publish_s),
             p.resent, stored, stored_rate, lost,
             p.station ? fmt::format("{}", p.agent_dropped) : "-",
             p.kernel_dropped >= 0 ? fmt::format("{}", p.kernel_dropped) : "-",
             p.timed_out ? "  (phase time limit)" : "",
             p.settled ? "" : "  (the previous phase had not settled)");
  fmt::print("{:<12} cores used (busiest thread +waiting for a CPU): {}\n", "",
             CoresText(p.cpu, p.cpu_wall));
  if (p.station) {
    fmt::print("{:<12} node polls: {}, {} unanswered within {}, slowest {:.0f} ms\n", "", p.polls,
               p.polls_failed, absl::FormatDuration(kRpcTimeout), p.slowest_poll_s * 1000);
  }
  const int64_t lines = p.station ? p.stored : p.published;
  if (lines > 0) {
    std::string cost;
    for (const CpuUse& u : p.cpu) {
      absl::StrAppend(&cost, cost.empty() ? "" : ", ",
                      fmt::format("{} {:.1f} ({:.1f})", u.name,
                                  u.seconds * 1e6 / static_cast<double>(lines),
                                  u.busiest * 1e6 / static_cast<double>(lines)));
    }
    fmt::print("{:<12} CPU us per line (busiest thread): {}\n", "", cost);
  }
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------
// Set-up.

struct AgentPorts {
  uint16_t udp = 0;
  uint16_t tcp = 0;
};

// The port in "syslog input syslog-<kind>:HOST:PORT (port N)" in the agent's log.
uint16_t LoggedPort(const std::string& log, absl::string_view kind) {
  const std::string key = absl::StrCat("syslog input syslog-", kind, ":");
  const size_t at = log.find(key);
  if (at == std::string::npos) return 0;
  const size_t port_at = log.find("(port ", at);
  if (port_at == std::string::npos) return 0;
  size_t end = port_at + 6;
  while (end < log.size() && log[end] >= '0' && log[end] <= '9') ++end;
  uint32_t port = 0;
  if (!absl::SimpleAtoi(absl::string_view(log).substr(port_at + 6, end - port_at - 6), &port) ||
      port == 0 || port > 65535) {
    return 0;
  }
  return static_cast<uint16_t>(port);
}

absl::StatusOr<AgentPorts> WaitForAgentInputs(Children& children, const std::string& log_path,
                                              const std::string& tailed) {
  AgentPorts ports;
  STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil(
      "the agent's syslog inputs", children, [&]() -> absl::Status {
        std::ifstream in(log_path);
        std::stringstream buf;
        buf << in.rdbuf();
        const std::string log = buf.str();
        ports.udp = LoggedPort(log, "udp");
        ports.tcp = LoggedPort(log, "tcp");
        if (ports.udp == 0 || ports.tcp == 0) {
          return absl::UnavailableError("no \"syslog input syslog-udp/tcp ... (port N)\" yet");
        }
        if (log.find(absl::StrCat("tail:", tailed, ": reading from offset")) == std::string::npos) {
          return absl::UnavailableError("the file tail has not opened the file yet");
        }
        return absl::OkStatus();
      }));
  return ports;
}

absl::Status RunBench(int64_t lines, Children& children, BenchDir& dir, bool keep) {
  if (keep) dir.Keep();
  STEWARD_ASSIGN_OR_RETURN(const std::string url, steward::bench::StartBroker(children, dir));
  const std::string bin = STEWARD_BIN_DIR;
  const std::string tailed = dir.File("bench.log");
  if (std::ofstream touch(tailed); !touch) {
    return absl::InternalError(absl::StrCat("cannot create ", tailed));
  }
  STEWARD_RETURN_IF_ERROR(children.Spawn(
      "steward-station",
      {bin + "/station/steward-station", "--nats", url, "--data-dir", dir.File("station")},
      dir.File("station.log"), kStationStopLimit));
  STEWARD_RETURN_IF_ERROR(children.Spawn(
      "steward-agent",
      {bin + "/agent/steward-agent", "--node", kNode, "--nats", url, "--heartbeat", "1s",
       "--data-dir", dir.File("agent"), "--syslog-udp", "127.0.0.1:0", "--syslog-tcp",
       "127.0.0.1:0", "--tail", absl::StrCat(tailed, ":", kFileDomain)},
      dir.File("agent.log")));
  STEWARD_ASSIGN_OR_RETURN(const AgentPorts ports,
                           WaitForAgentInputs(children, dir.File("agent.log"), tailed));

  std::unique_ptr<steward::ctl::Client> client;
  STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil("a station client", children, [&] {
    absl::StatusOr<std::unique_ptr<steward::ctl::Client>> c =
        steward::ctl::Client::Connect(
            steward::ctl::ClientOptions{.nats = {.url = url, .name = "syslog_bench"}});
    if (!c.ok()) return c.status();
    client = *std::move(c);
    return absl::OkStatus();
  }));
  STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil(
      "the node in the station", children, [&] { return NodeInfo(*client).status(); }));
  STEWARD_ASSIGN_OR_RETURN(std::unique_ptr<Tap> tap, Tap::Start(url));

  fmt::print("syslog_bench: {} lines of {} B per phase; {} CPUs; one nats-server at {}\n",
             lines, kLineBytes + 1, std::thread::hardware_concurrency(), url);
  fmt::print("  agent: steward-agent --node {} --syslog-udp 127.0.0.1:{} --syslog-tcp "
             "127.0.0.1:{} --tail {}:{}; batches of {} lines\n\n",
             kNode, ports.udp, ports.tcp, tailed, kFileDomain, kBatchLines);
  std::fflush(stdout);

  STEWARD_RETURN_IF_ERROR(RunRawBaselines(url, lines));
  STEWARD_RETURN_IF_ERROR(children.CheckAlive());

  Env env{.children = children,
          .client = *client,
          .tap = *tap,
          .watched = {{"agent", children.pid("steward-agent")},
                      {"station", children.pid("steward-station")},
                      {"nats-server", children.pid("nats-server")},
                      {"bench", getpid()}},
          .phase_limit = absl::Seconds(20) + absl::Seconds(static_cast<double>(lines) / 20000)};

  fmt::print("published: lines in the agent's batches on the wire (a tap subscriber), "
             "counted once per batch id; resent: batches sent again (no ACK in time)\n");
  fmt::print("stored:    the station's node table (log_lines), polled every {}\n",
             absl::FormatDuration(kPollInterval));
  fmt::print("rates:     count / time from the first line sent to the last one counted\n\n");
  fmt::print("{:<12} {:>9} {:>10} {:>10} {:>10} {:>7} {:>9} {:>10} {:>8} {:>8} {:>8}\n", "phase",
             "sent", "sent/s", "published", "publ/s", "resent", "stored", "stored/s", "lost",
             "agt-drop", "krn-drop");
  std::fflush(stdout);

  std::vector<Phase> phases;
  {
    const std::string text = SyslogText("udp", lines);
    const int64_t kernel_before = KernelUdpDrops(ports.udp);
    STEWARD_ASSIGN_OR_RETURN(
        Phase p, RunPhase(env, "udp", "udp", true, [&] { return SendUdp(ports.udp, text); }));
    const int64_t kernel_after = KernelUdpDrops(ports.udp);
    if (kernel_before >= 0 && kernel_after >= 0) p.kernel_dropped = kernel_after - kernel_before;
    PrintPhase(p);
    phases.push_back(std::move(p));
  }
  {
    const std::string text = SyslogText("tcp", lines);
    STEWARD_ASSIGN_OR_RETURN(Phase p, RunPhase(env, "tcp", "tcp", true, [&] {
                               return SendTcp(ports.tcp, text, env.phase_limit);
                             }));
    PrintPhase(p);
    phases.push_back(std::move(p));
  }
  {
    const std::string text = SyslogText("file", lines);
    STEWARD_ASSIGN_OR_RETURN(
        Phase p, RunPhase(env, "file", "file", true, [&] { return AppendFile(tailed, text); }));
    PrintPhase(p);
    phases.push_back(std::move(p));
  }
  // Every line published so far must end up stored, even after its phase's time limit.
  STEWARD_ASSIGN_OR_RETURN(const bool settled, Settle(env, true));
  STEWARD_ASSIGN_OR_RETURN(const steward::proto::NodeInfo final_info, NodeInfo(*client));
  int64_t stored_in_phases = 0;
  for (const Phase& p : phases) stored_in_phases += p.stored;
  const int64_t stored_late = final_info.log_lines() - stored_in_phases;

  // The agent alone: the station stops and the tap answers every batch at once.
  children.Stop("steward-station");
  tap->SetAckMode(true);
  env.watched.erase(env.watched.begin() + 1);
  {
    const std::string text = SyslogText("agent", lines);
    STEWARD_ASSIGN_OR_RETURN(Phase p, RunPhase(env, "tcp, no stn", "agent", false, [&] {
                               return SendTcp(ports.tcp, text, env.phase_limit);
                             }));
    PrintPhase(p);
    phases.push_back(std::move(p));
  }
  STEWARD_RETURN_IF_ERROR(children.CheckAlive());

  fmt::print("\n'tcp, no stn': the station stopped, this bench answers each batch as stored "
             "the moment it arrives, so only the agent limits the rate\n");
  fmt::print("sent/s for TCP is the rate the agent read the socket; lost = sent - stored "
             "(sent - published without the station)\n\n");

  const Phase& udp = phases[0];
  const Phase& tcp = phases[1];
  const Phase& file = phases[2];
  const Phase& alone = phases[3];
  const double agent_rate = Rate(alone.published, alone.publish_s);
  const bool agent_ok = agent_rate >= kAgentGoal && alone.published == alone.sent;
  fmt::print("goal >=100,000 lines/s parsed and published by one agent: {} ({:.0f} lines/s, "
             "TCP, the station replaced by an instant ACK; with the station the agent read "
             "TCP at {:.0f} lines/s and published at {:.0f}, paced by the station's ACKs)\n",
             agent_ok ? "PASS" : "FAIL", agent_rate, Rate(tcp.sent, tcp.send_s),
             Rate(tcp.published, tcp.publish_s));
  const double stored_rate = std::min(Rate(tcp.stored, tcp.store_s), Rate(file.stored, file.store_s));
  fmt::print("goal >=50,000 lines/s stored by the station: {} ({:.0f} lines/s, the slower of "
             "tcp and file; udp {:.0f})\n",
             stored_rate >= kStationGoal ? "PASS" : "FAIL", stored_rate,
             Rate(udp.stored, udp.store_s));
  // Lines stored after their phase ended are late, not lost: the final count decides.
  const int64_t missing =
      std::max<int64_t>(0, udp.published + tcp.sent + file.sent - final_info.log_lines());
  const bool lossless = missing == 0;
  fmt::print("goal zero loss on TCP and file: {} (within their phases tcp {} of {} stored, "
             "file {} of {}; {} more stored later{})\n",
             lossless ? "PASS" : "FAIL", tcp.stored, tcp.sent, file.stored, file.sent,
             stored_late, settled ? "" : ", still coming when the bench stopped waiting");
  if (!lossless) {
    fmt::print("LOSS: {} TCP and file lines never stored ({} sent, {} UDP lines published; "
               "the station holds {})\n",
               missing, tcp.sent + file.sent, udp.published, final_info.log_lines());
  }
  fmt::print("udp: {} of {} lines stored ({} lost: {} dropped by the agent's input queue, {} "
             "by the kernel's socket buffer)\n",
             udp.stored, udp.sent, udp.sent - udp.stored, udp.agent_dropped,
             udp.kernel_dropped >= 0 ? fmt::format("{}", udp.kernel_dropped) : "?");
  return absl::OkStatus();
}

int Usage(const char* error) {
  if (error != nullptr) fmt::print(stderr, "syslog_bench: {}\n", error);
  fmt::print(stderr,
             "usage: syslog_bench [--lines N] [--keep]\n"
             "  --lines  lines per phase (default 200000)\n"
             "  --keep   keep the temp dir (logs, databases) for a post-mortem\n"
             "  (--seconds N, which scripts/bench passes to every bench, is ignored)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  steward::SkipLockOrderChecks();  // as stewardctl, station and agent do (common/mutex_mode.h)
  steward::bench::SetProgramName("syslog_bench");
  steward::nats::Library lib;

  int64_t lines = 200000;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string value;
    if (arg == "--help" || arg == "-h") return Usage(nullptr);
    if (arg == "--keep") {
      keep = true;
      continue;
    }
    // scripts/bench passes its arguments to every bench; a run length does not apply.
    if (steward::bench::FlagValue(argc, argv, &i, "seconds", &value)) continue;
    if (!steward::bench::FlagValue(argc, argv, &i, "lines", &value)) {
      return Usage(absl::StrCat("unknown argument ", arg).c_str());
    }
    if (!absl::SimpleAtoi(value, &lines) || lines < 1000 || lines > 5000000) {
      return Usage("--lines wants a number in [1000, 5000000]");
    }
  }

  // Whatever happens, children die with us: on Ctrl-C, SIGTERM, or past a time limit
  // that covers set-up, the baselines and four phases with their settling, each bounded.
  const double phase_limit = 20 + static_cast<double>(lines) / 20000;
  steward::bench::InstallFatalSignalHandlers(
      static_cast<unsigned>(std::ceil(4 * phase_limit + 5 * absl::ToDoubleSeconds(kSettleLimit))) +
      90);

  return steward::bench::RunInBenchDir("syslog_bench", [&](Children& children, BenchDir& dir) {
    STEWARD_RETURN_IF_ERROR(RunBench(lines, children, dir, keep));
    if (keep) fmt::print("logs and data kept in {}\n", dir.path());
    return absl::OkStatus();
  });
}
