// Layered configuration: the command line first (CLI11), then, for every option it left
// unset, the environment and the TOML file (toml++, for its source positions), each
// value fed through the option's own CLI11 conversion and validators.
#include "common/config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <toml++/toml.h>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/cli.h"

namespace steward::config {
namespace {

constexpr char kConfigEnv[] = "STEWARD_CONFIG";
constexpr char kSecretShown[] = "<secret>";

// A value of the file, flattened: tables are key prefixes.
struct FileValue {
  const toml::node* node;
  int64_t line;
};

// The option's type without what its validators add ("INT:INT in [1 - 5]" -> "INT").
std::string BaseType(const std::string& type) {
  for (const char* numeric : {"INT", "UINT", "FLOAT", "NUMBER"}) {
    if (type == numeric || absl::StartsWith(type, absl::StrCat(numeric, ":"))) return numeric;
  }
  return type;
}

bool IsNumericType(const std::string& type) {
  const std::string base = BaseType(type);
  return base == "INT" || base == "UINT" || base == "FLOAT" || base == "NUMBER";
}

bool IsIntegerType(const std::string& type) {
  const std::string base = BaseType(type);
  return base == "INT" || base == "UINT";
}

// A TOML basic string.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += absl::StrFormat("\\u%04x", u);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

const char* TomlTypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

// The scalar as the option's text; nullopt for a type no option takes.
std::optional<std::string> ScalarText(const toml::node& n) {
  if (const auto* s = n.as_string()) return s->get();
  if (const auto* i = n.as_integer()) return std::to_string(i->get());
  if (const auto* f = n.as_floating_point()) {
    std::ostringstream out;
    out << f->get();
    return out.str();
  }
  if (const auto* b = n.as_boolean()) return b->get() ? "true" : "false";
  return std::nullopt;
}

// Checks a file value against what the option takes and turns it into the option's
// results; the error says what was expected.
absl::StatusOr<std::vector<std::string>> FileValues(const Entry& e, const toml::node& n) {
  auto wrong = [&](const std::string& expected) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", expected, ", got ", TomlTypeName(n)));
  };
  if (e.flag_like) {
    if (!n.is_boolean()) return wrong("a boolean (true or false)");
    return std::vector<std::string>{*ScalarText(n)};
  }
  if (e.list) {
    std::vector<std::string> out;
    if (n.is_string()) return std::vector<std::string>{*ScalarText(n)};
    const toml::array* a = n.as_array();
    if (a == nullptr) return wrong(absl::StrCat("an array of ", IsNumericType(e.type) ? "numbers" : "strings"));
    for (const toml::node& item : *a) {
      if (IsNumericType(e.type) ? !(item.is_integer() || item.is_floating_point()) : !item.is_string()) {
        return absl::InvalidArgumentError(absl::StrCat("expected an array of ",
                                                       IsNumericType(e.type) ? "numbers" : "strings",
                                                       ", got ", TomlTypeName(item), " in it"));
      }
      out.push_back(*ScalarText(item));
    }
    return out;
  }
  if (IsNumericType(e.type)) {
    if (!(n.is_integer() || (!IsIntegerType(e.type) && n.is_floating_point()))) {
      return wrong(IsIntegerType(e.type) ? "an integer" : "a number");
    }
    return std::vector<std::string>{*ScalarText(n)};
  }
  if (!n.is_string()) {
    return wrong(e.type == "DURATION" ? "a string (a duration such as \"10s\")" : "a string");
  }
  return std::vector<std::string>{*ScalarText(n)};
}

// Walks `table`, flattening nested tables into "prefix_key"; repeats are errors.
void Flatten(const toml::table& table, const std::string& prefix, std::map<std::string, FileValue>& out,
             std::vector<std::string>& errors, const std::string& file) {
  for (const auto& [k, v] : table) {
    std::string key = absl::StrCat(prefix, prefix.empty() ? "" : "_", std::string(k.str()));
    absl::StrReplaceAll({{"-", "_"}}, &key);
    if (const toml::table* t = v.as_table()) {
      Flatten(*t, key, out, errors, file);
      continue;
    }
    const int64_t line = static_cast<int64_t>(v.source().begin.line);
    auto [it, inserted] = out.emplace(key, FileValue{&v, line});
    if (!inserted) {
      errors.push_back(absl::StrCat(file, ":", std::max(line, it->second.line), ": ", key,
                                    " is set twice (also on line ", std::min(line, it->second.line), ")"));
    }
  }
}

// Reads and parses `path`. `explicit_file`: named by the operator, so it must exist.
absl::StatusOr<std::optional<toml::table>> ReadFile(const std::string& path, bool explicit_file,
                                                    struct stat& st) {
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT && !explicit_file) return std::optional<toml::table>();
    return absl::InvalidArgumentError(absl::StrCat("configuration file ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("configuration file ", path, ": not a regular file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration file ", path, ": cannot read it: ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    return std::optional<toml::table>(toml::parse(text.str(), path));
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", e.source().begin.line, ":", e.source().begin.column,
                                                   ": ", std::string(e.description())));
  }
}

