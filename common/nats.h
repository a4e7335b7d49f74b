// RAII over nats.c: one deleter template for every C handle, a library guard, factory
// functions that return StatusOr, and natsStatus converted to absl::Status once, here.
//
//   steward::nats::Library lib;                       // first in main, destroyed last
//   STEWARD_ASSIGN_OR_RETURN(auto nc, steward::nats::Connect({.url = url, .name = "ship1"}));
//   STEWARD_ASSIGN_OR_RETURN(auto sub, steward::nats::SubscribeSync(nc.get(), subject, 256));
//   STEWARD_ASSIGN_OR_RETURN(auto msg, steward::nats::NextMsg(sub.get(), absl::Milliseconds(250)));
#pragma once

#include <nats/nats.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace steward::nats {

template <auto DestroyFn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    DestroyFn(p);
  }
};

using OptionsPtr = std::unique_ptr<natsOptions, Deleter<natsOptions_Destroy>>;
using ConnectionPtr = std::unique_ptr<natsConnection, Deleter<natsConnection_Destroy>>;
using SubscriptionPtr = std::unique_ptr<natsSubscription, Deleter<natsSubscription_Destroy>>;
// DestroyMsg destroys `msg` as natsMsg_Destroy does, but frees it in the calling thread:
// natsMsg_Destroy hands every message to nats.c's collector thread and wakes it, one
// context switch per message received (measured: a seventh of a durable command's CPU,
// bench/ledger_bench). A libnats whose message layout it does not recognise
// (FreesInPlace false) gets its message destroyed the usual way.
void DestroyMsg(natsMsg* msg);
// Whether DestroyMsg frees `msg` in place: the message starts with nats.c's collector
// link {next, free callback}, the callback being libnats's natsMsg_free.
bool FreesInPlace(natsMsg* msg);

using MsgPtr = std::unique_ptr<natsMsg, Deleter<DestroyMsg>>;

// Construct first in main(), destroy last: nats_Close runs after every handle is gone.
class Library {
 public:
  Library();
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
};

// ToStatus maps a natsStatus to the most specific canonical code:
// timeout -> DeadlineExceeded; no responders, closed, no server -> Unavailable;
// invalid subject/argument -> InvalidArgument; the rest -> Internal.
absl::Status ToStatus(natsStatus s, absl::string_view what);

struct ConnectOptions {
  std::string url = "nats://127.0.0.1:4222";
  std::string name;
  // Daemons keep trying to connect in the background when the server is down at start
  // and reconnect forever; a CLI sets this false: it fails at once when the server is
  // down at start, and reconnects only a few times later (see Connect).
  bool keep_trying = true;
  absl::Duration reconnect_wait = absl::Milliseconds(250);
  // How often the client pings the server, and how many unanswered pings declare the
  // link dead (then it reconnects). nats.c's default is 2 minutes: a path that stops
  // delivering without a reset (a NAT box or a modem that lost its state) would go
  // unseen for 4. Zero keeps that default.
  absl::Duration ping_interval = absl::ZeroDuration();
  int max_pings_out = 2;
  absl::Duration connect_timeout = absl::Seconds(2);
  // Broker credentials (optional): user/password, a .creds file, a CA bundle for TLS.
  std::string user;
  std::string password;
  std::string creds_file;
  std::string tls_ca_file;
  // Reply subjects start with this ("_INBOX" when empty). Per-node prefixes let the
  // broker confine each node to its own replies ("_INBOX_<node>.>").
  std::string inbox_prefix;
  // Deliver async subscriptions' messages from nats.c's shared thread pool instead of a
  // thread per subscription (for processes with very many subscriptions; the pool size
  // is set with nats_SetMessageDeliveryPoolSize).
  bool global_delivery = false;
  // Called from a nats.c thread on disconnect / reconnect (keep them short): a
  // disconnect that nats.c tries to mend, not a connection closing.
  std::function<void()> on_disconnected;
  std::function<void()> on_reconnected;
};

