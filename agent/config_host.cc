// ConfigHost: validate, write and reload the agent's configuration file.
#include "agent/config_host.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/atomic_write.h"
#include "common/cli.h"
#include "common/signing.h"
#include "common/status_macros.h"
#include "common/time_text.h"

namespace steward::agent {
namespace {

// The command line without any --config, so that a candidate file can be named.
std::vector<std::string> WithoutConfigFlag(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config") {
      ++i;
      continue;
    }
    if (absl::StartsWith(args[i], "--config=")) continue;
    out.push_back(args[i]);
  }
  return out;
}

std::map<std::string, std::vector<std::string>> Values(const config::Effective& e) {
  std::map<std::string, std::vector<std::string>> out;
  for (const config::Entry& entry : e.entries) out[entry.key] = entry.values;
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The values `doc` gives `key` (flat, or as "[prefix] rest"), as strings; nullopt when
// it does not mention it.
std::optional<std::vector<std::string>> FileValues(const toml::table& doc, const std::string& key) {
  const toml::node* node = doc.get(key);
  if (node == nullptr) {
    if (const size_t us = key.find('_'); us != std::string::npos) {
      if (const toml::table* t = doc.get_as<toml::table>(key.substr(0, us))) node = t->get(key.substr(us + 1));
    }
  }
  if (node == nullptr) return std::nullopt;
  auto text = [](const toml::node& n) {
    if (const auto* v = n.as_string()) return v->get();
    std::ostringstream out;
    n.visit([&out](const auto& x) { out << x; });
    return out.str();
  };
  std::vector<std::string> out;
  if (const toml::array* arr = node->as_array()) {
    for (const toml::node& n : *arr) out.push_back(text(n));
  } else {
    out.push_back(text(*node));
  }
  return out;
}

// Where a change is written: the file itself, or what a symlink at its name points to
// (an atomic write replaces a link with a file, and the target would keep the old text).
std::string WriteTarget(const std::string& file) {
  std::error_code ec;
  if (!std::filesystem::is_symlink(file, ec)) return file;
  std::filesystem::path target = std::filesystem::weakly_canonical(file, ec);
  return ec ? file : target.string();
}

// The undo record of a change on trial, next to the file it changed.
std::string UndoRecordPath(const std::string& file) { return file + ".undo"; }
// What the last undo did and why (LastUndone), next to the file it put back: the note
// outlives a restart of the agent, until the next change made through the agent.
std::string UndoneNotePath(const std::string& file) { return file + ".undone"; }

}  // namespace

std::string ConfigHost::EncodeUndo(const Undo& u) {
  // Base64: a file edited by hand before the change need not be UTF-8, which JSON text is.
  nlohmann::json j = {{"file", u.file},
                      {"existed", u.existed},
                      {"previous_base64", absl::Base64Escape(u.previous)},
                      {"installed_base64", absl::Base64Escape(u.installed)},
                      {"mode", static_cast<int>(u.mode)},
                      {"probation_ms", absl::ToInt64Milliseconds(u.probation)}};
  return j.dump() + "\n";
}

