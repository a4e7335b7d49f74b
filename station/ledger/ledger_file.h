// The ledger's file, <data_dir>/station.db, opened as every user of it needs it: the
// directory made when missing, the log store's SQL functions registered (its schema
// steps call them), and the schema migrated to this program's version. The Store opens
// its writer this way, and so does a standby that follows the journal (station/ha/).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/sqlite.h"

namespace steward::station::ledger {

std::string LedgerPath(const std::string& data_dir);

absl::StatusOr<sqlite::Database> OpenLedgerFile(const std::string& data_dir);

}  // namespace steward::station::ledger
