// Store: SQLite ledger with a group-committing writer thread; its node, event and
// setting rows. The command rows are in command_rows.cc.
#include "station/ledger/store.h"

#include <filesystem>
#include <map>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "station/ha/replicated_commit.h"
#include "station/ledger/chunk_spool.h"
#include "station/ledger/ledger_file.h"
#include "station/ledger/log_store.h"

namespace steward::station::ledger {
namespace {

constexpr size_t kMaxGroup = 2000;

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& data_dir, const Options& options) {
  STEWARD_ASSIGN_OR_RETURN(sqlite::Database writer, OpenLedgerFile(data_dir));
  const std::string path = LedgerPath(data_dir);
  // Debian's SQLite zeroes every freed page (SECURE_DELETE): a finished copy chunk's
  // freed payload pages were written a second time, and checkpointed. FAST still
  // clears what is deleted from b-tree pages, but leaves freed overflow pages as they
  // are until reused (no extra writes).
  STEWARD_RETURN_IF_ERROR(writer.Exec("PRAGMA secure_delete = FAST"));
  std::map<int64_t, int64_t> spooled;  // rows by spool file
  {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             writer.Prepare("SELECT file, count(*) FROM command_payloads GROUP BY file"));
    while (true) {
      STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      spooled[st.ColumnInt(0)] = st.ColumnInt(1);
    }
  }
  STEWARD_ASSIGN_OR_RETURN(std::unique_ptr<ChunkSpool> spool,
                           ChunkSpool::Open((std::filesystem::path(data_dir) / "spool").string(), spooled));
  STEWARD_ASSIGN_OR_RETURN(sqlite::Database reader,
                           sqlite::Database::Open(path, {.read_only = true}));
  STEWARD_RETURN_IF_ERROR(RegisterLogFunctions(reader));
  STEWARD_ASSIGN_OR_RETURN(sqlite::Database own, sqlite::Database::Open(path, {}));
  auto checkpointer = std::make_unique<Checkpointer>(
      std::move(own), Checkpointer::Options{.frames = options.checkpoint_frames,
                                            .limit_frames = options.wal_limit_frames,
                                            .retry = options.checkpoint_retry});
  std::unique_ptr<Store> store(
      new Store(std::move(spool), std::move(writer), std::move(reader), std::move(checkpointer), options));
  if (options.replicate) {
    STEWARD_ASSIGN_OR_RETURN(store->replication_,
                             ha::ReplicatedCommit::Start(store->writer_, options.replicate, options.journal_end));
  }
  store->checkpointer_->Attach(store->writer_.raw());
  store->thread_ = std::thread([s = store.get()] { s->WriterLoop(); });
  return store;
}

Store::Store(std::unique_ptr<ChunkSpool> spool, sqlite::Database writer, sqlite::Database reader,
             std::unique_ptr<Checkpointer> checkpointer, Options options)
    : spool_(std::move(spool)),
      writer_(std::move(writer)),
      reader_(std::move(reader)),
      options_(options),
      checkpointer_(std::move(checkpointer)) {}

Store::~Store() { Shutdown(); }

void Store::Write(Op op, Done done) {
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    // Never run `done` inline: callers may hold their own locks.
    STEWARD_LOG_WARNING("ledger write after shutdown dropped");
    return;
  }
  queue_.push_back(Pending{std::move(op), std::move(done)});
}

namespace {
// The payload WroteNothing puts on a status (its value is not read).
constexpr absl::string_view kWroteNothing = "steward.ledger/wrote-nothing";
}  // namespace

absl::Status Store::WroteNothing(absl::Status failed) {
  if (!failed.ok()) failed.SetPayload(kWroteNothing, absl::Cord("1"));
  return failed;
}

bool Store::IsWroteNothing(const absl::Status& st) { return !st.ok() && st.GetPayload(kWroteNothing).has_value(); }

absl::Status Store::ClearWroteNothing(absl::Status st) {
  st.ErasePayload(kWroteNothing);
  return st;
}

void Store::AfterGroup(std::function<void()> fn) {
  absl::MutexLock lock(&after_group_mu_);
  after_group_ = std::move(fn);
}

