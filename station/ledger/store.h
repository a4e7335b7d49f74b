// Store: the station's ledger in <data_dir>/station.db (SQLite, WAL, synchronous=FULL,
// schema in ledger/schema). Writes go through one writer thread that applies every
// queued write in one transaction and then calls each write's completion (group
// commit: one WAL sync per group, not per message; the group's WAL pages reach the
// file in writes of up to 64 KiB, not two per page: sqlite::OpenOptions::
// batch_wal_writes). Reads use a second connection, so queries never wait for the
// writer. A third connection, on its own thread, copies the WAL back into the database
// file (the checkpoint; ledger/checkpointer.h), so a commit that an acknowledgement
// waits for never carries a checkpoint's page copies and syncs. Copy chunks' bytes go
// to spool files in <data_dir>/spool (ChunkSpool), synced before the COMMIT that names
// them.
//
//   STEWARD_ASSIGN_OR_RETURN(auto store, Store::Open(dir));
//   store->Write(store->PutCommand(state), [](absl::Status committed) { ... });
//   STEWARD_ASSIGN_OR_RETURN(auto rows, store->History("ship1", "", 20));
//
// Thread-safe. Completions run on the writer thread, in the order the writes were
// queued; they must not block for long (they delay the next group).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/sqlite.h"
#include "proto/steward.pb.h"
#include "station/ledger/checkpointer.h"
#include "station/metrics.h"

namespace steward::station::ha {
class ReplicatedCommit;
}  // namespace steward::station::ha

namespace steward::station::ledger {

class ChunkSpool;

class Store {
 public:
  using Op = std::function<absl::Status(sqlite::Database&)>;
  using Done = std::function<void(absl::Status)>;

