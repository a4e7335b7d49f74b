// The agent's option table and its translation into AgentOptions.
#include "agent/config.h"

#include "absl/strings/str_cat.h"
#include "agent/syslog/config.h"
#include "agent/syslog/socket.h"
#include "common/creds.h"
#include "common/status_macros.h"
#include "subjects/subject.h"

namespace steward::agent {
namespace {

absl::Status CheckListenSpec(const std::string& spec) { return syslog::ParseListenSpec(spec).status(); }

absl::Status CheckTail(const std::string& t) { return syslog::ParseTail(t).status(); }
absl::Status CheckZone(const std::string& z) { return syslog::ParseZones({z}).status(); }

}  // namespace

std::unique_ptr<CLI::App> NewApp(Settings& f) {
  auto app = std::make_unique<CLI::App>(
      "steward-agent: runs on every edge unit; executes the station's commands and forwards events.",
      "steward-agent");
  cli::Setup(*app);
  app->add_option("--node", f.node, "This node's name: the first token of its subjects")
      ->type_name("NAME")
      ->required()
      ->check(cli::Checked(subjects::ValidateToken));
  cli::AddNatsFlags(*app, &f.nats);
  app->add_option("--station", f.station, "Name of the station node that receives events")
      ->type_name("NAME")
      ->capture_default_str()
      ->check(cli::Checked(subjects::ValidateToken));
  app->add_option("--data-dir", f.data_dir, "Directory for the agent's state, agent.db (created if missing)")
      ->type_name("DIR")
      ->capture_default_str();
  app->add_option("--run-dir", f.run_dir,
                  "Directory for marks of the commands now running, outside the data directory and "
                  "cleared by a reboot (tmpfs): when this unit is reinstalled (its data directory wiped), "
                  "the new installation stops what the old one left running. '' turns the marks off")
      ->type_name("DIR")
      ->capture_default_str();
  cli::AddDuration(*app, "--keep-results", &f.keep_results, "Forget finished commands' records after this long");
  cli::AddDuration(*app, "--heartbeat", &f.heartbeat, "Interval between hello events");
  cli::AddDuration(*app, "--config-probation", &f.config_probation,
                   "How long a configuration changed through the agent (stewardctl config set/push) has to "
                   "reach the station; past it the agent writes the previous file back and goes back to it");
  cli::AddList(*app, "--syslog-udp", &f.syslog_udp, "Receive syslog on these UDP host:port")
      ->type_name("HOST:PORT,...")
      ->check(cli::Checked(CheckListenSpec));
  cli::AddList(*app, "--syslog-tcp", &f.syslog_tcp, "Receive syslog on these TCP host:port (RFC 6587)")
      ->type_name("HOST:PORT,...")
      ->check(cli::Checked(CheckListenSpec));
  cli::AddList(*app, "--tail", &f.tail,
               "Follow these files, PATH[:DOMAIN[:SEVERITY]] (default domain: each line's app-name; lines "
               "without a PRI, and lines that are not syslog, get SEVERITY, default notice)")
      ->type_name("PATH[:DOMAIN[:SEVERITY]],...")
      ->check(cli::Checked(CheckTail));
  app->add_option("--syslog-udp-buffer", f.syslog_udp_buffer,
                  "Receive buffer of each UDP input (bytes, or 8M, 512K): what a burst may queue in the "
                  "kernel; more is dropped and counted. Capped by net.core.rmem_max unless run with "
                  "CAP_NET_ADMIN")
      ->transform(CLI::AsSizeValue(/*kb_is_1000=*/false))
      ->check(CLI::Range(int64_t{4096}, int64_t{1} << 30))
      ->default_str("4M");
  cli::AddList(*app, "--syslog-tz", &f.syslog_tz,
               "Zone of RFC 3164 timestamps (they carry none): ZONE for every input, INPUT=ZONE for one "
               "(udp:HOST:PORT, tcp:HOST:PORT, file:PATH as configured); default: the agent's local zone")
      ->type_name("ZONE|INPUT=ZONE,...")
      ->check(cli::Checked(CheckZone));
  app->add_option("--syslog-max-message", f.syslog_max_message, "Longer syslog messages are truncated (bytes)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{256}, int64_t{16} << 20));
  app->add_option("--intake-max-mb", f.intake_max_mb,
                  "Commands waiting to be read, at most (MiB); beyond it a flood is dropped and counted "
                  "(the station resends its own)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{2047}));
  app->add_option("--syslog-spool-mb", f.syslog_spool_mb, "Log spool limit; beyond it the oldest lines are dropped")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cli::AddList(*app, "--trust", &f.trust,
               "Station public keys (station.pub) whose signed commands this node runs; none: unsigned "
               "commands run (development only)")
      ->type_name("FILE,...");
  app->add_option("--node-key", f.node_key, "This node's signing key (default <data-dir>/node.key, made if missing)")
      ->type_name("FILE");
  app->add_option("--facts", f.facts,
                  "Custom facts for targeting: a file of key=value lines (fact.KEY in --where), read "
                  "again for every hello")
      ->type_name("FILE");
  return app;
}

absl::StatusOr<AgentOptions> BuildOptions(const Settings& s, const config::Effective& effective) {
  auto bad = [&](absl::string_view key, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(effective.Describe(key), ": ", why));
  };
  if (s.heartbeat <= absl::ZeroDuration()) return bad("heartbeat", "must be longer than 0s");
  if (s.keep_results <= absl::ZeroDuration()) return bad("keep_results", "must be longer than 0s");
  if (s.config_probation < absl::Seconds(1)) return bad("config_probation", "must be 1s or longer");
  if (s.data_dir.empty()) return bad("data_dir", "must not be empty");
  AgentOptions opts;
  opts.node = s.node;
  opts.station = s.station;
  opts.heartbeat = s.heartbeat;
  opts.facts.file = s.facts;
  // One setting: a signed command must expire within the time its id is kept, so a
  // replay within its lifetime is always recognised.
  opts.security.max_ttl = s.keep_results;
  opts.nats.url = s.nats.url;
  opts.nats.tls_ca_file = s.nats.tls_ca;
  if (!s.nats.creds.empty()) {
    absl::StatusOr<BrokerCreds> c = ReadCreds(s.nats.creds);
    if (!c.ok()) return bad("creds", c.status().message());
    opts.nats.user = c->user;
    opts.nats.password = c->password;
  }
  opts.security.trusted = std::make_shared<signing::TrustedKeys>();
  for (const std::string& path : s.trust) {
    if (absl::Status st = opts.security.trusted->AddFile(path); !st.ok()) {
      return bad("trust", absl::StrCat(path, ": ", st.message()));
    }
  }
  opts.syslog.udp = s.syslog_udp;
  opts.syslog.tcp = s.syslog_tcp;
  for (const std::string& t : s.tail) {
    absl::StatusOr<syslog::TailSpec> tail = syslog::ParseTail(t);
    if (!tail.ok()) return bad("tail", tail.status().message());
    opts.syslog.tails.push_back(*std::move(tail));
  }
  absl::StatusOr<syslog::Zones> zones = syslog::ParseZones(s.syslog_tz);
  if (!zones.ok()) return bad("syslog_tz", zones.status().message());
  opts.syslog.zones = *std::move(zones);
  opts.syslog.udp_buffer_bytes = static_cast<size_t>(s.syslog_udp_buffer);
  opts.syslog.state_dir = s.data_dir + "/tail";
  opts.data_dir = s.data_dir;
  opts.run_dir = s.run_dir;
  opts.syslog.max_message_bytes = static_cast<size_t>(s.syslog_max_message);
  opts.syslog.spool_max_bytes = static_cast<size_t>(s.syslog_spool_mb) << 20;
  opts.intake_max_bytes = static_cast<size_t>(s.intake_max_mb) << 20;
  return opts;
}

absl::StatusOr<Config> LoadConfig(const std::vector<std::string>& args, config::Environment env) {
  return config::LoadProgram<Settings, AgentOptions>(args, kDefaultConfigFile, std::move(env), NewApp, BuildOptions);
}

}  // namespace steward::agent
