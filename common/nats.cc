// nats.c wrappers: connection set-up, subscriptions, requests, status conversion.
#include "common/nats.h"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace steward::nats {
namespace {

// A short-lived client's reconnect attempts to its one broker: 250 ms apart (and
// nats.c's jitter), a broker restart of some 15 s is waited out when its port refuses
// at once; longer when its host does not answer (each try waits its connect timeout).
constexpr int kClientReconnectTries = 40;

// Bytes nats.c may buffer for a subscription: 64 KiB per message, at most 512 MiB.
int PendingBytes(int max_pending_msgs) {
  return static_cast<int>(std::min<int64_t>(int64_t{max_pending_msgs} * 65536, int64_t{512} << 20));
}

std::atomic<int> live_callbacks{0};  // LiveConnectionCallbacks

// A connection's disconnected and reconnected callbacks. nats.c calls them on its own
// thread, possibly after natsConnection_Destroy returned; the closed callback comes last
// (once per connection, after any other), and frees them.
struct Callbacks {
  Callbacks(std::function<void()> d, std::function<void()> r)
      : on_disconnected(std::move(d)), on_reconnected(std::move(r)) {
    live_callbacks.fetch_add(1);
  }
  ~Callbacks() { live_callbacks.fetch_sub(1); }
  std::function<void()> on_disconnected;
  std::function<void()> on_reconnected;
};

void OnConnected(natsConnection*, void*) {}

void FreeCompressionMethod(SSL_COMP* method) { OPENSSL_free(method); }

// nats.c 3.4 (natsLib_Destructor, an atexit handler registered by nats_Open) ends a
// process that made a TLS connection with sk_SSL_COMP_free(SSL_COMP_get_compression_methods()):
// it frees a list that OpenSSL 3 owns and frees again in OPENSSL_cleanup, its own exit
// handler. Exit handlers run last-registered first, so that is a double free whenever
// OpenSSL was initialised before nats_Open: in steward-station, libcpp-httplib's
// load-time constructor calls OPENSSL_init_ssl before main (which is also why
// OPENSSL_INIT_NO_ATEXIT from main changes nothing: only the first init reads it). The
// heap it corrupts makes the process abort or crash on its way out, after a clean
// shutdown. (In the agent and stewardctl, TLS starts OpenSSL after nats_Open: OpenSSL
// cleans up first and nats.c then frees a null list. Luck of order, not a guarantee.)
// Taking the list out of OpenSSL's hands, and freeing it here once, leaves both exit
// handlers a null list, which each takes as nothing to free. The list only serves TLS
// compression, which OpenSSL 3 leaves off and nats-server does not offer.
void TakeCompressionMethodsFromOpenssl() {
  SSL_COMP_get_compression_methods();  // OpenSSL builds the list once; now, not after this
  STACK_OF(SSL_COMP)* methods = SSL_COMP_set0_compression_methods(nullptr);
  sk_SSL_COMP_pop_free(methods, FreeCompressionMethod);
}

void OnDisconnected(natsConnection* nc, void* closure) {
  auto* cb = static_cast<Callbacks*>(closure);
  // nats.c also calls it as a connection closes, its owner's doing or for good: no
  // "reconnecting" then (the closed callback runs after, on the same thread).
  if (natsConnection_IsClosed(nc)) return;
  if (cb->on_disconnected) cb->on_disconnected();
}

void OnReconnected(natsConnection*, void* closure) {
  auto* cb = static_cast<Callbacks*>(closure);
  if (cb->on_reconnected) cb->on_reconnected();
}

void OnClosed(natsConnection*, void* closure) { delete static_cast<Callbacks*>(closure); }

// natsMsg_free, libnats's free callback for a message (an internal symbol: looked up,
// so a libnats without it only costs the collector's wake-ups).
void* MsgFreeCallback() {
  static void* const fn = dlsym(RTLD_DEFAULT, "natsMsg_free");
  return fn;
}

// A natsMsg begins with its collector link: {next item, free callback}.
constexpr size_t kFreeCallbackOffset = sizeof(void*);

}  // namespace

bool FreesInPlace(natsMsg* msg) {
  void* const fn = MsgFreeCallback();
  if (msg == nullptr || fn == nullptr) return false;
  void* cb = nullptr;
  std::memcpy(&cb, reinterpret_cast<const char*>(msg) + kFreeCallbackOffset, sizeof(cb));
  return cb == fn;
}

void DestroyMsg(natsMsg* msg) {
  if (FreesInPlace(msg)) {
    // No free callback: the collector declines the message and natsMsg_Destroy frees it
    // here, after its own checks (a message the library still owns is left alone).
    void* const none = nullptr;
    std::memcpy(reinterpret_cast<char*>(msg) + kFreeCallbackOffset, &none, sizeof(none));
  }
  natsMsg_Destroy(msg);
}

