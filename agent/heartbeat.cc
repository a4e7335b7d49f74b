// Heartbeat: hello events on a timer, sooner when unconfirmed or reconnected.
#include "agent/heartbeat.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/protocol.h"
#include "proto/steward.pb.h"

namespace steward::agent {
namespace {

std::string Hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

std::string OsName() {
  struct utsname u {};
  if (::uname(&u) != 0) return "unknown";
  return absl::StrCat(u.sysname, " ", u.release, " ", u.machine);
}

}  // namespace

void ReadResources(const std::string& data_dir, proto::AgentStats& s) {
  long pages = 0, resident = 0;
  if (std::ifstream statm("/proc/self/statm"); statm >> pages >> resident) {
    s.set_rss_bytes(static_cast<uint64_t>(resident) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)));
  }
  struct rusage ru {};
  if (::getrusage(RUSAGE_SELF, &ru) == 0) {
    s.set_cpu_seconds(static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                      static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    uint32_t n = 0;
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    s.set_open_fds(n - 1);  // not the one reading the directory
  }
  struct statvfs vfs {};
  if (!data_dir.empty() && ::statvfs(data_dir.c_str(), &vfs) == 0) {
    s.set_data_disk_free_bytes(static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize);
  }
}

void Heartbeat::SetStats(std::function<void(proto::AgentStats&)> fill, std::string data_dir) {
  fill_stats_ = std::move(fill);
  data_dir_ = std::move(data_dir);
}

Heartbeat::Heartbeat(const EventWriter& events, std::vector<std::string> methods,
                     absl::Duration interval, std::string public_key, FactsOptions facts)
    : events_(events),
      methods_(std::move(methods)),
      interval_(interval),
      public_key_(std::move(public_key)),
      facts_(std::move(facts)),
      started_(absl::Now()) {}

void Heartbeat::Wake() {
  absl::MutexLock lock(&mu_);
  now_ = true;
}

void Heartbeat::SetInterval(absl::Duration interval) {
  absl::MutexLock lock(&mu_);
  interval_ = interval;
  now_ = true;
}

void Heartbeat::Stop() {
  absl::MutexLock lock(&mu_);
  stop_ = true;
}

absl::Status Heartbeat::Run(ProcessContext& ctx, RequestPump& pump) {
  absl::Time next = absl::InfinitePast();
  while (!ctx.stopping()) {
    bool send = false;
    absl::Duration interval;
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return now_ || stop_; };
      mu_.AwaitWithDeadline(absl::Condition(&wake), next);
      if (stop_) break;
      send = now_ || absl::Now() >= next;
      now_ = false;
      if (send) confirmed_ = false;
      interval = interval_;
    }
    if (!send) continue;
    SendHello(pump);
    if (tick_) tick_();
    // An unconfirmed hello (station down or not yet subscribed) is retried sooner.
    const absl::Time sent = absl::Now();
    next = sent + interval;
    absl::MutexLock lock(&mu_);
    auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return confirmed_ || stop_; };
    const absl::Duration retry = std::min(absl::Milliseconds(500), interval);
    if (!mu_.AwaitWithDeadline(absl::Condition(&settled), sent + retry)) next = sent + retry;
  }
  return absl::OkStatus();
}

void Heartbeat::SendHello(RequestPump& pump) {
  proto::Hello hello;
  hello.set_version(STEWARD_VERSION);
  hello.set_started_unix_ms(absl::ToUnixMillis(started_));
  hello.set_hostname(Hostname());
  hello.set_os(OsName());
  double load[1] = {0};
  if (::getloadavg(load, 1) == 1) hello.set_load1(load[0]);
  for (const std::string& m : methods_) hello.add_methods(m);
  hello.set_takes_batches(true);  // agent/dispatcher.h: RouteBatch
  {
    absl::MutexLock lock(&mu_);
    hello.set_heartbeat_ms(absl::ToInt64Milliseconds(interval_));
  }
  if (!public_key_.empty()) hello.set_public_key(public_key_);
  hello.set_instance_id(events_.instance_id());
  std::vector<std::string> problems;
  *hello.mutable_facts() = ReadFacts(facts_, &problems);
  if (std::string p = absl::StrJoin(problems, "; "); p != facts_problems_) {
    if (!p.empty()) STEWARD_LOG_WARNING("facts: {}", p);
    facts_problems_ = std::move(p);
  }
  proto::AgentStats* stats = hello.mutable_stats();
  stats->set_at_unix_ms(NowUnixMillis());
  ReadResources(data_dir_, *stats);
  if (fill_stats_) fill_stats_(*stats);
  absl::StatusOr<OutboxItem> ev = events_.Make(kEventHello, "agent", hello.SerializeAsString());
  if (!ev.ok()) return;  // "agent" is a valid domain: cannot happen
  (void)pump.Send(ev->subject, ev->data, absl::Seconds(2),
                  [this](RequestPump::Result r, nats::MsgPtr msg) {
                    if (r != RequestPump::Result::kReply) return;
                    absl::StatusOr<proto::Ack> ack = DecodeAck(nats::Data(msg.get()));
                    if (!ack.ok() || ack->outcome() != proto::OUTCOME_SUCCEEDED) return;
                    absl::MutexLock lock(&mu_);
                    confirmed_ = true;
                    heard_ = true;
                  });
}

bool Heartbeat::HeardByStation() const {
  absl::MutexLock lock(&mu_);
  return heard_;
}

}  // namespace steward::agent
