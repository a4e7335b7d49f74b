// The sd_notify calls of service.h.
#include "common/service.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace steward::service {

Notifier::Notifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  active_ = socket != nullptr && *socket != '\0';
  uint64_t usec = 0;
  if (active_ && sd_watchdog_enabled(/*unset_environment=*/0, &usec) > 0) {
    watchdog_ = absl::Microseconds(static_cast<int64_t>(usec));
  }
}

absl::Duration Notifier::stall_limit() const {
  return watchdog_ > absl::ZeroDuration() ? watchdog_ / 2 : absl::Seconds(30);
}

void Notifier::Tick(bool serving, bool alive, std::string_view status) {
  if (!active_) return;
  std::string message;
  if (status != status_) {
    status_ = std::string(status);
    absl::StrAppend(&message, "STATUS=", status_, "\n");
  }
  if (serving && !ready_sent_) {
    ready_sent_ = true;
    absl::StrAppend(&message, "READY=1\n");
  }
  const absl::Time now = absl::Now();
  if (alive && watchdog_ > absl::ZeroDuration() && now - last_ping_ >= watchdog_ / 4) {
    last_ping_ = now;
    absl::StrAppend(&message, "WATCHDOG=1\n");
  }
  if (message.empty()) return;
  if (const int rc = sd_notify(/*unset_environment=*/0, message.c_str()); rc < 0) {
    STEWARD_LOG_WARNING("sd_notify: error {}", -rc);
  }
}

void Notifier::Stopping() {
  if (active_) (void)sd_notify(0, "STOPPING=1\nSTATUS=stopping\n");
}

void StartReport::Tick(const std::function<bool()>& serving, const std::function<bool(absl::Duration)>& alive) {
  if (!notifier_.active() && reached_) return;
  const bool now_serving = serving();
  if (now_serving && !reached_) {
    reached_ = true;
    STEWARD_LOG_INFO("serving: the broker at {} answers", broker_);
  }
  if (!notifier_.active()) return;
  notifier_.Tick(now_serving, alive(notifier_.stall_limit()),
                 now_serving ? "serving" : "waiting for the broker at " + broker_);
}

int PauseBeforeRestart(Notifier& notifier, const sigset_t& signals, absl::Duration d,
                       const std::function<void(int)>& other) {
  const absl::Time end = absl::Now() + d;
  for (absl::Time now = absl::Now(); now < end; now = absl::Now()) {
    notifier.Tick(/*serving=*/false, /*alive=*/true,
                  "the broker was not reached: starting again in " + absl::FormatDuration(d));
    const timespec wait = absl::ToTimespec(std::min(end - now, absl::Milliseconds(200)));
    const int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig == SIGINT || sig == SIGTERM) return sig;
    if (sig > 0 && other) other(sig);
  }
  return 0;
}

}  // namespace steward::service