Library::Library() { nats_Open(-1); }
Library::~Library() {
  nats_CloseAndWait(2000);
  TakeCompressionMethodsFromOpenssl();
}

absl::Status ToStatus(natsStatus s, absl::string_view what) {
  if (s == NATS_OK) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", natsStatus_GetText(s));
  switch (s) {
    case NATS_TIMEOUT:
      return absl::DeadlineExceededError(msg);
    case NATS_NO_RESPONDERS:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_NOT_YET_CONNECTED:
    case NATS_STALE_CONNECTION:
      return absl::UnavailableError(msg);
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_ARG:
      return absl::InvalidArgumentError(msg);
    case NATS_MAX_PAYLOAD:
      return absl::ResourceExhaustedError(msg);
    case NATS_NOT_PERMITTED:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

std::string RedactUrl(absl::string_view url) {
  // Every URL of a comma-separated list: "scheme://" userinfo "@" host.
  std::string out;
  size_t start = 0;
  while (start <= url.size()) {
    size_t end = url.find(',', start);
    if (end == absl::string_view::npos) end = url.size();
    absl::string_view one = url.substr(start, end - start);
    const size_t scheme = one.find("://");
    const size_t at = one.rfind('@');
    if (scheme != absl::string_view::npos && at != absl::string_view::npos && at > scheme) {
      absl::string_view userinfo = one.substr(scheme + 3, at - scheme - 3);
      const size_t colon = userinfo.find(':');
      const std::string hidden = colon == absl::string_view::npos
                                     ? "REDACTED"
                                     : absl::StrCat(userinfo.substr(0, colon), ":REDACTED");
      absl::StrAppend(&out, one.substr(0, scheme + 3), hidden, one.substr(at));
    } else {
      absl::StrAppend(&out, one);
    }
    if (end == url.size()) break;
    out.push_back(',');
    start = end + 1;
  }
  return out;
}

int LiveConnectionCallbacks() { return live_callbacks.load(); }

bool FailedOnClosed(const absl::Status& st) {
  return absl::IsUnavailable(st) || absl::StrContains(st.message(), natsStatus_GetText(NATS_INVALID_SUBSCRIPTION));
}

std::optional<std::string> ClosedReason(natsConnection* nc) {
  if (nc == nullptr || !natsConnection_IsClosed(nc)) return std::nullopt;
  const char* text = nullptr;
  const natsStatus last = natsConnection_GetLastError(nc, &text);
  if (last == NATS_NO_SERVER) {
    // What nats.c says however the connect failed (it clears the cause first).
    return std::string("no server completed a connect: none answered within the connect timeout, or each "
                       "refused the credentials");
  }
  if (text != nullptr && text[0] != '\0') return std::string(text);
  return std::string(last == NATS_OK ? "closed by the client library" : natsStatus_GetText(last));
}

absl::StatusOr<ConnectionPtr> Connect(const ConnectOptions& opts) {
  natsOptions* raw_opts = nullptr;
  STEWARD_RETURN_IF_ERROR(ToStatus(natsOptions_Create(&raw_opts), "natsOptions_Create"));
  OptionsPtr options(raw_opts);
  natsOptions* o = options.get();
  // A comma-separated list: the members of a cluster, tried in the order given (the
  // nearest first), and the reconnect list when one goes away.
  std::vector<std::string> servers = absl::StrSplit(opts.url, ',', absl::SkipWhitespace());
  for (std::string& server : servers) server = std::string(absl::StripAsciiWhitespace(server));
  if (servers.size() > 1) {
    std::vector<const char*> list;
    for (const std::string& server : servers) list.push_back(server.c_str());
    STEWARD_RETURN_IF_ERROR(ToStatus(natsOptions_SetServers(o, list.data(), static_cast<int>(list.size())),
                                     "SetServers"));
    STEWARD_RETURN_IF_ERROR(ToStatus(natsOptions_SetNoRandomize(o, true), "SetNoRandomize"));
  } else {
    STEWARD_RETURN_IF_ERROR(ToStatus(natsOptions_SetURL(o, opts.url.c_str()), "SetURL"));
  }
  if (!opts.name.empty()) {
    STEWARD_RETURN_IF_ERROR(ToStatus(natsOptions_SetName(o, opts.name.c_str()), "SetName"));
  }
  STEWARD_RETURN_IF_ERROR(ToStatus(natsOptions_SetSendAsap(o, true), "SetSendAsap"));
  STEWARD_RETURN_IF_ERROR(
      ToStatus(natsOptions_SetTimeout(o, absl::ToInt64Milliseconds(opts.connect_timeout)),
               "SetTimeout"));
  STEWARD_RETURN_IF_ERROR(ToStatus(
      natsOptions_SetReconnectWait(o, absl::ToInt64Milliseconds(opts.reconnect_wait)),
      "SetReconnectWait"));
  if (opts.ping_interval > absl::ZeroDuration()) {
    STEWARD_RETURN_IF_ERROR(ToStatus(
        natsOptions_SetPingInterval(o, absl::ToInt64Milliseconds(opts.ping_interval)), "SetPingInterval"));
    STEWARD_RETURN_IF_ERROR(ToStatus(natsOptions_SetMaxPingsOut(o, opts.max_pings_out), "SetMaxPingsOut"));
  }
  if (opts.keep_trying) {
    STEWARD_RETURN_IF_ERROR(ToStatus(natsOptions_SetMaxReconnect(o, -1), "SetMaxReconnect"));
    // With a connected callback, natsConnection_Connect returns NATS_NOT_YET_CONNECTED at
    // once and keeps trying in the background; without one it would block until connected.
    STEWARD_RETURN_IF_ERROR(ToStatus(
        natsOptions_SetRetryOnFailedConnect(o, true, &OnConnected, nullptr), "SetRetryOnFailedConnect"));
  } else {
    // A short-lived client (stewardctl): when its broker goes, it reconnects (to another
    // of several brokers, the members of a cluster, or to the same one restarted) and
    // the call in flight goes on there (nats.c keeps what it publishes meanwhile, and
    // the reply inbox is subscribed again), instead of failing. A few rounds over the
    // list, or kClientReconnectTries for one broker, then the connection closes.
    const int tries = servers.size() > 1 ? 3 * static_cast<int>(servers.size()) : kClientReconnectTries;
    STEWARD_RETURN_IF_ERROR(ToStatus(natsOptions_SetMaxReconnect(o, tries), "SetMaxReconnect"));
  }
  if (!opts.inbox_prefix.empty()) {
    STEWARD_RETURN_IF_ERROR(ToStatus(
        natsOptions_SetCustomInboxPrefix(o, opts.inbox_prefix.c_str()), "SetCustomInboxPrefix"));
  }
  if (opts.global_delivery) {
    STEWARD_RETURN_IF_ERROR(
        ToStatus(natsOptions_UseGlobalMessageDelivery(o, true), "UseGlobalMessageDelivery"));
  }
  if (!opts.user.empty()) {
    STEWARD_RETURN_IF_ERROR(ToStatus(
        natsOptions_SetUserInfo(o, opts.user.c_str(), opts.password.c_str()), "SetUserInfo"));
  }
  if (!opts.creds_file.empty()) {
    STEWARD_RETURN_IF_ERROR(ToStatus(
        natsOptions_SetUserCredentialsFromFiles(o, opts.creds_file.c_str(), nullptr),
        "SetUserCredentialsFromFiles"));
  }
  if (!opts.tls_ca_file.empty()) {
    STEWARD_RETURN_IF_ERROR(ToStatus(natsOptions_SetSecure(o, true), "SetSecure"));
    STEWARD_RETURN_IF_ERROR(ToStatus(
        natsOptions_LoadCATrustedCertificates(o, opts.tls_ca_file.c_str()), "LoadCA"));
  }
  Callbacks* cb = nullptr;  // freed by OnClosed, or below when no connection is made
  if (opts.on_disconnected || opts.on_reconnected) {
    auto owned = std::make_unique<Callbacks>(opts.on_disconnected, opts.on_reconnected);
    STEWARD_RETURN_IF_ERROR(
        ToStatus(natsOptions_SetDisconnectedCB(o, OnDisconnected, owned.get()), "SetDisconnectedCB"));
    STEWARD_RETURN_IF_ERROR(
        ToStatus(natsOptions_SetReconnectedCB(o, OnReconnected, owned.get()), "SetReconnectedCB"));
    STEWARD_RETURN_IF_ERROR(ToStatus(natsOptions_SetClosedCB(o, OnClosed, owned.get()), "SetClosedCB"));
    cb = owned.release();
  }

  natsConnection* raw_nc = nullptr;
  natsStatus s = natsConnection_Connect(&raw_nc, o);
  // No connection. Without keep_trying nats.c released it unclosed: no callback of it
  // runs. With keep_trying it may have closed it first (its reconnect thread could not
  // start: out of resources), queueing OnClosed: then the callbacks are left to it.
  if (raw_nc == nullptr && !opts.keep_trying) delete cb;
  if (s == NATS_NOT_YET_CONNECTED && opts.keep_trying) s = NATS_OK;  // Retrying in background.
  ConnectionPtr nc(raw_nc);
  STEWARD_RETURN_IF_ERROR(ToStatus(s, absl::StrCat("connect to ", RedactUrl(opts.url))));
  return nc;
}

absl::StatusOr<SubscriptionPtr> SubscribeSync(natsConnection* nc, const std::string& subject,
                                              int max_pending_msgs, int max_pending_bytes) {
  return QueueSubscribeSync(nc, subject, "", max_pending_msgs, max_pending_bytes);
}

absl::StatusOr<SubscriptionPtr> QueueSubscribeSync(natsConnection* nc, const std::string& subject,
                                                   const std::string& queue, int max_pending_msgs,
                                                   int max_pending_bytes) {
  natsSubscription* raw = nullptr;
  const natsStatus s = queue.empty() ? natsConnection_SubscribeSync(&raw, nc, subject.c_str())
                                     : natsConnection_QueueSubscribeSync(&raw, nc, subject.c_str(), queue.c_str());
  STEWARD_RETURN_IF_ERROR(
      ToStatus(s, queue.empty() ? "subscribe " + subject : absl::StrCat("subscribe ", subject, " in queue group ", queue)));
  SubscriptionPtr sub(raw);
  STEWARD_RETURN_IF_ERROR(ToStatus(
      natsSubscription_SetPendingLimits(sub.get(), max_pending_msgs,
                                        max_pending_bytes > 0 ? max_pending_bytes : PendingBytes(max_pending_msgs)),
      "SetPendingLimits"));
  return sub;
}

absl::StatusOr<SubscriptionPtr> SubscribeAsync(natsConnection* nc, const std::string& subject,
                                               natsMsgHandler cb, void* closure,
                                               int max_pending_msgs) {
  natsSubscription* raw = nullptr;
  STEWARD_RETURN_IF_ERROR(ToStatus(natsConnection_Subscribe(&raw, nc, subject.c_str(), cb, closure),
                                   "subscribe " + subject));
  SubscriptionPtr sub(raw);
  STEWARD_RETURN_IF_ERROR(ToStatus(
      natsSubscription_SetPendingLimits(sub.get(), max_pending_msgs, PendingBytes(max_pending_msgs)),
      "SetPendingLimits"));
  return sub;
}

absl::StatusOr<MsgPtr> NextMsg(natsSubscription* sub, absl::Duration timeout) {
  natsMsg* raw = nullptr;
  STEWARD_RETURN_IF_ERROR(ToStatus(
      natsSubscription_NextMsg(&raw, sub, absl::ToInt64Milliseconds(timeout)), "NextMsg"));
  return MsgPtr(raw);
}

absl::Status Publish(natsConnection* nc, const std::string& subject, absl::string_view data,
                     const std::string& reply) {
  const int len = static_cast<int>(data.size());
  if (reply.empty()) {
    return ToStatus(natsConnection_Publish(nc, subject.c_str(), data.data(), len),
                    "publish " + subject);
  }
  return ToStatus(
      natsConnection_PublishRequest(nc, subject.c_str(), reply.c_str(), data.data(), len),
      "publish " + subject);
}

absl::StatusOr<MsgPtr> Request(natsConnection* nc, const std::string& subject,
                               absl::string_view data, absl::Duration timeout) {
  natsMsg* raw = nullptr;
  STEWARD_RETURN_IF_ERROR(ToStatus(
      natsConnection_Request(&raw, nc, subject.c_str(), data.data(), static_cast<int>(data.size()),
                             absl::ToInt64Milliseconds(timeout)),
      "request " + subject));
  return MsgPtr(raw);
}

absl::Status Flush(natsConnection* nc, absl::Duration timeout) {
  return ToStatus(natsConnection_FlushTimeout(nc, absl::ToInt64Milliseconds(timeout)), "flush");
}

int64_t MaxPayload(natsConnection* nc) {
  const int64_t max = nc != nullptr ? natsConnection_GetMaxPayload(nc) : 0;
  return max > 0 ? max : int64_t{1} << 20;
}

std::string NewInbox(absl::string_view prefix) {
  natsInbox* inbox = nullptr;
  if (natsInbox_Create(&inbox) != NATS_OK) abort();  // Out of memory only.
  std::string out(inbox);  // "_INBOX.<nuid>"
  natsInbox_Destroy(inbox);
  if (prefix.empty()) return out;
  return absl::StrCat(prefix, out.substr(out.find('.')));
}

}  // namespace steward::nats
