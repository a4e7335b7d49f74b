// ActiveMembers, pure: the first online member becomes active, stays while it is up
// (also when a better one comes back), hands over when it goes offline, moves on an
// operator's word, and is kept in a setting that loads back.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "station/active_members.h"

namespace steward::station {
namespace {

TEST_CASE("a group's active member is the first online one, sticky until it goes offline",
          "[station][active]") {
  ActiveMembers a;
  std::set<std::string> up = {"b"};
  auto online = [&up](const std::string& n) { return up.count(n) > 0; };
  const std::vector<std::string> members = {"a", "b", "c"};

  auto c = a.SetPolicy("radar", "healthiest", members, online, 1000);
  REQUIRE(c.has_value());
  CHECK(c->from.empty());
  CHECK(c->to == "b");
  CHECK(a.Active("radar") == "b");

  // a (better) comes online: no change, b is up.
  up.insert("a");
  CHECK_FALSE(a.Recompute("radar", members, online, 2000).has_value());
  CHECK(a.Active("radar") == "b");

  // b goes offline: a, the first online, takes over; once.
  up.erase("b");
  c = a.Recompute("radar", members, online, 3000);
  REQUIRE(c.has_value());
  CHECK(c->from == "b");
  CHECK(c->to == "a");
  CHECK(c->reason == "b went offline");
  CHECK_FALSE(a.Recompute("radar", members, online, 3001).has_value());

  // Nobody online: a stays named.
  up.clear();
  CHECK_FALSE(a.Recompute("radar", members, online, 4000).has_value());
  CHECK(a.Active("radar") == "a");

  // An operator moves it; a non-member is refused.
  auto moved = a.Move("radar", "c", members, "alice", 5000);
  REQUIRE(moved.ok());
  CHECK(moved->reason == "moved by alice");
  CHECK(a.Active("radar") == "c");
  CHECK(absl::IsInvalidArgument(a.Move("radar", "zed", members, "alice", 5001).status()));
  CHECK(absl::IsFailedPrecondition(a.Move("web", "a", members, "alice", 5001).status()));

  // Kept and loaded back.
  ActiveMembers loaded;
  REQUIRE(loaded.Load({a.Setting("radar"), {"acl:ship1", "not text"}}).ok());
  REQUIRE(loaded.Find("radar") != nullptr);
  CHECK(loaded.Find("radar")->policy == "healthiest");
  CHECK(loaded.Active("radar") == "c");
  CHECK(loaded.Find("radar")->since_ms == 5000);

  // No policy any more: no active member, and the setting is emptied.
  c = a.SetPolicy("radar", "", members, online, 6000);
  REQUIRE(c.has_value());
  CHECK(a.Active("radar").empty());
  CHECK(a.Setting("radar").second.empty());
  CHECK(absl::IsInvalidArgument(ActiveMembers::ValidatePolicy("random")));
}

TEST_CASE("an active member removed from its group hands over", "[station][active]") {
  ActiveMembers a;
  auto online = [](const std::string&) { return true; };
  REQUIRE(a.SetPolicy("radar", "healthiest", {"a", "b"}, online, 1).has_value());
  CHECK(a.Active("radar") == "a");
  auto c = a.Recompute("radar", {"b"}, online, 2);
  REQUIRE(c.has_value());
  CHECK(c->to == "b");
  CHECK(c->reason == "a is no longer a member");
}

}  // namespace
}  // namespace steward::station
