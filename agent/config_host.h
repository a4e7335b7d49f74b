// ConfigHost: the agent's configuration while it runs. It holds the command line the
// agent was started with and the configuration loaded from it (flags > environment >
// file > defaults, see common/config.h), and changes it the one safe way: a candidate
// (some keys set, or a whole new file) is loaded exactly as a start would load it; only
// when that succeeds is the file replaced (atomically) and a reload requested. An
// invalid change is refused with the reason and changes nothing.
//
// main() owns it, reloads on SIGHUP and on request (Reload), and applies what changed
// (see ChangedKeys). Thread-safe.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/config.h"

namespace steward::agent {

class ConfigHost {
 public:
  // `args`: the command line without the program name. `request_reload` is called (from
  // a command's thread) once a change was written: main reloads then.
  ConfigHost(std::vector<std::string> args, Config current, config::Environment env,
             std::function<void()> request_reload);

  // The effective configuration as TOML (secrets hidden) and its hash.
  std::string Toml() const ABSL_LOCKS_EXCLUDED(mu_);
  std::string Hash() const ABSL_LOCKS_EXCLUDED(mu_);
  // The file changes are written to: the one in use, else --config, else the default.
  std::string File() const ABSL_LOCKS_EXCLUDED(mu_);

  // Loads the configuration again (SIGHUP): the command line, the environment, the file.
  absl::StatusOr<Config> Load() const;
  // What the agent runs with now.
  Config current() const ABSL_LOCKS_EXCLUDED(mu_);
  // What the agent runs with from now on (after main applied a reload).
  void SetCurrent(Config config) ABSL_LOCKS_EXCLUDED(mu_);

  // What a change did: a line for the operator, and the hash of the configuration it
  // installed (the station remembers it to show drift: a hand edit on the node).
  struct Change {
    std::string text;
    std::string hash;
  };
  // `config set KEY=VALUE...`: the file with these keys set ("syslog.tcp" and
  // "syslog_tcp" are one key; a list takes VALUE,VALUE).
  absl::StatusOr<Change> Set(const std::vector<std::string>& assignments) ABSL_LOCKS_EXCLUDED(mu_);
  // `config push FILE`: `toml` replaces the file.
  absl::StatusOr<Change> Push(const std::string& toml) ABSL_LOCKS_EXCLUDED(mu_);
  // Puts the file back as it was before the last Set or Push, when the agent cannot
  // start with what that change wrote (a syslog listener it cannot bind), or does not
  // reach the station with it (a wrong URL, credentials, CA or station name): else every later start
  // (systemd's too) would fail the same way and the unit be lost to remote management.
  // Only once, and only while the file still holds what the change wrote (a hand edit
  // since is left alone). `why` is kept for the hellos (LastUndone), in a note next to
  // the file (File() + ".undone") that the next start reads. Says what it did.
  absl::StatusOr<std::string> UndoLastChange(const std::string& why) ABSL_LOCKS_EXCLUDED(mu_);
  // The last change applied without a restart (the heartbeat), or was refused by the
  // reload: it is kept (UndoLastChange undoes nothing), and its undo record removed. A
  // change on trial is not (KeepTrial).
  void KeepLastChange() ABSL_LOCKS_EXCLUDED(mu_);
  // The station heard the agent with the change on trial: it is kept, likewise.
  void KeepTrial() ABSL_LOCKS_EXCLUDED(mu_);
  // Whether a change made through the agent is on trial (not kept, not undone).
  bool ChangeOnTrial() const ABSL_LOCKS_EXCLUDED(mu_);
  // The agent now runs with the change on trial; how long it has to reach the station.
  absl::Duration BeginTrial() ABSL_LOCKS_EXCLUDED(mu_);
  // At start: a change the last process made and neither kept nor undid (it was killed
  // first) is on trial again, from its undo record next to the file (File() + ".undo",
  // written before the file is). A record the file no longer matches (edited by hand
  // since) is dropped. The note of the last undo is read again. Says what it found; ""
  // when there was no record.
  std::string ResumeChange() ABSL_LOCKS_EXCLUDED(mu_);
  // The last undo, for the station (AgentStats.config_undone): what, why and when; ""
  // when none since the last change made through the agent (also in an earlier process:
  // ResumeChange reads its note).
  std::string LastUndone() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Validates `toml` as the file, refuses a change of a key the command line or the
  // environment decides, or of one that needs a restart; writes it and asks for a reload.
  absl::StatusOr<Change> Install(const std::string& toml) ABSL_LOCKS_EXCLUDED(mu_);

  const std::vector<std::string> args_;
  const config::Environment env_;
  const std::function<void()> request_reload_;
  mutable absl::Mutex mu_;
  Config current_ ABSL_GUARDED_BY(mu_);
  // The last change written (UndoLastChange).
  struct Undo {
    std::string file;
    bool existed = false;  // whether there was a file before
    std::string previous;  // its text then
    std::string installed;  // what the change wrote
    mode_t mode = 0600;
    // How long its trial lasts: the shorter of the configuration's before and after
    // (a change cannot lengthen its own trial).
    absl::Duration probation = absl::Seconds(60);
    // The agent runs with it (BeginTrial): a change that arrives now came through the
    // broker, so this one reached it; the new one is undone alone.
    bool running = false;
  };
  // Removes the change (and its record) when it is, or is not, the one on trial.
  void Keep(bool on_trial) ABSL_LOCKS_EXCLUDED(mu_);
  static std::string EncodeUndo(const Undo& undo);
  static std::optional<Undo> DecodeUndo(const std::string& text);
  std::optional<Undo> undo_ ABSL_GUARDED_BY(mu_);
  std::string last_undone_ ABSL_GUARDED_BY(mu_);
  absl::Mutex install_mu_;  // one change at a time
};

// The hash of an effective configuration: SHA-256 (hex) over every key and value,
// secrets included only as "set" (the hash is shown to operators).
std::string ConfigHash(const config::Effective& effective);

// The keys whose values differ between two configurations.
std::set<std::string> ChangedKeys(const config::Effective& a, const config::Effective& b);

// Keys a running agent cannot take without a restart of its service: the node's
// identity and store.
bool NeedsServiceRestart(const std::string& key);

}  // namespace steward::agent
