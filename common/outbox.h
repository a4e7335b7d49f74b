// Outbox: messages that must reach the station, kept in a Spool until the station
// confirms them. Items are sent as requests (many in flight): a new item straight from
// Enqueue's caller when the in-flight window has room, otherwise by a sender thread,
// which also retries with exponential backoff after a timeout or "no responders". An
// item leaves the outbox only when the station answers with an ACK whose outcome is
// final (succeeded = stored, rejected = refused for good, logged). Used by the agent
// for command results, syslog batches and errorlog events.
//
// Thread-safe. Items are sent in enqueue order the first time; retries may reorder.
// The sender thread sleeps while nothing is due: an idle outbox costs no wake-ups.
// Spool calls (disk I/O) happen under their own lock, never under the one that guards
// the schedule: replies, pending() and the sender never wait for the disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/request_pump.h"

namespace steward {

struct OutboxItem {
  std::string id;  // unique, time-ordered (an envelope id)
  std::string subject;
  std::string data;
  uint64_t weight = 1;  // what it counts for when dropped (e.g. log lines)
  // The pump inbox its reply comes to (RequestPump::AddInbox; 0: the pump's own). Not
  // kept by a persistent spool: only a process speaking for several nodes over one
  // pump (bench/node_simulator, memory spools) sets it.
  uint32_t inbox = 0;
};

// Where outbox items live until confirmed. Implementations are thread-compatible; the
// Outbox serializes calls (one at a time, in the order it makes them).
class Spool {
 public:
  virtual ~Spool() = default;
  virtual absl::Status Put(const OutboxItem& item) = 0;
  virtual absl::Status Remove(const std::string& id) = 0;
  // Every item not yet removed, oldest first.
  virtual absl::StatusOr<std::vector<OutboxItem>> LoadAll() = 0;
};

// A Spool in memory: items survive station outages, not agent restarts.
std::unique_ptr<Spool> NewMemorySpool();

// What replaces an item too large to send (OutboxOptions::refit): parts that fit, and
// the weight left out of them.
struct Refitted {
  std::vector<OutboxItem> parts;
  uint64_t dropped = 0;
};

struct OutboxOptions {
  size_t max_in_flight = 256;
  size_t max_items = 100000;  // Enqueue refuses beyond this (ResourceExhausted)
  size_t max_bytes = 0;       // total data held; 0 = no byte limit
  // When full, drop the oldest items (counted in dropped()) instead of refusing.
  bool drop_oldest = false;
  absl::Duration ack_timeout = absl::Seconds(2);
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(5);
  // The largest item the connection can carry (the broker's max_payload); unset: no
  // limit is checked. An item larger than that, whether spooled by an older program or
  // found too large at sending (the limit can shrink when the connection moves to
  // another server), is never retried as it is: `refit` replaces it with parts that
  // fit, in the spool too; without `refit` it is dropped. Either way what is left out
  // counts in dropped(), and a warning says so.
  std::function<size_t()> max_item_bytes;
  std::function<Refitted(const OutboxItem& item, size_t max_bytes)> refit;
  // Where the items go now: a spooled item's subject for another station (the sender's
  // station was renamed in its configuration since, a typo mended) is readdressed to
  // this one at Start: "<station>.event.<method>.<domain>" with its first token replaced.
  // Empty: subjects are sent as spooled.
  std::string station;
};

class Outbox {
 public:
  Outbox(RequestPump* pump, std::unique_ptr<Spool> spool, OutboxOptions options);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Start loads what the spool holds and starts the sender thread.
  absl::Status Start() ABSL_LOCKS_EXCLUDED(spool_mu_, mu_);
  // Enqueue stores the item in the spool, then sends it: from the calling thread when
  // the in-flight window has room and no older item is waiting, else from the sender
  // thread. An error means it was not accepted (spool failure or full). Enqueues are
  // serialized: the items of successive calls are stored and scheduled in call order.
  absl::Status Enqueue(OutboxItem item) ABSL_LOCKS_EXCLUDED(spool_mu_, mu_);
  // PutFn stores `item` in `spool` in place of Spool::Put: a caller that writes
  // something else with the item (the agent records the result it carries) makes both
  // one transaction. It runs under the spool's lock and must not call into the outbox.
  using PutFn = absl::FunctionRef<absl::Status(Spool& spool, const OutboxItem& item)>;
  // Enqueue as above, storing the item with `put`.
  absl::Status Enqueue(OutboxItem item, PutFn put) ABSL_LOCKS_EXCLUDED(spool_mu_, mu_);
  // EnqueueOrKeep is Enqueue, except that an item the spool cannot store (a full disk)
  // is kept in memory and sent all the same: it is lost only if the process stops
  // before the station confirms it, which is better than not at all. `*spooled` says
  // which it was. An error is a refusal that is no spool failure (full, shut down).
  absl::Status EnqueueOrKeep(OutboxItem item, PutFn put, bool* spooled) ABSL_LOCKS_EXCLUDED(spool_mu_, mu_);
  // Kick makes every waiting item due now (e.g. the connection came back).
  void Kick() ABSL_LOCKS_EXCLUDED(mu_);
  size_t pending() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t pending_bytes() const ABSL_LOCKS_EXCLUDED(mu_);
  // The id of the oldest item pending ("" when none): ids are time-ordered, so its age.
  std::string oldest() const ABSL_LOCKS_EXCLUDED(mu_);
  // Total weight of the items dropped because the outbox was full (drop_oldest), or
  // too large to send (max_item_bytes).
  uint64_t dropped() const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until nothing is pending or `timeout` passes; returns whether it drained.
  bool WaitEmpty(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    OutboxItem item;
    int attempts = 0;
    absl::Time next_attempt;
    bool in_flight = false;
  };
  void SendLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // Sends one attempt of an item already marked in flight (outside the lock).
  void Send(const std::string& id, const std::string& subject, const std::string& data,
            uint32_t inbox) ABSL_LOCKS_EXCLUDED(mu_);
  void OnResult(const std::string& id, RequestPump::Result result, nats::MsgPtr msg)
      ABSL_LOCKS_EXCLUDED(spool_mu_, mu_);
  // The limit items must fit (SIZE_MAX when none is set).
  size_t MaxItemBytes() const;
  // Replaces `item`, too large for `limit`, with its refitted parts in the spool;
  // returns the parts stored and adds what was left out to *dropped.
  std::vector<OutboxItem> RefitInSpool(const OutboxItem& item, size_t limit, uint64_t* dropped)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(spool_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  // Refits the in-flight item `id` (Send found it too large) and schedules its parts.
  void RefitInFlight(const std::string& id, size_t limit) ABSL_LOCKS_EXCLUDED(spool_mu_, mu_);
  // Adds an entry to the schedule, waking the sender when it becomes the earliest.
  void ScheduleLocked(absl::Time at, const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleRetryLocked(const std::string& id, Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasDueLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What the sender thread waits for: shutdown, a due entry, or a changed schedule.
  bool SenderReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool FullLocked(size_t adding) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the oldest entry not in flight and returns its id (to remove from the spool,
  // outside mu_); nullopt when there is none.
  std::optional<std::string> DropOldestLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes confirmed or dropped items from the spool; a failure is logged ("cannot
  // <verb> <id> from the spool").
  void RemoveFromSpool(const std::vector<std::string>& ids, absl::string_view verb)
      ABSL_LOCKS_EXCLUDED(mu_) ABSL_EXCLUSIVE_LOCKS_REQUIRED(spool_mu_);
  void EraseLocked(std::map<std::string, Entry>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  RequestPump* const pump_;
  const OutboxOptions options_;
  // Held across every spool call (and nothing else): the spool's I/O is serialized
  // without blocking mu_. Taken before mu_ when both are held.
  absl::Mutex spool_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::unique_ptr<Spool> spool_ ABSL_GUARDED_BY(spool_mu_);
  mutable absl::Mutex mu_;
  // Ordered by id, i.e. by creation time.
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // Entries not in flight, by next attempt (then id): what the sender looks at.
  std::set<std::pair<absl::Time, std::string>> schedule_ ABSL_GUARDED_BY(mu_);
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The sender is publishing a batch: Enqueue leaves new items to it, so that they
  // go out after the batch (first attempts stay in enqueue order).
  bool sender_busy_ ABSL_GUARDED_BY(mu_) = false;
  // The sender's deadline may be stale (an earlier entry, a freed window): look again.
  bool wake_sender_ ABSL_GUARDED_BY(mu_) = false;
  std::thread sender_;
};

}  // namespace steward
