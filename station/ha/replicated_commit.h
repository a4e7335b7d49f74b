// ReplicatedCommit: the ledger writer's side of the replicated ledger (issue 17). The
// writer (ledger::Store) calls it around each of its transactions:
//
//   Before()          before BEGIN: settles an entry whose publication got no answer
//   Publish()         inside the transaction, before COMMIT: the transaction's changes
//                     (ChangeCapture) go to the journal as its next entry, and the
//                     entry's number is recorded in the same transaction
//   Ended(committed)  after COMMIT or ROLLBACK
//
// An entry the journal holds is one a standby applies, whatever happens here, so it
// must end in this ledger too: when the COMMIT fails after Publish, its changes are
// applied from the published copy; when that fails as well, the ledger is "behind" and
// every later Publish fails until a restart catches up from the journal. An Append that
// failed otherwise than by finding its place taken (no answer, the broker gone, a
// failure part-way through a large entry) may have stored some or all of the entry:
// nothing else is published until the same entry has been appended again (the journal
// takes a part twice as once) or its place is found taken by another writer.
//
// Used on the writer's thread only; journal_seq() may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sqlite.h"

namespace steward::station::ha {

class ChangeCapture;

class ReplicatedCommit {
 public:
  // Appends `changes` as the journal entry that starts at message `seq` and returns
  // its last message (ha::Journal::Append, with the lease's term).
  using Append = std::function<absl::StatusOr<uint64_t>(uint64_t seq, absl::string_view changes)>;

  // `db` is the writer's connection. `journal_end` is the journal's last message when
  // this instance took over: an unfinished entry's parts may lie past the last entry
  // the ledger holds, and the next entry goes after them.
  static absl::StatusOr<std::unique_ptr<ReplicatedCommit>> Start(sqlite::Database& db, Append append,
                                                                 uint64_t journal_end);
  ~ReplicatedCommit();
  ReplicatedCommit(const ReplicatedCommit&) = delete;
  ReplicatedCommit& operator=(const ReplicatedCommit&) = delete;

  absl::Status Before();
  absl::Status Publish();
  void Ended(bool committed);

  // The last journal message this ledger holds or wrote.
  uint64_t journal_seq() const { return end_.load(); }

 private:
  ReplicatedCommit(sqlite::Database& db, Append append);
  // The journal holds the entry that ends at `last` but its transaction did not commit
  // here: applies it from the published copy, or marks the ledger behind.
  void Recover(uint64_t last);

  sqlite::Database& db_;
  const Append append_;
  std::unique_ptr<ChangeCapture> capture_;
  std::string last_changes_;     // what Publish sent last
  uint64_t uncertain_first_ = 0;  // where last_changes_ went with no answer (0: none)
  uint64_t published_last_ = 0;  // the open transaction's entry, once the journal holds it
  uint64_t applied_ = 0;         // the last message of the last entry in this ledger
  std::atomic<uint64_t> end_{0};
  std::string behind_;  // why the ledger is behind its journal ("": it is not)
};

}  // namespace steward::station::ha
