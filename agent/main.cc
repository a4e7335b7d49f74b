// steward-agent: runs on every edge unit; see agent/agent.h.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/agent_store.h"
#include "common/cli.h"
#include "common/creds.h"
#include "common/signing.h"
#include "common/log.h"

namespace {

namespace cli = steward::cli;

// The command line, with its defaults.
struct Flags {
  std::string node;
  cli::NatsFlags nats;
  std::string station = "station";
  std::string data_dir = "/var/lib/steward";
  absl::Duration keep_results = absl::Hours(24 * 7);
  absl::Duration heartbeat = absl::Seconds(5);
  std::vector<std::string> syslog_udp;
  std::vector<std::string> syslog_tcp;
  std::vector<std::string> tail;
  int64_t syslog_max_message = 64 * 1024;
  int64_t syslog_spool_mb = 256;
  std::vector<std::string> trust;
  std::string node_key;
  std::string facts;
};

// Reads the command line into `f`; an exit status when the program should stop there.
std::optional<int> ParseFlags(int argc, char** argv, Flags& f) {
  CLI::App app("steward-agent: runs on every edge unit; executes the station's commands and forwards events.",
               "steward-agent");
  cli::Setup(app);
  app.add_option("--node", f.node, "This node's name: the first token of its subjects")
      ->type_name("NAME")
      ->required();
  cli::AddNatsFlags(app, &f.nats);
  app.add_option("--station", f.station, "Name of the station node that receives events")
      ->type_name("NAME")
      ->capture_default_str();
  app.add_option("--data-dir", f.data_dir, "Directory for the agent's state, agent.db (created if missing)")
      ->type_name("DIR")
      ->capture_default_str();
  cli::AddDuration(app, "--keep-results", &f.keep_results, "Forget finished commands' records after this long");
  cli::AddDuration(app, "--heartbeat", &f.heartbeat, "Interval between hello events");
  cli::AddList(app, "--syslog-udp", &f.syslog_udp, "Receive syslog on these UDP host:port")
      ->type_name("HOST:PORT,...");
  cli::AddList(app, "--syslog-tcp", &f.syslog_tcp, "Receive syslog on these TCP host:port (RFC 6587)")
      ->type_name("HOST:PORT,...");
  cli::AddList(app, "--tail", &f.tail, "Follow these files, PATH[:DOMAIN] (default domain: each line's app-name)")
      ->type_name("PATH[:DOMAIN],...");
  app.add_option("--syslog-max-message", f.syslog_max_message, "Longer syslog messages are truncated (bytes)")
      ->capture_default_str();
  app.add_option("--syslog-spool-mb", f.syslog_spool_mb, "Log spool limit; beyond it the oldest lines are dropped")
      ->capture_default_str();
  cli::AddList(app, "--trust", &f.trust,
               "Station public keys (station.pub) whose signed commands this node runs; none: unsigned "
               "commands run (development only)")
      ->type_name("FILE,...");
  app.add_option("--facts", f.facts,
                 "Custom facts for targeting: a file of key=value lines (fact.KEY in --where), read "
                 "again for every hello")
      ->type_name("FILE");
  app.add_option("--node-key", f.node_key, "This node's signing key (default <data-dir>/node.key, made if missing)")
      ->type_name("FILE");
  return cli::Parse(app, argc, argv);
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t signals = steward::BlockTerminationSignals();
  Flags flags;
  if (std::optional<int> done = ParseFlags(argc, argv, flags)) return *done;

  steward::agent::AgentOptions opts;
  opts.node = flags.node;
  steward::SetLogTag("agent " + opts.node);
  opts.station = flags.station;
  opts.heartbeat = flags.heartbeat;
  opts.facts.file = flags.facts;
  opts.nats.url = flags.nats.url;
  opts.nats.tls_ca_file = flags.nats.tls_ca;
  if (const std::string& creds = flags.nats.creds; !creds.empty()) {
    auto c = steward::ReadCreds(creds);
    if (!c.ok()) {
      fmt::print(stderr, "steward-agent: {}\n", c.status().message());
      return 2;
    }
    opts.nats.user = c->user;
    opts.nats.password = c->password;
  }
  opts.security.trusted = std::make_shared<steward::signing::TrustedKeys>();
  for (const std::string& path : flags.trust) {
    if (absl::Status st = opts.security.trusted->AddFile(path); !st.ok()) {
      fmt::print(stderr, "steward-agent: --trust {}: {}\n", path, st.message());
      return 2;
    }
  }
  opts.syslog.udp = flags.syslog_udp;
  opts.syslog.tcp = flags.syslog_tcp;
  for (const std::string& t : flags.tail) {
    const size_t colon = t.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      opts.syslog.tails.emplace_back(t, "");
    } else {
      opts.syslog.tails.emplace_back(t.substr(0, colon), t.substr(colon + 1));
    }
  }
  opts.syslog.state_dir = flags.data_dir + "/tail";
  opts.data_dir = flags.data_dir;
  opts.syslog.max_message_bytes = static_cast<size_t>(std::max<int64_t>(256, flags.syslog_max_message));
  opts.syslog.spool_max_bytes =
      static_cast<size_t>(std::max<int64_t>(1, flags.syslog_spool_mb)) << 20;

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
  // One setting: a signed command must expire within the time its id is kept, so a
  // replay within its lifetime is always recognised.
  opts.security.max_ttl = flags.keep_results;
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
