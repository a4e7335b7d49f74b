// Heartbeat: hello events on a timer, sooner when unconfirmed or reconnected.
#include "agent/heartbeat.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
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

void Heartbeat::Stop() {
  absl::MutexLock lock(&mu_);
  stop_ = true;
}

absl::Status Heartbeat::Run(ProcessContext& ctx, RequestPump& pump) {
  absl::Time next = absl::InfinitePast();
  while (!ctx.stopping()) {
    bool send = false;
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return now_ || stop_; };
      mu_.AwaitWithDeadline(absl::Condition(&wake), next);
      if (stop_) break;
      send = now_ || absl::Now() >= next;
      now_ = false;
      if (send) confirmed_ = false;
    }
    if (!send) continue;
    SendHello(pump);
    if (tick_) tick_();
    // An unconfirmed hello (station down or not yet subscribed) is retried sooner.
    const absl::Time sent = absl::Now();
    next = sent + interval_;
    absl::MutexLock lock(&mu_);
    auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return confirmed_ || stop_; };
    const absl::Duration retry = std::min(absl::Milliseconds(500), interval_);
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
  hello.set_heartbeat_ms(absl::ToInt64Milliseconds(interval_));
  if (!public_key_.empty()) hello.set_public_key(public_key_);
  hello.set_instance_id(events_.instance_id());
  std::vector<std::string> problems;
  *hello.mutable_facts() = ReadFacts(facts_, &problems);
  if (std::string p = absl::StrJoin(problems, "; "); p != facts_problems_) {
    if (!p.empty()) STEWARD_LOG_WARNING("facts: {}", p);
    facts_problems_ = std::move(p);
  }
  absl::StatusOr<OutboxItem> ev = events_.Make(kEventHello, "agent", hello.SerializeAsString());
  if (!ev.ok()) return;  // "agent" is a valid domain: cannot happen
  (void)pump.Send(ev->subject, ev->data, absl::Seconds(2),
                  [this](RequestPump::Result r, nats::MsgPtr msg) {
                    if (r != RequestPump::Result::kReply) return;
                    absl::StatusOr<proto::Ack> ack = DecodeAck(nats::Data(msg.get()));
                    if (!ack.ok() || ack->outcome() != proto::OUTCOME_SUCCEEDED) return;
                    absl::MutexLock lock(&mu_);
                    confirmed_ = true;
                  });
}

}  // namespace steward::agent
