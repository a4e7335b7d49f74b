#include "station/ledger/targeting_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "station/jobs.h"

namespace steward::station::ledger {
namespace {


// Runs `sql` with text `args` and parses column 0 of each row as a T.
template <typename T>
absl::StatusOr<std::vector<T>> Records(Store& store, const std::string& sql, const std::vector<std::string>& args,
                                       int64_t limit = -1) {
  std::vector<T> out;
  STEWARD_RETURN_IF_ERROR(store.Rows(sql, args, limit, [&](sqlite::Statement& st) -> absl::Status {
    T record;
    if (!record.ParseFromString(st.ColumnBlob(0))) {
      return absl::DataLossError(absl::StrCat("corrupt ", T::descriptor()->name(), " record"));
    }
    out.push_back(std::move(record));
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace

Store::Op PutTags(std::string node, std::map<std::string, std::string> tags) {
  return [node = std::move(node), tags = std::move(tags)](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement del, db.Prepare("DELETE FROM node_tags WHERE node = ?1"));
    STEWARD_RETURN_IF_ERROR(del.Bind(1, node));
    STEWARD_RETURN_IF_ERROR(del.Step().status());
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             db.Prepare("INSERT INTO node_tags(node, key, value) VALUES (?1, ?2, ?3)"));
    for (const auto& [key, value] : tags) {
      STEWARD_RETURN_IF_ERROR(st.Reset());
      STEWARD_RETURN_IF_ERROR(st.Bind(1, node));
      STEWARD_RETURN_IF_ERROR(st.Bind(2, key));
      STEWARD_RETURN_IF_ERROR(st.Bind(3, value));
      STEWARD_RETURN_IF_ERROR(st.Step().status());
    }
    return absl::OkStatus();
  };
}

absl::StatusOr<std::vector<std::tuple<std::string, std::string, std::string>>> Tags(Store& store) {
  std::vector<std::tuple<std::string, std::string, std::string>> out;
  STEWARD_RETURN_IF_ERROR(
      store.Rows("SELECT node, key, value FROM node_tags", {}, -1, [&](sqlite::Statement& st) -> absl::Status {
        out.emplace_back(st.ColumnText(0), st.ColumnText(1), st.ColumnText(2));
        return absl::OkStatus();
      }));
  return out;
}

Store::Op PutJob(proto::Job job) {
  return [job = std::move(job)](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             db.Prepare("INSERT OR REPLACE INTO jobs(id, schedule, open, created_ms, record) "
                                        "VALUES (?1, ?2, ?3, ?4, ?5)"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, job.id()));
    STEWARD_RETURN_IF_ERROR(st.Bind(2, job.schedule()));
    STEWARD_RETURN_IF_ERROR(st.Bind(3, int64_t{IsOpenJob(job.state()) ? 1 : 0}));
    STEWARD_RETURN_IF_ERROR(st.Bind(4, job.created_unix_ms()));
    STEWARD_RETURN_IF_ERROR(st.BindBlob(5, job.SerializeAsString()));
    return st.Step().status();
  };
}

absl::StatusOr<std::optional<proto::Job>> GetJob(Store& store, const std::string& id) {
  STEWARD_ASSIGN_OR_RETURN(std::vector<proto::Job> rows,
                           Records<proto::Job>(store, "SELECT record FROM jobs WHERE id = ?1", {id}));
  if (rows.empty()) return std::optional<proto::Job>();
  return std::optional<proto::Job>(std::move(rows.front()));
}

absl::StatusOr<std::vector<proto::Job>> OpenJobs(Store& store) {
  return Records<proto::Job>(store, "SELECT record FROM jobs WHERE open = 1 ORDER BY id", {});
}

absl::StatusOr<std::vector<proto::Job>> Runs(Store& store, const std::string& name, int limit) {
  return Records<proto::Job>(
      store, "SELECT record FROM jobs WHERE schedule = ?1 ORDER BY created_ms DESC, id DESC LIMIT ?2", {name}, limit);
}

Store::Op PutSchedule(proto::Schedule s) {
  return [s = std::move(s)](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             db.Prepare("INSERT OR REPLACE INTO schedules(name, record) VALUES (?1, ?2)"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, s.name()));
    STEWARD_RETURN_IF_ERROR(st.BindBlob(2, s.SerializeAsString()));
    return st.Step().status();
  };
}

Store::Op DeleteSchedule(std::string name) {
  return [name = std::move(name)](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("DELETE FROM schedules WHERE name = ?1"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, name));
    return st.Step().status();
  };
}

Store::Op ScheduleRan(std::string name, int64_t at_ms, std::string run_id) {
  return [name = std::move(name), at_ms, run_id = std::move(run_id)](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement get, db.Prepare("SELECT record FROM schedules WHERE name = ?1"));
    STEWARD_RETURN_IF_ERROR(get.Bind(1, name));
    STEWARD_ASSIGN_OR_RETURN(bool row, get.Step());
    if (!row) return absl::OkStatus();  // removed meanwhile; the run is recorded anyway
    proto::Schedule s;
    if (!s.ParseFromString(get.ColumnBlob(0))) return absl::DataLossError("corrupt Schedule record");
    s.set_last_run_unix_ms(at_ms);
    s.set_last_run_id(run_id);
    return PutSchedule(std::move(s))(db);
  };
}

absl::StatusOr<std::vector<proto::Schedule>> Schedules(Store& store) {
  return Records<proto::Schedule>(store, "SELECT record FROM schedules ORDER BY name", {});
}

}  // namespace steward::station::ledger
