// Store: SQLite ledger with a group-committing writer thread.
#include "station/store.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/status_macros.h"

namespace steward::station {
namespace {

constexpr size_t kMaxGroup = 2000;

// Schema steps; the schema version is the number applied. Append, never edit.
const std::vector<std::string>& Migrations() {
  static const auto* m = new std::vector<std::string>{
      R"sql(
      CREATE TABLE commands (
        id TEXT PRIMARY KEY,
        node TEXT NOT NULL,
        request_id TEXT NOT NULL,
        state TEXT NOT NULL,
        terminal INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        record BLOB NOT NULL);
      CREATE INDEX commands_node ON commands(node, id);
      CREATE INDEX commands_request ON commands(request_id);
      CREATE INDEX commands_active ON commands(terminal) WHERE terminal = 0;
      CREATE TABLE nodes (name TEXT PRIMARY KEY, info BLOB NOT NULL);
      CREATE TABLE node_transitions (
        node TEXT NOT NULL, online INTEGER NOT NULL, at_ms INTEGER NOT NULL, reason TEXT NOT NULL);
      CREATE INDEX node_transitions_node ON node_transitions(node, at_ms);
      CREATE TABLE events (
        id TEXT PRIMARY KEY, node TEXT NOT NULL, method TEXT NOT NULL, domain TEXT NOT NULL,
        at_ms INTEGER NOT NULL, payload BLOB NOT NULL);
      CREATE INDEX events_node ON events(node, at_ms);
      )sql",
      // 2: syslog lines. seq orders by arrival (follow cursors); (event_id, idx) orders
      // a source's lines as the agent made them and makes repeats a no-op.
      R"sql(
      CREATE TABLE logs (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        node TEXT NOT NULL,
        domain TEXT NOT NULL,
        severity INTEGER NOT NULL,
        received_us INTEGER NOT NULL,
        stored_ms INTEGER NOT NULL,
        message BLOB NOT NULL,
        record BLOB NOT NULL,
        UNIQUE (event_id, idx));
      CREATE INDEX logs_node_time ON logs(node, received_us);
      CREATE INDEX logs_domain_time ON logs(domain, received_us);
      CREATE INDEX logs_severity_time ON logs(severity, received_us);
      CREATE INDEX logs_time ON logs(received_us);
      )sql",
      // 3: settings (ACLs, node groups).
      "CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);",
  };
  return *m;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("create ", data_dir, ": ", ec.message()));
  const std::string path = (std::filesystem::path(data_dir) / "station.db").string();
  STEWARD_ASSIGN_OR_RETURN(sqlite::Database writer, sqlite::Database::Open(path, {}));
  STEWARD_RETURN_IF_ERROR(writer.Migrate(Migrations()));
  STEWARD_ASSIGN_OR_RETURN(sqlite::Database reader,
                           sqlite::Database::Open(path, {.read_only = true}));
  std::unique_ptr<Store> store(new Store(std::move(writer), std::move(reader)));
  store->thread_ = std::thread([s = store.get()] { s->WriterLoop(); });
  return store;
}

Store::Store(sqlite::Database writer, sqlite::Database reader)
    : writer_(std::move(writer)), reader_(std::move(reader)) {}

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

absl::Status Store::WriteSync(Op op) {
  absl::Notification committed;
  absl::Status result;
  Write(std::move(op), [&](absl::Status st) {
    result = st;
    committed.Notify();
  });
  committed.WaitForNotification();
  return result;
}

void Store::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
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
    absl::Status tx = writer_.Exec("BEGIN IMMEDIATE");
    if (tx.ok()) {
      for (size_t i = 0; i < group.size(); ++i) results[i] = group[i].op(writer_);
      tx = writer_.Exec("COMMIT");
      if (!tx.ok()) (void)writer_.Exec("ROLLBACK");
    }
    if (!tx.ok()) STEWARD_LOG_ERROR("ledger write failed: {}", tx.ToString());
    for (size_t i = 0; i < group.size(); ++i) {
      if (group[i].done) group[i].done(tx.ok() ? results[i] : tx);
    }
  }
}

Store::Op Store::PutCommand(proto::CommandState c) {
  return [c = std::move(c)](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement st,
        // An upsert, not INSERT OR REPLACE: a state change rewrites the row in place and
        // leaves the node and request indexes alone.
        db.Prepare("INSERT INTO commands(id, node, request_id, state, terminal, created_ms, "
                   "updated_ms, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                   "ON CONFLICT(id) DO UPDATE SET state = excluded.state, "
                   "terminal = excluded.terminal, updated_ms = excluded.updated_ms, "
                   "record = excluded.record"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, c.id()));
    STEWARD_RETURN_IF_ERROR(st.Bind(2, c.node()));
    STEWARD_RETURN_IF_ERROR(st.Bind(3, c.request_id()));
    STEWARD_RETURN_IF_ERROR(st.Bind(4, std::string(StateName(c.state()))));
    STEWARD_RETURN_IF_ERROR(st.Bind(5, int64_t{IsTerminal(c.state()) ? 1 : 0}));
    STEWARD_RETURN_IF_ERROR(st.Bind(6, c.created_unix_ms()));
    STEWARD_RETURN_IF_ERROR(st.Bind(7, c.updated_unix_ms()));
    STEWARD_RETURN_IF_ERROR(st.BindBlob(8, c.SerializeAsString()));
    return st.Step().status();
  };
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