absl::Status Store::Read(const std::function<absl::Status(sqlite::Database&)>& fn) {
  absl::MutexLock lock(&read_mu_);
  return fn(reader_);
}

void Store::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  checkpointer_->Stop();
}

void Store::WriterLoop() {
  while (true) {
    std::vector<Pending> group;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, nothing left
      while (!queue_.empty() && group.size() < kMaxGroup) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::vector<absl::Status> results(group.size());
    const absl::Time begin = absl::Now();
    std::vector<size_t> all(group.size());
    for (size_t i = 0; i < group.size(); ++i) all[i] = i;
    bool partial = false;
    absl::Status tx = Transact(group, all, Transaction::kWhole, results, &partial);
    if (partial) {
      // A write failed part-way with the transaction still open: its first statements
      // would have committed with the group. Rolled back whole, the group is written
      // again without it, each write now inside a savepoint of its own (statement
      // journal pages and a full-text flush each, paid only on this path): what fails
      // again is undone alone. The writes after the failed one run for the first time.
      std::vector<size_t> again;
      for (size_t i = 0; i < group.size(); ++i) {
        if (results[i].ok()) again.push_back(i);
      }
      tx = again.empty() ? absl::OkStatus() : Transact(group, again, Transaction::kEachOwnSavepoint, results, &partial);
    }
    commit_seconds_.Observe(absl::ToDoubleSeconds(absl::Now() - begin));
    NoteHealth(tx, results);
    for (size_t i = 0; i < group.size(); ++i) {
      if (group[i].done) group[i].done(tx.ok() ? results[i] : tx);
    }
    {
      absl::MutexLock lock(&after_group_mu_);
      if (after_group_) after_group_();
    }
    if (tx.ok()) checkpointer_->AfterCommit();  // after the completions: acknowledgements never wait for it
  }
}

absl::Status Store::Transact(std::vector<Pending>& group, const std::vector<size_t>& which, Transaction how,
                             std::vector<absl::Status>& results, bool* partial) {
  *partial = false;
  absl::Status tx = replication_ != nullptr ? replication_->Before() : absl::OkStatus();
  if (tx.ok()) tx = writer_.Exec("BEGIN IMMEDIATE");
  if (tx.ok()) {
    for (size_t i : which) {
      std::map<int64_t, int64_t> spool_mark;
      if (how == Transaction::kEachOwnSavepoint) {
        spool_mark = spool_->Mark();
        tx = writer_.Exec("SAVEPOINT one_write");
        if (!tx.ok()) break;
      }
      results[i] = group[i].op(writer_);
      // Some errors (a full disk without a statement journal) make SQLite roll the whole
      // transaction back: the ops after it would each commit on their own, outside the
      // group, and be reported failed with it. The group fails as one instead.
      if (!results[i].ok() && sqlite3_get_autocommit(writer_.raw()) != 0) {
        tx = absl::Status(results[i].code(), absl::StrCat("the transaction was rolled back: ", results[i].message()));
        break;
      }
      if (how == Transaction::kWhole) {
        if (!results[i].ok() && !IsWroteNothing(results[i])) {
          // What it wrote before it failed goes with the whole transaction (the caller
          // writes the others again); the writes after it have not run.
          *partial = true;
          tx = results[i];
          break;
        }
        continue;
      }
      if (!results[i].ok()) {
        tx = writer_.Exec("ROLLBACK TO one_write");
        if (tx.ok()) spool_->RollbackTo(std::move(spool_mark));
      }
      if (tx.ok()) tx = writer_.Exec("RELEASE one_write");
      if (!tx.ok()) break;
    }
    // The chunks the group spooled are on disk before a row names them.
    if (tx.ok()) tx = spool_->Sync();
    if (tx.ok() && replication_ != nullptr) tx = replication_->Publish();
    if (tx.ok()) tx = writer_.Exec("COMMIT");
    if (!tx.ok()) (void)writer_.Exec("ROLLBACK");
    if (replication_ != nullptr) replication_->Ended(tx.ok());
  }
  spool_->Ended(tx.ok());
  return tx;
}

uint64_t Store::journal_seq() const { return replication_ != nullptr ? replication_->journal_seq() : 0; }

