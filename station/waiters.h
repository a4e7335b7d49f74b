// WaiterTable: operators waiting for commands to end ("send" waits for its results,
// "wait" for any or all of a list of ids). A waiter is answered once: when every id it
// waits for is terminal (or, with `any`, the first one), or when its time is up. The
// table is indexed by command id, so a command that ends touches only its own waiters.
//
// Pure: the caller says which ids are still open, reports each command's end once its
// final state is durable, and builds and sends the answers (answers.h).
//
// Not thread-safe: the station calls it under its model mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "proto/steward.pb.h"

namespace steward::station {

struct Waiter {
  std::vector<std::string> ids;
  bool any = false;  // answered when any of ids ends, with the ended ones
  std::string reply;  // where the answer goes
  // In-process (an HTTP submit that waits): the answer (a serialized ACK) goes here.
  std::function<void(const std::string&)> deliver;
  absl::Time deadline;
  // A submit with wait_ms: answered as this SubmitReply (with the states) to request
  // `request_id`; otherwise with CommandStates.
  std::optional<proto::SubmitReply> submit;
  std::string request_id;
  // The requester takes its answer in a ReplyBundle (SubmitRequest.answers_gathered):
  // answered when a commit ends a command, it goes with the commit's other answers to
  // the same inbox (Core::AnswerOnCommit).
  bool gathered = false;
};

class WaiterTable {
 public:
  // Add files `w`, or hands it back when it is ready now (complete, or its time is up).
  // `open` says whether a command has not ended yet.
  std::optional<Waiter> Add(Waiter w, absl::Time now,
                            const std::function<bool(const std::string&)>& open);
  // Ended: command `id` is terminal and durable. The waiters that are ready now.
  std::vector<Waiter> Ended(const std::string& id);
  // Expire: the waiters whose time is up.
  std::vector<Waiter> Expire(absl::Time now);
  size_t size() const { return waiters_.size(); }

 private:
  struct Entry {
    Waiter w;
    size_t open = 0;                    // ids not yet ended
    std::vector<std::string> open_ids;  // which: to unregister when its time is up
  };
  // Removes waiter `n` and its registrations; hands it back.
  Waiter Take(uint64_t n);

  absl::flat_hash_map<uint64_t, Entry> waiters_;
  // Command id -> the waiters waiting for it to end.
  absl::flat_hash_map<std::string, std::vector<uint64_t>> waiting_on_;
  uint64_t next_ = 0;
};

}  // namespace steward::station
