// steward-agent: runs on every edge unit; see agent/agent.h.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "agent/agent.h"
#include "agent/agent_store.h"
#include "common/cli.h"
#include "common/creds.h"
#include "common/signing.h"
#include "common/log.h"

ABSL_FLAG(std::string, node, "", "This node's name (required): the first token of its subjects");
ABSL_FLAG(std::string, nats, "", "NATS URL (default $STEWARD_NATS_URL or nats://127.0.0.1:4222)");
ABSL_FLAG(std::string, station, "station", "Name of the station node that receives events");
ABSL_FLAG(std::string, data_dir, "/var/lib/steward",
          "Directory for the agent's state, agent.db (created if missing)");
ABSL_FLAG(absl::Duration, keep_results, absl::Hours(24 * 7),
          "Forget finished commands' records after this long");
ABSL_FLAG(absl::Duration, heartbeat, absl::Seconds(5), "Interval between hello events");
ABSL_FLAG(std::vector<std::string>, syslog_udp, {}, "Receive syslog on these UDP host:port");
ABSL_FLAG(std::vector<std::string>, syslog_tcp, {}, "Receive syslog on these TCP host:port (RFC 6587)");
ABSL_FLAG(std::vector<std::string>, tail, {},
          "Follow these files, PATH[:DOMAIN] (default domain: each line's app-name)");
ABSL_FLAG(int64_t, syslog_max_message, 64 * 1024, "Longer syslog messages are truncated");
ABSL_FLAG(int64_t, syslog_spool_mb, 256, "Log spool limit; beyond it the oldest lines are dropped");
ABSL_FLAG(std::string, creds, "", "Broker credentials file from stewardctl enroll (user, password)");
ABSL_FLAG(std::string, tls_ca, "", "CA bundle: connect to NATS over TLS and verify the server");
ABSL_FLAG(std::vector<std::string>, trust, {},
          "Station public keys (station.pub) whose signed commands this node runs; none: "
          "unsigned commands run (development only)");
ABSL_FLAG(std::string, node_key, "", "This node's signing key (default <data-dir>/node.key, made if missing)");

int main(int argc, char** argv) {
  const sigset_t signals = steward::BlockTerminationSignals();
  absl::SetProgramUsageMessage("steward-agent --node NAME [--nats URL] [--station NAME] [--data-dir DIR]");
  std::vector<std::string> storage;
  std::vector<char*> args = steward::NormalizeFlags(argc, argv, storage);
  absl::ParseCommandLine(static_cast<int>(args.size() - 1), args.data());

  steward::agent::AgentOptions opts;
  opts.node = absl::GetFlag(FLAGS_node);
  if (opts.node.empty()) {
    fmt::print(stderr, "steward-agent: --node is required\n");
    return 2;
  }
  steward::SetLogTag("agent " + opts.node);
  opts.station = absl::GetFlag(FLAGS_station);
  opts.heartbeat = absl::GetFlag(FLAGS_heartbeat);
  opts.nats.url = absl::GetFlag(FLAGS_nats).empty() ? steward::DefaultNatsUrl() : absl::GetFlag(FLAGS_nats);
  opts.nats.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  if (const std::string creds = absl::GetFlag(FLAGS_creds); !creds.empty()) {
    auto c = steward::ReadCreds(creds);
    if (!c.ok()) {
      fmt::print(stderr, "steward-agent: {}\n", c.status().message());
      return 2;
    }
    opts.nats.user = c->user;
    opts.nats.password = c->password;
  }
  opts.security.trusted = std::make_shared<steward::signing::TrustedKeys>();
  for (const std::string& path : absl::GetFlag(FLAGS_trust)) {
    if (absl::Status st = opts.security.trusted->AddFile(path); !st.ok()) {
      fmt::print(stderr, "steward-agent: --trust {}: {}\n", path, st.message());
      return 2;
    }
  }
  opts.syslog.udp = absl::GetFlag(FLAGS_syslog_udp);
  opts.syslog.tcp = absl::GetFlag(FLAGS_syslog_tcp);
  for (const std::string& t : absl::GetFlag(FLAGS_tail)) {
    const size_t colon = t.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      opts.syslog.tails.emplace_back(t, "");
    } else {
      opts.syslog.tails.emplace_back(t.substr(0, colon), t.substr(colon + 1));
    }
  }
  opts.syslog.state_dir = absl::GetFlag(FLAGS_data_dir) + "/tail";
  opts.syslog.max_message_bytes = static_cast<size_t>(std::max<int64_t>(256, absl::GetFlag(FLAGS_syslog_max_message)));
  opts.syslog.spool_max_bytes =
      static_cast<size_t>(std::max<int64_t>(1, absl::GetFlag(FLAGS_syslog_spool_mb))) << 20;

  auto store = steward::agent::AgentStore::Open(absl::GetFlag(FLAGS_data_dir));
  if (!store.ok()) {
    fmt::print(stderr, "steward-agent: {}\n", store.status().message());
    return 2;
  }
  std::string key_path = absl::GetFlag(FLAGS_node_key);
  if (key_path.empty()) {
    key_path = absl::GetFlag(FLAGS_data_dir) + "/node.key";
    if (!std::filesystem::exists(key_path)) {
      auto pair = steward::signing::Generate();
      absl::Status st = pair.ok() ? steward::signing::WriteKeyPair(*pair, absl::GetFlag(FLAGS_data_dir) + "/node",
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
  auto acl = steward::agent::Acl::Open(absl::GetFlag(FLAGS_data_dir));
  if (!acl.ok()) {
    fmt::print(stderr, "steward-agent: {}\n", acl.status().message());
    return 2;
  }
  opts.security.acl = *acl;
  auto interrupted = (*store)->Interrupted();
  if (!interrupted.ok()) {
    fmt::print(stderr, "steward-agent: {}\n", interrupted.status().message());
    return 2;
  }
  if (auto pruned = (*store)->PruneCommandLog(absl::GetFlag(FLAGS_keep_results)); !pruned.ok()) {
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
    }
    (*agent)->Shutdown();
  }
  return rc;
}
