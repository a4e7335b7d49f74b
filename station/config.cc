// The station's option table and its translation into StationOptions.
#include "station/config.h"

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/creds.h"
#include "common/status_macros.h"
#include "station/cron.h"
#include "station/http/server.h"
#include "subjects/subject.h"

namespace steward::station {

std::unique_ptr<CLI::App> NewApp(Settings& f) {
  auto app = std::make_unique<CLI::App>(
      "steward-station: the management host's daemon; stores, dispatches and tracks every command.",
      "steward-station");
  cli::Setup(*app);
  app->add_option("--name", f.name, "The station's node name")
      ->type_name("NAME")
      ->capture_default_str()
      ->check(cli::Checked(subjects::ValidateToken));
  cli::AddNatsFlags(*app, &f.nats);
  app->add_option("--data-dir", f.data_dir, "Directory for the station's ledger, station.db (created if missing)")
      ->type_name("DIR")
      ->capture_default_str();
  cli::AddDuration(*app, "--ack-timeout", &f.ack_timeout,
                   "Wait this long for a node to acknowledge a command before sending it again (longer on "
                   "links with a slow round trip)");
  cli::AddDuration(*app, "--log-retention", &f.log_retention, "Keep syslog lines this long");
  app->add_option("--log-max-lines", f.log_max_lines, "Keep at most this many syslog lines (newest)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cli::AddDuration(*app, "--event-retention", &f.event_retention,
                   "Keep events (errorlog) and node transitions this long");
  app->add_option("--event-max-rows", f.event_max_rows, "Keep at most this many events (newest)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app->add_option("--keys", f.keys,
                  "Keys directory from `stewardctl keys init`: sign commands with station.key, accept "
                  "requests signed by operator.pub (and operators/*.pub), use creds/station.creds and "
                  "tls/ca.pem; nodes must then be accepted")
      ->type_name("DIR");
  app->add_option("--http", f.http,
                  "Serve the HTTP API, dashboard, event stream and /metrics on HOST:PORT (port 0: any free "
                  "one; \"off\": none). An address other than loopback needs TLS (--http-cert/--http-key, or "
                  "--keys with tls/server.pem) and operator tokens")
      ->type_name("HOST:PORT")
      ->capture_default_str();
  app->add_option("--http-cert", f.http_cert, "TLS certificate (PEM) for --http")->type_name("FILE");
  app->add_option("--http-key", f.http_key, "TLS private key (PEM) for --http")->type_name("FILE");
  app->add_option("--http-threads", f.http_threads, "HTTP connections served at once (event streams hold one each)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app->add_flag("--ha", f.ha,
                "High availability: run as one instance of this station name among several (on a broker with "
                "JetStream); the lease holder is active, the others follow its replicated ledger and take over");
  cli::AddDuration(*app, "--ha-lease", &f.ha_lease,
                   "With --ha: how long the active instance's lease lasts unrenewed (every instance the same)");
  app->add_option("--ha-replicas", f.ha_replicas,
                  "With --ha: replicas of the lease bucket and the ledger's journal (3 on a three-broker cluster)")
      ->capture_default_str()
      ->check(CLI::Range(1, 5));
  app->add_option("--ha-instance", f.ha_instance,
                  "With --ha: this instance's name in the lease (default: host, process id and a random part)");
  app->add_option("--ha-journal-keep", f.ha_journal_keep,
                  "With --ha: the active instance drops journal entries every standby has applied, keeping at "
                  "least this many of the newest (0: keep every entry). A standby that was away while its "
                  "entries were dropped must be seeded with a copy of another instance's ledger")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  app->add_option("--site", f.site,
                  "Run as the site station of SITE (on the site's leaf broker, under the central station's "
                  "--name): take control of --site-nodes while the central station does not answer")
      ->type_name("SITE")
      ->check(cli::Checked(subjects::ValidateToken));
  app->add_option("--site-nodes", f.site_nodes, "With --site: the nodes the site station may control (a,b,c)")
      ->type_name("NODES");
  cli::AddDuration(*app, "--site-probe", &f.site_probe, "With --site: how often the central station is asked");
  cli::AddDuration(*app, "--central-timeout", &f.central_timeout,
                   "With --site: take control after the central station did not answer this long");
  app->add_option("--restore-window", f.restore_window,
                  "With --site: hand control back only inside this window: its starts in cron syntax "
                  "(\"0 2 * * *\"); default: at once when the central station answers again")
      ->type_name("CRON");
  cli::AddDuration(*app, "--restore-length", &f.restore_length, "With --restore-window: how long each window lasts");
  app->add_option("--restore-zone", f.restore_zone, "With --restore-window: its time zone (default UTC)")
      ->type_name("ZONE");
  app->add_option("--cpus", f.cpus,
                  "Keep the station's threads on these CPUs (as taskset takes them: 1, 0,2 or 2-3). On a small "
                  "host, or a virtual machine, shared with its broker, one CPU costs a durable command less CPU "
                  "(README, \"One CPU for the station\"); default (or empty): every CPU")
      ->type_name("LIST");
  return app;
}

absl::StatusOr<StationOptions> BuildOptions(const Settings& s, const config::Effective& effective) {
  auto bad = [&](absl::string_view key, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(effective.Describe(key), ": ", why));
  };
  if (s.data_dir.empty()) return bad("data_dir", "must not be empty");
  if (s.ack_timeout < absl::Milliseconds(100) || s.ack_timeout > absl::Minutes(10)) {
    return bad("ack_timeout", "must be from 100ms to 10m");
  }
  if (s.log_retention <= absl::ZeroDuration()) return bad("log_retention", "must be longer than 0s");
  if (s.event_retention <= absl::ZeroDuration()) return bad("event_retention", "must be longer than 0s");
  StationOptions opts;
  opts.name = s.name;
  opts.nats.url = s.nats.url;
  opts.nats.tls_ca_file = s.nats.tls_ca;
  opts.data_dir = s.data_dir;
  opts.ack_timeout = s.ack_timeout;
  opts.log_retention = s.log_retention;
  opts.log_max_lines = s.log_max_lines;
  opts.event_retention = s.event_retention;
  opts.event_max_rows = s.event_max_rows;
  if (s.ha_lease < absl::Seconds(1) || s.ha_lease > absl::Minutes(10)) return bad("ha_lease", "must be 1s to 10m");
  opts.ha.enabled = s.ha;
  opts.ha.lease = s.ha_lease;
  opts.ha.replicas = s.ha_replicas;
  opts.ha.instance = s.ha_instance;
  opts.ha.journal_keep = s.ha_journal_keep;
  if (!s.site.empty()) {
    opts.site.name = s.site;
    for (absl::string_view n : absl::StrSplit(s.site_nodes, ',', absl::SkipWhitespace())) {
      const std::string node(absl::StripAsciiWhitespace(n));
      if (absl::Status st = subjects::ValidateToken(node); !st.ok()) return bad("site_nodes", st.message());
      opts.site.nodes.push_back(node);
    }
    if (opts.site.nodes.empty()) {
      return bad("site_nodes", "a site station needs the nodes it may control (--site-nodes a,b,c)");
    }
    if (s.ha) return bad("site", "a site station is a single host: --site and --ha do not go together");
    if (s.site_probe <= absl::ZeroDuration()) return bad("site_probe", "must be longer than 0s");
    if (s.central_timeout < s.site_probe) return bad("central_timeout", "must be at least --site-probe");
    opts.site.probe_every = s.site_probe;
    opts.site.central_timeout = s.central_timeout;
    opts.site.restore_window = s.restore_window;
    opts.site.restore_length = s.restore_length;
    opts.site.restore_zone = s.restore_zone;
    if (!s.restore_window.empty()) {
      absl::StatusOr<CronSpec> spec = CronSpec::Parse(s.restore_window);
      if (!spec.ok()) return bad("restore_window", spec.status().message());
      if (s.restore_length <= absl::ZeroDuration()) return bad("restore_length", "must be longer than 0s");
      if (absl::StatusOr<absl::TimeZone> tz = LoadZone(s.restore_zone); !tz.ok()) {
        return bad("restore_zone", tz.status().message());
      }
    }
  } else if (!s.site_nodes.empty()) {
    return bad("site_nodes", "only with --site");
  }
  if (!s.cpus.empty()) {
    absl::StatusOr<CpuList> cpus = CpuList::Parse(s.cpus);
    if (!cpus.ok()) return bad("cpus", cpus.status().message());
    opts.cpus = *std::move(cpus);
  }
  opts.operators = std::make_shared<signing::TrustedKeys>();
  std::string creds = s.nats.creds;
  const std::string& keys = s.keys;
  opts.keys_dir = keys;
  if (!keys.empty()) {
    absl::StatusOr<signing::KeyPair> key = signing::LoadKeyPair(keys + "/station.key");
    if (!key.ok()) return bad("keys", key.status().message());
    opts.key = *key;
    std::vector<std::string> operator_keys;
    if (std::filesystem::exists(keys + "/operator.pub")) operator_keys.push_back(keys + "/operator.pub");
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(keys + "/operators", ec)) {
      if (e.path().extension() == ".pub") operator_keys.push_back(e.path().string());
    }
    for (const std::string& path : operator_keys) {
      if (absl::Status st = opts.operators->AddFile(path); !st.ok()) {
        return bad("keys", absl::StrCat(path, ": ", st.message()));
      }
    }
    if (creds.empty() && std::filesystem::exists(keys + "/creds/station.creds")) creds = keys + "/creds/station.creds";
    if (opts.nats.tls_ca_file.empty() && std::filesystem::exists(keys + "/tls/ca.pem")) {
      opts.nats.tls_ca_file = keys + "/tls/ca.pem";
    }
  }
  if (!creds.empty()) {
    absl::StatusOr<BrokerCreds> c = ReadCreds(creds);
    if (!c.ok()) return bad(s.nats.creds.empty() ? "keys" : "creds", c.status().message());
    opts.nats.user = c->user;
    opts.nats.password = c->password;
  }
  if (s.http != "off" && !s.http.empty()) {
    opts.http.listen = s.http;
    opts.http.listen_is_default = s.http == Settings().http;
    opts.http.cert_file = s.http_cert;
    opts.http.key_file = s.http_key;
    opts.http.threads = s.http_threads;
    const std::string host = s.http.substr(0, s.http.rfind(':'));
    if (opts.http.cert_file.empty() && !keys.empty() && !http::IsLoopback(host) &&
        std::filesystem::exists(keys + "/tls/server.pem")) {
      opts.http.cert_file = keys + "/tls/server.pem";
      opts.http.key_file = keys + "/tls/server.key";
    }
  }
  return opts;
}

absl::StatusOr<Config> LoadConfig(const std::vector<std::string>& args, config::Environment env) {
  return config::LoadProgram<Settings, StationOptions>(args, kDefaultConfigFile, std::move(env), NewApp, BuildOptions);
}

}  // namespace steward::station
