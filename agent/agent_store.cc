// AgentStore: the command log and the outbox spool in <data_dir>/agent.db. Each call
// takes the mutex, prepares its statements (the connection keeps them compiled) and
// runs them on the one connection. Every write is one transaction that also carries
// the spool removals waiting since the last one (see SpoolRemove).
#include "agent/agent_store.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace steward::agent {
namespace {

// Schema version i+1 is migrations[i]. Append; never edit a released step.
const std::vector<std::string>& Migrations() {
  static const auto* const kMigrations = new std::vector<std::string>{
      // 1: command log and spool.
      "CREATE TABLE commands ("
      "  id TEXT PRIMARY KEY,"
      "  stage INTEGER NOT NULL,"
      "  ack BLOB NOT NULL,"
      "  updated_ms INTEGER NOT NULL);"
      "CREATE INDEX commands_stage_updated ON commands(stage, updated_ms);"
      "CREATE TABLE spool ("
      "  id TEXT PRIMARY KEY,"
      "  subject TEXT NOT NULL,"
      "  data BLOB NOT NULL);",
      // 2: several spools in one table (results/events, logs), with a line weight.
      "ALTER TABLE spool ADD COLUMN kind TEXT NOT NULL DEFAULT '';"
      "ALTER TABLE spool ADD COLUMN weight INTEGER NOT NULL DEFAULT 1;"
      "CREATE INDEX spool_kind ON spool(kind, id);",
      // 3: facts about this installation (its instance id).
      "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
  };
  return *kMigrations;
}

// Removals waiting for a write to carry them are written on their own beyond this.
constexpr size_t kMaxWaitingRemovals = 256;

}  // namespace

class AgentStore::StoreSpool final : public Spool {
 public:
  StoreSpool(std::shared_ptr<AgentStore> store, std::string kind)
      : store_(std::move(store)), kind_(std::move(kind)) {}

  absl::Status Put(const OutboxItem& item) override { return store_->SpoolPut(kind_, item); }
  absl::Status Remove(const std::string& id) override { return store_->SpoolRemove(kind_, id); }
  absl::StatusOr<std::vector<OutboxItem>> LoadAll() override { return store_->SpoolLoadAll(kind_); }

  const AgentStore* store() const { return store_.get(); }
  const std::string& kind() const { return kind_; }

 private:
  const std::shared_ptr<AgentStore> store_;
  const std::string kind_;
};

class AgentStore::StoreCommandLog final : public CommandLog {
 public:
  explicit StoreCommandLog(std::shared_ptr<AgentStore> store) : store_(std::move(store)) {}

  // The interface has no error channel: a failed read is logged and reads as "not
  // seen". The Record that follows a miss fails the same way, so nothing runs.
  std::optional<proto::Ack> Lookup(const std::string& id) override {
    absl::StatusOr<std::optional<proto::Ack>> ack = store_->LookupCommand(id);
    if (!ack.ok()) {
      STEWARD_LOG_ERROR("command log lookup {}: {}", id, ack.status().ToString());
      return std::nullopt;
    }
    return *std::move(ack);
  }

  absl::Status Record(const proto::Ack& ack) override { return store_->RecordCommand(ack); }

  absl::Status RecordAll(const std::vector<proto::Ack>& acks) override { return store_->RecordCommands(acks); }

  absl::StatusOr<std::optional<proto::Ack>> RecordIfNew(const proto::Ack& received) override {
    return store_->RecordCommandIfNew(received);
  }

  absl::Status RecordAndSpool(const proto::Ack& ack, Spool& spool,
                              const OutboxItem& item) override {
    auto* own = dynamic_cast<StoreSpool*>(&spool);
    if (own == nullptr || own->store() != store_.get()) {
      return CommandLog::RecordAndSpool(ack, spool, item);  // Two stores: two writes.
    }
    return store_->RecordCommandAndSpoolPut(ack, own->kind(), item);
  }

