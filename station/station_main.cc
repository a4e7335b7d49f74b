// steward-station: the management host's daemon; see station/station.h.
#include <signal.h>

#include <string>

#include "common/cli.h"
#include "common/config.h"
#include "common/heap.h"
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
  steward::SetLogTag("station " + opts->name);
  STEWARD_LOG_INFO("steward-station {} on {}", STEWARD_VERSION, HeapName());
  if (!layered.effective().file.empty()) STEWARD_LOG_INFO("configuration file {}", layered.effective().file);

  steward::nats::Library nats_library;
  {
    auto station = steward::station::Station::Start(*opts);
    if (!station.ok()) {
      fmt::print(stderr, "steward-station: {}\n", station.status().message());
      return 2;
    }
    // READY=1 once the ledger is open and the subscriptions are on the broker;
    // WATCHDOG=1 while the dispatcher loop turns.
    steward::service::Notifier notifier;
    const timespec tick{0, 100'000'000};
    int code = 0;
    while (true) {
      const int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM) break;
      if ((*station)->Fenced()) {
        // --ha: this instance lost its lease (or could not follow): it has stopped acting;
        // it ends, and its service manager starts it again, as a standby.
        code = 3;
        break;
      }
      if (!notifier.active()) continue;
      const bool serving = (*station)->Serving();
      if (serving && !notifier.ready_sent()) STEWARD_LOG_INFO("serving: ready");
      notifier.Tick(serving, (*station)->Alive(notifier.stall_limit()),
                    serving ? "serving" : "waiting for the broker at " + steward::nats::RedactUrl(opts->nats.url));
    }
    STEWARD_LOG_INFO("shutting down");
    notifier.Stopping();
    (*station)->Shutdown();
    if (code != 0) return code;
  }
  return 0;
}
