// RequestPump: many requests in flight over one connection. Each Send publishes with a
// reply subject on the pump's own inbox subscription and later calls its callback
// exactly once: with the reply, with "no responders" (nobody subscribed), or with a
// timeout. Callbacks run on a nats.c or the pump's timer thread and must not block.
//
// Thread-safe. Shutdown() (also run by the destructor) calls the outstanding callbacks
// with kShutdown and joins the timer thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/nats.h"

namespace steward {

class RequestPump {
 public:
  enum class Result { kReply, kNoResponders, kTimeout, kShutdown };
  // `msg` is set only for kReply.
  using Callback = std::function<void(Result, nats::MsgPtr msg)>;

  // `inbox_prefix` must match the connection's (ConnectOptions::inbox_prefix).
  static absl::StatusOr<std::unique_ptr<RequestPump>> Create(natsConnection* nc,
                                                             absl::string_view inbox_prefix = "");
  ~RequestPump();

  // Send publishes `data` to `subject`; `cb` is called once, by `timeout` at the latest.
  // On an error return (publish failed) `cb` is not called.
  absl::Status Send(const std::string& subject, absl::string_view data, absl::Duration timeout,
                    Callback cb) ABSL_LOCKS_EXCLUDED(mu_);

  size_t in_flight() const ABSL_LOCKS_EXCLUDED(mu_);
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  using Deadlines = std::multimap<absl::Time, uint64_t>;
  struct Pending {
    Callback cb;
    // Its entry in deadlines_, erased with it: a request that got its reply must not
    // wake the timer thread when its deadline passes.
    Deadlines::iterator deadline;
  };
  RequestPump(natsConnection* nc, absl::string_view inbox_prefix);
  static void OnMsg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void OnComplete(void* closure);
  void HandleReply(nats::MsgPtr msg) ABSL_LOCKS_EXCLUDED(mu_);
  void TimerLoop() ABSL_LOCKS_EXCLUDED(mu_);

  natsConnection* const nc_;
  const std::string prefix_;  // "<inbox prefix>.<nuid>."
  nats::SubscriptionPtr sub_;
  mutable absl::Mutex mu_;
  uint64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  Deadlines deadlines_ ABSL_GUARDED_BY(mu_);  // of the pending requests only
  bool wake_timer_ ABSL_GUARDED_BY(mu_) = false;  // an earlier deadline arrived, or stop
  absl::Notification stop_;
  absl::Notification sub_complete_;  // nats.c will deliver no more messages
  std::thread timer_;
};

}  // namespace steward
