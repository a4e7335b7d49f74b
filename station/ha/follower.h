// Follower: a standby station instance's side of the replicated ledger. It applies the
// journal (station/ha/journal.h), entry by entry, to its own copy of the ledger
// (<data_dir>/station.db), and tries for the lease; once it holds the lease it applies
// whatever is left, closes its copy and returns: the caller then opens the ledger as
// the active station. The old active instance writes nothing more by then: its lease
// ran out before this one could take it, and the journal refuses its entries anyway.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "station/ha/journal.h"
#include "station/ha/lease.h"

namespace steward::station::ha {

struct FollowState {
  std::atomic<uint64_t> applied{0};    // the last journal entry in the local ledger
  std::atomic<uint64_t> journal{0};    // the journal's last entry, when last looked at
  std::atomic<int64_t> caught_up_unix_ms{0};
  // Tests only: called once the lease is held and the journal applied, before the seal.
  std::function<void()> before_seal;
};

// Follows until this instance holds the lease (true) or `stop` is notified (false).
// Holding the lease, it applies the rest of the journal and then seals it: an empty
// entry of its own term right after the last one there, so that a write of the old
// active instance still on its way (its link frozen past its lease) can no longer land;
// one that landed first is applied, and the seal tried again after it. On true,
// state.journal is the seal: the caller's writes go after it.
// Refuses a local ledger that holds entries the journal lacks (FailedPrecondition: the
// journal is not this ledger's), and a journal entry that does not apply.
absl::StatusOr<bool> FollowUntilActive(const std::string& data_dir, Lease& lease, Journal& journal,
                                       absl::Notification& stop, FollowState& state);

}  // namespace steward::station::ha
