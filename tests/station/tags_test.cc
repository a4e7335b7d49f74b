// TagTable (station/tags.h): operators' tags, and the changes each set reports.
#include "station/tags.h"

#include <catch2/catch.hpp>

namespace steward::station {
namespace {

TEST_CASE("tags: set, change, remove, each change reported once", "[station][tags]") {
  TagTable t;
  CHECK(t.Of("ship1") == nullptr);
  const uint64_t v0 = t.version();
  std::vector<TagTable::Change> c = t.Set("ship1", {{"role", "radar"}, {"region", "north"}}, {});
  REQUIRE(c.size() == 2);
  CHECK(t.version() > v0);
  CHECK(t.Of("ship1")->at("role") == "radar");
  // The same value again: nothing changes, the version stays.
  const uint64_t v1 = t.version();
  CHECK(t.Set("ship1", {{"role", "radar"}}, {}).empty());
  CHECK(t.version() == v1);
  c = t.Set("ship1", {{"role", "engine"}}, {"region", "nosuch"});
  REQUIRE(c.size() == 2);
  CHECK(c[0].key == "region");
  CHECK(c[0].removed);
  CHECK(c[0].before == "north");
  CHECK(c[1].before == "radar");
  CHECK(c[1].after == "engine");
  c = t.Set("ship1", {}, {"role"});
  CHECK(t.Of("ship1") == nullptr);  // no tags left
  t.Load({{"ship2", "role", "radar"}});
  CHECK(t.Of("ship2")->at("role") == "radar");
}

}  // namespace
}  // namespace steward::station
