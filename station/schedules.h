// ScheduleTable: the station's schedules (a cron line in a time zone, a target, a
// command) and when each runs next. Each run is an ordinary fan-out the job runner
// makes (a Job grouped under the schedule's name); this table only says when.
//
// Runs missed while the station was down follow the schedule's policy at start (Load):
// skipped (counted in missed_runs), or one run at once that stands for all of them. A
// run due while the station runs but late (the station was busy) is made once, late;
// the next one is the first due after it. Paused schedules make no runs; resumed,
// they owe nothing from the pause.
//
//   ScheduleTable table;
//   for (ScheduleTable::Run& r : table.Load(rows, now)) make the run...
//   for (ScheduleTable::Run& r : table.Due(now)) make the run, then table.Ran(...)
//
// Pure: every call is given `now`. Not thread-safe: the station calls it under its
// model mutex.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/steward.pb.h"
#include "station/cron.h"

namespace steward::station {

class ScheduleTable {
 public:
  struct Entry {
    proto::Schedule s;
    CronSpec cron;
    absl::TimeZone tz;
    absl::Time next = absl::InfiniteFuture();
    bool running = false;  // a run is being made
  };

  // A run to make: schedule `name`'s run for `at` (catch_up: for runs missed while the
  // station was down).
  struct Run {
    std::string name;
    absl::Time at;
    bool catch_up = false;
  };

  // Compile checks a schedule (its cron line, its zone, that it ever fires after `now`).
  static absl::StatusOr<Entry> Compile(proto::Schedule s, absl::Time now);

  // Load takes the ledger's schedules at start. Runs missed while the station was down:
  // with MISSED_RUN_ONCE, one catch-up run each (returned, marked running); with
  // MISSED_SKIP, counted in missed_runs. `changed` gets the records to write back (what
  // was skipped is not owed again at the next start). `problems`: schedules that no
  // longer compile (a zone gone from tzdata): kept, so that they are listed and can be
  // removed, but never due.
  std::vector<Run> Load(std::vector<proto::Schedule> rows, absl::Time now, std::vector<proto::Schedule>* changed,
                        std::vector<std::string>* problems);

  // Add takes a new schedule; AlreadyExists when the name is taken.
  absl::Status Add(Entry e, absl::Time now);
  absl::Status Remove(const std::string& name);
  // Pause or resume `name`; the record to write. NotFound for an unknown name.
  absl::StatusOr<proto::Schedule> SetPaused(const std::string& name, bool paused, absl::Time now);

  // The runs due at `now` (each marked running until Ran).
  std::vector<Run> Due(absl::Time now);
  // Ran: the run of `name` for `at` was stored as job `run_id` (ok), or not: then it is
  // tried again at the next Due.
  void Ran(const std::string& name, absl::Time at, const std::string& run_id, bool ok, absl::Time now);

  const Entry* Find(const std::string& name) const;
  // Every schedule, by name, with next_run_unix_ms filled in.
  std::vector<proto::Schedule> List() const;
  // When the next run is due (InfiniteFuture when none).
  absl::Time NextDue() const;

 private:
  // When `e` runs next after `after` (never while paused).
  static absl::Time NextAfter(const Entry& e, absl::Time after);

  std::map<std::string, Entry> schedules_;
};

}  // namespace steward::station
