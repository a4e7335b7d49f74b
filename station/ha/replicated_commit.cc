#include "station/ha/replicated_commit.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "station/ha/changes.h"

namespace steward::station::ha {

absl::StatusOr<std::unique_ptr<ReplicatedCommit>> ReplicatedCommit::Start(sqlite::Database& db, Append append,
                                                                          uint64_t journal_end) {
  std::unique_ptr<ReplicatedCommit> r(new ReplicatedCommit(db, std::move(append)));
  STEWARD_ASSIGN_OR_RETURN(r->applied_, AppliedSeq(db));
  r->end_.store(std::max(r->applied_, journal_end));
  STEWARD_ASSIGN_OR_RETURN(r->capture_, ChangeCapture::Start(db));
  return r;
}

ReplicatedCommit::ReplicatedCommit(sqlite::Database& db, Append append) : db_(db), append_(std::move(append)) {}

ReplicatedCommit::~ReplicatedCommit() = default;

absl::Status ReplicatedCommit::Before() {
  if (uncertain_first_ != 0) {
    // The same entry again: stored now, or found stored by the earlier attempt.
    absl::StatusOr<uint64_t> last = append_(uncertain_first_, last_changes_);
    if (!last.ok()) {
      // Its place holds another entry: ours is not in the journal (and another
      // instance writes it now, which the next Publish finds out).
      if (absl::IsFailedPrecondition(last.status())) uncertain_first_ = 0;
      return last.status();
    }
    uncertain_first_ = 0;
    Recover(*last);
  }
  return behind_.empty() ? absl::OkStatus() : absl::FailedPreconditionError(behind_);
}

absl::Status ReplicatedCommit::Publish() {
  published_last_ = 0;
  if (!behind_.empty()) return absl::FailedPreconditionError(behind_);
  STEWARD_ASSIGN_OR_RETURN(last_changes_, capture_->Take());
  if (last_changes_.empty()) return absl::OkStatus();  // nothing changed: no entry
  const uint64_t first = end_.load() + 1;
  absl::StatusOr<uint64_t> last = append_(first, last_changes_);
  if (!last.ok()) {
    // No answer, or a failure part-way through a large entry (some parts stored): the
    // journal may hold some or all of it. Until that is settled nothing else is written
    // (Before appends the same entry again), since a standby would apply a whole entry
    // and the next one must not land on its parts. Only a place taken by another
    // writer (fenced) settles it now: this instance is not active any more.
    if (!absl::IsFailedPrecondition(last.status())) uncertain_first_ = first;
    return last.status();
  }
  published_last_ = *last;
  return RecordApplied(db_, *last);
}

void ReplicatedCommit::Ended(bool committed) {
  const uint64_t last = std::exchange(published_last_, 0);
  if (last == 0) {
    // Rolled back with nothing published: the capture forgets what it recorded (a table
    // the transaction made and the ROLLBACK dropped would fail every later Take).
    if (!committed) {
      if (absl::Status st = capture_->Reset(); !st.ok()) {
        // A capture that records nothing would publish nothing: no write goes on unseen.
        behind_ = absl::StrCat("the change capture could not be restarted after a rollback (", st.ToString(),
                               "); restart the station");
        STEWARD_LOG_ERROR("ledger: {}", behind_);
      }
    }
    return;
  }
  if (!committed) return Recover(last);
  applied_ = last;
  end_.store(last);
}

void ReplicatedCommit::Recover(uint64_t last) {
  absl::StatusOr<bool> applied = ApplyChanges(db_, applied_ + 1, last, last_changes_);
  // What applying wrote is in the journal already: the capture forgets it.
  absl::StatusOr<std::string> discard = capture_->Take();
  if (applied.ok() && discard.ok()) {
    applied_ = last;
    end_.store(last);
    STEWARD_LOG_WARNING("ledger: journal entry {} was published but its transaction did not commit; applied it "
                        "from the journal's copy", last);
    return;
  }
  behind_ = absl::StrCat("the ledger is behind its journal: entry ", last,
                         " was published but could not be committed here (",
                         applied.ok() ? discard.status().ToString() : applied.status().ToString(),
                         "); restart the station to catch up");
  STEWARD_LOG_ERROR("{}", behind_);
}

}  // namespace steward::station::ha