std::optional<ConfigHost::Undo> ConfigHost::DecodeUndo(const std::string& text) {
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    Undo u;
    u.file = j.at("file").get<std::string>();
    u.existed = j.at("existed").get<bool>();
    u.mode = static_cast<mode_t>(j.at("mode").get<int>() & 07777);
    u.probation = absl::Milliseconds(std::max<int64_t>(j.at("probation_ms").get<int64_t>(), 1000));
    if (!absl::Base64Unescape(j.at("previous_base64").get<std::string>(), &u.previous) ||
        !absl::Base64Unescape(j.at("installed_base64").get<std::string>(), &u.installed)) {
      return std::nullopt;
    }
    return u;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::string ConfigHash(const config::Effective& effective) {
  std::string text;
  for (const config::Entry& e : effective.entries) {
    absl::StrAppend(&text, e.key, "=", e.secret ? (e.values.empty() ? "" : "set") : absl::StrJoin(e.values, ","),
                    "\n");
  }
  return absl::StrCat("sha256:", absl::BytesToHexString(signing::Sha256(text)).substr(0, 16));
}

std::set<std::string> ChangedKeys(const config::Effective& a, const config::Effective& b) {
  std::map<std::string, std::vector<std::string>> va = Values(a), vb = Values(b);
  std::set<std::string> out;
  for (const auto& [key, values] : va) {
    if (vb[key] != values) out.insert(key);
  }
  for (const auto& [key, values] : vb) {
    if (!va.contains(key)) out.insert(key);
  }
  return out;
}

bool NeedsServiceRestart(const std::string& key) {
  return key == "node" || key == "data_dir" || key == "run_dir" || key == "node_key" || key == "keep_results";
}

ConfigHost::ConfigHost(std::vector<std::string> args, Config current, config::Environment env,
                       std::function<void()> request_reload)
    : args_(std::move(args)),
      env_(std::move(env)),
      request_reload_(std::move(request_reload)),
      current_(std::move(current)) {}

std::string ConfigHost::Toml() const {
  absl::MutexLock lock(&mu_);
  return current_.effective.ToToml();
}

std::string ConfigHost::Hash() const {
  absl::MutexLock lock(&mu_);
  return ConfigHash(current_.effective);
}

std::string ConfigHost::File() const {
  {
    absl::MutexLock lock(&mu_);
    if (!current_.effective.file.empty()) return current_.effective.file;
  }
  for (size_t i = 0; i + 1 < args_.size(); ++i) {
    if (args_[i] == "--config") return args_[i + 1];
  }
  for (const std::string& a : args_) {
    if (absl::StartsWith(a, "--config=")) return a.substr(9);
  }
  if (std::optional<std::string> env = env_("STEWARD_CONFIG")) return *env;
  return kDefaultConfigFile;
}

absl::StatusOr<Config> ConfigHost::Load() const { return LoadConfig(args_, env_); }

Config ConfigHost::current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

void ConfigHost::SetCurrent(Config config) {
  absl::MutexLock lock(&mu_);
  current_ = std::move(config);
}

absl::StatusOr<ConfigHost::Change> ConfigHost::Set(const std::vector<std::string>& assignments) {
  if (assignments.empty()) return absl::InvalidArgumentError("config set needs KEY=VALUE");
  config::Effective effective;
  {
    absl::MutexLock lock(&mu_);
    effective = current_.effective;
  }
  const std::string file = File();
  toml::table doc;
  if (struct stat st {}; ::stat(file.c_str(), &st) == 0) {
    try {
      doc = toml::parse(ReadFile(file), file);
    } catch (const toml::parse_error& e) {
      return absl::FailedPreconditionError(
          absl::StrCat("the configuration file ", file, " does not parse now: ", std::string(e.description())));
    }
  }
  for (const std::string& a : assignments) {
    const size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("\"", a, "\" is not KEY=VALUE"));
    }
    const std::string key = absl::StrReplaceAll(a.substr(0, eq), {{".", "_"}, {"-", "_"}});
    const std::string value = a.substr(eq + 1);
    const config::Entry* entry = effective.Find(key);
    if (entry == nullptr) {
      std::vector<std::string> keys;
      for (const config::Entry& e : effective.entries) keys.push_back(e.key);
      const std::string near = cli::Closest(key, keys);
      return absl::InvalidArgumentError(absl::StrCat("unknown key ", a.substr(0, eq),
                                                     near.empty() ? "" : absl::StrCat(" (did you mean ", near, "?)"),
                                                     "; nothing changed"));
    }
    // A key the command line or the environment sets cannot be changed by the file: the
    // change would be written and silently not apply.
    if (entry->source.kind == config::Source::Kind::kFlag || entry->source.kind == config::Source::Kind::kEnv) {
      return absl::InvalidArgumentError(absl::StrCat("refused, nothing changed: ", key, " is set by ",
                                                     entry->source.ToString(), ", which the file cannot override"));
    }
    // One spelling in the file: the flat key (a table form of it goes).
    if (const size_t us = key.find('_'); us != std::string::npos) {
      if (toml::table* t = doc[key.substr(0, us)].as_table()) t->erase(key.substr(us + 1));
    }
    if (entry->list) {
      toml::array arr;
      for (absl::string_view v : absl::StrSplit(value, ',', absl::SkipEmpty())) arr.push_back(std::string(v));
      doc.insert_or_assign(key, std::move(arr));
    } else if (entry->flag_like) {
      if (value != "true" && value != "false") {
        return absl::InvalidArgumentError(absl::StrCat(key, " takes true or false"));
      }
      doc.insert_or_assign(key, value == "true");
    } else if (int64_t n = 0; !value.empty() && absl::SimpleAtoi(value, &n) && entry->type != "DURATION") {
      doc.insert_or_assign(key, n);
    } else {
      doc.insert_or_assign(key, value);
    }
  }
  std::ostringstream out;
  out << doc << "\n";
  return Install(out.str());
}

absl::StatusOr<ConfigHost::Change> ConfigHost::Push(const std::string& toml) { return Install(toml); }

