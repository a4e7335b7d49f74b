// Configuration of the daemons (steward-agent, steward-station): one value per option,
// from four layers, highest first:
//
//   flag         --heartbeat 10s
//   environment  STEWARD_HEARTBEAT=10s   (an option's own CLI11 envname where it has one:
//                                         --nats reads STEWARD_NATS_URL)
//   file         heartbeat = "10s"       (TOML, --config FILE, default /etc/steward/<program>.toml)
//   default      what the program's option table holds
//
// Every option of the CLI11 table has a key, derived from its long name: "--syslog-udp"
// is `syslog_udp`, and a TOML table is a prefix, so `[syslog] udp = [...]` is the same
// key. An option added to the table later gets its key, its environment variable and its
// place in --print-config without anything else to do.
//
// Types in the file follow the option: a flag takes a boolean, a list option an array (or
// one string), a number option an integer (or a float), anything else a string
// (durations too: "10s"). An unknown key, a wrong type, a value the option's own
// validator refuses, an unreadable file, and a secret in a file that group or others may
// read are errors naming the file and line; nothing is half applied.
//
//   CLI::App app(...);
//   ... app.add_option(...) ...
//   config::Layered layered(app, "/etc/steward/agent.toml");
//   if (auto done = layered.Parse(argc, argv)) return *done;   // prints help, errors, --print-config
//   ... the options' variables hold the effective values ...
//
// Load does the same without printing (a reload reads a fresh app with it): nothing but
// the file is read and nothing is changed outside the app's variables.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace steward::config {

// Where a value came from.
struct Source {
  enum class Kind { kDefault, kFile, kEnv, kFlag };
  Kind kind = Kind::kDefault;
  std::string where;  // "/etc/steward/agent.toml:12", "STEWARD_HEARTBEAT", "--heartbeat"
  // "default", "file /etc/steward/agent.toml:12", "env STEWARD_HEARTBEAT", "flag --heartbeat"
  std::string ToString() const;
};

// One option's effective value.
struct Entry {
  std::string key;   // "syslog_udp"
  std::string flag;  // "--syslog-udp"
  std::string env;   // "STEWARD_SYSLOG_UDP"
  std::string type;  // the option's type name: "DURATION", "INT", "HOST:PORT,..."
  bool list = false;   // takes several values
  bool flag_like = false;  // takes none (a boolean)
  bool secret = false;     // never printed; refused in a file others may read
  bool required = false;   // the program does not start without it
  bool set = false;        // false: the default (values then hold the default, if any)
  std::vector<std::string> values;
  Source source;
};

// The configuration a program runs with.
struct Effective {
  std::string program;
  std::string file;  // the configuration file read; "" when there was none
  std::vector<Entry> entries;  // in the option table's order

  const Entry* Find(absl::string_view key) const;
  // "key (file /etc/steward/agent.toml:7)": for errors found after loading.
  std::string Describe(absl::string_view key) const;
  // A TOML document of every key with its source as a comment; secrets as "<secret>",
  // unset options commented out. What --print-config prints.
  std::string ToToml() const;
};

// Looks up an environment variable; nullopt when unset.
using Environment = std::function<std::optional<std::string>(const std::string&)>;
Environment ProcessEnvironment();

// KeyOf gives the configuration key of a long option name: "--syslog-udp" -> "syslog_udp".
std::string KeyOf(absl::string_view long_name);
// EnvOf gives the default environment variable of a key: "syslog_udp" -> "STEWARD_SYSLOG_UDP".
std::string EnvOf(absl::string_view key);
// IsSecret: keys named like a password, token or secret, and URLs that carry a
// password ("nats://user:pw@host").
bool IsSecret(absl::string_view key, absl::string_view value);

class Layered {
 public:
  // Call once every option of `app` is defined; adds --config and --print-config.
  // `default_file` may be missing (then only defaults, environment and flags count);
  // a file named with --config or $STEWARD_CONFIG must exist.
  Layered(CLI::App& app, std::string default_file, Environment env = ProcessEnvironment());
  Layered(const Layered&) = delete;
  Layered& operator=(const Layered&) = delete;

  // For main(): nullopt when the program should go on with the app's variables set;
  // otherwise its exit status, after printing help or the version (0), a usage error or
  // a configuration error (cli::kUsageExit), or --print-config (0).
  std::optional<int> Parse(int argc, char** argv);
  std::optional<int> Parse(const std::vector<std::string>& args);

  // Load reads `args`, the environment and the file into the app without printing.
  // InvalidArgument for a usage error or a bad configuration (message as Parse prints it).
  absl::Status Load(const std::vector<std::string>& args);

  const Effective& effective() const { return effective_; }

 private:
  struct Option {
    CLI::Option* option;
    std::string env;
    bool required;
  };
  // After the command line is in the app: the environment, then the file, for every
  // option the command line left unset.
  absl::Status Apply();

  CLI::App& app_;
  const std::string default_file_;
  const Environment env_;
  std::vector<Option> options_;
  std::string config_file_;
  bool print_config_ = false;
  Effective effective_;
};

// What a program's configuration is once loaded: the option table's values, where
// each came from, and the options struct the program runs with.
template <typename Settings, typename Options>
struct Loaded {
  Settings settings;
  Effective effective;
  Options options;
};

// LoadProgram builds a fresh option table with `new_app(settings)`, loads `args`, the
// environment and the file into it, and turns the settings into options with
// `build(settings, effective)`: the whole of a program's configuration, without side
// effects (a reload calls it).
template <typename Settings, typename Options, typename NewApp, typename Build>
absl::StatusOr<Loaded<Settings, Options>> LoadProgram(const std::vector<std::string>& args,
                                                      const std::string& default_file, Environment env,
                                                      NewApp new_app, Build build) {
  Loaded<Settings, Options> out;
  std::unique_ptr<CLI::App> app = new_app(out.settings);
  Layered layered(*app, default_file, std::move(env));
  if (absl::Status st = layered.Load(args); !st.ok()) return st;
  out.effective = layered.effective();
  absl::StatusOr<Options> options = build(out.settings, out.effective);
  if (!options.ok()) return options.status();
  out.options = *std::move(options);
  return out;
}

}  // namespace steward::config
