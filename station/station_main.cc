// steward-station: the management host's daemon; see station/station.h.
#include <signal.h>

#include <algorithm>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/heap.h"
#include "common/mutex_mode.h"
#include "common/log.h"
#include "common/nats.h"
#include "common/service.h"
#include "station/config.h"
#include "station/station.h"

#ifdef STEWARD_TCMALLOC
#include <gperftools/tcmalloc.h>
#endif

namespace {

// The heap the station runs on (station/CMakeLists.txt), said in its first log line.
std::string HeapName() {
#ifdef STEWARD_TCMALLOC
  return tc_version(nullptr, nullptr, nullptr);
#else
  return "glibc malloc";
#endif
}

}  // namespace

int main(int argc, char** argv) {
  steward::SkipLockOrderChecks();  // common/mutex_mode.h
#ifndef STEWARD_TCMALLOC
  steward::KeepLargeBuffersInHeap();  // copy chunks, large outputs
#endif
  const sigset_t signals = steward::BlockTerminationSignals();
  steward::station::Settings flags;
  std::unique_ptr<CLI::App> app = steward::station::NewApp(flags);
  steward::config::Layered layered(*app, steward::station::kDefaultConfigFile);
  if (std::optional<int> done = layered.Parse(argc, argv)) return *done;
  absl::StatusOr<steward::station::StationOptions> opts =
      steward::station::BuildOptions(flags, layered.effective());
  if (!opts.ok()) {
    fmt::print(stderr, "steward-station: {}\n", opts.status().message());
    return 2;
  }
  // Before any thread starts (nats.c's among them): every thread inherits it.
  if (opts->cpus.has_value()) {
    if (absl::Status st = opts->cpus->Apply(); !st.ok()) {
      fmt::print(stderr, "steward-station: {}\n", std::string(st.message()));
      return 2;
    }
  }
  steward::SetLogTag("station " + opts->name);
  STEWARD_LOG_INFO("steward-station {} on {}{}", STEWARD_VERSION, HeapName(),
                   opts->cpus.has_value() ? absl::StrCat(", kept on CPU", opts->cpus->cpus().size() > 1 ? "s " : " ",
                                                         opts->cpus->ToString())
                                          : std::string());
  if (!layered.effective().file.empty()) STEWARD_LOG_INFO("configuration file {}", layered.effective().file);

  steward::nats::Library nats_library;
  // READY=1 once the ledger is open and the subscriptions are on the broker; WATCHDOG=1
  // while the dispatcher loop turns, and while the station waits to start again (one
  // notifier for the process: the watchdog is fed across restarts, though not while a
  // start itself runs, as at the first start).
  steward::service::Notifier notifier;
  // nats.c closes the broker connection for good when the first connect times out (a
  // broker, or a box in front of it, that accepts the connection and says nothing) and
  // on refused credentials, whatever the reconnect settings. The station then starts
  // again in its process after a pause (1 s, doubling to 10 s; back to 1 s after a run
  // of over a minute), instead of exiting with 2, which its service manager does not
  // restart. So does an --ha station whose broker is not up when it starts (its lease
  // is on the broker).
  absl::Duration closed_backoff = absl::Seconds(1);
  auto pause = [&](absl::Duration d) { return steward::service::PauseBeforeRestart(notifier, signals, d) == 0; };
  while (true) {
    auto station = steward::station::Station::Start(*opts);
    if (!station.ok() && steward::station::Station::BrokerNotReached(station.status())) {
      STEWARD_LOG_ERROR("{}; the station starts again in {}", station.status().message(),
                        absl::FormatDuration(closed_backoff));
      if (!pause(closed_backoff)) break;
      closed_backoff = std::min(2 * closed_backoff, absl::Seconds(10));
      continue;
    }
    if (!station.ok()) {
      fmt::print(stderr, "steward-station: {}\n", station.status().message());
      return 2;
    }
    const absl::Time started = absl::Now();
    const timespec tick{0, 100'000'000};
    steward::service::StartReport report(notifier, steward::nats::RedactUrl(opts->nats.url));
    int code = 0;
    bool again = false;
    while (true) {
      const int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM) break;
      if ((*station)->Fenced()) {
        // --ha: this instance lost its lease (or could not follow): it has stopped acting;
        // it ends, and its service manager starts it again, as a standby.
        code = 3;
        break;
      }
      if (std::optional<std::string> closed = (*station)->BrokerClosed()) {
        if (absl::Now() - started > absl::Minutes(1)) closed_backoff = absl::Seconds(1);
        STEWARD_LOG_ERROR("the broker connection to {} is closed: {}; the station starts again in {}",
                          steward::nats::RedactUrl(opts->nats.url), *closed, absl::FormatDuration(closed_backoff));
        again = true;
        break;
      }
      report.Tick([&] { return (*station)->Serving(); }, [&](absl::Duration quiet) { return (*station)->Alive(quiet); });
    }
    if (again) {
      (*station)->Shutdown();
      station->reset();
      if (!pause(closed_backoff)) break;
      closed_backoff = std::min(2 * closed_backoff, absl::Seconds(10));
      continue;
    }
    STEWARD_LOG_INFO("shutting down");
    notifier.Stopping();
    (*station)->Shutdown();
    return code;
  }
  STEWARD_LOG_INFO("shutting down");
  notifier.Stopping();
  return 0;
}
