#include "station/schedules.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "station/targeting.h"

namespace steward::station {
namespace {

// Counting missed runs stops here (a per-second schedule down for a week).
constexpr int kMaxMissedCount = 100000;

}  // namespace

absl::StatusOr<ScheduleTable::Entry> ScheduleTable::Compile(proto::Schedule s, absl::Time now) {
  Entry e;
  absl::StatusOr<CronSpec> cron = CronSpec::Parse(s.cron());
  if (!cron.ok()) return cron.status();
  absl::StatusOr<absl::TimeZone> tz = LoadZone(s.time_zone());
  if (!tz.ok()) return tz.status();
  // (Checked when it is added; one stored before that check may have no target, --all
  // with names, a pattern left open, or a method only the station sends: never taken
  // as every node, never sent.)
  if (absl::StatusOr<Target> t = CompileChosenTarget(s.target()); !t.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("target: ", t.status().message()));
  }
  STEWARD_RETURN_IF_ERROR(CheckNotStationOnly(s.command().method()));
  e.cron = *std::move(cron);
  e.tz = *tz;
  if (e.cron.Next(now, e.tz) == absl::InfiniteFuture()) {
    return absl::InvalidArgumentError(absl::StrCat("cron \"", s.cron(), "\" never fires"));
  }
  e.s = std::move(s);
  return e;
}

absl::Time ScheduleTable::NextAfter(const Entry& e, absl::Time after) {
  if (e.s.paused() || !e.s.problem().empty()) return absl::InfiniteFuture();
  return e.cron.Next(after, e.tz);
}

std::vector<ScheduleTable::Run> ScheduleTable::Load(std::vector<proto::Schedule> rows, absl::Time now,
                                                    std::vector<proto::Schedule>* changed,
                                                    std::vector<std::string>* problems) {
  std::vector<Run> runs;
  for (proto::Schedule& row : rows) {
    const std::string name = row.name();
    row.clear_problem();  // found anew
    absl::StatusOr<Entry> compiled = Compile(row, now);
    if (!compiled.ok()) {
      // Kept (listed with why, removable), never due, even resumed: its cron line, zone
      // or target no longer works here.
      problems->push_back(absl::StrCat("schedule ", name, ": ", compiled.status().message()));
      row.set_problem(std::string(compiled.status().message()));
      schedules_[name].s = std::move(row);
      continue;
    }
    Entry& e = schedules_[name] = *std::move(compiled);
    // Owed: runs after the last one made, and after the schedule was made or resumed.
    const int64_t since_ms = std::max({e.s.last_run_unix_ms(), e.s.resumed_unix_ms(), e.s.created_unix_ms()});
    absl::Time missed = NextAfter(e, absl::FromUnixMillis(since_ms));
    if (missed > now) {
      e.next = missed;
      continue;
    }
    // Missed while the station was down: how many, and the last one.
    int count = 0;
    absl::Time last = missed;
    for (absl::Time t = missed; t <= now && count < kMaxMissedCount; t = e.cron.Next(t, e.tz)) {
      last = t;
      ++count;
    }
    e.next = NextAfter(e, now);
    if (e.s.missed() == proto::MISSED_RUN_ONCE) {
      e.s.set_missed_runs(e.s.missed_runs() + count - 1);
      e.running = true;
      runs.push_back(Run{name, last, true});
    } else {
      e.s.set_missed_runs(e.s.missed_runs() + count);
    }
    // Not owed again at the next start, whether or not the catch-up run is stored.
    e.s.set_resumed_unix_ms(absl::ToUnixMillis(now));
    changed->push_back(e.s);
  }
  return runs;
}

absl::Status ScheduleTable::Add(Entry e, absl::Time now) {
  const std::string name = e.s.name();
  if (schedules_.count(name) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("schedule ", name, " exists (remove it first)"));
  }
  e.next = NextAfter(e, now);
  schedules_.emplace(name, std::move(e));
  return absl::OkStatus();
}

absl::Status ScheduleTable::Remove(const std::string& name) {
  if (schedules_.erase(name) == 0) return absl::NotFoundError(absl::StrCat("unknown schedule ", name));
  return absl::OkStatus();
}

absl::StatusOr<proto::Schedule> ScheduleTable::SetPaused(const std::string& name, bool paused, absl::Time now) {
  auto it = schedules_.find(name);
  if (it == schedules_.end()) return absl::NotFoundError(absl::StrCat("unknown schedule ", name));
  Entry& e = it->second;
  e.s.set_paused(paused);
  if (!paused) e.s.set_resumed_unix_ms(absl::ToUnixMillis(now));
  e.next = NextAfter(e, now);
  return e.s;
}

std::vector<ScheduleTable::Run> ScheduleTable::Due(absl::Time now) {
  std::vector<Run> runs;
  for (auto& [name, e] : schedules_) {
    if (e.running || e.next > now) continue;
    e.running = true;
    runs.push_back(Run{name, e.next, false});
  }
  return runs;
}

void ScheduleTable::Ran(const std::string& name, absl::Time at, const std::string& run_id, bool ok, absl::Time now) {
  auto it = schedules_.find(name);
  if (it == schedules_.end()) return;  // removed meanwhile
  Entry& e = it->second;
  e.running = false;
  if (!ok) return;  // Due offers it again
  e.s.set_last_run_unix_ms(absl::ToUnixMillis(at));
  e.s.set_last_run_id(run_id);
  // A late run stands for every time it was late for.
  e.next = NextAfter(e, std::max(at, now));
}

const ScheduleTable::Entry* ScheduleTable::Find(const std::string& name) const {
  auto it = schedules_.find(name);
  return it == schedules_.end() ? nullptr : &it->second;
}

std::vector<proto::Schedule> ScheduleTable::List() const {
  std::vector<proto::Schedule> out;
  for (const auto& [name, e] : schedules_) {
    out.push_back(e.s);
    out.back().set_next_run_unix_ms(e.next == absl::InfiniteFuture() ? 0 : absl::ToUnixMillis(e.next));
  }
  return out;
}

absl::Time ScheduleTable::NextDue() const {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [name, e] : schedules_) {
    if (!e.running) next = std::min(next, e.next);
  }
  return next;
}

}  // namespace steward::station
