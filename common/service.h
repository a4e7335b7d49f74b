// Telling the service manager how a daemon is doing (systemd's Type=notify protocol,
// through libsystemd's sd_notify): READY=1 once the daemon really serves, WATCHDOG=1
// while its loops make progress (WatchdogSec: systemd kills and restarts a daemon whose
// pings stop), STATUS= lines for `systemctl status`, STOPPING=1 at shutdown. Without
// $NOTIFY_SOCKET (not started by systemd) every call does nothing.
//
//   service::Notifier notifier;
//   while (running) {                       // main's loop, every 100 ms or so
//     notifier.Tick(daemon->Serving(), daemon->Alive(notifier.stall_limit()), status);
//   }
//   notifier.Stopping();
//
// Thread-compatible: one thread (main) calls it.
#pragma once

#include <signal.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/time/time.h"

namespace steward::service {

class Notifier {
 public:
  Notifier();

  // True when started by a service manager that listens ($NOTIFY_SOCKET).
  bool active() const { return active_; }
  // systemd's WatchdogSec for this process, zero when there is none.
  absl::Duration watchdog() const { return watchdog_; }
  // How long a loop may go without progress before the daemon counts as hung: half the
  // watchdog (so a ping is still due in time), or 30 s without a watchdog.
  absl::Duration stall_limit() const;

  // `serving`: the daemon serves (READY=1 is sent the first time). `alive`: its loops
  // made progress lately (WATCHDOG=1 goes out every quarter of the watchdog while so).
  // `status`: sent as STATUS= when it changed.
  void Tick(bool serving, bool alive, std::string_view status);
  void Stopping();
  bool ready_sent() const { return ready_sent_; }

 private:
  bool active_ = false;
  absl::Duration watchdog_;
  bool ready_sent_ = false;
  absl::Time last_ping_ = absl::InfinitePast();
  std::string status_;
};

// One start of a daemon, as its main loop reports it (each turn, Tick): "serving: the
// broker at URL answers" is logged the first time the daemon serves in this start, with
// a service manager or not (until the broker answers, its subscriptions wait in the
// client library), and the notifier is fed. `serving` is asked until it first holds,
// and then only for a service manager; `alive` only for one.
class StartReport {
 public:
  // `broker`: the broker's URL as it may be logged (nats::RedactUrl).
  StartReport(Notifier& notifier, std::string broker) : notifier_(notifier), broker_(std::move(broker)) {}
  void Tick(const std::function<bool()>& serving, const std::function<bool(absl::Duration quiet)>& alive);

 private:
  Notifier& notifier_;
  const std::string broker_;
  bool reached_ = false;
};

// Waits `d` before a daemon starts again in its process (its broker connection was
// closed for good, or an --ha station's broker was not up), feeding the watchdog.
// `signals` are blocked; a SIGINT or SIGTERM taken meanwhile ends the wait and is
// returned, any other signal goes to `other` (the agent keeps a SIGHUP for its next
// start). 0: the wait ran out.
int PauseBeforeRestart(Notifier& notifier, const sigset_t& signals, absl::Duration d,
                       const std::function<void(int)>& other = nullptr);

}  // namespace steward::service