 private:
  const std::shared_ptr<AgentStore> store_;
};

absl::StatusOr<std::shared_ptr<AgentStore>> AgentStore::Open(const std::string& data_dir,
                                                             Clock clock) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    const std::string msg =
        absl::StrCat("agent store: cannot create data dir ", data_dir, ": ", ec.message());
    return ec == std::errc::permission_denied ? absl::PermissionDeniedError(msg)
                                              : absl::FailedPreconditionError(msg);
  }
  const std::string path = (std::filesystem::path(data_dir) / "agent.db").string();
  auto annotate = [&path](const absl::Status& st) {
    return absl::Status(st.code(), absl::StrCat("agent store ", path, ": ", st.message()));
  };
  sqlite::OpenOptions options;
  options.synchronous = "NORMAL";
  // Only this agent uses the file: no file locking per transaction (the agent's write
  // per command was half lock calls), and a second agent on the same directory is
  // refused instead of sharing its command log.
  options.exclusive = true;
  absl::StatusOr<sqlite::Database> db = sqlite::Database::Open(path, options);
  if (absl::IsUnavailable(db.status())) {
    // The agent holds its file exclusively for as long as it runs.
    return annotate(absl::UnavailableError(
        absl::StrCat(db.status().message(), ": another process has it open (is a steward-agent already "
                                            "running with this data directory?)")));
  }
  if (!db.ok()) return annotate(db.status());
  if (absl::Status st = db->Migrate(Migrations()); !st.ok()) return annotate(st);
  // The installation's identity: made with the store, kept as long as it lives. A
  // unit whose data directory was wiped is a new installation under the same name.
  std::string instance = NewId();
  {
    absl::StatusOr<sqlite::Statement> put =
        db->Prepare("INSERT OR IGNORE INTO meta(key, value) VALUES ('instance', ?1)");
    absl::Status st = put.ok() ? put->Bind(1, instance) : put.status();
    if (st.ok()) st = put->Step().status();
    absl::StatusOr<sqlite::Statement> get = db->Prepare("SELECT value FROM meta WHERE key = 'instance'");
    absl::StatusOr<bool> row = get.ok() ? get->Step() : absl::StatusOr<bool>(get.status());
    if (st.ok() && !row.ok()) st = row.status();
    if (!st.ok()) return annotate(st);
    if (*row) instance = get->ColumnText(0);
  }
  if (clock == nullptr) clock = [] { return absl::Now(); };
  return std::shared_ptr<AgentStore>(new AgentStore(path, *std::move(db), std::move(clock), std::move(instance)));
}

AgentStore::AgentStore(std::string path, sqlite::Database db, Clock clock, std::string instance_id)
    : path_(std::move(path)), clock_(std::move(clock)), instance_id_(std::move(instance_id)), db_(std::move(db)) {}

AgentStore::~AgentStore() {
  absl::MutexLock lock(&mu_);
  if (removals_.empty()) return;
  if (absl::Status st = WriteLocked([] { return absl::OkStatus(); }); !st.ok()) {
    STEWARD_LOG_ERROR("agent store {}: closing: {}", path_, st.ToString());
  }
}

std::unique_ptr<CommandLog> AgentStore::NewCommandLog() {
  return std::make_unique<StoreCommandLog>(shared_from_this());
}

std::unique_ptr<Spool> AgentStore::NewSpool(const std::string& kind) {
  return std::make_unique<StoreSpool>(shared_from_this(), kind);
}

absl::Status AgentStore::Annotate(const absl::Status& status) const {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("agent store ", path_, ": ", status.message()));
}

absl::StatusOr<std::optional<proto::Ack>> AgentStore::LookupCommand(const std::string& id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::optional<proto::Ack>> out = LookupCommandLocked(id);
  if (!out.ok()) return Annotate(out.status());
  return out;
}

