// AgentStore: the command log and the outbox spool in <data_dir>/agent.db. Each call
// takes the mutex, prepares its statements and runs them on the one connection.
#include "agent/agent_store.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
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
  };
  return *kMigrations;
}

}  // namespace

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

 private:
  const std::shared_ptr<AgentStore> store_;
};

class AgentStore::StoreSpool final : public Spool {
 public:
  StoreSpool(std::shared_ptr<AgentStore> store, std::string kind)
      : store_(std::move(store)), kind_(std::move(kind)) {}

  absl::Status Put(const OutboxItem& item) override { return store_->SpoolPut(kind_, item); }
  absl::Status Remove(const std::string& id) override { return store_->SpoolRemove(kind_, id); }
  absl::StatusOr<std::vector<OutboxItem>> LoadAll() override { return store_->SpoolLoadAll(kind_); }

 private:
  const std::shared_ptr<AgentStore> store_;
  const std::string kind_;
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
  absl::StatusOr<sqlite::Database> db = sqlite::Database::Open(path, options);
  if (!db.ok()) return annotate(db.status());
  if (absl::Status st = db->Migrate(Migrations()); !st.ok()) return annotate(st);
  if (clock == nullptr) clock = [] { return absl::Now(); };
  return std::shared_ptr<AgentStore>(new AgentStore(path, *std::move(db), std::move(clock)));
}

AgentStore::AgentStore(std::string path, sqlite::Database db, Clock clock)
    : path_(std::move(path)), clock_(std::move(clock)), db_(std::move(db)) {}

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
  auto run = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<std::optional<proto::Ack>> {
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
  };
  absl::StatusOr<std::optional<proto::Ack>> out = run();
  if (!out.ok()) return Annotate(out.status());
  return out;
}

absl::Status AgentStore::RecordCommand(const proto::Ack& ack) {
  if (ack.envelope_id().empty()) {
    return absl::InvalidArgumentError("agent store: ACK without an envelope id");
  }
  std::string blob;
  if (!ack.SerializeToString(&blob)) {
    return absl::InternalError(
        absl::StrCat("agent store: cannot serialize ACK ", ack.envelope_id()));
  }
  const int64_t now_ms = absl::ToUnixMillis(clock_());
  absl::MutexLock lock(&mu_);
  auto run = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
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
  };
  return Annotate(run());
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
  auto run = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<int64_t> {
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement st,
        db_.Prepare("DELETE FROM commands WHERE stage = ?1 AND updated_ms < ?2"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, static_cast<int64_t>(proto::STAGE_RESULT)));
    STEWARD_RETURN_IF_ERROR(st.Bind(2, cutoff_ms));
    STEWARD_RETURN_IF_ERROR(st.Step().status());
    return db_.Changes();
  };
  absl::StatusOr<int64_t> out = run();
  if (!out.ok()) return Annotate(out.status());
  return out;
}

absl::Status AgentStore::SpoolPut(const std::string& kind, const OutboxItem& item) {
  absl::MutexLock lock(&mu_);
  auto run = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
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
  };
  return Annotate(run());
}

absl::Status AgentStore::SpoolRemove(const std::string& kind, const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto run = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             db_.Prepare("DELETE FROM spool WHERE id = ?1 AND kind = ?2"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, absl::string_view(id)));
    STEWARD_RETURN_IF_ERROR(st.Bind(2, absl::string_view(kind)));
    return st.Step().status();
  };
  return Annotate(run());
}

absl::StatusOr<std::vector<OutboxItem>> AgentStore::SpoolLoadAll(const std::string& kind) {
  absl::MutexLock lock(&mu_);
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
