// Schema of the station's ledger (<data_dir>/station.db): the steps that build it, in
// order. The schema version is the number of steps applied (common/sqlite's Migrate);
// a ledger newer than this program is refused, never rewritten.
#pragma once

#include <string>
#include <vector>

namespace steward::station::ledger {

// Every step so far. Append new steps; never edit or reorder one that shipped.
const std::vector<std::string>& Migrations();

}  // namespace steward::station::ledger