Store::Op Store::AddLogs(std::string node, std::string event_id, proto::LogBatch batch,
                         std::shared_ptr<LogCounts> counts) {
  return [node = std::move(node), event_id = std::move(event_id), batch = std::move(batch),
          counts](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement st,
        db.Prepare("INSERT OR IGNORE INTO logs(event_id, idx, node, domain, severity, received_us, "
                   "stored_ms, message, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    for (int i = 0; i < batch.records_size(); ++i) {
      const proto::LogRecord& r = batch.records(i);
      STEWARD_RETURN_IF_ERROR(st.Reset());
      STEWARD_RETURN_IF_ERROR(st.Bind(1, event_id));
      STEWARD_RETURN_IF_ERROR(st.Bind(2, int64_t{i}));
      STEWARD_RETURN_IF_ERROR(st.Bind(3, node));
      STEWARD_RETURN_IF_ERROR(st.Bind(4, r.domain()));
      STEWARD_RETURN_IF_ERROR(st.Bind(5, int64_t{r.severity()}));
      STEWARD_RETURN_IF_ERROR(st.Bind(6, r.received_unix_us()));
      STEWARD_RETURN_IF_ERROR(st.Bind(7, now_ms));
      STEWARD_RETURN_IF_ERROR(st.BindBlob(8, r.message()));
      STEWARD_RETURN_IF_ERROR(st.BindBlob(9, r.SerializeAsString()));
      STEWARD_RETURN_IF_ERROR(st.Step().status());
      if (counts != nullptr && db.Changes() > 0) {
        ++counts->stored;
        if (r.severity() >= 0 && r.severity() <= 3) ++counts->errors;
      }
    }
    return absl::OkStatus();
  };
}

Store::Op Store::PruneLogs(int64_t older_than_ms, int64_t max_lines) {
  return [=](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement by_age,
                             db.Prepare("DELETE FROM logs WHERE stored_ms < ?1"));
    STEWARD_RETURN_IF_ERROR(by_age.Bind(1, older_than_ms));
    STEWARD_RETURN_IF_ERROR(by_age.Step().status());
    // Size: keep the newest max_lines (by arrival).
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement by_size,
        db.Prepare("DELETE FROM logs WHERE seq <= (SELECT MAX(seq) FROM logs) - ?1"));
    STEWARD_RETURN_IF_ERROR(by_size.Bind(1, max_lines));
    return by_size.Step().status();
  };
}

absl::StatusOr<proto::LogsReply> Store::QueryLogs(const proto::LogsRequest& req) {
  absl::MutexLock lock(&read_mu_);
  const bool follow = !req.after().empty();
  const int64_t limit = req.limit() > 0 ? std::min(req.limit(), 100000) : 100;
  // Without a cursor: the newest `limit` matching lines, shown oldest first in the
  // order the agents made them. With one: what arrived after it, in arrival order.
  const std::string where =
      "(?1 = '' OR node = ?1) AND (?2 = '' OR domain = ?2) AND received_us >= ?3 "
      "AND (?4 < 0 OR (severity >= 0 AND severity <= ?4)) AND (?5 = '' OR instr(message, ?5) > 0)";
  const std::string sql =
      follow ? "SELECT seq, node, record FROM logs WHERE " + where + " AND seq > ?6 ORDER BY seq LIMIT ?7"
             : "SELECT seq, node, record FROM (SELECT seq, node, record, event_id, idx FROM logs WHERE " +
                   where + " ORDER BY event_id DESC, idx DESC LIMIT ?7) ORDER BY event_id, idx";
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, reader_.Prepare(sql));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, req.node()));
  STEWARD_RETURN_IF_ERROR(st.Bind(2, req.domain()));
  STEWARD_RETURN_IF_ERROR(st.Bind(3, req.since_unix_ms() * 1000));
  STEWARD_RETURN_IF_ERROR(st.Bind(4, int64_t{req.max_severity() >= 7 ? -1 : req.max_severity()}));
  STEWARD_RETURN_IF_ERROR(st.BindBlob(5, req.grep()));
  int64_t after = 0;
  if (follow && !absl::SimpleAtoi(req.after(), &after)) {
    return absl::InvalidArgumentError("bad logs cursor");
  }
  STEWARD_RETURN_IF_ERROR(st.Bind(6, after));
  STEWARD_RETURN_IF_ERROR(st.Bind(7, limit));
  proto::LogsReply out;
  int64_t cursor = after;
  while (true) {
    STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    proto::LogEntry* e = out.add_entries();
    const int64_t seq = st.ColumnInt(0);
    cursor = std::max(cursor, seq);
    e->set_cursor(absl::StrCat(seq));
    e->set_node(st.ColumnText(1));
    if (!e->mutable_record()->ParseFromString(st.ColumnBlob(2))) {
      return absl::DataLossError("corrupt log record");
    }
  }
  if (!follow) {
    // A follower starts after everything stored so far.
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement mx, reader_.Prepare("SELECT COALESCE(MAX(seq), 0) FROM logs"));
    STEWARD_ASSIGN_OR_RETURN(bool row, mx.Step());
    if (row) cursor = mx.ColumnInt(0);
  }
  out.set_cursor(absl::StrCat(cursor));
  return out;
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
  absl::MutexLock lock(&read_mu_);
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, reader_.Prepare("SELECT key, value FROM settings"));
  std::vector<std::pair<std::string, std::string>> out;
  while (true) {
    STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.emplace_back(st.ColumnText(0), st.ColumnBlob(1));
  }
  return out;
}