  struct Options {
    // When the checkpointer runs (Checkpointer::Options, whose rules these are).
    // New WAL frames (pages) that wake it: SQLite's default.
    int checkpoint_frames = 1000;
    // WAL frames after which the writer checkpoints itself (RESTART: the WAL starts
    // over), when a steady stream of commits never lets the checkpointer catch up: the
    // WAL file stays near 64 MiB (4 KiB pages). The checkpointer has usually copied most
    // of it by then, so what the writer pays is small.
    int wal_limit_frames = 16384;
    // While frames are left uncopied, a commit wakes the checkpointer again at most this
    // often (without it a steady light load grew the WAL to wal_limit_frames).
    absl::Duration checkpoint_retry = absl::Milliseconds(50);
    // The replicated ledger (issue 17; station/ha/replicated_commit.h): called on the
    // writer thread with each transaction's changes (an SQLite changeset) and the
    // journal message where they start, before the transaction commits; returns the
    // entry's last message. An error rolls the transaction back and fails its writes:
    // nothing they carried is acknowledged. Unset: a single-host ledger.
    std::function<absl::StatusOr<uint64_t>(uint64_t seq, absl::string_view changes)> replicate;
    // With replicate: the journal's last message when this instance took over.
    uint64_t journal_end = 0;
    // After a write failed for want of room or on damaged storage in a group that
    // committed (Health), how long groups must commit without one before the ledger is
    // healthy again: on a nearly full disk small writes commit between big ones that
    // fail, and the state would flap with each.
    absl::Duration health_settle = absl::Seconds(10);
  };
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& data_dir, const Options& options);
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& data_dir) { return Open(data_dir, {}); }
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Write queues `op`; `done` (may be empty) runs on the writer thread after the
  // transaction holding `op` committed (or failed: then with the error). After
  // Shutdown the write is dropped and `done` never runs.
  void Write(Op op, Done done = nullptr) ABSL_LOCKS_EXCLUDED(mu_);
  // An op that fails having written nothing (its only statement changed no row: a
  // request recorded already) says so with WroteNothing(its error): its group goes on
  // without it in the same transaction, instead of being rolled back and written again
  // write by write. An op that wrote before it failed must never say it (an op made of
  // others passes the mark on only from its first: ClearWroteNothing).
  static absl::Status WroteNothing(absl::Status failed);
  static bool IsWroteNothing(const absl::Status& st);
  static absl::Status ClearWroteNothing(absl::Status st);
  // AfterGroup sets what runs on the writer thread once the `done`s of a transaction's
  // writes have all run (committed or failed): a follow-up that wants the whole group,
  // such as waking the dispatcher once for the commands a commit made, not once each.
  // Once it returns, the follow-up it replaced (or cleared, with nullptr) is not running
  // and never runs again: what it uses may go.
  void AfterGroup(std::function<void()> fn) ABSL_LOCKS_EXCLUDED(after_group_mu_);
  // Read runs `fn` with the reading connection (one reader at a time).
  absl::Status Read(const std::function<absl::Status(sqlite::Database&)>& fn)
      ABSL_LOCKS_EXCLUDED(read_mu_);
  // Rows runs query `sql` with the text parameters `args` (?1, ?2, ...) and, when
  // `limit` >= 0, `limit` as the next one; `row` is called with each row.
  absl::Status Rows(const std::string& sql, const std::vector<std::string>& args, int64_t limit,
                    const std::function<absl::Status(sqlite::Statement&)>& row) ABSL_LOCKS_EXCLUDED(read_mu_);
  // Finishes queued writes and stops the writer. Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // Whether ledger writes work: degraded from the first failed transaction until the
  // next one that commits; and from the first write that failed for want of room or on
  // damaged or failing storage (IsStorageFailure) in a group that committed without it, until a
  // group commits with no failure Options::health_settle after the last such write.
  struct Health {
    bool degraded = false;
    std::string reason;
    int64_t since_unix_ms = 0;
    uint64_t failed_writes = 0;  // failed transactions, and committed groups with a storage failure
  };
  // A full disk (ResourceExhausted: SQLITE_FULL, ENOSPC), damaged storage (DataLoss), or
  // a file system that failed SQLite's read or write (sqlite::IsIoError: its code stays
  // Internal).
  static bool IsStorageFailure(const absl::Status& st);
  Health health() const ABSL_LOCKS_EXCLUDED(health_mu_);
  // How long transactions take, BEGIN to COMMIT (for /metrics).
  const Histogram& commit_seconds() const { return commit_seconds_; }
  // Checkpoints done by the checkpointer, and by the writer itself when the WAL outgrew
  // its limit because the checkpointer could not keep up (for /metrics and tests).
  using CheckpointCounts = Checkpointer::Counts;
  CheckpointCounts checkpoints() const { return checkpointer_->counts(); }
  // With Options::replicate: the number of the last journal entry this ledger holds.
  uint64_t journal_seq() const;

  // Write operations.
  // Insert or update. The command's envelope goes to its own row only when it is new or
  // was re-signed, so a state change rewrites a small row; a copy chunk's bytes go to
  // the spool (ChunkSpool, schema step 9) with its first write, and leave it (and the
  // ledger) with the write of its end (schema step 7).
  Op PutCommand(proto::CommandState c);
  // What PutCommand's op does, on a state the caller keeps (left as it was). `fresh`: a
  // command just made (NewCommand, a new id), whose envelope the ledger cannot hold yet,
  // so its row is not looked up first.
  absl::Status WriteCommand(sqlite::Database& db, proto::CommandState& c, bool fresh = false);
  static Op PutNode(proto::NodeInfo n);
  // Many node rows at once: (name, serialized NodeInfo), as NodeTable::TakeDirty gives them.
  static Op PutNodeRows(std::vector<std::pair<std::string, std::string>> rows);
  static Op DeleteNode(std::string name);
  static Op AddTransition(std::string node, bool online, int64_t at_ms, std::string reason);
  // Records an event once per id; a repeated id is a no-op.
  static Op AddEvent(proto::Envelope ev);
  // PruneEvents deletes events and node transitions older than `before_ms`, and the
  // oldest events beyond the newest `max_rows`, a batch at a time (the writer is not
  // held for long; what is left goes at the next prune).
  static Op PruneEvents(int64_t before_ms, int64_t max_rows);
  // Small settings (ACLs, groups) by key.
  static Op PutSetting(std::string key, std::string value);

  // Reads.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Settings();
  // A command whose spooled chunk cannot be read back whole (ChunkSpool::Read) comes
  // without it, and its id and why in `damaged`; without `damaged` that is an error.
  absl::StatusOr<std::vector<proto::CommandState>> ActiveCommands(
      std::vector<std::pair<std::string, std::string>>* damaged = nullptr);
  absl::StatusOr<std::optional<proto::CommandState>> GetCommand(const std::string& id);
  absl::StatusOr<std::vector<proto::CommandState>> ByRequest(const std::string& request_id);
  // Newest first; empty node matches all, and so does STATE_UNSPECIFIED.
  absl::StatusOr<std::vector<proto::CommandState>> History(const std::string& node,
                                                           proto::State state, int limit);
  absl::StatusOr<std::vector<proto::NodeInfo>> Nodes();
  // Newest first, as History, with the HTTP API's filters: only ids before `before`,
  // of one fan-out, created in [since, until) (0: open).
  struct CommandFilter {
    std::string node;
    proto::State state = proto::STATE_UNSPECIFIED;
    std::string request_id;
    std::string before;
    int64_t since_unix_ms = 0;
    int64_t until_unix_ms = 0;
    int limit = 20;
  };
  absl::StatusOr<std::vector<proto::CommandState>> Commands(const CommandFilter& f);

 private:
  struct Pending {
    Op op;
    Done done;
  };
  Store(std::unique_ptr<ChunkSpool> spool, sqlite::Database writer, sqlite::Database reader,
        std::unique_ptr<Checkpointer> checkpointer, Options options);
  void WriterLoop() ABSL_LOCKS_EXCLUDED(mu_);
  enum class Transaction {
    kWhole,             // the writes as one: the first that fails having written stops it (*partial)
    kEachOwnSavepoint,  // each write undone alone when it fails; the others commit
  };
  // One transaction of the writes group[i], i in `which`, in order: their statuses go to
  // `results`; returns the transaction's (not OK: nothing of it committed). kWhole sets
  // *partial when a write failed with the transaction still open, and rolls it back.
  absl::Status Transact(std::vector<Pending>& group, const std::vector<size_t>& which, Transaction how,
                        std::vector<absl::Status>& results, bool* partial);
  void NoteHealth(const absl::Status& tx, const std::vector<absl::Status>& results) ABSL_LOCKS_EXCLUDED(health_mu_);
  absl::StatusOr<std::vector<proto::CommandState>> QueryCommands(
      const std::string& where, const std::vector<std::string>& args, int64_t limit,
      std::vector<std::pair<std::string, std::string>>* damaged = nullptr);
  absl::Status PutEnvelope(sqlite::Database& db, proto::CommandState& c, bool fresh);

  std::unique_ptr<ChunkSpool> spool_;  // appended to by the writer thread only
  sqlite::Database writer_;  // used by the writer thread only
  absl::Mutex read_mu_;
  sqlite::Database reader_ ABSL_GUARDED_BY(read_mu_);
  mutable absl::Mutex health_mu_;
  Health health_ ABSL_GUARDED_BY(health_mu_);
  // Health: whether its last failure was a transaction's (not only a write's), and
  // when a write last failed in a group that committed.
  bool transaction_failed_ ABSL_GUARDED_BY(health_mu_) = false;
  absl::Time write_failed_at_ ABSL_GUARDED_BY(health_mu_) = absl::InfinitePast();
  Histogram commit_seconds_{Histogram::SecondsBuckets()};
  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  // Held while the follow-up runs, so that AfterGroup never returns while it does.
  absl::Mutex after_group_mu_;
  std::function<void()> after_group_ ABSL_GUARDED_BY(after_group_mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  // Replication (Options::replicate), on the writer thread.
  std::unique_ptr<ha::ReplicatedCommit> replication_;
  const Options options_;
  // Told about each commit by the writer thread; stopped after it.
  std::unique_ptr<Checkpointer> checkpointer_;
};

}  // namespace steward::station::ledger