absl::StatusOr<std::optional<proto::Ack>> AgentStore::LookupCommandLocked(const std::string& id) {
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                           db_.Prepare("SELECT ack FROM commands WHERE id = ?1"));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, absl::string_view(id)));
  STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<proto::Ack>();
  proto::Ack ack;
  if (!ack.ParseFromString(st.ColumnBlob(0))) {
    return absl::DataLossError(absl::StrCat("command ", id, ": stored ACK does not parse"));
  }
  return std::optional<proto::Ack>(std::move(ack));
}

absl::Status AgentStore::RecordCommand(const proto::Ack& ack) {
  STEWARD_ASSIGN_OR_RETURN(const std::string blob, AckBlob(ack));
  const int64_t now_ms = absl::ToUnixMillis(clock_());
  absl::MutexLock lock(&mu_);
  return Annotate(WriteLocked(
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return RecordCommandLocked(ack, blob, now_ms); }));
}

absl::Status AgentStore::RecordCommands(const std::vector<proto::Ack>& acks) {
  std::vector<std::string> blobs;
  blobs.reserve(acks.size());
  for (const proto::Ack& ack : acks) {
    STEWARD_ASSIGN_OR_RETURN(std::string blob, AckBlob(ack));
    blobs.push_back(std::move(blob));
  }
  const int64_t now_ms = absl::ToUnixMillis(clock_());
  absl::MutexLock lock(&mu_);
  return Annotate(WriteLocked([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    for (size_t i = 0; i < acks.size(); ++i) STEWARD_RETURN_IF_ERROR(RecordCommandLocked(acks[i], blobs[i], now_ms));
    return absl::OkStatus();
  }));
}

absl::StatusOr<std::optional<proto::Ack>> AgentStore::RecordCommandIfNew(
    const proto::Ack& received) {
  STEWARD_ASSIGN_OR_RETURN(const std::string blob, AckBlob(received));
  const int64_t now_ms = absl::ToUnixMillis(clock_());
  absl::MutexLock lock(&mu_);
  std::optional<proto::Ack> known;
  // One statement for a new id (the usual case) instead of a lookup, then a write.
  absl::Status st = WriteLocked([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    known.reset();  // WriteLocked may run this twice
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement insert,
        db_.Prepare("INSERT INTO commands(id, stage, ack, updated_ms) VALUES (?1, ?2, ?3, ?4) "
                    "ON CONFLICT(id) DO NOTHING"));
    STEWARD_RETURN_IF_ERROR(insert.Bind(1, absl::string_view(received.envelope_id())));
    STEWARD_RETURN_IF_ERROR(insert.Bind(2, static_cast<int64_t>(received.stage())));
    STEWARD_RETURN_IF_ERROR(insert.BindBlob(3, blob));
    STEWARD_RETURN_IF_ERROR(insert.Bind(4, now_ms));
    STEWARD_RETURN_IF_ERROR(insert.Step().status());
    if (db_.Changes() > 0) return absl::OkStatus();
    STEWARD_ASSIGN_OR_RETURN(known, LookupCommandLocked(received.envelope_id()));
    if (!known.has_value()) return absl::InternalError("command neither new nor known");
    return absl::OkStatus();
  });
  if (!st.ok()) return Annotate(st);
  return known;
}

absl::Status AgentStore::RecordCommandAndSpoolPut(const proto::Ack& ack, const std::string& kind,
                                                  const OutboxItem& item) {
  STEWARD_ASSIGN_OR_RETURN(const std::string blob, AckBlob(ack));
  const int64_t now_ms = absl::ToUnixMillis(clock_());
  absl::MutexLock lock(&mu_);
  // One transaction: one commit (one WAL append) instead of two, and after a crash
  // either both are there or neither (the command then reads as interrupted and gets
  // a truthful result), never a recorded result that is not on its way to the station.
  return Annotate(WriteLocked([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    STEWARD_RETURN_IF_ERROR(RecordCommandLocked(ack, blob, now_ms));
    return SpoolPutLocked(kind, item);
  }));
}

