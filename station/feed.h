// Feed: the station's live events, for the HTTP event stream (Server-Sent Events) and
// the dashboard. A bounded ring of the latest events, each with an id that only grows:
// a client that lost its connection asks for what came after the last id it saw and
// gets exactly that (no gap, no duplicate), or, when those events have left the ring,
// a reset (reload your state, then follow).
//
//   Feed feed(16384);
//   feed.Publish(FeedEvent::Command("ship1", id, request_id, proto::STATE_RUNNING, pending));
//   uint64_t pos = feed.Position();             // read before a snapshot
//   Feed::Batch b = feed.Wait(pos, absl::Seconds(15));   // what came after pos
//   if (b.reset) ...                            // pos is older than the ring
//
// Ids start at the station's start time in microseconds since the epoch (below 2^53,
// exact in JavaScript), so ids of an earlier run are always older than this run's
// ring: a client resuming across a station restart gets a reset, never another run's
// events under the same numbers.
//
// Publish is cheap enough to call under model.mu: it appends a small struct; the JSON
// is made by the first reader that wants it, once, and shared. Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/steward.pb.h"

namespace steward::station {

struct FeedEvent {
  // kActive: a group's active member changed (request: the group, command: the one
  // before, node: the new one, text: why, by: who).
  enum class Type { kCommand, kNode, kDispatch, kMaintenance, kOutput, kActive };

  uint64_t id = 0;    // set by Publish
  int64_t at_ms = 0;  // set by Publish when 0
  Type type = Type::kCommand;
  std::string node;
  std::string command;  // kCommand, kOutput: the command id
  std::string request;  // kCommand: its fan-out's request id
  proto::State state = proto::STATE_UNSPECIFIED;  // kCommand
  int32_t pending = -1;  // kCommand: the node's unfinished commands after the change
  bool on = false;       // kNode: online; kDispatch: paused; kMaintenance: on
  std::string text;      // kNode/kDispatch/kMaintenance: reason; kOutput: the chunk
  std::string by;        // kDispatch/kMaintenance: the operator
  bool maintenance = false;  // kNode: the node is in maintenance (no alarm)
  uint64_t seq = 0;          // kOutput: the chunk's number (stream.proto OutputChunk)
  std::string err;           // kOutput: the chunk's stderr (`text` is its stdout)

  static FeedEvent Command(std::string node, std::string id, std::string request, proto::State state,
                           int32_t pending);
  static FeedEvent Node(std::string node, bool online, std::string reason, bool maintenance);
  // "command", "node", "dispatch", "maintenance", "output": the SSE event name.
  const char* TypeName() const;
  // The event's data as one line of JSON, made once however many readers ask.
  const std::string& Json() const;

 private:
  struct JsonCache {
    absl::once_flag once;
    std::string json;
  };
  // Shared by copies of this event (a copy is the same event).
  std::shared_ptr<JsonCache> json_ = std::make_shared<JsonCache>();
};

class Feed {
 public:
  explicit Feed(size_t capacity = 16384);
  Feed(const Feed&) = delete;
  Feed& operator=(const Feed&) = delete;

  void Publish(FeedEvent e) ABSL_LOCKS_EXCLUDED(mu_);
  // The id of the newest event (or the one just before the first when none yet):
  // events after it are what a client reading a snapshot now must follow.
  uint64_t Position() const ABSL_LOCKS_EXCLUDED(mu_);

  struct Batch {
    std::vector<std::shared_ptr<const FeedEvent>> events;  // after the asked id, oldest first
    bool reset = false;   // the asked id is older than the ring, or not of this run
    bool closed = false;  // the feed is closed (the station stops)
    uint64_t position = 0;  // where to continue from (the last event's id)
  };
  // Wait returns the events after `after` (at most `max`), waiting up to `timeout`
  // for one when there are none yet.
  Batch Wait(uint64_t after, absl::Duration timeout, size_t max = 1024) ABSL_LOCKS_EXCLUDED(mu_);
  // Close wakes every waiter for good (shutdown).
  void Close() ABSL_LOCKS_EXCLUDED(mu_);

  // Events published so far (for /metrics).
  uint64_t published() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<const FeedEvent>> ring_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_);
  uint64_t published_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace steward::station