// "--heartbeat: bad" from CLI11 -> "bad".
std::string WithoutName(std::string what, const std::string& flag) {
  for (const std::string& prefix : {flag + ": ", flag + " "}) {
    if (absl::StartsWith(what, prefix)) return what.substr(prefix.size());
  }
  return what;
}

// The option's default as a list of values (CLI11 prints vectors as "[a,b]").
std::vector<std::string> DefaultValues(CLI::Option* opt, bool list) {
  const std::string saved = opt->get_default_str();
  opt->capture_default_str();
  std::string d = opt->get_default_str();
  opt->default_str(saved);
  if (d.empty()) d = saved;
  if (d.empty()) return {};
  if (list && d.size() >= 2 && d.front() == '[' && d.back() == ']') {
    d = d.substr(1, d.size() - 2);
    if (d.empty()) return {};
    return absl::StrSplit(d, ',');
  }
  return {d};
}

std::string ValueText(const Entry& e) {
  if (e.secret) return Quote(kSecretShown);
  auto one = [&](const std::string& v) {
    if (e.flag_like && (v == "true" || v == "false")) return v;
    if (IsNumericType(e.type) && !v.empty() && v.find_first_not_of("-+.0123456789eE") == std::string::npos) return v;
    return Quote(v);
  };
  if (e.list) {
    std::vector<std::string> items;
    for (const std::string& v : e.values) items.push_back(one(v));
    return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
  }
  if (e.flag_like && (e.values.empty() || e.values.front().empty())) return "false";
  return e.values.empty() ? Quote("") : one(e.values.front());
}

}  // namespace

std::string Source::ToString() const {
  switch (kind) {
    case Kind::kDefault: return "default";
    case Kind::kFile: return absl::StrCat("file ", where);
    case Kind::kEnv: return absl::StrCat("env ", where);
    case Kind::kFlag: return absl::StrCat("flag ", where);
  }
  return "";
}

