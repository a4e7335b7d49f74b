// Command lines of steward's programs (steward-agent, steward-station, stewardctl), on
// CLI11: what the three share, so that they read and fail alike.
//
//   CLI::App app("steward-agent: ...", "steward-agent");
//   steward::cli::Setup(app);                       // --version, errors, help layout
//   steward::cli::AddNatsFlags(app, &nats);         // --nats ($STEWARD_NATS_URL), --creds, --tls-ca
//   steward::cli::AddDuration(app, "--heartbeat", &heartbeat, "Interval between hellos");
//   if (auto done = steward::cli::Parse(app, argc, argv)) return *done;
//
// Options are named with dashes (--data-dir) and may be written with underscores
// (--data_dir); values follow as "--opt value" or "--opt=value". Usage errors (an
// unknown option or subcommand, a missing or bad value) print one line saying why, with
// a suggestion for a near miss, and exit with kUsageExit.
#pragma once

#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace steward::cli {

inline constexpr char kDefaultNatsUrl[] = "nats://127.0.0.1:4222";
// The exit status of a usage error (as the BSD sysexits and most tools use).
inline constexpr int kUsageExit = 2;

// Setup gives `app` what every steward program has: --version ("NAME VERSION"), help
// that lists each subcommand on one line, and options that subcommands do not know
// passed up to their parents (so global options may follow a subcommand). Call it
// before adding subcommands: they inherit these settings.
void Setup(CLI::App& app);

// How a program reaches the broker.
struct NatsFlags {
  std::string url;     // --nats: $STEWARD_NATS_URL when not given, else kDefaultNatsUrl
  std::string creds;   // --creds: a broker credentials file (user, password)
  std::string tls_ca;  // --tls-ca: a CA bundle; connect over TLS and verify the server
};
// AddNatsFlags adds --nats, --creds and --tls-ca.
void AddNatsFlags(CLI::App& app, NatsFlags* flags);

// AddDuration adds an option whose value absl::ParseDuration reads ("10s", "1m30s",
// "500ms", "24h"; not negative: a usage error); `value` holds the default and shows in
// --help unless it is zero.
CLI::Option* AddDuration(CLI::App& app, const std::string& name, absl::Duration* value,
                         const std::string& description);

// AddList adds an option holding a list: comma-separated values ("--trust a.pub,b.pub"),
// and the option may be repeated ("--trust a.pub --trust b.pub").
CLI::Option* AddList(CLI::App& app, const std::string& name, std::vector<std::string>* values,
                     const std::string& description);

// Checked wraps a check that returns a Status as a CLI11 validator (its message is the
// usage error): `app.add_option(...)->check(cli::Checked(subjects::ValidateToken))`.
CLI::Validator Checked(std::function<absl::Status(const std::string&)> check);
// Text: a value that must be UTF-8 (it goes into a protobuf string).
CLI::Validator Text();

// Parse reads the command line into `app`. nullopt: go on. Otherwise the program should
// exit with the status returned: 0 after --help or --version (printed on stdout),
// kUsageExit after a usage error (printed on stderr). Options of a subcommand given
// before its name (`stewardctl --wait 30s send ...`) are read as the subcommand's.
std::optional<int> Parse(CLI::App& app, std::vector<std::string> args);
std::optional<int> Parse(CLI::App& app, int argc, char** argv);
// ParseArgs is Parse without printing: InvalidArgument with the usage error ("PROGRAM:
// why"); --help and --version are usage errors here.
absl::Status ParseArgs(CLI::App& app, std::vector<std::string> args);

// BashCompletion returns a bash completion script for `app` made from its option table:
// subcommands at any depth, each level's long options (its parents' too), file names
// after options whose type is FILE or DIR. Every program prints it for
// `PROGRAM --bash-completion` (a hidden option, used when packaging).
std::string BashCompletion(const CLI::App& app);

// UsageError prints "PROGRAM SUBCOMMAND: why" and where to find help on stderr, for a
// usage error found after Parse; returns kUsageExit.
int UsageError(const CLI::App& command, absl::string_view why);

// Closest returns the candidate at most two edits from `word` (the nearest), or "".
std::string Closest(absl::string_view word, const std::vector<std::string>& candidates);

}  // namespace steward::cli

namespace steward {

// $STEWARD_NATS_URL, or cli::kDefaultNatsUrl.
std::string DefaultNatsUrl();

// Blocks SIGINT and SIGTERM in the calling thread (call first in main, before any
// thread exists, so every thread inherits the mask) and returns the set.
sigset_t BlockTerminationSignals();

}  // namespace steward