Store::Health Store::health() const {
  absl::MutexLock lock(&health_mu_);
  return health_;
}

bool Store::IsStorageFailure(const absl::Status& st) {
  return absl::IsResourceExhausted(st) || absl::IsDataLoss(st) || sqlite::IsIoError(st);
}

void Store::NoteHealth(const absl::Status& tx, const std::vector<absl::Status>& results) {
  // A write that failed for want of room or on damaged or failing storage, in a group that
  // committed without it (a big write on a nearly full disk, a chunk the spool could not
  // append): what it carried is not stored, and writes like it keep failing. The
  // station says so as for a transaction that failed.
  absl::Status failed = tx;
  if (failed.ok()) {
    for (const absl::Status& st : results) {
      if (IsStorageFailure(st)) {
        failed = st;
        break;
      }
    }
  }
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&health_mu_);
  if (!failed.ok()) {
    ++health_.failed_writes;
    health_.reason = std::string(failed.message());
    if (tx.ok()) write_failed_at_ = now;
    const bool worse = !tx.ok() && !transaction_failed_;
    transaction_failed_ = !tx.ok();
    if (!health_.degraded) {
      health_.degraded = true;
      health_.since_unix_ms = absl::ToUnixMillis(now);
    } else if (!worse) {
      return;
    }
    if (!tx.ok()) {
      STEWARD_LOG_ERROR(
          "ledger write failed: {}; the station is DEGRADED: nothing new is "
          "acknowledged until ledger writes work again (senders keep retrying)",
          tx.ToString());
    } else {
      STEWARD_LOG_ERROR(
          "a ledger write failed: {}; the station is DEGRADED: what such writes carry is "
          "not acknowledged until the ledger takes them again (senders keep retrying)",
          failed.ToString());
    }
    return;
  }
  transaction_failed_ = false;
  if (!health_.degraded) return;
  // A transaction that commits ends a failed transaction's spell; a spell of failed
  // writes ends only once none failed for a while.
  if (now - write_failed_at_ < options_.health_settle) return;
  STEWARD_LOG_WARNING("ledger writes work again after {} ({} failed); the station is no longer degraded",
                      absl::FormatDuration(now - absl::FromUnixMillis(health_.since_unix_ms)), health_.failed_writes);
  health_.degraded = false;
  health_.reason.clear();
  health_.since_unix_ms = 0;
}

Store::Op Store::PutNode(proto::NodeInfo n) {
  return [n = std::move(n)](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             db.Prepare("INSERT OR REPLACE INTO nodes(name, info) VALUES (?1, ?2)"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, n.name()));
    STEWARD_RETURN_IF_ERROR(st.BindBlob(2, n.SerializeAsString()));
    return st.Step().status();
  };
}

Store::Op Store::PutNodeRows(std::vector<std::pair<std::string, std::string>> rows) {
  return [rows = std::move(rows)](sqlite::Database& db) -> absl::Status {
    for (const auto& [name, info] : rows) {
      // An upsert: the row is rewritten in place, where INSERT OR REPLACE deletes it and
      // appends it anew (its name index entry too), dirtying twice the pages.
      STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                               db.Prepare("INSERT INTO nodes(name, info) VALUES (?1, ?2) "
                                          "ON CONFLICT(name) DO UPDATE SET info = excluded.info"));
      STEWARD_RETURN_IF_ERROR(st.Bind(1, name));
      STEWARD_RETURN_IF_ERROR(st.BindBlob(2, info));
      STEWARD_RETURN_IF_ERROR(st.Step().status());
    }
    return absl::OkStatus();
  };
}

Store::Op Store::DeleteNode(std::string name) {
  return [name = std::move(name)](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("DELETE FROM nodes WHERE name = ?1"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, name));
    return st.Step().status();
  };
}

Store::Op Store::AddTransition(std::string node, bool online, int64_t at_ms, std::string reason) {
  return [=](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement st,
        db.Prepare("INSERT INTO node_transitions(node, online, at_ms, reason) VALUES (?1, ?2, ?3, ?4)"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, node));
    STEWARD_RETURN_IF_ERROR(st.Bind(2, int64_t{online ? 1 : 0}));
    STEWARD_RETURN_IF_ERROR(st.Bind(3, at_ms));
    STEWARD_RETURN_IF_ERROR(st.Bind(4, reason));
    return st.Step().status();
  };
}

