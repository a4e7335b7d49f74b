// NodeTable: what the station knows of each node: its last hello (version, OS, methods,
// heartbeat interval), when it was last heard from, online/offline from heartbeats
// (offline after `missed` heartbeats, online at the next sign of life), its log
// counters, and its keys. A name an operator used but that was never heard from (a
// typo, a unit not installed yet) is "unknown": never online, never part of --all.
//
// Pure: every call is given `now`. Transitions come back for the caller to record and
// publish; rows that changed in a way nobody waits for (a heartbeat, log counts) are
// collected and handed out by TakeDirty, once however often they changed.
//
// Not thread-safe: the station calls it under its model mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "proto/steward.pb.h"

namespace steward::station {

// A node went online or offline.
struct Transition {
  std::string node;
  bool online = false;
  int64_t at_ms = 0;
  std::string reason;
  bool maintenance = false;  // the node is in maintenance: an expected absence
};

class NodeTable {
 public:
  struct Node {
    proto::NodeInfo info;
    absl::Time last_heard = absl::InfinitePast();
    absl::Duration heartbeat;
    std::deque<std::pair<int64_t, int64_t>> error_minutes;  // (unix minute, error lines)
  };

  explicit NodeTable(absl::Duration default_heartbeat = absl::Seconds(5))
      : default_heartbeat_(default_heartbeat) {}

  // Load takes the rows of the ledger at start.
  void Load(std::vector<proto::NodeInfo> rows);
  // Get returns the node, creating it ("unknown") on first use.
  Node& Get(const std::string& name);
  const Node* Find(const std::string& name) const;
  Node* Find(const std::string& name);
  // Names of every node (sorted); with `heard_only`, only nodes that were ever heard
  // from and are not pending (the targets of --all).
  std::vector<std::string> Names(bool heard_only = false) const;
  bool Forget(const std::string& name);
  // Rows neither enrolled nor believed: pending, or unknown (anyone's hello, or an
  // operator's command to a name never heard from, can make one).
  size_t Unbelieved() const;

  // HeardFrom records a sign of life; a transition when it was not online.
  std::optional<Transition> HeardFrom(const std::string& name, absl::Time now);
  // Hello records a node's hello (its identity and capabilities) and says whether it
  // named an installation not known before: a first one (`previous` empty), or another
  // than the one heard from before (the unit was reinstalled: its data directory
  // wiped; `previous` names the old one).
  struct InstanceChange {
    bool changed = false;
    std::string previous;
  };
  InstanceChange Hello(const std::string& name, const proto::Hello& hello, absl::Time now);
  // The installation `name` was last heard from ("" when unknown).
  std::string Instance(const std::string& name) const;
  // NoResponders: nobody listens on the node's subjects. A transition when it was
  // online (a node never heard from stays unknown).
  std::optional<Transition> NoResponders(const std::string& name, absl::Time now);
  // Monitor: nodes online whose heartbeats stopped: not heard from for `missed`
  // heartbeats while the station listened (see Listening), counted up to `heard`, the
  // latest moment the station can vouch it heard everything its broker had for it
  // (station/hearing.h): a silence after it may be the station's own. Offline at `now`.
  std::vector<Transition> Monitor(absl::Time now, int missed, absl::Time heard = absl::InfiniteFuture());
  // Listening: the station hears nodes' messages from `since` on (it started, took
  // over, or got its broker connection back). A silence before it is the station's, not
  // the node's: a node online in the ledger is judged by its heartbeats after `since`.
  void Listening(absl::Time since) { listening_since_ = since; }
  // Log lines stored for `name`: counts and errors per minute.
  void LogsStored(const std::string& name, int64_t stored, int64_t errors, uint64_t dropped,
                  absl::Time now);
  // Error lines stored in `minute` (unix minutes) before the station started: errors
  // per minute survive a restart.
  void RestoreErrors(const std::string& name, int64_t minute, int64_t errors);
  // A `config set`/`config push` to `name` succeeded, installing the configuration
  // `hash`, finished at `at_ms` (the node's clock): a later hello with another hash is
  // drift (Info sets config_drift).
  void ConfigPushed(const std::string& name, const std::string& hash, int64_t at_ms);
  // A node's row as operators see it, with errors per minute over the last 10 minutes
  // and whether its configuration drifted from the last one pushed.
  proto::NodeInfo Info(const std::string& name, absl::Time now) const;

  // Changed marks a row for the next TakeDirty.
  void Changed(const std::string& name) { dirty_.insert(name); }
  // The changed rows as the ledger stores them: (name, serialized NodeInfo). Serialized
  // here rather than copied (a fan-out changes every node's row several times a second).
  std::vector<std::pair<std::string, std::string>> TakeDirty();

 private:
  Transition SetOnline(Node& node, bool online, absl::Time now, const std::string& reason);

  const absl::Duration default_heartbeat_;
  absl::Time listening_since_ = absl::InfinitePast();
  absl::flat_hash_map<std::string, Node> nodes_;
  absl::flat_hash_set<std::string> dirty_;
};

}  // namespace steward::station
