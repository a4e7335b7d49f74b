// AgentStore: the agent's durable state in one SQLite file, <data_dir>/agent.db: the
// command log (what was received and what came of it, so a redelivered command is
// answered from the record and never run twice) and the outbox spool (results and
// events not yet confirmed by the station).
//
// Durability: WAL with synchronous=NORMAL. Every committed write survives a crash or
// kill -9 of the agent. On power loss (or an OS crash) the database stays consistent,
// but the last transactions before the outage may be rolled back, because the WAL is
// only synced at checkpoints: a command may then be forgotten (and run again if the
// station redelivers it) and an unsent result or event may be lost.
//
// The agent holds the file exclusively while it runs (SQLite's locking_mode=EXCLUSIVE:
// no lock calls per transaction): no other process can open it then, and a second agent
// on the same data directory is refused at start, after SQLite's 5 s busy wait.
//
// Spool removals (the station confirmed an item) are written with the next write, not
// in a commit of their own: after a crash, items confirmed just before it are sent
// again, which the station recognises by their ids.
//
//   STEWARD_ASSIGN_OR_RETURN(std::shared_ptr<AgentStore> store, AgentStore::Open(dir));
//   std::unique_ptr<CommandLog> log = store->NewCommandLog();
//   std::unique_ptr<Spool> spool = store->NewSpool();
//
// Thread-safe: one connection behind an absl::Mutex. The command logs and spools it
// hands out share ownership of the store (the file closes when the last one goes).
// A command log's RecordAndSpool into a spool of the same store is one transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/command_log.h"
#include "common/outbox.h"
#include "common/sqlite.h"
#include "proto/steward.pb.h"

namespace steward::agent {

class AgentStore : public std::enable_shared_from_this<AgentStore> {
 public:
  // Where "now" comes from (command-log timestamps, pruning). Tests may pass a fake.
  using Clock = std::function<absl::Time()>;

  // Opens (creating if needed) <data_dir>/agent.db, creating data_dir too. An error
  // names the path: a directory that can't be created, a file that isn't a database,
  // a schema newer than this program.
  static absl::StatusOr<std::shared_ptr<AgentStore>> Open(const std::string& data_dir,
                                                          Clock clock = nullptr);

  AgentStore(const AgentStore&) = delete;
  AgentStore& operator=(const AgentStore&) = delete;
  // Writes the spool removals still waiting.
  ~AgentStore();

  // The installation's identity: a random id made when the store was created (a wiped
  // data directory makes a new one). Hellos and ACKs carry it; commands are bound to it.
  const std::string& instance_id() const { return instance_id_; }

  // The command log and the spool both live in this store and keep it alive.
  std::unique_ptr<CommandLog> NewCommandLog();
  // Spools of different kinds ("" for results and events, "logs" for syslog lines)
  // share the file and never see each other's items.
  std::unique_ptr<Spool> NewSpool(const std::string& kind = "");

  // Commands recorded as RECEIVED with no RESULT, oldest first: the agent stopped
  // (crash, kill -9, power loss) while they ran.
  absl::StatusOr<std::vector<proto::Ack>> Interrupted() ABSL_LOCKS_EXCLUDED(mu_);

  // Forgets command-log entries whose RESULT was recorded more than `age` ago
  // (received-only ones are kept). Returns how many were removed.
  absl::StatusOr<int64_t> PruneCommandLog(absl::Duration age) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  class StoreCommandLog;
  class StoreSpool;

  AgentStore(std::string path, sqlite::Database db, Clock clock, std::string instance_id);

  // For StoreCommandLog.
  absl::StatusOr<std::optional<proto::Ack>> LookupCommand(const std::string& id)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status RecordCommand(const proto::Ack& ack) ABSL_LOCKS_EXCLUDED(mu_);
  // Each of `acks` as RecordCommand, all in one transaction.
  absl::Status RecordCommands(const std::vector<proto::Ack>& acks) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::optional<proto::Ack>> RecordCommandIfNew(const proto::Ack& received)
      ABSL_LOCKS_EXCLUDED(mu_);
  // RecordCommand and SpoolPut in one transaction.
  absl::Status RecordCommandAndSpoolPut(const proto::Ack& ack, const std::string& kind,
                                        const OutboxItem& item) ABSL_LOCKS_EXCLUDED(mu_);
  // For StoreSpool.
  absl::Status SpoolPut(const std::string& kind, const OutboxItem& item) ABSL_LOCKS_EXCLUDED(mu_);
  // Queues the removal for the next write (written at once when many are waiting).
  absl::Status SpoolRemove(const std::string& kind, const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<OutboxItem>> SpoolLoadAll(const std::string& kind)
      ABSL_LOCKS_EXCLUDED(mu_);

  // `status` with the database path in front of its message.
  absl::Status Annotate(const absl::Status& status) const;

  // The ACK as stored; InvalidArgument without an envelope id.
  static absl::StatusOr<std::string> AckBlob(const proto::Ack& ack);
  absl::StatusOr<std::optional<proto::Ack>> LookupCommandLocked(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RecordCommandLocked(const proto::Ack& ack, const std::string& blob, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SpoolPutLocked(const std::string& kind, const OutboxItem& item)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `write` in a transaction together with the waiting spool removals. Should
  // that fail, the removals are given up (logged) and `write` runs alone.
  absl::Status WriteLocked(absl::FunctionRef<absl::Status()> write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `body` in a write transaction: committed when it succeeds, rolled back when
  // it (or the commit) fails.
  absl::Status InTransactionLocked(absl::FunctionRef<absl::Status()> body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const Clock clock_;
  const std::string instance_id_;
  absl::Mutex mu_;
  sqlite::Database db_ ABSL_GUARDED_BY(mu_);
  struct Removal {
    std::string kind;
    std::string id;
  };
  std::vector<Removal> removals_ ABSL_GUARDED_BY(mu_);  // confirmed, not yet deleted
};

}  // namespace steward::agent
