// steward-agent: runs on every edge unit; see agent/agent.h.
#include <signal.h>

#include <algorithm>
#include <ctime>
#include <atomic>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "agent/agent.h"
#include "agent/agent_store.h"
#include "agent/config.h"
#include "agent/config_host.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/creds.h"
#include "common/heap.h"
#include "common/mutex_mode.h"
#include "common/signing.h"
#include "common/log.h"
#include "common/nats.h"
#include "common/service.h"

namespace {

// What a reload decides.
enum class Reload { kNothing, kApplied, kRestart };

// Loads the configuration again for a reload, with the keys it changes. An invalid
// configuration, or one that changes what needs a restart of the service (node, data
// directory, node key), is refused (logged; nullopt) and the running one stays.
std::optional<steward::agent::Config> LoadForReload(steward::agent::ConfigHost& host, std::set<std::string>* changed) {
  absl::StatusOr<steward::agent::Config> next = host.Load();
  if (!next.ok()) {
    STEWARD_LOG_ERROR("configuration not reloaded; the running one stays: {}", next.status().message());
    return std::nullopt;
  }
  *changed = steward::agent::ChangedKeys(host.current().effective, next->effective);
  for (const std::string& key : *changed) {
    if (steward::agent::NeedsServiceRestart(key)) {
      STEWARD_LOG_ERROR("configuration not reloaded; the running one stays: {} changes only with a restart of the "
                        "service",
                        key);
      return std::nullopt;
    }
  }
  return *std::move(next);
}

// Loads the configuration again and applies it: a new heartbeat at once; any other
// change (broker, syslog inputs, limits, trusted keys) by a restart of the agent inside
// this process (its store, key and installation stay; accepted commands and spooled
// events are durable across it). What LoadForReload refuses changes nothing.
Reload ApplyReload(steward::agent::ConfigHost& host, steward::agent::Agent& agent,
                   steward::agent::AgentOptions* next_options) {
  std::set<std::string> changed;
  std::optional<steward::agent::Config> next = LoadForReload(host, &changed);
  if (!next.has_value()) return Reload::kNothing;
  if (changed.empty()) {
    STEWARD_LOG_INFO("configuration reloaded: no change");
    host.SetCurrent(*std::move(next));
    return Reload::kNothing;
  }
  STEWARD_LOG_INFO("configuration reloaded: {} changed ({})", absl::StrJoin(changed, ", "),
                   steward::agent::ConfigHash(next->effective));
  if (changed == std::set<std::string>{"heartbeat"}) {
    const absl::Duration heartbeat = next->options.heartbeat;
    // The configuration first: the hello SetHeartbeat sends at once carries its hash
    // (with the old one the station would show drift until the next heartbeat).
    host.SetCurrent(*std::move(next));
    agent.SetHeartbeat(heartbeat);
    return Reload::kApplied;
  }
  *next_options = next->options;
  host.SetCurrent(*std::move(next));
  return Reload::kRestart;
}

}  // namespace