absl::StatusOr<int64_t> Store::CountLogs() {
  absl::MutexLock lock(&read_mu_);
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, reader_.Prepare("SELECT COUNT(*) FROM logs"));
  STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.ColumnInt(0) : 0;
}

absl::StatusOr<std::vector<proto::CommandState>> Store::QueryCommands(
    const std::string& sql, const std::vector<std::string>& args, int64_t limit) {
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, reader_.Prepare(sql));
  int i = 1;
  for (const std::string& a : args) STEWARD_RETURN_IF_ERROR(st.Bind(i++, a));
  if (limit >= 0) STEWARD_RETURN_IF_ERROR(st.Bind(i, limit));
  std::vector<proto::CommandState> out;
  while (true) {
    STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    proto::CommandState c;
    if (!c.ParseFromString(st.ColumnBlob(0))) return absl::DataLossError("corrupt command record");
    // The column is the state of record: ledgers of 0.1.0 kept it as text only.
    std::optional<proto::State> state = StateFromName(st.ColumnText(1));
    if (!state.has_value()) {
      return absl::DataLossError(absl::StrCat("command ", c.id(), " has unknown state \"",
                                              st.ColumnText(1), "\""));
    }
    c.set_state(*state);
    out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<std::vector<proto::CommandState>> Store::ActiveCommands() {
  absl::MutexLock lock(&read_mu_);
  return QueryCommands("SELECT record, state FROM commands WHERE terminal = 0 ORDER BY id", {}, -1);
}

absl::StatusOr<std::optional<proto::CommandState>> Store::GetCommand(const std::string& id) {
  absl::MutexLock lock(&read_mu_);
  STEWARD_ASSIGN_OR_RETURN(auto rows, QueryCommands("SELECT record, state FROM commands WHERE id = ?1", {id}, -1));
  if (rows.empty()) return std::optional<proto::CommandState>();
  return std::optional<proto::CommandState>(std::move(rows[0]));
}

absl::StatusOr<std::vector<proto::CommandState>> Store::ByRequest(const std::string& request_id) {
  absl::MutexLock lock(&read_mu_);
  return QueryCommands("SELECT record, state FROM commands WHERE request_id = ?1 ORDER BY node", {request_id}, -1);
}

absl::StatusOr<std::vector<proto::CommandState>> Store::History(const std::string& node,
                                                                const std::string& state, int limit) {
  absl::MutexLock lock(&read_mu_);
  return QueryCommands(
      "SELECT record, state FROM commands WHERE (?1 = '' OR node = ?1) AND (?2 = '' OR state = ?2) "
      "ORDER BY id DESC LIMIT ?3",
      {node, state}, limit > 0 ? limit : 20);
}

absl::StatusOr<std::vector<proto::NodeInfo>> Store::Nodes() {
  absl::MutexLock lock(&read_mu_);
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, reader_.Prepare("SELECT info FROM nodes ORDER BY name"));
  std::vector<proto::NodeInfo> out;
  while (true) {
    STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    proto::NodeInfo n;
    if (!n.ParseFromString(st.ColumnBlob(0))) return absl::DataLossError("corrupt node record");
    out.push_back(std::move(n));
  }
  return out;
}

absl::StatusOr<std::vector<Store::Transition>> Store::Transitions(const std::string& node) {
  absl::MutexLock lock(&read_mu_);
  STEWARD_ASSIGN_OR_RETURN(
      sqlite::Statement st,
      reader_.Prepare("SELECT online, at_ms, reason FROM node_transitions WHERE node = ?1 "
                      "ORDER BY at_ms, rowid"));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, node));
  std::vector<Transition> out;
  while (true) {
    STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(Transition{st.ColumnInt(0) != 0, st.ColumnInt(1), st.ColumnText(2)});
  }
  return out;
}

absl::StatusOr<int64_t> Store::CountEvents(const std::string& method) {
  absl::MutexLock lock(&read_mu_);
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                           reader_.Prepare("SELECT COUNT(*) FROM events WHERE method = ?1"));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, method));
  STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.ColumnInt(0) : 0;
}

}  // namespace steward::station