Store::Op Store::AddEvent(proto::Envelope ev) {
  return [ev = std::move(ev)](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement st,
        db.Prepare("INSERT OR IGNORE INTO events(id, node, method, domain, at_ms, payload) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, ev.id()));
    STEWARD_RETURN_IF_ERROR(st.Bind(2, ev.from_node()));
    STEWARD_RETURN_IF_ERROR(st.Bind(3, ev.method()));
    STEWARD_RETURN_IF_ERROR(st.Bind(4, ev.domain()));
    STEWARD_RETURN_IF_ERROR(st.Bind(5, ev.created_unix_ms()));
    STEWARD_RETURN_IF_ERROR(st.BindBlob(6, ev.payload()));
    return st.Step().status();
  };
}

Store::Op Store::PruneEvents(int64_t before_ms, int64_t max_rows) {
  return [before_ms, max_rows](sqlite::Database& db) -> absl::Status {
    constexpr int64_t kBatch = 50'000;
    for (const char* sql : {
             "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE at_ms < ?1 LIMIT ?2)",
             "DELETE FROM node_transitions WHERE rowid IN "
             "(SELECT rowid FROM node_transitions WHERE at_ms < ?1 LIMIT ?2)",
         }) {
      STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare(sql));
      STEWARD_RETURN_IF_ERROR(st.Bind(1, before_ms));
      STEWARD_RETURN_IF_ERROR(st.Bind(2, kBatch));
      STEWARD_RETURN_IF_ERROR(st.Step().status());
    }
    // Beyond the cap: the oldest by the node's clock go first.
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             db.Prepare("DELETE FROM events WHERE rowid IN (SELECT rowid FROM events ORDER BY at_ms "
                                        "LIMIT max(0, min(?2, (SELECT count(*) FROM events) - ?1)))"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, max_rows));
    STEWARD_RETURN_IF_ERROR(st.Bind(2, kBatch));
    return st.Step().status();
  };
}

Store::Op Store::PutSetting(std::string key, std::string value) {
  return [key = std::move(key), value = std::move(value)](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             db.Prepare("INSERT OR REPLACE INTO settings(key, value) VALUES (?1, ?2)"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, key));
    STEWARD_RETURN_IF_ERROR(st.BindBlob(2, value));
    return st.Step().status();
  };
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Store::Settings() {
  std::vector<std::pair<std::string, std::string>> out;
  STEWARD_RETURN_IF_ERROR(Read([&](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("SELECT key, value FROM settings"));
    while (true) {
      STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return absl::OkStatus();
      out.emplace_back(st.ColumnText(0), st.ColumnBlob(1));
    }
  }));
  return out;
}

absl::Status Store::Rows(const std::string& sql, const std::vector<std::string>& args, int64_t limit,
                         const std::function<absl::Status(sqlite::Statement&)>& row) {
  return Read([&](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare(sql));
    int i = 1;
    for (const std::string& a : args) STEWARD_RETURN_IF_ERROR(st.Bind(i++, a));
    if (limit >= 0) STEWARD_RETURN_IF_ERROR(st.Bind(i, limit));
    while (true) {
      STEWARD_ASSIGN_OR_RETURN(bool more, st.Step());
      if (!more) return absl::OkStatus();
      STEWARD_RETURN_IF_ERROR(row(st));
    }
  });
}

absl::StatusOr<std::vector<proto::NodeInfo>> Store::Nodes() {
  std::vector<proto::NodeInfo> out;
  STEWARD_RETURN_IF_ERROR(Read([&](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("SELECT info FROM nodes ORDER BY name"));
    while (true) {
      STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return absl::OkStatus();
      proto::NodeInfo n;
      if (!n.ParseFromString(st.ColumnBlob(0))) return absl::DataLossError("corrupt node record");
      out.push_back(std::move(n));
    }
  }));
  return out;
}

}  // namespace steward::station::ledger
