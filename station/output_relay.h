// OutputRelay: the live output of running commands (issue 13 part 3), between the
// agents that stream it and the operators who follow it.
//
// Agents publish OutputChunk events as a command produces output (agent/output_stream.h).
// The relay keeps the latest chunks of each running command in memory (bounded per
// command and in all) and relays each new one to the followers of its command: inbox
// subjects operators registered with an `output` request, for a lease they renew by
// asking again. An `output` request returns the chunks held after a given number; the
// follower subscribes first, then asks, and so misses nothing in between (chunks are
// numbered: a duplicate is dropped by its number, a gap is asked for again).
//
// What is held is best-effort: a chunk lost on the way, or dropped when the buffer
// overflowed (the oldest go first), is simply not there; a follower that finds a gap
// the relay cannot fill says so and completes from the result, which the ledger keeps
// whole. When a command ends its chunks are forgotten: from then on its output is the
// result's. Nothing here is durable; a station restart forgets it all.
//
// Thread-safe. Add and Ended are called under model.mu (so a chunk and the end of its
// command are seen in one order); the relay's own lock comes after model.mu.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "proto/steward.pb.h"

namespace steward::station {

class OutputRelay {
 public:
  struct Limits {
    size_t command_bytes = size_t{2} << 20;  // per command: the output cap of both streams
    size_t total_bytes = size_t{64} << 20;   // all commands
    size_t followers = 64;                   // per command
    absl::Duration lease = absl::Seconds(60);
  };
  OutputRelay() : OutputRelay(Limits{}) {}
  explicit OutputRelay(Limits limits) : limits_(limits), run_(absl::ToUnixMicros(absl::Now())) {}

  // Keeps `chunk` of a running command and says where to relay it (`to`: the
  // followers whose lease is still on). False for a chunk already held (same number),
  // or one older than all a full buffer holds: dropped, relayed to nobody.
  bool Add(const proto::OutputChunk& chunk, absl::Time now, std::vector<std::string>* to)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Command `id` ended (or is gone): its chunks and followers are forgotten.
  void Ended(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);

  // The chunks held for `id` after `after`, within `max_bytes` of output (at least
  // one chunk), into `out` (chunks, first_seq, last_seq, more, lease_ms). With
  // `deliver`, that subject follows the command for the lease (renewed if it did);
  // out.station_run says which run of the station answered;
  // ResourceExhausted when the command has too many followers.
  absl::Status Read(const std::string& id, uint64_t after, const std::string& deliver, size_t max_bytes,
                    absl::Time now, proto::OutputReply& out) ABSL_LOCKS_EXCLUDED(mu_);

  int64_t run() const { return run_; }
  // Bytes of output held, and chunks dropped for room since the start (metrics, tests).
  size_t held_bytes() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t dropped() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Follower {
    std::string deliver;
    absl::Time until;
  };
  struct Stream {
    std::deque<proto::OutputChunk> chunks;  // by seq, ascending
    size_t bytes = 0;
    std::vector<Follower> followers;
  };
  static size_t Size(const proto::OutputChunk& c) { return c.stdout().size() + c.stderr().size(); }
  // Drops `s`'s oldest chunk.
  void DropOldest(Stream& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Limits limits_;
  const int64_t run_;  // this station run (OutputReply.station_run)
  mutable absl::Mutex mu_;
  std::map<std::string, Stream> streams_ ABSL_GUARDED_BY(mu_);
  size_t total_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace steward::station