int main(int argc, char** argv) {
  steward::SkipLockOrderChecks();     // common/mutex_mode.h
  steward::KeepLargeBuffersInHeap();  // copy chunks: nats.c's message, then the envelope
  sigset_t signals = steward::BlockTerminationSignals();
  sigaddset(&signals, SIGHUP);  // reload the configuration
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  steward::agent::Settings flags;
  std::unique_ptr<CLI::App> app = steward::agent::NewApp(flags);
  steward::config::Layered layered(*app, steward::agent::kDefaultConfigFile);
  if (std::optional<int> done = layered.Parse(argc, argv)) return *done;
  absl::StatusOr<steward::agent::AgentOptions> built = steward::agent::BuildOptions(flags, layered.effective());
  if (!built.ok()) {
    fmt::print(stderr, "steward-agent: {}\n", built.status().message());
    return 2;
  }
  steward::agent::AgentOptions opts = *std::move(built);
  steward::SetLogTag("agent " + opts.node);
  if (!layered.effective().file.empty()) STEWARD_LOG_INFO("configuration file {}", layered.effective().file);
  std::atomic<bool> reload_requested{false};
  auto host = std::make_shared<steward::agent::ConfigHost>(
      std::vector<std::string>(argv + 1, argv + argc),
      steward::agent::Config{.settings = flags, .effective = layered.effective(), .options = opts},
      steward::config::ProcessEnvironment(), [&reload_requested] { reload_requested.store(true); });

  auto store = steward::agent::AgentStore::Open(flags.data_dir);
  if (!store.ok()) {
    fmt::print(stderr, "steward-agent: {}\n", store.status().message());
    return 2;
  }
  std::string key_path = flags.node_key;
  if (key_path.empty()) {
    key_path = flags.data_dir + "/node.key";
    if (!std::filesystem::exists(key_path)) {
      auto pair = steward::signing::Generate();
      absl::Status st = pair.ok() ? steward::signing::WriteKeyPair(*pair, flags.data_dir + "/node",
                                                                   opts.node)
                                  : pair.status();
      if (!st.ok()) {
        fmt::print(stderr, "steward-agent: making the node key: {}\n", st.message());
        return 2;
      }
    }
  }
  auto node_key = steward::signing::LoadKeyPair(key_path);
  if (!node_key.ok()) {
    fmt::print(stderr, "steward-agent: {}\n", node_key.status().message());
    return 2;
  }
  auto acl = steward::agent::Acl::Open(flags.data_dir);
  if (!acl.ok()) {
    fmt::print(stderr, "steward-agent: {}\n", acl.status().message());
    return 2;
  }
  // What every start of the agent (the first, and each after a reload) keeps.
  auto complete = [&](steward::agent::AgentOptions& o) {
    o.security.node_key = *node_key;
    o.security.acl = *acl;
    o.instance_id = (*store)->instance_id();
    o.config = host;
  };
  complete(opts);
  if (auto pruned = (*store)->PruneCommandLog(flags.keep_results); !pruned.ok()) {
    STEWARD_LOG_WARNING("pruning the command log: {}", pruned.status().ToString());
  }

  steward::nats::Library nats_library;  // Destroyed last.
  int rc = 0;
  bool again = true;
  // After a reload that restarts the agent: what it ran with before, to go back to when
  // it cannot start with the new configuration and the file cannot be put back.
  std::optional<std::pair<steward::agent::AgentOptions, steward::agent::Config>> before_reload;
  // A change made through the agent (stewardctl config set/push) is on trial until the
  // station hears the agent with it; this process may have been killed during a trial.
  if (const std::string resumed = host->ResumeChange(); !resumed.empty()) STEWARD_LOG_WARNING("{}", resumed);
  // Goes back to the configuration before the change on trial: the file is written back
  // and loaded again. False when that cannot be done (the file was edited since).
  auto go_back = [&](const std::string& why) {
    absl::StatusOr<std::string> undone = host->UndoLastChange(why);
    absl::StatusOr<steward::agent::Config> previous =
        undone.ok() ? host->Load() : absl::StatusOr<steward::agent::Config>(undone.status());
    if (previous.ok()) {
      STEWARD_LOG_ERROR("{}: back to the previous configuration ({})", why, *undone);
      opts = previous->options;
      complete(opts);
      host->SetCurrent(*std::move(previous));
      return true;
    }
    if (before_reload.has_value()) {
      STEWARD_LOG_ERROR("{}: back to the configuration that ran ({})", why, previous.status().message());
      opts = std::move(before_reload->first);
      host->SetCurrent(std::move(before_reload->second));
      return true;
    }
    STEWARD_LOG_ERROR("{}; {}: {}", why,
                      undone.ok() ? absl::StrCat(*undone, ", but it does not load") : "the previous configuration "
                                                                                         "cannot be put back",
                      previous.status().message());
    return false;
  };
  // nats.c closes the connection for good when the broker did not answer its first
  // connect in time (a unit that boots out of coverage) or refused its credentials; the
  // agent then starts again in its process after this pause, 1 s doubling to 10 s (well
  // inside the service watchdog), instead of exiting.
  absl::Duration closed_backoff = absl::Seconds(1);
  std::optional<absl::Duration> pause_before_start;
  // READY=1 once the dispatcher is subscribed on the broker; WATCHDOG=1 while the error
  // kernel answers and the dispatcher makes progress, and while the agent waits to start
  // again (one notifier for the process: the watchdog is fed across restarts).
  steward::service::Notifier notifier;
  // Waits `d`; false at SIGINT/SIGTERM. A SIGHUP meanwhile is kept for the next start.
  auto pause = [&](absl::Duration d) {
    const int sig = steward::service::PauseBeforeRestart(notifier, signals, d, [&](int other) {
      if (other == SIGHUP) reload_requested.store(true);
    });
    if (sig != 0) STEWARD_LOG_INFO("signal {}: shutting down", sig);
    return sig == 0;
  };
  while (again) {
    again = false;
    if (pause_before_start.has_value()) {
      if (!pause(*std::exchange(pause_before_start, std::nullopt))) break;
      closed_backoff = std::min(2 * closed_backoff, absl::Seconds(10));
      // A file mended by hand meanwhile (kill -HUP): the next start takes it.
      if (reload_requested.exchange(false)) {
        std::set<std::string> changed;
        if (std::optional<steward::agent::Config> next = LoadForReload(*host, &changed)) {
          STEWARD_LOG_INFO("configuration reloaded before the next start ({})",
                           steward::agent::ConfigHash(next->effective));
          opts = next->options;
          complete(opts);
          host->SetCurrent(*std::move(next));
        }
      }
    }
    auto interrupted = (*store)->Interrupted();
    if (!interrupted.ok()) {
      fmt::print(stderr, "steward-agent: {}\n", interrupted.status().message());
      return 2;
    }
    auto agent = steward::agent::Agent::Start(
        opts, steward::agent::BuiltinMethods(), steward::agent::NewPosixCommandRunner(),
        (*store)->NewCommandLog(), (*store)->NewSpool(), *std::move(interrupted),
        (*store)->NewSpool("logs"));
    if (!agent.ok() && (host->ChangeOnTrial() || before_reload.has_value())) {
      // The new configuration does not start (a syslog listener it cannot bind, say):
      // back to the one before, in the file too when a change through the agent wrote
      // it, so that neither this process nor the next start is lost to it (a hand edit
      // and SIGHUP: back to the one that ran, the file left as it is).
      // The broker closed the connection under the start (the library gave up on its
      // connect while the agent subscribed): the same cause, and the same words, as when
      // that happens after the start.
      const bool back =
          go_back(absl::IsUnavailable(agent.status())
                      ? absl::StrCat("the new configuration does not reach the broker (", agent.status().message(), ")")
                      : absl::StrCat("the new configuration does not start: ", agent.status().message()));
      before_reload.reset();
      if (back) {
        again = true;
        continue;
      }
    }
    before_reload.reset();
    if (!agent.ok() && absl::IsUnavailable(agent.status())) {
      STEWARD_LOG_ERROR("{}; the agent starts again in {}", agent.status().message(),
                        absl::FormatDuration(closed_backoff));
      pause_before_start = closed_backoff;
      again = true;
      continue;
    }
    if (!agent.ok()) {
      fmt::print(stderr, "steward-agent: {}\n", agent.status().message());
      return 2;
    }
    const absl::Time started = absl::Now();
    // A change on trial is kept once the station heard the agent with it, and undone when
    // it did not within config_probation: a wrong broker URL, user, CA or station name
    // would otherwise leave the unit offline for good, since no command can reach it.
    std::optional<absl::Time> trial_ends;
    // The shorter of the probations before and after the change (one cannot lengthen its own).
    const absl::Duration probation = host->BeginTrial();
    if (probation > absl::ZeroDuration()) {
      trial_ends = absl::Now() + probation;
      STEWARD_LOG_INFO("a configuration change on trial: kept once the station hears the agent, undone if it does "
                       "not within {}",
                       absl::FormatDuration(probation));
    }
    const timespec tick{0, 100'000'000};
    steward::service::StartReport report(notifier, steward::nats::RedactUrl(opts.nats.url));
    while (true) {
      const int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM) {
        STEWARD_LOG_INFO("signal {}: shutting down", sig);
        break;
      }
      // Before the broker connection is looked at: a change the station heard is kept.
      if (trial_ends.has_value()) {
        // The station stored a hello: the broker, credentials, CA and station name hold
        // (a broker the station is not on would take the unit away as surely).
        if ((*agent)->HeardByStation()) {
          host->KeepTrial();
          trial_ends.reset();
          STEWARD_LOG_INFO("the new configuration reached the station: kept");
        } else if (absl::Now() >= *trial_ends) {
          trial_ends.reset();
          if (go_back(absl::StrCat("the new configuration did not reach the station (", opts.station,
                                   ") through the broker at ", steward::nats::RedactUrl(opts.nats.url), " within ",
                                   absl::FormatDuration(probation)))) {
            again = true;
            break;
          }
        }
      }
      if (std::optional<std::string> closed = (*agent)->BrokerClosed()) {
        const std::string why = absl::StrCat("the broker connection to ", steward::nats::RedactUrl(opts.nats.url),
                                             " is closed: ", *closed);
        if (trial_ends.has_value()) {
          trial_ends.reset();
          if (go_back(absl::StrCat("the new configuration does not reach the broker (", why, ")"))) {
            again = true;
            break;
          }
        }
        if (sig == SIGHUP) reload_requested.store(true);  // for the next start
        if (absl::Now() - started > absl::Minutes(1)) closed_backoff = absl::Seconds(1);
        STEWARD_LOG_ERROR("{}; the agent starts again in {}", why, absl::FormatDuration(closed_backoff));
        pause_before_start = closed_backoff;
        again = true;
        break;
      }
      if (sig == SIGHUP || reload_requested.exchange(false)) {
        steward::agent::AgentOptions next;
        steward::agent::Config running = host->current();
        const Reload reload = ApplyReload(*host, **agent, &next);
        // Applied without a restart (the heartbeat), no change, or refused: nothing to
        // undo later (a change on trial stays on trial).
        if (reload != Reload::kRestart) host->KeepLastChange();
        if (reload == Reload::kRestart) {
          complete(next);
          before_reload.emplace(std::move(opts), std::move(running));
          opts = std::move(next);
          again = true;
          STEWARD_LOG_INFO("restarting the agent with the new configuration");
          break;
        }
      }
      if ((*agent)->fatal().HasBeenNotified()) {
        STEWARD_LOG_ERROR("dispatcher stopped by the error kernel: exiting");
        rc = 1;
        break;
      }
      report.Tick([&] { return (*agent)->Serving(); }, [&](absl::Duration quiet) { return (*agent)->Alive(quiet); });
    }
    if (!again) notifier.Stopping();
    (*agent)->Shutdown(!again ? steward::agent::CommandProcessor::kShuttingDown
                       : pause_before_start.has_value()
                           ? "the agent restarted in its process: its broker connection was closed"
                           : "the agent restarted to apply a new configuration (a reload that changes more "
                             "than the heartbeat restarts it in its process)");
  }
  return rc;
}