const Entry* Effective::Find(absl::string_view key) const {
  for (const Entry& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

std::string Effective::Describe(absl::string_view key) const {
  const Entry* e = Find(key);
  if (e == nullptr) return std::string(key);
  return absl::StrCat(key, " (", e->source.ToString(), ")");
}

std::string Effective::ToToml() const {
  std::string out = absl::StrCat("# ", program, ": effective configuration (",
                                 file.empty() ? "no configuration file" : absl::StrCat("file ", file),
                                 ")\n# precedence: flag > environment > file > default\n");
  for (const Entry& e : entries) {
    const bool shown = e.set || e.flag_like || !e.values.empty();
    const std::string line = absl::StrCat(shown ? "" : "# ", e.key, " = ", ValueText(e));
    absl::StrAppend(&out, line, std::string(line.size() < 40 ? 40 - line.size() : 1, ' '), "# ",
                    e.source.ToString(), shown ? "" : (e.required ? " (required, not set)" : " (not set)"), "\n");
  }
  return out;
}

Environment ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::string KeyOf(absl::string_view long_name) {
  while (absl::ConsumePrefix(&long_name, "-")) {
  }
  std::string key(long_name);
  absl::StrReplaceAll({{"-", "_"}}, &key);
  return key;
}

std::string EnvOf(absl::string_view key) { return absl::StrCat("STEWARD_", absl::AsciiStrToUpper(key)); }

namespace {

// Where the password of "scheme://user:password@host..." is, if it has one.
std::optional<std::pair<size_t, size_t>> UrlPassword(absl::string_view value) {
  const size_t scheme = value.find("://");
  if (scheme == absl::string_view::npos) return std::nullopt;
  const size_t start = scheme + 3;
  const absl::string_view authority = value.substr(start, value.substr(start).find('/'));
  const size_t at = authority.rfind('@');
  if (at == absl::string_view::npos) return std::nullopt;
  const size_t colon = authority.substr(0, at).find(':');
  if (colon == absl::string_view::npos) return std::nullopt;
  return std::make_pair(start + colon + 1, start + at);
}

}  // namespace

bool IsSecret(absl::string_view key, absl::string_view value) {
  for (absl::string_view word : {"password", "token", "secret"}) {
    if (absl::StrContains(key, word)) return true;
  }
  return UrlPassword(value).has_value();
}

Layered::Layered(CLI::App& app, std::string default_file, Environment env)
    : app_(app), default_file_(std::move(default_file)), env_(std::move(env)) {
  for (CLI::Option* opt : app_.get_options()) {
    if (opt->get_lnames().empty() || opt == app_.get_help_ptr() || opt == app_.get_version_ptr()) continue;
    Option o{opt, opt->get_envname().empty() ? EnvOf(KeyOf(opt->get_lnames().front())) : opt->get_envname(),
             opt->get_required()};
    // This layer reads the environment and checks what is required, after the file.
    opt->envname("");
    if (o.required) {
      opt->required(false);
      opt->description(opt->get_description() + " (required)");
    }
    options_.push_back(std::move(o));
  }
  std::vector<std::string> own_env;
  for (const Option& o : options_) {
    const std::string key = KeyOf(o.option->get_lnames().front());
    if (o.env != EnvOf(key)) own_env.push_back(absl::StrCat("--", o.option->get_lnames().front(), ": ", o.env));
  }
  app_.add_option("--config", config_file_,
                  absl::StrCat("Configuration file (TOML; default ", default_file_, ", if present; $", kConfigEnv, ")"))
      ->type_name("FILE");
  app_.add_flag("--print-config", print_config_,
                "Print the effective configuration, with where each value comes from, and exit");
  app_.footer(absl::StrCat(
      "Every option is also a key of the configuration file, its long name with '_' for '-' "
      "(--data-dir: data_dir = \"...\"; a [table] is a prefix: [syslog] udp = syslog_udp), and an "
      "environment variable, STEWARD_ and the key in capitals (STEWARD_DATA_DIR",
      own_env.empty() ? "" : absl::StrCat("; ", absl::StrJoin(own_env, ", ")),
      "). Flags win over the environment, which wins over the file. See ", app_.get_name(), "(8)."));
}

std::optional<int> Layered::Parse(int argc, char** argv) {
  return Parse(std::vector<std::string>(argv + 1, argv + argc));
}

std::optional<int> Layered::Parse(const std::vector<std::string>& args) {
  if (std::optional<int> done = cli::Parse(app_, args)) return done;
  if (absl::Status st = Apply(); !st.ok()) {
    std::cerr << app_.get_name() << ": " << st.message() << "\n";
    return cli::kUsageExit;
  }
  if (print_config_) {
    std::cout << effective_.ToToml();
    return 0;
  }
  return std::nullopt;
}

absl::Status Layered::Load(const std::vector<std::string>& args) {
  if (absl::Status st = cli::ParseArgs(app_, args); !st.ok()) return st;
  if (absl::Status st = Apply(); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(app_.get_name(), ": ", st.message()));
  }
  return absl::OkStatus();
}

absl::Status Layered::Apply() {
  effective_ = Effective{.program = app_.get_name()};
  std::vector<std::string> errors;

  // The file: named on the command line or in the environment (then it must exist), or
  // the default.
  std::string path = default_file_;
  bool explicit_file = false;
  if (app_.get_option("--config")->count() > 0) {
    path = config_file_;
    explicit_file = true;
  } else if (std::optional<std::string> e = env_(kConfigEnv); e.has_value() && !e->empty()) {
    path = *e;
    explicit_file = true;
  }
  struct stat st {};
  std::map<std::string, FileValue> file_values;
  std::optional<toml::table> table;
  if (!path.empty()) {
    auto read = ReadFile(path, explicit_file, st);
    if (!read.ok()) return read.status();
    table = *std::move(read);
  }
  if (table.has_value()) {
    effective_.file = path;
    Flatten(*table, "", file_values, errors, path);
  }
  std::map<std::string, const Option*> by_key;
  for (const Option& o : options_) by_key[KeyOf(o.option->get_lnames().front())] = &o;
  for (const auto& [key, v] : file_values) {
    if (by_key.count(key) != 0) continue;
    std::vector<std::string> keys;
    for (const auto& [k, o] : by_key) keys.push_back(k);
    std::string near = cli::Closest(key, keys);
    // "[syslog] tail" is syslog_tail; the option may be plain --tail.
    if (const size_t us = key.find('_'); near.empty() && us != std::string::npos) {
      near = cli::Closest(key.substr(us + 1), keys);
    }
    errors.push_back(absl::StrCat(path, ":", v.line, ": unknown key \"", key, "\"",
                                  near.empty() ? "" : absl::StrCat(" (did you mean \"", near, "\"?)")));
  }

  const bool file_private = (st.st_mode & 077) == 0;
  for (const Option& o : options_) {
    CLI::Option* opt = o.option;
    Entry e;
    e.key = KeyOf(opt->get_lnames().front());
    e.flag = "--" + opt->get_lnames().front();
    e.env = o.env;
    e.type = opt->get_type_name();
    e.flag_like = opt->get_expected_max() == 0;
    e.list = !e.flag_like && opt->get_items_expected_max() > 1;
    auto feed = [&](const std::vector<std::string>& values, const std::string& where) {
      try {
        opt->add_result(values);
        opt->run_callback();
        return true;
      } catch (const CLI::Error& err) {
        errors.push_back(absl::StrCat(where, ": ", e.key, ": ", WithoutName(err.what(), e.flag)));
        return false;
      }
    };
    if (opt->count() > 0) {
      e.set = true;
      e.source = {Source::Kind::kFlag, e.flag};
      e.values = opt->results();
    } else if (std::optional<std::string> env = env_(o.env); env.has_value()) {
      e.set = true;
      e.source = {Source::Kind::kEnv, o.env};
      if (!feed({*env}, absl::StrCat("$", o.env))) continue;
      e.values = opt->results();
    } else if (auto it = file_values.find(e.key); it != file_values.end()) {
      const std::string where = absl::StrCat(path, ":", it->second.line);
      e.set = true;
      e.source = {Source::Kind::kFile, where};
      absl::StatusOr<std::vector<std::string>> values = FileValues(e, *it->second.node);
      if (!values.ok()) {
        errors.push_back(absl::StrCat(where, ": ", e.key, ": ", values.status().message()));
        continue;
      }
      if (!feed(*values, where)) continue;
      e.values = opt->results();
    } else {
      e.values = DefaultValues(opt, e.list);
    }
    for (const std::string& v : e.values) e.secret = e.secret || IsSecret(e.key, v);
    e.required = o.required;
    // --print-config shows what is missing rather than stopping at it.
    if (o.required && !e.set && !print_config_) {
      errors.push_back(absl::StrCat(e.flag, " is required (or set ", e.key, " in ",
                                    table.has_value() ? path : default_file_, ", or $", o.env, ")"));
    }
    if (e.secret && e.source.kind == Source::Kind::kFile && !file_private) {
      errors.push_back(absl::StrCat(e.source.where, ": ", e.key, " holds a secret, but group or others may read ",
                                    path, " (mode ", absl::StrFormat("%04o", st.st_mode & 07777),
                                    "): chmod 600 ", path, " (owned by the user the program runs as)"));
    }
    effective_.entries.push_back(std::move(e));
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  return absl::OkStatus();
}

}  // namespace steward::config
