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
// An entry larger than the broker carries in one message (a fan-out to thousands of
// nodes, a copy chunk kept in its row) goes as several parts in consecutive messages,
// each fenced the same way and marked "part i of k". Entry numbers are message
// numbers: such an entry is known by its last message. A writer that stops part-way
// (killed, or fenced by a successor) never committed the transaction, so readers drop
// an unfinished entry when the next message does not continue it.
//
//   STEWARD_ASSIGN_OR_RETURN(auto journal, Journal::Open(nc, {.station = "station"}));
//   STEWARD_ASSIGN_OR_RETURN(uint64_t last, journal->Append(end + 1, lease->term(), changes));
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
  // The largest part of an entry, in bytes; 0: what the broker takes (its
  // max_payload) less room for the headers.
  size_t part_bytes = 0;
};

struct JournalEntry {
  uint64_t seq = 0;    // its last message
  uint64_t first = 0;  // ReadFrom: the first message it covers (unfinished entries before it included)
  uint64_t term = 0;
  uint32_t part = 1;   // Get: which part of its entry this message is
  uint32_t parts = 1;
  std::string changes;
};

class Journal {
 public:
  // Binds to the stream, creating it when missing.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(natsConnection* nc, JournalOptions options);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Stores `changes` as the entry that starts at message `seq`, written in `term`, and
  // returns its last message (`seq` unless it took several parts). FailedPrecondition
  // when a place is taken by another writer (fenced: this station is not the active one
  // any more). A part stored by an earlier attempt whose answer was lost counts as
  // stored, so an Append that failed on a timeout may be repeated as it was.
  absl::StatusOr<uint64_t> Append(uint64_t seq, uint64_t term, absl::string_view changes);

  // The number of the last entry (0: none).
  absl::StatusOr<uint64_t> LastSeq();

  // The first message still kept (LastSeq() + 1 when the journal keeps none) and the
  // last one. Messages before the first were dropped by Compact.
  struct Bounds {
    uint64_t first = 1;
    uint64_t last = 0;
  };
  absl::StatusOr<Bounds> GetBounds();

  // Drops every message before `below` (JetStream purges them; the numbering and the
  // fencing carry on from the last message). A reader whose ledger lacks entries that
  // were dropped can no longer follow: it must start from a copy of a ledger that has
  // them (README: "seeding a standby").
  absl::Status Compact(uint64_t below);

  // Message `seq`: a whole entry, or one part of one (NotFound past the end).
  absl::StatusOr<JournalEntry> Get(uint64_t seq);

  // Calls `apply` for each whole entry from message `from` to the last one there is
  // now, in order; stops at its first error. Returns the last message of the last
  // entry applied (from - 1 when none was): an unfinished entry at the end is left for
  // a later call, which starts there again.
  absl::StatusOr<uint64_t> ReadFrom(uint64_t from, const std::function<absl::Status(const JournalEntry&)>& apply);

  const std::string& stream() const { return stream_; }

 private:
  Journal(JournalOptions options, natsConnection* nc, jsCtx* js);
  absl::Status AppendPart(uint64_t seq, uint64_t term, uint32_t part, uint32_t parts, absl::string_view bytes);
  size_t PartBytes() const;
  const JournalOptions options_;
  natsConnection* const nc_;
  const std::string stream_;
  const std::string subject_;
  jsCtx* const js_;
};

}  // namespace steward::station::ha
