// ScheduleTable (station/schedules.h): when runs are due, with an injected clock;
// runs missed while the station was down, skipped or caught up once; pause and resume.
#include "station/schedules.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace steward::station {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);  // 2027-01-15 08:00:00 UTC

proto::Schedule Every10s(const std::string& name, proto::MissedRuns missed = proto::MISSED_SKIP) {
  proto::Schedule s;
  s.set_name(name);
  s.set_cron("*/10 * * * * *");
  s.set_missed(missed);
  s.set_created_unix_ms(absl::ToUnixMillis(kT0));
  s.mutable_target()->add_selectors("ship1");
  return s;
}

ScheduleTable::Entry Compiled(proto::Schedule s) {
  absl::StatusOr<ScheduleTable::Entry> e = ScheduleTable::Compile(std::move(s), kT0);
  REQUIRE(e.ok());
  return *std::move(e);
}

TEST_CASE("a schedule is due at its times, once each", "[station][schedules]") {
  ScheduleTable t;
  REQUIRE(t.Add(Compiled(Every10s("disk")), kT0).ok());
  CHECK(t.NextDue() == kT0 + absl::Seconds(10));
  CHECK(t.Due(kT0 + absl::Seconds(9)).empty());
  std::vector<ScheduleTable::Run> due = t.Due(kT0 + absl::Seconds(10));
  REQUIRE(due.size() == 1);
  CHECK(due[0].name == "disk");
  CHECK(due[0].at == kT0 + absl::Seconds(10));
  CHECK_FALSE(due[0].catch_up);
  // Being made: not due again until it is stored.
  CHECK(t.Due(kT0 + absl::Seconds(11)).empty());
  t.Ran("disk", due[0].at, "R1", true, kT0 + absl::Seconds(10));
  CHECK(t.Find("disk")->s.last_run_id() == "R1");
  CHECK(t.NextDue() == kT0 + absl::Seconds(20));
}

TEST_CASE("a run that could not be stored is due again", "[station][schedules]") {
  ScheduleTable t;
  REQUIRE(t.Add(Compiled(Every10s("disk")), kT0).ok());
  std::vector<ScheduleTable::Run> due = t.Due(kT0 + absl::Seconds(10));
  t.Ran("disk", due[0].at, "", false, kT0 + absl::Seconds(10));
  due = t.Due(kT0 + absl::Seconds(10) + absl::Milliseconds(100));
  REQUIRE(due.size() == 1);
  CHECK(due[0].at == kT0 + absl::Seconds(10));
}

TEST_CASE("a late run at runtime is made once and the next is after it", "[station][schedules]") {
  ScheduleTable t;
  REQUIRE(t.Add(Compiled(Every10s("disk")), kT0).ok());
  // The station was busy for 35 s: one run, for the first time it missed.
  const absl::Time late = kT0 + absl::Seconds(45);
  std::vector<ScheduleTable::Run> due = t.Due(late);
  REQUIRE(due.size() == 1);
  CHECK(due[0].at == kT0 + absl::Seconds(10));
  t.Ran("disk", due[0].at, "R1", true, late);
  CHECK(t.NextDue() == kT0 + absl::Seconds(50));
}

TEST_CASE("runs missed while the station was down: skipped, or one catch-up run", "[station][schedules]") {
  // Both last ran at kT0+10s; the station was down until kT0+65s: 5 runs missed
  // (20, 30, 40, 50, 60).
  std::vector<proto::Schedule> rows = {Every10s("skip", proto::MISSED_SKIP), Every10s("once", proto::MISSED_RUN_ONCE)};
  for (proto::Schedule& s : rows) s.set_last_run_unix_ms(absl::ToUnixMillis(kT0 + absl::Seconds(10)));
  const absl::Time start = kT0 + absl::Seconds(65);
  ScheduleTable t;
  std::vector<proto::Schedule> changed;
  std::vector<std::string> problems;
  std::vector<ScheduleTable::Run> runs = t.Load(rows, start, &changed, &problems);
  CHECK(problems.empty());
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].name == "once");
  CHECK(runs[0].catch_up);
  CHECK(runs[0].at == kT0 + absl::Seconds(60));  // the last time it missed
  REQUIRE(changed.size() == 2);
  CHECK(t.Find("skip")->s.missed_runs() == 5);
  CHECK(t.Find("once")->s.missed_runs() == 4);  // the catch-up run stands for the fifth
  // Both go on from now, not from the times they missed.
  CHECK(t.Find("skip")->next == kT0 + absl::Seconds(70));
  CHECK(t.Due(start).empty());
  t.Ran("once", runs[0].at, "R9", true, start);
  CHECK(t.Find("once")->next == kT0 + absl::Seconds(70));

  // Restarted again at once: what was skipped is not owed again.
  ScheduleTable again;
  changed.clear();
  std::vector<proto::Schedule> stored = {t.Find("skip")->s, t.Find("once")->s};
  CHECK(again.Load(stored, start + absl::Seconds(1), &changed, &problems).empty());
  CHECK(changed.empty());
}

TEST_CASE("nothing missed: nothing to catch up", "[station][schedules]") {
  proto::Schedule s = Every10s("once", proto::MISSED_RUN_ONCE);
  s.set_last_run_unix_ms(absl::ToUnixMillis(kT0 + absl::Seconds(10)));
  ScheduleTable t;
  std::vector<proto::Schedule> changed;
  std::vector<std::string> problems;
  CHECK(t.Load({s}, kT0 + absl::Seconds(15), &changed, &problems).empty());
  CHECK(changed.empty());
  CHECK(t.NextDue() == kT0 + absl::Seconds(20));
}

