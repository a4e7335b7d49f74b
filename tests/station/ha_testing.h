// Helpers of the replicated ledger's tests (station/ha/): a ledger file opened as the
// station opens it, and its rows as text, to compare two copies.
#pragma once

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/nats.h"
#include "common/sqlite.h"
#include "station/ledger/log_store.h"
#include "station/ledger/schema.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/wait.h"

namespace steward::station::ha::testing {

// A nats-server with JetStream and two clients, as two station instances.
struct Broker {
  nats::Library lib;
  steward::testing::TempDir dir;
  steward::testing::NatsServer server{steward::testing::JetStreamConfig(dir)};
  nats::ConnectionPtr a = steward::testing::MustConnect(server.url(), "station a");
  nats::ConnectionPtr b = steward::testing::MustConnect(server.url(), "station b");
};

inline sqlite::Database OpenLedger(const std::string& path) {
  absl::StatusOr<sqlite::Database> db = sqlite::Database::Open(path, {});
  REQUIRE(db.ok());
  REQUIRE(ledger::RegisterLogFunctions(*db).ok());
  REQUIRE(db->Migrate(ledger::Migrations()).ok());
  return std::move(*db);
}

// Every row of every replicated table, as text: two ledgers with the same rows give the
// same.
inline std::map<std::string, std::string> Dump(sqlite::Database& db) {
  std::map<std::string, std::string> out;
  std::vector<std::string> tables;
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db.raw(),
                             "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                             "AND name NOT LIKE 'ha_%' AND name != 'schema_version' AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'",
                             -1, &st, nullptr) == SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  for (const std::string& t : tables) {
    REQUIRE(sqlite3_prepare_v2(db.raw(), absl::StrCat("SELECT * FROM \"", t, "\" ORDER BY 1").c_str(), -1, &st,
                               nullptr) == SQLITE_OK);
    std::string rows;
    while (sqlite3_step(st) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        const void* data = sqlite3_column_blob(st, c);
        rows += absl::StrCat(sqlite3_column_type(st, c), ":",
                             std::string(static_cast<const char*>(data), static_cast<size_t>(sqlite3_column_bytes(st, c))),
                             "|");
      }
      rows += "\n";
    }
    sqlite3_finalize(st);
    out[t] = rows;
  }
  return out;
}

// The first column of the first row of `sql`.
inline int64_t Count(sqlite::Database& db, const std::string& sql) {
  absl::StatusOr<sqlite::Statement> st = db.Prepare(sql);
  INFO(st.status().ToString());
  REQUIRE(st.ok());
  absl::StatusOr<bool> row = st->Step();
  INFO(row.status().ToString());
  REQUIRE(row.ok());
  REQUIRE(*row);
  return st->ColumnInt(0);
}

}  // namespace steward::station::ha::testing
