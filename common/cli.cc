// The programs' shared command-line handling: CLI11 set up one way, a walk over the
// arguments before CLI11 reads them (names, near misses, options given before their
// subcommand), and usage errors mapped to one exit status.
#include "common/cli.h"

#include <pthread.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/utf8.h"

namespace steward::cli {
namespace {

constexpr size_t kMaxSuggestionEdits = 2;

bool IsOption(const std::string& arg) { return arg.size() > 1 && arg[0] == '-' && arg != "--"; }

// "--timeout=1s" -> "--timeout".
std::string OptionName(const std::string& arg) { return arg.substr(0, arg.find('=')); }

// Rewrites the name part of a long option ("--data_dir=x") to use `separator` ('-' or
// '_') between words; the value is left as it is.
void SpellName(std::string& arg, char separator) {
  if (arg.size() < 3 || arg[0] != '-' || arg[1] != '-') return;
  const size_t end = arg.find('=');
  for (size_t j = 2; j < arg.size() && j < end; ++j) {
    if (arg[j] == '-' || arg[j] == '_') arg[j] = separator;
  }
}

std::vector<const CLI::App*> Subcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* sub) { return !sub->get_name().empty(); });
}

const CLI::App* FindSubcommand(const CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : Subcommands(app)) {
    if (sub->check_name(name)) return sub;
  }
  return nullptr;
}

bool HasPositionals(const CLI::App& app) {
  return !app.get_options([](const CLI::Option* o) { return o->get_positional(); }).empty();
}

// The option `name` of `app` or, as CLI11 passes unknown options up, of its parents.
const CLI::Option* FindAbove(const CLI::App* app, const std::string& name) {
  for (; app != nullptr; app = app->get_parent()) {
    if (const CLI::Option* o = app->get_option_no_throw(name)) return o;
  }
  return nullptr;
}

// The option `name` of one of `app`'s subcommands, at any depth.
const CLI::Option* FindBelow(const CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : Subcommands(app)) {
    if (const CLI::Option* o = sub->get_option_no_throw(name)) return o;
    if (const CLI::Option* o = FindBelow(*sub, name)) return o;
  }
  return nullptr;
}

void LongNames(const CLI::App& app, std::vector<std::string>& out) {
  for (const CLI::Option* o : app.get_options()) {
    for (const std::string& name : o->get_lnames()) out.push_back("--" + name);
  }
}

// Every option name usable at `app`: its own, its parents', its subcommands'.
std::vector<std::string> OptionNamesAround(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* a = &app; a != nullptr; a = a->get_parent()) LongNames(*a, names);
  std::vector<const CLI::App*> below = Subcommands(app);
  while (!below.empty()) {
    const CLI::App* sub = below.back();
    below.pop_back();
    LongNames(*sub, names);
    for (const CLI::App* s : Subcommands(*sub)) below.push_back(s);
  }
  return names;
}

std::string Suggestion(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string near = Closest(word, candidates);
  return near.empty() ? "" : absl::StrCat("; did you mean \"", near, "\"?");
}

// "stewardctl send" for the send subcommand of stewardctl.
std::string CommandPath(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* a = &app; a != nullptr; a = a->get_parent()) names.push_back(a->get_name());
  std::reverse(names.begin(), names.end());
  return absl::StrJoin(names, " ");
}

// The subcommand CLI11 had reached when it stopped (the app itself if none).
const CLI::App& Deepest(const CLI::App& app) {
  const CLI::App* at = &app;
  for (std::vector<CLI::App*> subs = at->get_subcommands(); !subs.empty(); subs = at->get_subcommands()) {
    at = subs.back();
  }
  return *at;
}

// Walks the arguments as CLI11 will (stopping at "--"): moves options that belong to a
// subcommand but stand before its name to just after it, and turns an unknown option or
// subcommand into a usage error with a suggestion. Returns the error text, or "".
std::string Arrange(const CLI::App& app, std::vector<std::string>& args, const CLI::App*& at) {
  std::vector<std::string> out, early;
  at = &app;
  size_t i = 0;
  for (; i < args.size() && args[i] != "--"; ++i) {
    const std::string& arg = args[i];
    if (IsOption(arg)) {
      const std::string name = OptionName(arg);
      const CLI::Option* opt = FindAbove(at, name);
      std::vector<std::string>* to = &out;
      if (opt == nullptr && (opt = FindBelow(*at, name)) != nullptr) to = &early;
      if (opt == nullptr) {
        return absl::StrCat("unknown option ", name, Suggestion(name, OptionNamesAround(*at)));
      }
      to->push_back(arg);
      if (opt->get_expected_max() > 0 && arg.find('=') == std::string::npos && i + 1 < args.size()) {
        to->push_back(args[++i]);
      }
      continue;
    }
    if (const CLI::App* sub = FindSubcommand(*at, arg)) {
      out.push_back(arg);
      out.insert(out.end(), early.begin(), early.end());
      early.clear();
      at = sub;
      continue;
    }
    if (!Subcommands(*at).empty() && !HasPositionals(*at)) {
      std::vector<std::string> names;
      for (const CLI::App* sub : Subcommands(*at)) names.push_back(sub->get_name());
      return absl::StrCat("unknown subcommand \"", arg, "\"", Suggestion(arg, names));
    }
    out.push_back(arg);
  }
  // Options that belong to no subcommand given: CLI11 says they were not expected.
  out.insert(out.end(), early.begin(), early.end());
  out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  args = std::move(out);
  return "";
}

}  // namespace