TEST_CASE("a paused schedule makes no runs, and resumed it owes nothing from the pause", "[station][schedules]") {
  ScheduleTable t;
  REQUIRE(t.Add(Compiled(Every10s("disk", proto::MISSED_RUN_ONCE)), kT0).ok());
  REQUIRE(t.SetPaused("disk", true, kT0 + absl::Seconds(1)).ok());
  CHECK(t.Due(kT0 + absl::Seconds(100)).empty());
  CHECK(t.NextDue() == absl::InfiniteFuture());
  absl::StatusOr<proto::Schedule> resumed = t.SetPaused("disk", false, kT0 + absl::Seconds(105));
  REQUIRE(resumed.ok());
  CHECK(resumed->resumed_unix_ms() == absl::ToUnixMillis(kT0 + absl::Seconds(105)));
  CHECK(t.NextDue() == kT0 + absl::Seconds(110));
  // A paused schedule loaded at start owes nothing either.
  proto::Schedule paused = Every10s("p", proto::MISSED_RUN_ONCE);
  paused.set_paused(true);
  std::vector<proto::Schedule> changed;
  std::vector<std::string> problems;
  ScheduleTable other;
  CHECK(other.Load({paused}, kT0 + absl::Hours(1), &changed, &problems).empty());
}

TEST_CASE("schedules are checked, and unknown names refused", "[station][schedules]") {
  proto::Schedule s = Every10s("x");
  s.set_cron("0 0 30 2 *");
  CHECK(ScheduleTable::Compile(s, kT0).status().message() == "cron \"0 0 30 2 *\" never fires");
  s.set_cron("* * * * *");
  s.set_time_zone("Nowhere/City");
  CHECK(absl::IsNotFound(ScheduleTable::Compile(s, kT0).status()));
  ScheduleTable t;
  REQUIRE(t.Add(Compiled(Every10s("disk")), kT0).ok());
  CHECK(absl::IsAlreadyExists(t.Add(Compiled(Every10s("disk")), kT0)));
  CHECK(absl::IsNotFound(t.Remove("nope")));
  CHECK(absl::IsNotFound(t.SetPaused("nope", true, kT0).status()));
  REQUIRE(t.Remove("disk").ok());
  CHECK(t.List().empty());
  // A schedule whose zone is gone is never due, and said why; it can still be removed.
  std::vector<proto::Schedule> changed;
  std::vector<std::string> problems;
  ScheduleTable other;
  CHECK(other.Load({s}, kT0, &changed, &problems).empty());
  CHECK(problems.size() == 1);
  CHECK(other.NextDue() == absl::InfiniteFuture());
  CHECK(other.Due(kT0 + absl::Hours(1)).empty());
  CHECK(other.List().size() == 1);
  CHECK(other.Remove("x").ok());
}

TEST_CASE("a stored schedule whose target is not chosen is never due, even resumed, and says why",
          "[station][schedules]") {
  // Stored before targets were checked at add: no target at all ("schedule add X , ..."),
  // or --all with names. Either would have run on every node.
  proto::Schedule none = Every10s("none");
  none.clear_target();
  proto::Schedule both = Every10s("both");
  both.mutable_target()->set_all_nodes(true);
  proto::Schedule fine = Every10s("fine");
  // A pattern left open (it matched nothing), and a method only the station sends.
  proto::Schedule open = Every10s("open");
  open.mutable_target()->set_selectors(0, "ship[1-");
  proto::Schedule cancels = Every10s("cancels");
  cancels.mutable_command()->set_method("cancel");
  std::vector<proto::Schedule> changed;
  std::vector<std::string> problems;
  ScheduleTable t;
  CHECK(t.Load({none, both, fine, open, cancels}, kT0, &changed, &problems).empty());
  REQUIRE(problems.size() == 4);
  CHECK_THAT(problems[0], Catch::Contains("schedule none: target: no target"));
  CHECK_THAT(problems[1], Catch::Contains("schedule both: target: --all takes every node: name no nodes with it (ship1)"));
  CHECK_THAT(problems[2], Catch::Contains("schedule open: target: bad node pattern \"ship[1-\""));
  CHECK_THAT(problems[3], Catch::Contains("schedule cancels: cancel is sent by the station"));
  CHECK(t.Find("none")->s.problem() == "target: no target: name nodes (names, globs, @groups), --where or --all");
  CHECK(t.Find("fine")->s.problem().empty());
  std::vector<ScheduleTable::Run> due = t.Due(kT0 + absl::Minutes(1));
  REQUIRE(due.size() == 1);
  CHECK(due[0].name == "fine");
  // Resuming it does not make it due: its cron line was never compiled.
  REQUIRE(t.SetPaused("both", true, kT0).ok());
  REQUIRE(t.SetPaused("both", false, kT0).ok());
  CHECK(t.Find("both")->next == absl::InfiniteFuture());
  CHECK(t.Due(kT0 + absl::Hours(1)).empty());
  for (const proto::Schedule& s : t.List()) CHECK((s.name() == "fine") == s.problem().empty());
  // Added now, it is refused.
  CHECK_THAT(std::string(ScheduleTable::Compile(none, kT0).status().message()), Catch::Contains("no target"));
  // Its record written back, then mended (here: a target set): the old problem is not kept.
  proto::Schedule mended = t.Find("none")->s;
  mended.mutable_target()->add_selectors("ship2");
  ScheduleTable again;
  problems.clear();
  again.Load({mended}, kT0, &changed, &problems);
  CHECK(problems.empty());
  CHECK(again.Find("none")->s.problem().empty());
  CHECK(again.NextDue() == kT0 + absl::Seconds(10));
}

}  // namespace
}  // namespace steward::station
