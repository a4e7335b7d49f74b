// The agent's configuration: its options (flags, $STEWARD_* variables and keys of
// /etc/steward/agent.toml, see common/config.h) and the AgentOptions built from them.
//
// LoadConfig is what a reload calls: it reads the command line it is given, the
// environment and the file, validates, and builds the options, with no side effect (no
// key is made, no store opened, nothing started); main() does those once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/options.h"
#include "common/cli.h"
#include "common/config.h"

namespace steward::agent {

inline constexpr char kDefaultConfigFile[] = "/etc/steward/agent.toml";

// What the command line, the environment and the file say, with the defaults.
struct Settings {
  std::string node;
  cli::NatsFlags nats;
  std::string station = "station";
  std::string data_dir = "/var/lib/steward";
  std::string run_dir = "/run/steward-agent";
  absl::Duration keep_results = absl::Hours(24 * 7);
  absl::Duration heartbeat = absl::Seconds(5);
  absl::Duration config_probation = absl::Seconds(60);
  std::vector<std::string> syslog_udp;
  std::vector<std::string> syslog_tcp;
  std::vector<std::string> tail;
  int64_t syslog_max_message = 64 * 1024;
  int64_t syslog_spool_mb = 256;
  int64_t syslog_udp_buffer = 4 << 20;
  std::vector<std::string> syslog_tz;
  int64_t intake_max_mb = 16;
  std::vector<std::string> trust;
  std::string node_key;
  std::string facts;
};

// NewApp makes the agent's command line, bound to `s`.
std::unique_ptr<CLI::App> NewApp(Settings& s);

// BuildOptions turns settings into what Agent::Start takes, reading the files they name
// (trusted keys, broker credentials). Errors name the key and where its value came from.
absl::StatusOr<AgentOptions> BuildOptions(const Settings& s, const config::Effective& effective);

using Config = config::Loaded<Settings, AgentOptions>;

// LoadConfig: `args` (without the program name) + environment + file -> a validated
// configuration. InvalidArgument with every problem, each with its file and line.
absl::StatusOr<Config> LoadConfig(const std::vector<std::string>& args,
                                  config::Environment env = config::ProcessEnvironment());

}  // namespace steward::agent