void Setup(CLI::App& app) {
  app.set_version_flag("--version", absl::StrCat(app.get_name(), " ", STEWARD_VERSION),
                       "Print the version and exit");
  app.set_help_flag("-h,--help", "Print this help and exit");
  app.fallthrough();
  app.get_formatter()->column_width(34);
}

void AddNatsFlags(CLI::App& app, NatsFlags* flags) {
  flags->url = kDefaultNatsUrl;
  app.add_option("--nats", flags->url, "NATS URL")
      ->type_name("URL")
      ->envname("STEWARD_NATS_URL")
      ->capture_default_str();
  app.add_option("--creds", flags->creds, "Broker credentials file (user, password)")->type_name("FILE");
  app.add_option("--tls-ca", flags->tls_ca, "CA bundle: connect to NATS over TLS and verify the server")
      ->type_name("FILE");
}

CLI::Option* AddDuration(CLI::App& app, const std::string& name, absl::Duration* value,
                         const std::string& description) {
  CLI::Option* opt = app.add_option_function<std::string>(
      name, [value](const std::string& text) { absl::ParseDuration(text, value); },  // checked below
      description);
  opt->type_name("DURATION");
  opt->check(CLI::Validator(
      [](std::string& text) -> std::string {
        absl::Duration d;
        if (!absl::ParseDuration(text, &d)) return absl::StrCat("\"", text, "\" is not a duration (10s, 1m30s, 500ms)");
        // No option takes a time back: a negative one is a typo, said before anything is done.
        return d < absl::ZeroDuration() ? absl::StrCat("\"", text, "\" is negative") : "";
      },
      ""));
  if (*value != absl::ZeroDuration()) opt->default_str(absl::FormatDuration(*value));
  return opt;
}

CLI::Validator Checked(std::function<absl::Status(const std::string&)> check) {
  return CLI::Validator(
      [check = std::move(check)](std::string& text) -> std::string {
        const absl::Status st = check(text);
        return st.ok() ? "" : std::string(st.message());
      },
      "");
}

CLI::Validator Text() {
  return Checked([](const std::string& s) {
    return SanitizeUtf8(s) == s ? absl::OkStatus()
                                : absl::InvalidArgumentError(absl::StrCat("\"", SanitizeUtf8(s), "\" is not UTF-8 text"));
  });
}

CLI::Option* AddList(CLI::App& app, const std::string& name, std::vector<std::string>* values,
                     const std::string& description) {
  return app.add_option(name, *values, description)->delimiter(',')->allow_extra_args(false);
}

namespace {

// The usage error of `args` ("" when they parsed), and in `at` the command it concerns.
// --help and --version throw CLI::Success.
std::string ParseOrWhy(CLI::App& app, std::vector<std::string> args, const CLI::App*& at) {
  for (std::string& arg : args) {
    if (arg == "--") break;
    SpellName(arg, '-');
  }
  if (std::string why = Arrange(app, args, at); !why.empty()) return why;
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  try {
    app.parse(args);
  } catch (const CLI::Success&) {
    throw;
  } catch (const CLI::ParseError& e) {
    at = &Deepest(app);
    return e.what();
  }
  return "";
}

}  // namespace

std::optional<int> Parse(CLI::App& app, std::vector<std::string> args) {
  if (args.size() == 1 && args[0] == "--bash-completion") {
    std::cout << BashCompletion(app);
    return 0;
  }
  const CLI::App* at = &app;
  std::string why;
  try {
    why = ParseOrWhy(app, std::move(args), at);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  }
  if (!why.empty()) return UsageError(*at, why);
  return std::nullopt;
}

