// steward-agent: runs on every edge unit; see agent/agent.h.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/agent_store.h"
#include "agent/config.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/creds.h"
#include "common/signing.h"
#include "common/log.h"
#include "common/nats.h"
#include "common/service.h"

int main(int argc, char** argv) {
  const sigset_t signals = steward::BlockTerminationSignals();
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
  opts.security.node_key = *node_key;
  auto acl = steward::agent::Acl::Open(flags.data_dir);
  if (!acl.ok()) {
    fmt::print(stderr, "steward-agent: {}\n", acl.status().message());
    return 2;
  }
  opts.security.acl = *acl;
  opts.instance_id = (*store)->instance_id();
  auto interrupted = (*store)->Interrupted();
  if (!interrupted.ok()) {
    fmt::print(stderr, "steward-agent: {}\n", interrupted.status().message());
    return 2;
  }
  if (auto pruned = (*store)->PruneCommandLog(flags.keep_results); !pruned.ok()) {
    STEWARD_LOG_WARNING("pruning the command log: {}", pruned.status().ToString());
  }

  steward::nats::Library nats_library;  // Destroyed last.
  int rc = 0;
  {
    auto agent = steward::agent::Agent::Start(
        opts, steward::agent::BuiltinMethods(), steward::agent::NewPosixCommandRunner(),
        (*store)->NewCommandLog(), (*store)->NewSpool(), *std::move(interrupted),
        (*store)->NewSpool("logs"));
    if (!agent.ok()) {
      fmt::print(stderr, "steward-agent: {}\n", agent.status().message());
      return 2;
    }
    // READY=1 once the dispatcher is subscribed on the broker; WATCHDOG=1 while the
    // error kernel answers and the dispatcher makes progress.
    steward::service::Notifier notifier;
    const timespec tick{0, 100'000'000};
    while (true) {
      const int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM) {
        STEWARD_LOG_INFO("signal {}: shutting down", sig);
        break;
      }
      if ((*agent)->fatal().HasBeenNotified()) {
        STEWARD_LOG_ERROR("dispatcher stopped by the error kernel: exiting");
        rc = 1;
        break;
      }
      if (!notifier.active()) continue;
      const bool serving = (*agent)->Serving();
      if (serving && !notifier.ready_sent()) STEWARD_LOG_INFO("serving: ready");
      notifier.Tick(serving, (*agent)->Alive(notifier.stall_limit()),
                    serving ? "serving" : "waiting for the broker at " + steward::nats::RedactUrl(opts.nats.url));
    }
    notifier.Stopping();
    (*agent)->Shutdown();
  }
  return rc;
}
