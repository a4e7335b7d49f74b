// WaiterTable (station/waiters.h): answered once, when complete, first, or late.
#include "station/waiters.h"

#include <catch2/catch.hpp>

#include "absl/container/flat_hash_set.h"

namespace steward::station {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

Waiter W(std::vector<std::string> ids, bool any, const std::string& reply) {
  Waiter w;
  w.ids = std::move(ids);
  w.any = any;
  w.reply = reply;
  w.deadline = kT0 + absl::Seconds(10);
  return w;
}

TEST_CASE("an all-of waiter is answered when its last command ends", "[station][waiters]") {
  WaiterTable t;
  absl::flat_hash_set<std::string> open = {"a", "b"};
  auto is_open = [&](const std::string& id) { return open.contains(id); };
  CHECK_FALSE(t.Add(W({"a", "b", "c"}, false, "r1"), kT0, is_open).has_value());
  CHECK(t.Ended("a").empty());
  std::vector<Waiter> ready = t.Ended("b");
  REQUIRE(ready.size() == 1);
  CHECK(ready[0].reply == "r1");
  CHECK(t.size() == 0);
  CHECK(t.Ended("b").empty());  // answered once
}

TEST_CASE("an any-of waiter is answered by its first ended command", "[station][waiters]") {
  WaiterTable t;
  auto all_open = [](const std::string&) { return true; };
  CHECK_FALSE(t.Add(W({"a", "b"}, true, "r1"), kT0, all_open).has_value());
  CHECK_FALSE(t.Add(W({"b"}, false, "r2"), kT0, all_open).has_value());
  std::vector<Waiter> ready = t.Ended("b");
  CHECK(ready.size() == 2);
  CHECK(t.Ended("a").empty());  // r1 was unregistered from a
  CHECK(t.size() == 0);
}

TEST_CASE("a waiter with nothing open, or out of time, is ready at once", "[station][waiters]") {
  WaiterTable t;
  auto none_open = [](const std::string&) { return false; };
  CHECK(t.Add(W({"a"}, false, "r"), kT0, none_open).has_value());
  auto all_open = [](const std::string&) { return true; };
  CHECK(t.Add(W({"a"}, false, "r"), kT0 + absl::Seconds(10), all_open).has_value());
  // any-of with one of two ids already ended
  auto a_open = [](const std::string& id) { return id == "a"; };
  CHECK(t.Add(W({"a", "b"}, true, "r"), kT0, a_open).has_value());
  CHECK(t.size() == 0);
}

TEST_CASE("waiters whose time is up are handed out once", "[station][waiters]") {
  WaiterTable t;
  auto all_open = [](const std::string&) { return true; };
  Waiter late = W({"a"}, false, "late");
  late.deadline = kT0 + absl::Seconds(1);
  t.Add(std::move(late), kT0, all_open);
  t.Add(W({"a", "a"}, false, "dup"), kT0, all_open);
  CHECK(t.Expire(kT0).empty());
  std::vector<Waiter> expired = t.Expire(kT0 + absl::Seconds(1));
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].reply == "late");
  std::vector<Waiter> ready = t.Ended("a");  // the duplicate id counts once
  REQUIRE(ready.size() == 1);
  CHECK(ready[0].reply == "dup");
}

}  // namespace
}  // namespace steward::station