absl::Status ParseArgs(CLI::App& app, std::vector<std::string> args) {
  const CLI::App* at = &app;
  std::string why;
  try {
    why = ParseOrWhy(app, std::move(args), at);
  } catch (const CLI::Success&) {
    why = "--help and --version are not taken here";
  }
  if (!why.empty()) return absl::InvalidArgumentError(absl::StrCat(CommandPath(*at), ": ", why));
  return absl::OkStatus();
}

std::optional<int> Parse(CLI::App& app, int argc, char** argv) {
  return Parse(app, std::vector<std::string>(argv + 1, argv + argc));
}

namespace {

// One `case` arm per command path (" send", " node forget"): the words to offer there.
void CompletionArms(const CLI::App& app, const std::string& path, std::vector<std::string> options,
                    std::string& arms, std::string& paths, std::string& file_options, std::string& dir_options,
                    std::string& value_options) {
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_lnames().empty()) continue;
    const std::string name = "--" + o->get_lnames().front();
    options.push_back(name);
    const std::string type = o->get_type_name();
    if (o->get_type_size_max() == 0) continue;
    if (absl::StartsWith(type, "FILE")) {
      absl::StrAppend(&file_options, "|", name);
    } else if (absl::StartsWith(type, "DIR")) {
      absl::StrAppend(&dir_options, "|", name);
    } else {
      absl::StrAppend(&value_options, "|", name);
    }
  }
  std::vector<std::string> words;
  for (const CLI::App* sub : Subcommands(app)) {
    words.push_back(sub->get_name());
    absl::StrAppend(&paths, "      \"", path, " ", sub->get_name(), "\") path=\"$path $word\" ;;\n");
  }
  words.insert(words.end(), options.begin(), options.end());
  absl::StrAppend(&arms, "    \"", path, "\") words=\"", absl::StrJoin(words, " "), "\" ;;\n");
  for (const CLI::App* sub : Subcommands(app)) {
    CompletionArms(*sub, absl::StrCat(path, " ", sub->get_name()), options, arms, paths, file_options,
                   dir_options, value_options);
  }
}

}  // namespace

std::string BashCompletion(const CLI::App& app) {
  std::string arms, paths, file_options, dir_options, value_options;
  CompletionArms(app, "", {}, arms, paths, file_options, dir_options, value_options);
  std::string fn = "_" + app.get_name();
  absl::StrReplaceAll({{"-", "_"}}, &fn);
  auto pattern = [](const std::string& alternatives) {
    return alternatives.empty() ? std::string("--no-such-option") : alternatives.substr(1);
  };
  return absl::StrCat(
      "# bash completion for ", app.get_name(), ", made from its option table (", app.get_name(),
      " --bash-completion)\n", fn, "() {\n",
      "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\" path=\"\" word words i\n",
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n", "    word=\"${COMP_WORDS[i]}\"\n",
      "    [[ \"$word\" == \"--\" ]] && { COMPREPLY=($(compgen -c -- \"$cur\")); return 0; }\n",
      "    case \"$path $word\" in\n", paths, "    esac\n", "  done\n", "  case \"$prev\" in\n",
      "    ", pattern(file_options), ") COMPREPLY=($(compgen -f -- \"$cur\")); return 0 ;;\n", "    ",
      pattern(dir_options), ") COMPREPLY=($(compgen -d -- \"$cur\")); return 0 ;;\n", "    ",
      pattern(value_options), ") return 0 ;;\n", "  esac\n", "  case \"$path\" in\n", arms, "  esac\n",
      "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n", "}\n", "complete -o default -F ", fn, " ",
      app.get_name(), "\n");
}

int UsageError(const CLI::App& command, absl::string_view why) {
  std::cerr << CommandPath(command) << ": " << why << "\n"
            << "Run `" << CommandPath(command) << " --help` for usage.\n";
  return kUsageExit;
}

std::string Closest(absl::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_edits = kMaxSuggestionEdits + 1;
  for (const std::string& c : candidates) {
    // Levenshtein distance, one row at a time.
    std::vector<size_t> row(c.size() + 1);
    for (size_t j = 0; j <= c.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= word.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= c.size(); ++j) {
        const size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (word[i - 1] == c[j - 1] ? 0 : 1)});
        diagonal = up;
      }
    }
    if (row[c.size()] < best_edits) {
      best_edits = row[c.size()];
      best = c;
    }
  }
  return best;
}

}  // namespace steward::cli

namespace steward {

std::string DefaultNatsUrl() {
  const char* env = std::getenv("STEWARD_NATS_URL");
  return env != nullptr && *env != '\0' ? env : cli::kDefaultNatsUrl;
}

sigset_t BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

}  // namespace steward
