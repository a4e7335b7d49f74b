// Server: the station's HTTP surfaces on cpp-httplib. The read API and the writes
// under /api/v1 (api.cc), the live event stream /api/v1/events (events.cc),
// Prometheus /metrics (metrics.cc), the agents' debug streams (debug.cc) and the
// dashboard's files (dashboard.cc), behind
// one gate (Router) that authenticates, counts and times every request.
//
//   auto server = Server::Start(options.http, core, rpc, tokens);
//   (*server)->port();      // the bound port (also logged: "http: serving ... on PORT")
//   (*server)->Shutdown();  // ends streams, stops accepting, joins
//
// Access:
// - Loopback listener: reads need no token; a token that is given must be valid.
// - Other addresses: TLS is required (Start refuses without a certificate) and every
//   request but the dashboard's static files needs a valid token.
// - Writes always need a token that is not read-only, and are recorded in the audit
//   with its operator. Without station keys (development mode) writes are taken from
//   loopback peers only.
// Never holds model.mu across I/O: handlers copy what they need under the lock, or
// call the station's rpc methods in-process (Rpc::Invoke), which follow the same rule.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "station/core.h"
#include "station/http/options.h"
#include "station/http/tokens.h"
#include "station/rpc.h"

namespace steward::station::http {

class DebugRelay;  // debug_relay.h

// Who makes a request.
struct Principal {
  std::string name;      // the token's operator; "" without a token
  std::string token_id;  // "" without a token
  bool read_only = true;
  bool loopback = false;  // the peer's address
  // As recorded with commands and actions: "alice (http token t0123456789)".
  std::string Operator() const;
};

enum class Access {
  kPublic,  // the dashboard's files
  kRead,
  kWrite,
};

using Handler = std::function<void(const httplib::Request&, httplib::Response&, const Principal&)>;

// What every route shares: the station, its rpc methods, the tokens, and the gate.
class Router {
 public:
  Router(httplib::Server& server, Core& core, Rpc& rpc, Tokens& tokens, bool loopback_listener);
  // Adds a route; `pattern` is a regex on the path, `name` labels its metrics.
  void Add(const std::string& method, const std::string& pattern, const std::string& name, Access access,
           Handler handler);

  Core& core() { return core_; }
  Rpc& rpc() { return rpc_; }
  // For a stream opened with `authorization` (its request's Authorization header), on
  // each turn: when its token no longer exists or has expired, writes the frame that
  // ends it (`event: end`), closes `sink` and returns true (the provider returns true).
  // None: as it was authorized, from loopback. So a revoked token's stream ends.
  bool EndIfTokenGone(const std::string& authorization, httplib::DataSink& sink) const;
  // SSE streams now open (a gauge on /metrics), and at most how many may be.
  std::atomic<int> streams{0};
  int max_streams = 12;

 private:
  // Authorize fills `who` (as far as it is known) and says whether `req` may have
  // `access`: Unauthenticated or PermissionDenied with the reason when not.
  absl::Status Authorize(const httplib::Request& req, Access access, Principal& who) const;

  httplib::Server& server_;
  Core& core_;
  Rpc& rpc_;
  Tokens& tokens_;
  const bool loopback_listener_;
};

// Replies.
void SendJson(httplib::Response& res, const nlohmann::ordered_json& body, int status = 200);
void SendError(httplib::Response& res, int status, absl::string_view message);
// The HTTP status of a failed Status: InvalidArgument 400, Unauthenticated 401,
// PermissionDenied 403, NotFound 404, FailedPrecondition / AlreadyExists 409,
// DeadlineExceeded 504, Unavailable and the rest 503.
int HttpStatusOf(const absl::Status& st);
void SendStatus(httplib::Response& res, const absl::Status& st);
// One Server-Sent Events frame: `event`, its `id` (no id line when empty) and `data`
// (one line: JSON text).
std::string SseFrame(absl::string_view event, absl::string_view id, absl::string_view data);
// Records an HTTP write of `who` in the audit (pause and maintenance record their own,
// with the operator the in-process call carries).
void RecordWrite(Router& r, const Principal& who, const std::string& action, const std::string& target,
                 const std::string& detail, const std::string& outcome);

// Calls the station's rpc `method` in-process for `who` and waits for its answer: the
// reply payload, or the failure (REJECTED: InvalidArgument, or NotFound for "unknown
// node/command/request ..."; ERROR: Unavailable).
// `repeat_key`: the client's Idempotency-Key (Rpc::Invoke), empty when none.
absl::StatusOr<std::string> CallRpc(Rpc& rpc, const std::string& method, const google::protobuf::Message& req,
                                    const Principal& who, const std::string& repeat_key = "");
template <typename Reply>
absl::StatusOr<Reply> CallRpcAs(Rpc& rpc, const std::string& method, const google::protobuf::Message& req,
                                const Principal& who, const std::string& repeat_key = "") {
  absl::StatusOr<std::string> bytes = CallRpc(rpc, method, req, who, repeat_key);
  if (!bytes.ok()) return bytes.status();
  Reply out;
  if (!out.ParseFromString(*bytes)) return absl::InternalError("malformed reply");
  return out;
}

class Server {
 public:
  // Start binds and serves in a thread of its own. Refuses a non-loopback address
  // without TLS. With options.listen_is_default, an address in use is not an error:
  // the station runs without HTTP (a nullptr server) and logs why.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const HttpOptions& options, Core& core, Rpc& rpc,
                                                       Tokens& tokens);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }
  // Ends event streams, stops accepting and joins. Idempotent.
  void Shutdown();

 private:
  Server() = default;

  std::unique_ptr<DebugRelay> debug_;  // the agents' debug streams the dashboard reads
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<Router> router_;
  int port_ = 0;
  std::thread thread_;
  bool stopped_ = false;
};

// Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost).
bool IsLoopback(absl::string_view host);

// Route sets (api.cc, events.cc, metrics.cc, dashboard.cc, debug.cc).
void AddApi(Router& router);
void AddEvents(Router& router);
void AddMetrics(Router& router, const Tokens& tokens);
void AddDashboard(Router& router);
void AddDebug(Router& router, DebugRelay& relay);

// Runs the accept loop of `server` (bound already) on a new thread, and returns the
// thread once the loop runs, or has already ended. httplib's stop() does nothing until
// listen_after_bind has marked the server running: a stop soon after the thread started
// (a station whose start failed at a later step, its broker closed under it) left the
// thread in accept() for good, and the station hung in its Shutdown.
std::thread ListenOnThread(httplib::Server& server);

}  // namespace steward::station::http
