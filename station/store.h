// Store: the station's ledger in <data_dir>/station.db (SQLite, WAL, synchronous=FULL,
// schema versioned and migrated on open). Writes go through one writer thread that
// applies every queued write in one transaction and then calls each write's completion
// (group commit: one WAL sync per group, not per message). Reads use a second
// connection, so queries never wait for the writer.
//
// Thread-safe.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/sqlite.h"
#include "proto/steward.pb.h"

namespace steward::station {

class Store {
 public:
  using Op = std::function<absl::Status(sqlite::Database&)>;
  using Done = std::function<void(absl::Status)>;

  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& data_dir);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Write queues `op`; `done` (may be empty) runs on the writer thread after the
  // transaction holding `op` committed (or failed). After Shutdown the write is
  // dropped and `done` never runs.
  void Write(Op op, Done done = nullptr) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs `op` and waits for its commit.
  absl::Status WriteSync(Op op);
  // Finishes queued writes and stops the writer. Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // Write operations.
  static Op PutCommand(proto::CommandState c);  // insert or replace
  static Op PutNode(proto::NodeInfo n);
  static Op AddTransition(std::string node, bool online, int64_t at_ms, std::string reason);
  // Records an event once per id; a repeated id is a no-op.
  static Op AddEvent(proto::Envelope ev);
  // What AddLogs stored (repeats are not counted); read after the commit.
  struct LogCounts {
    int64_t stored = 0;
    int64_t errors = 0;  // severity error or worse
  };
  // Stores a syslog batch once: a repeated (event_id, index) is a no-op.
  static Op AddLogs(std::string node, std::string event_id, proto::LogBatch batch,
                    std::shared_ptr<LogCounts> counts);
  // Retention: drops lines stored before `older_than_ms`, then all but the newest
  // `max_lines`.
  static Op PruneLogs(int64_t older_than_ms, int64_t max_lines);

  // Small settings (ACLs, groups) by key.
  static Op PutSetting(std::string key, std::string value);
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Settings()
      ABSL_LOCKS_EXCLUDED(read_mu_);

  // Reads.
  absl::StatusOr<std::vector<proto::CommandState>> ActiveCommands() ABSL_LOCKS_EXCLUDED(read_mu_);
  absl::StatusOr<std::optional<proto::CommandState>> GetCommand(const std::string& id)
      ABSL_LOCKS_EXCLUDED(read_mu_);
  absl::StatusOr<std::vector<proto::CommandState>> ByRequest(const std::string& request_id)
      ABSL_LOCKS_EXCLUDED(read_mu_);
  // Newest first; empty node/state match all.
  absl::StatusOr<std::vector<proto::CommandState>> History(const std::string& node,
                                                           const std::string& state, int limit)
      ABSL_LOCKS_EXCLUDED(read_mu_);
  absl::StatusOr<std::vector<proto::NodeInfo>> Nodes() ABSL_LOCKS_EXCLUDED(read_mu_);
  // (online, at_ms, reason) transitions of a node, oldest first.
  struct Transition {
    bool online;
    int64_t at_ms;
    std::string reason;
  };
  absl::StatusOr<std::vector<Transition>> Transitions(const std::string& node)
      ABSL_LOCKS_EXCLUDED(read_mu_);
  absl::StatusOr<int64_t> CountEvents(const std::string& method) ABSL_LOCKS_EXCLUDED(read_mu_);
  absl::StatusOr<proto::LogsReply> QueryLogs(const proto::LogsRequest& req)
      ABSL_LOCKS_EXCLUDED(read_mu_);
  absl::StatusOr<int64_t> CountLogs() ABSL_LOCKS_EXCLUDED(read_mu_);

 private:
  struct Pending {
    Op op;
    Done done;
  };
  Store(sqlite::Database writer, sqlite::Database reader);
  void WriterLoop() ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<proto::CommandState>> QueryCommands(
      const std::string& sql, const std::vector<std::string>& args, int64_t limit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_);

  sqlite::Database writer_;  // used by the writer thread only
  absl::Mutex read_mu_;
  sqlite::Database reader_ ABSL_GUARDED_BY(read_mu_);
  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace steward::station
