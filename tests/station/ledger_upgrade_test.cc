// A ledger written by steward 0.1.0 (tests/fixtures/release-0.1.0) opens with this
// station's schema and reads back every command in its state.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <map>

#include "common/protocol.h"
#include "station/ledger/store.h"

namespace steward::station {
namespace {

std::string CopyFixture() {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("steward-upgrade-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(std::string(STEWARD_SOURCE_DIR) + "/tests/fixtures/release-0.1.0/station.db",
                             dir / "station.db");
  return dir.string();
}

TEST_CASE("a 0.1.0 ledger opens and keeps every command's state", "[station][upgrade]") {
  const std::string dir = CopyFixture();
  {
    auto store = ledger::Store::Open(dir);
    REQUIRE(store.ok());
    auto active = (*store)->ActiveCommands();
    REQUIRE(active.ok());
    REQUIRE(active->size() == 1);
    CHECK(active->front().node() == "ship2");
    CHECK(active->front().state() == proto::STATE_QUEUED);

    auto all = (*store)->History("", proto::STATE_UNSPECIFIED, 100);
    REQUIRE(all.ok());
    std::map<std::string, int> by_state;
    for (const proto::CommandState& c : *all) ++by_state[StateName(c.state())];
    CHECK(by_state == std::map<std::string, int>{{"failed", 1}, {"queued", 1}, {"succeeded", 4}});
    auto failed = (*store)->History("ship1", proto::STATE_FAILED, 10);
    REQUIRE(failed.ok());
    REQUIRE(failed->size() == 1);
    CHECK(failed->front().result().exit_code() == 3);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace steward::station