absl::StatusOr<std::string> AgentStore::AckBlob(const proto::Ack& ack) {
  if (ack.envelope_id().empty()) {
    return absl::InvalidArgumentError("agent store: ACK without an envelope id");
  }
  std::string blob;
  if (!ack.SerializeToString(&blob)) {
    return absl::InternalError(
        absl::StrCat("agent store: cannot serialize ACK ", ack.envelope_id()));
  }
  return blob;
}

absl::Status AgentStore::RecordCommandLocked(const proto::Ack& ack, const std::string& blob,
                                             int64_t now_ms) {
  STEWARD_ASSIGN_OR_RETURN(
      sqlite::Statement st,
      db_.Prepare("INSERT INTO commands(id, stage, ack, updated_ms) VALUES (?1, ?2, ?3, ?4) "
                  "ON CONFLICT(id) DO UPDATE SET stage = excluded.stage, ack = excluded.ack, "
                  "updated_ms = excluded.updated_ms"));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, absl::string_view(ack.envelope_id())));
  STEWARD_RETURN_IF_ERROR(st.Bind(2, static_cast<int64_t>(ack.stage())));
  STEWARD_RETURN_IF_ERROR(st.BindBlob(3, blob));
  STEWARD_RETURN_IF_ERROR(st.Bind(4, now_ms));
  return st.Step().status();
}

absl::Status AgentStore::WriteLocked(absl::FunctionRef<absl::Status()> write) {
  if (removals_.empty()) return InTransactionLocked(write);
  std::vector<Removal> removals;
  removals.swap(removals_);
  absl::Status st = InTransactionLocked([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    // Removals first: an id put again after its removal must stay.
    for (const Removal& r : removals) {
      STEWARD_ASSIGN_OR_RETURN(sqlite::Statement del,
                               db_.Prepare("DELETE FROM spool WHERE id = ?1 AND kind = ?2"));
      STEWARD_RETURN_IF_ERROR(del.Bind(1, absl::string_view(r.id)));
      STEWARD_RETURN_IF_ERROR(del.Bind(2, absl::string_view(r.kind)));
      STEWARD_RETURN_IF_ERROR(del.Step().status());
    }
    return write();
  });
  if (st.ok()) return st;
  // The write must not fail for them: they are given up (those items stay in the file
  // and are sent again after a restart; the station de-duplicates), the write retried.
  STEWARD_LOG_ERROR("agent store {}: {} spool removals not written: {}", path_, removals.size(),
                    st.ToString());
  return InTransactionLocked(write);
}

absl::Status AgentStore::InTransactionLocked(absl::FunctionRef<absl::Status()> body) {
  {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement begin, db_.Prepare("BEGIN IMMEDIATE"));
    STEWARD_RETURN_IF_ERROR(begin.Step().status());
  }
  absl::Status st = body();
  if (st.ok()) {
    absl::StatusOr<sqlite::Statement> commit = db_.Prepare("COMMIT");
    st = commit.ok() ? commit->Step().status() : commit.status();
    if (st.ok()) return st;
  }
  // ROLLBACK after a failed COMMIT too: SQLite may leave the transaction open then.
  if (!sqlite3_get_autocommit(db_.raw())) {
    if (absl::Status rb = db_.Exec("ROLLBACK"); !rb.ok()) {
      STEWARD_LOG_ERROR("agent store {}: rollback: {}", path_, rb.ToString());
    }
  }
  return st;
}

