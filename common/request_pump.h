// RequestPump: many requests in flight over one connection. Each Send publishes with a
// reply subject on the pump's own inbox subscription and later calls its callback
// exactly once: with the reply, with "no responders" (nobody subscribed), or with a
// timeout. Callbacks run on a nats.c or the pump's timer thread and must not block.
//
// Several replies may come in one message: a ReplyBundle (proto/wire.proto) sent to
// "<inbox>.bundle" carries replies to "<inbox>.<token>" subjects of that inbox, and
// each is handed to its request's callback as if it had come alone (BundleSubject says
// where a responder sends one). A station gathers the answers one commit of its ledger
// ends (SubmitRequest.answers_gathered): one message through the broker for them all.
//
// A pump may read replies on more than its own inbox (AddInbox): a process that speaks
// for many nodes over one connection (bench/node_simulator) gives each node its own
// reply subjects ("_INBOX_<node>.>", where the station answers that node) and still
// shares one pump and one timer thread among them all.
//
// Thread-safe. Shutdown() (also run by the destructor) calls the outstanding callbacks
// with kShutdown and joins the timer thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

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

  // AddInbox subscribes to one more inbox under `inbox_prefix` and returns its number
  // for Send (the pump's own inbox is 0).
  absl::StatusOr<uint32_t> AddInbox(absl::string_view inbox_prefix) ABSL_LOCKS_EXCLUDED(mu_);

  // Send publishes `data` to `subject`, its reply due on inbox `inbox`; `cb` is called
  // once, by `timeout` at the latest. On an error return (publish failed, no such
  // inbox) `cb` is not called.
  absl::Status Send(const std::string& subject, absl::string_view data, absl::Duration timeout,
                    Callback cb, uint32_t inbox = 0) ABSL_LOCKS_EXCLUDED(mu_);

  // The subject a ReplyBundle holding the reply to `reply` goes to: "<inbox>.bundle"
  // for a reply subject of a pump, "<prefix>.<nuid>.<token>" with a decimal token;
  // empty for any other subject (its reply goes alone).
  static std::string BundleSubject(absl::string_view reply);

  size_t in_flight() const ABSL_LOCKS_EXCLUDED(mu_);
  // Bundled replies that were not taken: a malformed bundle counts one, a reply in a
  // bundle for a request sent on another inbox one each (a late one, after its timeout,
  // is not counted).
  uint64_t bundle_refused() const ABSL_LOCKS_EXCLUDED(mu_);
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  using Deadlines = std::multimap<absl::Time, uint64_t>;
  struct Pending {
    Callback cb;
    uint32_t inbox = 0;  // the inbox its reply is due on
    // Its entry in deadlines_, erased with it: a request that got its reply must not
    // wake the timer thread when its deadline passes.
    Deadlines::iterator deadline;
  };
  explicit RequestPump(natsConnection* nc);
  // Subscribes to a fresh inbox under `inbox_prefix`; its "<prefix>.<nuid>." is
  // prefixes_[n] for the returned n.
  absl::StatusOr<uint32_t> Subscribe(absl::string_view inbox_prefix) ABSL_LOCKS_EXCLUDED(mu_);
  static void OnMsg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void OnComplete(void* closure);
  void HandleReply(nats::MsgPtr msg) ABSL_LOCKS_EXCLUDED(mu_);
  // The replies of a ReplyBundle that came to `subject` ("<inbox>.bundle").
  void HandleBundle(absl::string_view subject, absl::string_view data) ABSL_LOCKS_EXCLUDED(mu_);
  // Hands `msg` to the callback of request `token`, if it still waits and, with
  // `inbox`, was sent on that inbox (else a bundled reply is refused).
  void Deliver(uint64_t token, nats::MsgPtr msg, std::optional<uint32_t> inbox = std::nullopt) ABSL_LOCKS_EXCLUDED(mu_);
  void TimerLoop() ABSL_LOCKS_EXCLUDED(mu_);

  natsConnection* const nc_;
  mutable absl::Mutex mu_;
  // "<inbox prefix>.<nuid>." of each inbox and its subscription, by inbox number.
  std::vector<std::string> prefixes_ ABSL_GUARDED_BY(mu_);
  std::vector<nats::SubscriptionPtr> subs_ ABSL_GUARDED_BY(mu_);
  size_t completed_ ABSL_GUARDED_BY(mu_) = 0;  // subscriptions nats.c is done with
  uint64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t bundle_refused_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  Deadlines deadlines_ ABSL_GUARDED_BY(mu_);  // of the pending requests only
  bool wake_timer_ ABSL_GUARDED_BY(mu_) = false;  // an earlier deadline arrived, or stop
  absl::Notification stop_;
  std::thread timer_;
};

}  // namespace steward
