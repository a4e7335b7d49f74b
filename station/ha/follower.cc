#include "station/ha/follower.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/sqlite.h"
#include "common/status_macros.h"
#include "station/ha/changes.h"
#include "station/ledger/ledger_file.h"

namespace steward::station::ha {
namespace {

// How often a standby looks for new journal entries: how far behind it may be.
constexpr absl::Duration kPoll = absl::Milliseconds(200);

// Applies every entry after the local ledger's last, up to the journal's end now.
absl::Status CatchUp(sqlite::Database& db, Journal& journal, FollowState& state) {
  STEWARD_ASSIGN_OR_RETURN(const uint64_t applied, AppliedSeq(db));
  STEWARD_ASSIGN_OR_RETURN(const Journal::Bounds bounds, journal.GetBounds());
  const uint64_t last = bounds.last;
  state.journal.store(last);
  if (applied > last) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the local ledger holds journal entries up to ", applied, " but journal ", journal.stream(), " ends at ",
        last, ": it is not this ledger's journal (a new broker cluster?); move the ledger aside to start over"));
  }
  if (applied < last && applied + 1 < bounds.first) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the local ledger holds journal entries up to ", applied, " but journal ", journal.stream(),
        " was compacted and now starts at entry ", bounds.first,
        ": seed this instance with a copy of another instance's ledger (README: seeding a standby)"));
  }
  STEWARD_ASSIGN_OR_RETURN(const uint64_t done, journal.ReadFrom(applied + 1, [&](const JournalEntry& e) {
    STEWARD_RETURN_IF_ERROR(ApplyChanges(db, e.first, e.seq, e.changes).status());
    state.applied.store(e.seq);
    return absl::OkStatus();
  }));
  state.applied.store(std::max(done, applied));
  if (done >= last) state.caught_up_unix_ms.store(absl::ToUnixMillis(absl::Now()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<bool> FollowUntilActive(const std::string& data_dir, Lease& lease, Journal& journal,
                                       absl::Notification& stop, FollowState& state) {
  STEWARD_ASSIGN_OR_RETURN(sqlite::Database db, ledger::OpenLedgerFile(data_dir));
  absl::Time next_step = absl::InfinitePast();
  absl::Status last_error;
  while (!stop.HasBeenNotified()) {
    absl::Status st = CatchUp(db, journal, state);
    if (absl::IsFailedPrecondition(st) || absl::IsDataLoss(st) || absl::IsInvalidArgument(st)) return st;
    if (!st.ok() && st.ToString() != last_error.ToString()) {
      STEWARD_LOG_WARNING("standby: following the journal: {}", st.ToString());
    }
    last_error = st;
    if (absl::Now() >= next_step) {
      next_step = absl::Now() + lease.renew_every();
      absl::StatusOr<bool> held = lease.Step();
      // The lease is ours: nobody else writes now. What is left goes in first.
      while (held.ok() && *held && lease.Held() && !stop.HasBeenNotified()) {
        st = CatchUp(db, journal, state);
        if (st.ok()) {
          if (state.before_seal) state.before_seal();
          const uint64_t seal = state.journal.load() + 1;
          absl::StatusOr<uint64_t> sealed = journal.Append(seal, lease.term(), "");
          if (sealed.ok()) {
            state.journal.store(*sealed);
            return true;
          }
          st = sealed.status();
          if (absl::IsFailedPrecondition(st)) {
            // Written since the catch-up: the old active instance's last write (its
            // link was slow), or a newer instance's, which the next Step finds out.
            STEWARD_LOG_WARNING("standby: journal entry {} was written after catching up ({}): catching up again",
                                seal, st.message());
          } else {
            STEWARD_LOG_WARNING("standby: holding the lease, sealing the journal: {}", st.ToString());
          }
        } else {
          if (absl::IsFailedPrecondition(st) || absl::IsDataLoss(st) || absl::IsInvalidArgument(st)) return st;
          STEWARD_LOG_WARNING("standby: holding the lease, catching up: {}", st.ToString());
        }
        stop.WaitForNotificationWithTimeout(kPoll);
        if (absl::Now() >= next_step) {
          next_step = absl::Now() + lease.renew_every();
          held = lease.Step();
        }
      }
    }
    stop.WaitForNotificationWithTimeout(kPoll);
  }
  return false;
}

}  // namespace steward::station::ha