absl::StatusOr<std::vector<proto::Ack>> AgentStore::Interrupted() {
  absl::MutexLock lock(&mu_);
  auto run = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<std::vector<proto::Ack>> {
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement st,
        db_.Prepare("SELECT id, ack FROM commands WHERE stage = ?1 ORDER BY id"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, static_cast<int64_t>(proto::STAGE_RECEIVED)));
    std::vector<proto::Ack> out;
    while (true) {
      STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      proto::Ack ack;
      if (!ack.ParseFromString(st.ColumnBlob(1))) {
        return absl::DataLossError(
            absl::StrCat("command ", st.ColumnText(0), ": stored ACK does not parse"));
      }
      out.push_back(std::move(ack));
    }
    return out;
  };
  absl::StatusOr<std::vector<proto::Ack>> out = run();
  if (!out.ok()) return Annotate(out.status());
  return out;
}

absl::StatusOr<int64_t> AgentStore::PruneCommandLog(absl::Duration age) {
  const int64_t cutoff_ms = absl::ToUnixMillis(clock_() - age);
  absl::MutexLock lock(&mu_);
  int64_t removed = 0;
  absl::Status st = WriteLocked([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement del,
        db_.Prepare("DELETE FROM commands WHERE stage = ?1 AND updated_ms < ?2"));
    STEWARD_RETURN_IF_ERROR(del.Bind(1, static_cast<int64_t>(proto::STAGE_RESULT)));
    STEWARD_RETURN_IF_ERROR(del.Bind(2, cutoff_ms));
    STEWARD_RETURN_IF_ERROR(del.Step().status());
    removed = db_.Changes();
    return absl::OkStatus();
  });
  if (!st.ok()) return Annotate(st);
  return removed;
}

absl::Status AgentStore::SpoolPut(const std::string& kind, const OutboxItem& item) {
  absl::MutexLock lock(&mu_);
  return Annotate(
      WriteLocked([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return SpoolPutLocked(kind, item); }));
}

absl::Status AgentStore::SpoolPutLocked(const std::string& kind, const OutboxItem& item) {
  STEWARD_ASSIGN_OR_RETURN(
      sqlite::Statement st,
      db_.Prepare("INSERT OR REPLACE INTO spool(id, subject, data, kind, weight) "
                  "VALUES (?1, ?2, ?3, ?4, ?5)"));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, absl::string_view(item.id)));
  STEWARD_RETURN_IF_ERROR(st.Bind(2, absl::string_view(item.subject)));
  STEWARD_RETURN_IF_ERROR(st.BindBlob(3, item.data));
  STEWARD_RETURN_IF_ERROR(st.Bind(4, absl::string_view(kind)));
  STEWARD_RETURN_IF_ERROR(st.Bind(5, static_cast<int64_t>(item.weight)));
  return st.Step().status();
}

absl::Status AgentStore::SpoolRemove(const std::string& kind, const std::string& id) {
  absl::MutexLock lock(&mu_);
  // A commit of its own would cost as much as the write that spooled the item; the
  // next write (usually the next command's) carries it instead.
  removals_.push_back(Removal{kind, id});
  if (removals_.size() < kMaxWaitingRemovals) return absl::OkStatus();
  return Annotate(WriteLocked([] { return absl::OkStatus(); }));
}

absl::StatusOr<std::vector<OutboxItem>> AgentStore::SpoolLoadAll(const std::string& kind) {
  absl::MutexLock lock(&mu_);
  if (!removals_.empty()) {
    if (absl::Status st = WriteLocked([] { return absl::OkStatus(); }); !st.ok()) {
      return Annotate(st);
    }
  }
  auto run = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<std::vector<OutboxItem>> {
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement st,
        db_.Prepare("SELECT id, subject, data, weight FROM spool WHERE kind = ?1 ORDER BY id"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, absl::string_view(kind)));
    std::vector<OutboxItem> out;
    while (true) {
      STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back(OutboxItem{st.ColumnText(0), st.ColumnText(1), st.ColumnBlob(2),
                               static_cast<uint64_t>(st.ColumnInt(3))});
    }
    return out;
  };
  absl::StatusOr<std::vector<OutboxItem>> out = run();
  if (!out.ok()) return Annotate(out.status());
  return out;
}

}  // namespace steward::agent