absl::StatusOr<ConfigHost::Change> ConfigHost::Install(const std::string& toml) {
  absl::MutexLock install(&install_mu_);
  const std::string file = WriteTarget(File());
  config::Effective before;
  {
    absl::MutexLock lock(&mu_);
    before = current_.effective;
  }
  // The candidate goes next to the file (same file system, same permission checks),
  // is loaded exactly as a start would load it, and is removed again.
  mode_t mode = 0600;
  if (struct stat st {}; ::stat(file.c_str(), &st) == 0) mode = st.st_mode & 07777;
  const std::string candidate = file + ".candidate";
  STEWARD_RETURN_IF_ERROR(WriteFileAtomically(candidate, toml, {.mode = mode}));
  std::vector<std::string> args = WithoutConfigFlag(args_);
  args.push_back("--config");
  args.push_back(candidate);
  absl::StatusOr<Config> loaded = LoadConfig(args, env_);
  ::unlink(candidate.c_str());
  if (!loaded.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refused, nothing changed: ", absl::StrReplaceAll(loaded.status().message(), {{candidate, "the new file"}})));
  }
  const std::set<std::string> changed = ChangedKeys(before, loaded->effective);
  std::vector<std::string> refused;
  // A value the file gives a key that a flag or the environment decides would be
  // written and silently not apply.
  toml::table doc;
  try {
    doc = toml::parse(toml, file);
  } catch (const toml::parse_error&) {  // loaded above: cannot happen
  }
  for (const config::Entry& e : loaded->effective.entries) {
    if (e.source.kind != config::Source::Kind::kFlag && e.source.kind != config::Source::Kind::kEnv) continue;
    std::optional<std::vector<std::string>> in_file = FileValues(doc, e.key);
    if (in_file.has_value() && *in_file != e.values) {
      refused.push_back(absl::StrCat(e.key, " (set by ", e.source.ToString(), ", which the file cannot override)"));
    }
  }
  for (const config::Entry& e : loaded->effective.entries) {
    if (!changed.contains(e.key)) continue;
    if (NeedsServiceRestart(e.key)) refused.push_back(absl::StrCat(e.key, " (needs a restart of the service)"));
  }
  if (!refused.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("refused, nothing changed: ", absl::StrJoin(refused, ", ")));
  }
  const bool existed = ::access(file.c_str(), F_OK) == 0;
  const std::string previous = existed ? ReadFile(file) : "";
  std::optional<Undo> before_change;
  Undo undo{.file = file, .existed = existed, .previous = previous, .installed = toml, .mode = mode};
  {
    absl::MutexLock lock(&mu_);
    undo.probation = std::min(current_.settings.config_probation, loaded->settings.config_probation);
    before_change = undo_;
    if (undo_.has_value() && undo_->file == file) {
      // A change before the last one was confirmed (the agent did not restart with it
      // yet, or the station has not heard it since): undone together, back to the file
      // the station last heard the agent with. (A wrong station name still lets
      // commands in: their subjects do not name the station.)
      undo.existed = undo_->existed;
      undo.previous = undo_->previous;
      undo.mode = undo_->mode;
      undo.probation = std::min(undo.probation, undo_->probation);
      undo.running = undo_->running;  // still on trial: a reload without a restart keeps it so
    }
  }
  // The record first: a process killed between the two writes starts with the record
  // and the old file (the record no longer matches it and is dropped), or with both.
  STEWARD_RETURN_IF_ERROR(WriteFileAtomically(UndoRecordPath(file), EncodeUndo(undo), {.mode = 0600}));
  if (absl::Status st = WriteFileAtomically(file, toml, {.mode = mode}); !st.ok()) {
    // Nothing changed: the record goes back to what it was.
    if (before_change.has_value() && before_change->file == file) {
      (void)WriteFileAtomically(UndoRecordPath(file), EncodeUndo(*before_change), {.mode = 0600});
    } else {
      ::unlink(UndoRecordPath(file).c_str());
    }
    return st;
  }
  const absl::Duration undo_probation = undo.probation;
  {
    absl::MutexLock lock(&mu_);
    undo_ = std::move(undo);
    last_undone_.clear();
  }
  ::unlink(UndoneNotePath(file).c_str());  // it said what became of the change before
  if (request_reload_) request_reload_();
  const std::string hash = ConfigHash(loaded->effective);
  if (changed.empty()) {
    return Change{absl::StrCat("written to ", file, "; no effective value changes (", hash, ")"), hash};
  }
  // Only the heartbeat applies without a restart; anything else is tried (main.cc).
  const bool restarts = changed != std::set<std::string>{"heartbeat"};
  return Change{absl::StrCat("written to ", file, "; changes ", absl::StrJoin(changed, ", "), "; now ", hash,
                             restarts ? absl::StrCat(" (applied by a restart of the agent; undone unless it reaches "
                                                     "the station with it within ",
                                                     absl::FormatDuration(undo_probation), ")")
                                      : " (applied by a reload)"),
                hash};
}