// RedactUrl hides the password of "scheme://user:password@host" (and a token in
// "scheme://token@host"), so that a URL can be logged and shown in errors.
std::string RedactUrl(absl::string_view url);

// Connect makes a connection that sends without client-side buffering delay
// (natsOptions_SetSendAsap), so request/reply round trips stay at the network floor.
absl::StatusOr<ConnectionPtr> Connect(const ConnectOptions& opts);
// How many connections' callbacks (on_disconnected, on_reconnected) are alive: each is
// freed after its connection closed (for tests: a daemon that starts again in its
// process after a closed connection must not keep them).
int LiveConnectionCallbacks();
// Why `nc` is closed for good, when it is (nats.c closes a connection whose first connect
// timed out, or whose credentials were refused, whatever the reconnect settings).
std::optional<std::string> ClosedReason(natsConnection* nc);
// Whether `st` is how a broker call fails once its connection closed under it: the
// connection's own errors (Unavailable), or a subscription nats.c closed with it between
// two calls (a subscribe that succeeded, then its SetPendingLimits: "Invalid Subscription").
// Only meaningful together with ClosedReason: the caller checks the connection is closed.
bool FailedOnClosed(const absl::Status& st);

// SubscribeSync subscribes for NextMsg polling, bounding what nats.c buffers for it:
// `max_pending_msgs` messages and `max_pending_bytes` bytes (0: 64 KiB a message, at
// most 512 MiB). Past either, nats.c drops messages (NextMsg reports a slow consumer).
absl::StatusOr<SubscriptionPtr> SubscribeSync(natsConnection* nc, const std::string& subject,
                                              int max_pending_msgs, int max_pending_bytes = 0);

// QueueSubscribeSync is SubscribeSync as a member of queue group `queue`: the broker
// gives each message to one member (on a leaf node, a member on the same broker first).
// An empty `queue` is a plain subscription.
absl::StatusOr<SubscriptionPtr> QueueSubscribeSync(natsConnection* nc, const std::string& subject,
                                                   const std::string& queue, int max_pending_msgs,
                                                   int max_pending_bytes = 0);

// SubscribeAsync delivers messages to `cb` on a nats.c thread. `cb` must not block:
// take the message and hand it to a queue. `closure` must outlive the subscription.
absl::StatusOr<SubscriptionPtr> SubscribeAsync(natsConnection* nc, const std::string& subject,
                                               natsMsgHandler cb, void* closure,
                                               int max_pending_msgs);

// NextMsg waits up to `timeout`; DeadlineExceeded when nothing came.
absl::StatusOr<MsgPtr> NextMsg(natsSubscription* sub, absl::Duration timeout);

absl::Status Publish(natsConnection* nc, const std::string& subject, absl::string_view data,
                     const std::string& reply = "");

// Request publishes and waits for one reply. No subscriber: Unavailable ("no responders").
absl::StatusOr<MsgPtr> Request(natsConnection* nc, const std::string& subject,
                               absl::string_view data, absl::Duration timeout);

absl::Status Flush(natsConnection* nc, absl::Duration timeout);

// The largest message the broker takes (its max_payload, as `nc` learned it), or the
// broker's default, 1 MiB, before the first connect (or without a connection).
int64_t MaxPayload(natsConnection* nc);

// A fresh unique inbox subject ("<prefix>.<nuid>", prefix "_INBOX" when empty).
std::string NewInbox(absl::string_view prefix = "");

inline absl::string_view Data(natsMsg* m) {
  return absl::string_view(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
}
inline std::string Subject(natsMsg* m) { return natsMsg_GetSubject(m); }
inline std::string Reply(natsMsg* m) {
  const char* r = natsMsg_GetReply(m);
  return r == nullptr ? std::string() : std::string(r);
}

}  // namespace steward::nats
