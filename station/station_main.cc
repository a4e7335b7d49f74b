// steward-station: the management host's daemon; see station/station.h.
#include <signal.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/cli.h"
#include "common/creds.h"
#include "common/signing.h"
#include "common/log.h"
#include "station/station.h"

ABSL_FLAG(std::string, name, "station", "The station's node name");
ABSL_FLAG(std::string, nats, "", "NATS URL (default $STEWARD_NATS_URL or nats://127.0.0.1:4222)");
ABSL_FLAG(std::string, data_dir, "/var/lib/steward-station",
          "Directory for the station's ledger, station.db (created if missing)");
ABSL_FLAG(absl::Duration, log_retention, absl::Hours(24 * 7), "Keep syslog lines this long");
ABSL_FLAG(int64_t, log_max_lines, 10'000'000, "Keep at most this many syslog lines (newest)");
ABSL_FLAG(std::string, keys, "",
          "Keys directory from `stewardctl keys init`: sign commands with station.key, accept "
          "requests signed by operator.pub (and operators/*.pub), use creds/station.creds and "
          "tls/ca.pem; nodes must then be accepted");
ABSL_FLAG(std::string, creds, "", "Broker credentials file (user, password)");
ABSL_FLAG(std::string, tls_ca, "", "CA bundle: connect to NATS over TLS and verify the server");

int main(int argc, char** argv) {
  const sigset_t signals = steward::BlockTerminationSignals();
  absl::SetProgramUsageMessage("steward-station [--name NAME] [--nats URL] [--data-dir DIR]");
  std::vector<std::string> storage;
  std::vector<char*> args = steward::NormalizeFlags(argc, argv, storage);
  absl::ParseCommandLine(static_cast<int>(args.size() - 1), args.data());

  steward::station::StationOptions opts;
  opts.name = absl::GetFlag(FLAGS_name);
  steward::SetLogTag("station " + opts.name);
  opts.nats.url = absl::GetFlag(FLAGS_nats).empty() ? steward::DefaultNatsUrl() : absl::GetFlag(FLAGS_nats);
  const std::string keys = absl::GetFlag(FLAGS_keys);
  std::string creds = absl::GetFlag(FLAGS_creds);
  opts.nats.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  opts.operators = std::make_shared<steward::signing::TrustedKeys>();
  if (!keys.empty()) {
    auto key = steward::signing::LoadKeyPair(keys + "/station.key");
    if (!key.ok()) {
      fmt::print(stderr, "steward-station: {}\n", key.status().message());
      return 2;
    }
    opts.key = *key;
    std::vector<std::string> operator_keys;
    if (std::filesystem::exists(keys + "/operator.pub")) operator_keys.push_back(keys + "/operator.pub");
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(keys + "/operators", ec)) {
      if (e.path().extension() == ".pub") operator_keys.push_back(e.path().string());
    }
    for (const std::string& path : operator_keys) {
      if (absl::Status st = opts.operators->AddFile(path); !st.ok()) {
        fmt::print(stderr, "steward-station: {}: {}\n", path, st.message());
        return 2;
      }
    }
    if (creds.empty() && std::filesystem::exists(keys + "/creds/station.creds")) creds = keys + "/creds/station.creds";
    if (opts.nats.tls_ca_file.empty() && std::filesystem::exists(keys + "/tls/ca.pem")) {
      opts.nats.tls_ca_file = keys + "/tls/ca.pem";
    }
  }
  if (!creds.empty()) {
    auto c = steward::ReadCreds(creds);
    if (!c.ok()) {
      fmt::print(stderr, "steward-station: {}\n", c.status().message());
      return 2;
    }
    opts.nats.user = c->user;
    opts.nats.password = c->password;
  }
  opts.data_dir = absl::GetFlag(FLAGS_data_dir);
  opts.log_retention = absl::GetFlag(FLAGS_log_retention);
  opts.log_max_lines = absl::GetFlag(FLAGS_log_max_lines);

  steward::nats::Library nats_library;
  {
    auto station = steward::station::Station::Start(opts);
    if (!station.ok()) {
      fmt::print(stderr, "steward-station: {}\n", station.status().message());
      return 2;
    }
    while (true) {
      const int sig = sigwaitinfo(&signals, nullptr);
      if (sig == SIGINT || sig == SIGTERM) break;
    }
    STEWARD_LOG_INFO("shutting down");
    (*station)->Shutdown();
  }
  return 0;
}