void ConfigHost::Keep(bool on_trial) {
  absl::MutexLock install(&install_mu_);  // not between Install's record and its undo_
  std::optional<Undo> kept;
  {
    absl::MutexLock lock(&mu_);
    if (undo_.has_value() && undo_->running == on_trial) kept.swap(undo_);
  }
  if (kept.has_value()) ::unlink(UndoRecordPath(kept->file).c_str());
}

void ConfigHost::KeepLastChange() { Keep(/*on_trial=*/false); }

void ConfigHost::KeepTrial() { Keep(/*on_trial=*/true); }

bool ConfigHost::ChangeOnTrial() const {
  absl::MutexLock lock(&mu_);
  return undo_.has_value();
}

absl::Duration ConfigHost::BeginTrial() {
  absl::MutexLock lock(&mu_);
  if (!undo_.has_value()) return absl::ZeroDuration();
  undo_->running = true;
  return undo_->probation;
}

std::string ConfigHost::LastUndone() const {
  absl::MutexLock lock(&mu_);
  return last_undone_;
}

std::string ConfigHost::ResumeChange() {
  absl::MutexLock install(&install_mu_);
  const std::string file = WriteTarget(File());
  if (const std::string note = UndoneNotePath(file); ::access(note.c_str(), F_OK) == 0) {
    absl::MutexLock lock(&mu_);
    last_undone_ = ReadFile(note);
  }
  const std::string record = UndoRecordPath(file);
  if (::access(record.c_str(), F_OK) != 0) return "";
  std::optional<Undo> undo = DecodeUndo(ReadFile(record));
  if (!undo.has_value() || undo->file != file) {
    ::unlink(record.c_str());
    return absl::StrCat("dropped ", record, ": not an undo record of ", file);
  }
  const bool exists = ::access(file.c_str(), F_OK) == 0;
  if (!exists || ReadFile(file) != undo->installed) {
    ::unlink(record.c_str());
    // Killed between writing the record and the file, or between putting the file back
    // and removing the record: the file is as it was before the change.
    if (exists == undo->existed && (!exists || ReadFile(file) == undo->previous)) {
      return absl::StrCat("dropped ", record, ": ", file, " holds what it held before the change it records");
    }
    return absl::StrCat("dropped ", record, ": ", file, " changed since the change it records (left as it is)");
  }
  absl::MutexLock lock(&mu_);
  undo_ = std::move(undo);
  return absl::StrCat("the last change to ", file,
                      " made through the agent was neither kept nor undone before the agent stopped: on trial again");
}

absl::StatusOr<std::string> ConfigHost::UndoLastChange(const std::string& why) {
  absl::MutexLock install(&install_mu_);
  std::optional<Undo> undo;
  {
    absl::MutexLock lock(&mu_);
    undo.swap(undo_);
  }
  if (!undo.has_value()) return absl::FailedPreconditionError("no change made through the agent to undo");
  const std::string record = UndoRecordPath(undo->file);
  if (ReadFile(undo->file) != undo->installed) {
    ::unlink(record.c_str());  // nothing left to undo
    return absl::FailedPreconditionError(absl::StrCat(undo->file, " changed again since (left as it is)"));
  }
  // A write-back that fails (a full disk) keeps the record: the next start tries again.
  std::string did;
  if (!undo->existed) {
    if (::unlink(undo->file.c_str()) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("unlink ", undo->file));
    did = absl::StrCat("removed ", undo->file, " (there was none before)");
  } else {
    STEWARD_RETURN_IF_ERROR(WriteFileAtomically(undo->file, undo->previous, {.mode = undo->mode}));
    did = absl::StrCat("wrote ", undo->file, " back as it was");
  }
  ::unlink(record.c_str());
  std::string note = absl::StrCat("the last change made through the agent was undone at ", Rfc3339Utc(absl::Now()),
                                  ": ", why, " (", did, ")");
  // Kept for the next start too (the station may hear of it only after a restart). A
  // note that cannot be written (a full disk) is said in this process's hellos only.
  if (absl::Status st = WriteFileAtomically(UndoneNotePath(undo->file), note, {.mode = 0600}); !st.ok()) {
    absl::StrAppend(&did, "; the note of it is not kept for the next start: ", st.message());
  }
  absl::MutexLock lock(&mu_);
  last_undone_ = std::move(note);
  return did;
}

}  // namespace steward::agent
