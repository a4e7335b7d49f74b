// Journal: the replicated ledger's stream. Each entry is one ledger transaction's
// changeset (station/ha/changes.h), numbered from 1 with no gap: entry N is the
// stream's message N. It lives in JetStream (R3 on a three-broker cluster), so it
// survives the host of the active station.
//
// Fencing: an entry is written only in its own place. Append(N) asks the broker to
// store it only if the stream's last entry is N-1 (JetStream's expected last sequence),
// so a station that lost its lease and did not notice cannot write behind its
// successor's back: its next Append fails with FailedPrecondition, and it stops acting.
// Each entry carries the term (the lease revision) of the station that wrote it.
//
//   STEWARD_ASSIGN_OR_RETURN(auto journal, Journal::Open(nc, {.station = "station"}));
//   STEWARD_RETURN_IF_ERROR(journal->Append(applied + 1, lease->term(), changes));
//
// Thread-safe (nats.c's JetStream context is).
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace steward::station::ha {

struct JournalOptions {
  std::string station;  // stream "STEWARD_LEDGER_<station>", subject "steward.ledger.<station>"
  int replicas = 1;     // 3 on a three-broker cluster
  absl::Duration timeout = absl::Seconds(2);
};

struct JournalEntry {
  uint64_t seq = 0;
  uint64_t term = 0;
  std::string changes;
};

class Journal {
 public:
  // Binds to the stream, creating it when missing.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(natsConnection* nc, JournalOptions options);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Stores `changes` as entry `seq`, written in `term`. FailedPrecondition when the
  // place is taken by another writer (fenced: this station is not the active one any
  // more); ResourceExhausted when the entry is larger than the broker takes. An entry
  // stored by an earlier attempt whose answer was lost counts as stored.
  absl::Status Append(uint64_t seq, uint64_t term, absl::string_view changes);

  // The number of the last entry (0: none).
  absl::StatusOr<uint64_t> LastSeq();

  // Entry `seq` (NotFound past the end).
  absl::StatusOr<JournalEntry> Get(uint64_t seq);

  // Calls `apply` for each entry from `from` to the last one there is now, in order;
  // stops at its first error. Returns the number of the last entry applied (from - 1
  // when none was).
  absl::StatusOr<uint64_t> ReadFrom(uint64_t from, const std::function<absl::Status(const JournalEntry&)>& apply);

  const std::string& stream() const { return stream_; }

 private:
  Journal(JournalOptions options, jsCtx* js);
  const JournalOptions options_;
  const std::string stream_;
  const std::string subject_;
  jsCtx* const js_;
};

}  // namespace steward::station::ha
