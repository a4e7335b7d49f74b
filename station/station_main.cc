// steward-station: the management host's daemon; see station/station.h.
#include <signal.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/cli.h"
#include "common/creds.h"
#include "common/signing.h"
#include "common/log.h"
#include "station/http/server.h"
#include "station/station.h"

namespace {

namespace cli = steward::cli;

// The command line, with its defaults.
struct Flags {
  std::string name = "station";
  cli::NatsFlags nats;
  std::string data_dir = "/var/lib/steward-station";
  absl::Duration log_retention = absl::Hours(24 * 7);
  int64_t log_max_lines = 10'000'000;
  std::string keys;
  std::string http = "127.0.0.1:8080";
  std::string http_cert;
  std::string http_key;
  int http_threads = 16;
};

// Reads the command line into `f`; an exit status when the program should stop there.
std::optional<int> ParseFlags(int argc, char** argv, Flags& f) {
  CLI::App app("steward-station: the management host's daemon; stores, dispatches and tracks every command.",
               "steward-station");
  cli::Setup(app);
  app.add_option("--name", f.name, "The station's node name")->type_name("NAME")->capture_default_str();
  cli::AddNatsFlags(app, &f.nats);
  app.add_option("--data-dir", f.data_dir, "Directory for the station's ledger, station.db (created if missing)")
      ->type_name("DIR")
      ->capture_default_str();
  cli::AddDuration(app, "--log-retention", &f.log_retention, "Keep syslog lines this long");
  app.add_option("--log-max-lines", f.log_max_lines, "Keep at most this many syslog lines (newest)")
      ->capture_default_str();
  app.add_option("--keys", f.keys,
                 "Keys directory from `stewardctl keys init`: sign commands with station.key, accept "
                 "requests signed by operator.pub (and operators/*.pub), use creds/station.creds and "
                 "tls/ca.pem; nodes must then be accepted")
      ->type_name("DIR");
  app.add_option("--http", f.http,
                 "Serve the HTTP API, dashboard, event stream and /metrics on HOST:PORT (port 0: any free "
                 "one; \"off\": none). An address other than loopback needs TLS (--http-cert/--http-key, or "
                 "--keys with tls/server.pem) and operator tokens")
      ->type_name("HOST:PORT")
      ->capture_default_str();
  app.add_option("--http-cert", f.http_cert, "TLS certificate (PEM) for --http")->type_name("FILE");
  app.add_option("--http-key", f.http_key, "TLS private key (PEM) for --http")->type_name("FILE");
  app.add_option("--http-threads", f.http_threads, "HTTP connections served at once (event streams hold one each)")
      ->capture_default_str();
  return cli::Parse(app, argc, argv);
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t signals = steward::BlockTerminationSignals();
  Flags flags;
  if (std::optional<int> done = ParseFlags(argc, argv, flags)) return *done;

  steward::station::StationOptions opts;
  opts.name = flags.name;
  steward::SetLogTag("station " + opts.name);
  opts.nats.url = flags.nats.url;
  const std::string& keys = flags.keys;
  std::string creds = flags.nats.creds;
  opts.nats.tls_ca_file = flags.nats.tls_ca;
  opts.operators = std::make_shared<steward::signing::TrustedKeys>();
  opts.keys_dir = keys;
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
  opts.data_dir = flags.data_dir;
  opts.log_retention = flags.log_retention;
  opts.log_max_lines = flags.log_max_lines;
  if (flags.http != "off" && !flags.http.empty()) {
    opts.http.listen = flags.http;
    opts.http.listen_is_default = flags.http == Flags().http;
    opts.http.cert_file = flags.http_cert;
    opts.http.key_file = flags.http_key;
    opts.http.threads = flags.http_threads;
    const std::string host = flags.http.substr(0, flags.http.rfind(':'));
    if (opts.http.cert_file.empty() && !keys.empty() && !steward::station::http::IsLoopback(host) &&
        std::filesystem::exists(keys + "/tls/server.pem")) {
      opts.http.cert_file = keys + "/tls/server.pem";
      opts.http.key_file = keys + "/tls/server.key";
    }
  }

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
