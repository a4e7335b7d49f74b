#include "station/ledger/ledger_file.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "station/ledger/log_store.h"
#include "station/ledger/schema.h"

namespace steward::station::ledger {

std::string LedgerPath(const std::string& data_dir) {
  return (std::filesystem::path(data_dir) / "station.db").string();
}

absl::StatusOr<sqlite::Database> OpenLedgerFile(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("create ", data_dir, ": ", ec.message()));
  STEWARD_ASSIGN_OR_RETURN(sqlite::Database db,
                           sqlite::Database::Open(LedgerPath(data_dir), {.batch_wal_writes = true}));
  STEWARD_RETURN_IF_ERROR(RegisterLogFunctions(db));
  STEWARD_RETURN_IF_ERROR(db.Migrate(Migrations()));
  return db;
}

}  // namespace steward::station::ledger
