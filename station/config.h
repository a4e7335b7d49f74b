// The station's configuration: its options (flags, $STEWARD_* variables and keys of
// /etc/steward/station.toml, see common/config.h) and the StationOptions built from them
// with no side effect (the key files are read, nothing is opened or started).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/cli.h"
#include "common/config.h"
#include "station/options.h"

namespace steward::station {

inline constexpr char kDefaultConfigFile[] = "/etc/steward/station.toml";

// What the command line, the environment and the file say, with the defaults.
struct Settings {
  std::string name = "station";
  cli::NatsFlags nats;
  std::string data_dir = "/var/lib/steward-station";
  absl::Duration ack_timeout = absl::Seconds(2);
  absl::Duration log_retention = absl::Hours(24 * 7);
  int64_t log_max_lines = 10'000'000;
  absl::Duration event_retention = absl::Hours(24 * 30);
  int64_t event_max_rows = 1'000'000;
  std::string keys;
  std::string http = "127.0.0.1:8080";
  std::string http_cert;
  std::string http_key;
  int http_threads = 16;
  bool ha = false;
  absl::Duration ha_lease = absl::Seconds(5);
  int ha_replicas = 1;
  std::string ha_instance;
  int64_t ha_journal_keep = 100'000;
  std::string site;
  std::string site_nodes;
  absl::Duration site_probe = absl::Seconds(1);
  absl::Duration central_timeout = absl::Seconds(30);
  std::string restore_window;
  absl::Duration restore_length = absl::Hours(1);
  std::string restore_zone;
  std::string cpus;
};

// NewApp makes the station's command line, bound to `s`.
std::unique_ptr<CLI::App> NewApp(Settings& s);

// BuildOptions turns settings into what Station::Start takes, reading the key files of
// --keys. Errors name the key and where its value came from.
absl::StatusOr<StationOptions> BuildOptions(const Settings& s, const config::Effective& effective);

using Config = config::Loaded<Settings, StationOptions>;

// LoadConfig: `args` (without the program name) + environment + file -> a validated
// configuration. InvalidArgument with every problem, each with its file and line.
absl::StatusOr<Config> LoadConfig(const std::vector<std::string>& args,
                                  config::Environment env = config::ProcessEnvironment());

}  // namespace steward::station
