#include "station/http/server.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/protocol.h"
#include "station/http/debug_relay.h"
#include "station/operations.h"

namespace steward::station::http {

std::string Principal::Operator() const {
  if (name.empty()) return loopback ? "http (loopback, no token)" : "http (no token)";
  return absl::StrCat(name, " (http token ", token_id, ")");
}

bool IsLoopback(absl::string_view host) {
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.") ||
         absl::StartsWith(host, "::ffff:127.");
}

namespace {

// Whether a Host header names this machine by a loopback name or address (its port
// aside). A page of another site that a browser on this machine runs may reach the
// loopback listener by rebinding its own name to 127.0.0.1, and its requests then carry
// that name: token-less reads are for loopback names only.
bool LoopbackHostHeader(absl::string_view h) {
  if (h.empty()) return true;  // HTTP/1.0; browsers always send one
  absl::string_view host;
  if (h.front() == '[') {
    const size_t end = h.find(']');
    if (end == absl::string_view::npos) return false;
    host = h.substr(1, end - 1);
  } else {
    host = h.substr(0, h.find(':'));
  }
  const std::string name = absl::AsciiStrToLower(host);
  if (name == "localhost" || name == "::1") return true;
  return absl::StartsWith(name, "127.") &&
         std::all_of(name.begin(), name.end(), [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '.'; });
}

}  // namespace

void SendJson(httplib::Response& res, const nlohmann::ordered_json& body, int status) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace),
                  "application/json");
}

std::string SseFrame(absl::string_view event, absl::string_view id, absl::string_view data) {
  return absl::StrCat("event: ", event, "\n", id.empty() ? "" : absl::StrCat("id: ", id, "\n"), "data: ", data,
                      "\n\n");
}

void SendError(httplib::Response& res, int status, absl::string_view message) {
  nlohmann::ordered_json j;
  j["error"] = std::string(message);
  j["status"] = status;
  SendJson(res, j, status);
}

int HttpStatusOf(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 503;
  }
}

void SendStatus(httplib::Response& res, const absl::Status& st) {
  if (st.code() == absl::StatusCode::kUnauthenticated) res.set_header("WWW-Authenticate", "Bearer");
  SendError(res, HttpStatusOf(st), st.message());
}

absl::StatusOr<std::string> CallRpc(Rpc& rpc, const std::string& method, const google::protobuf::Message& req,
                                    const Principal& who, const std::string& repeat_key) {
  struct Answer {
    absl::Notification done;
    proto::Ack ack;
  };
  auto answer = std::make_shared<Answer>();
  rpc.Invoke(method, req.SerializeAsString(), who.Operator(), "http", [answer](const proto::Ack& ack) {
    if (answer->done.HasBeenNotified()) return;
    answer->ack = ack;
    answer->done.Notify();
  }, repeat_key);
  // Submits that wait are bounded by their wait_ms (at most an hour, clamped by api.cc).
  if (!answer->done.WaitForNotificationWithTimeout(absl::Minutes(2))) {
    return absl::DeadlineExceededError(absl::StrCat("the station did not answer ", method, " in time"));
  }
  const proto::Ack& ack = answer->ack;
  switch (ack.outcome()) {
    case proto::OUTCOME_SUCCEEDED:
      return ack.payload();
    case proto::OUTCOME_REJECTED:
      // The station's rejections of names it does not know all read "unknown <what> ...".
      if (absl::StartsWith(ack.error(), "unknown node") || absl::StartsWith(ack.error(), "unknown command") ||
          absl::StartsWith(ack.error(), "unknown request") || absl::StartsWith(ack.error(), "unknown job")) {
        return absl::NotFoundError(ack.error());
      }
      return absl::InvalidArgumentError(ack.error());
    default:
      return absl::UnavailableError(ack.error());
  }
}

Router::Router(httplib::Server& server, Core& core, Rpc& rpc, Tokens& tokens, bool loopback_listener)
    : server_(server), core_(core), rpc_(rpc), tokens_(tokens), loopback_listener_(loopback_listener) {}

absl::Status Router::Authorize(const httplib::Request& req, Access access, Principal& p) const {
  p.loopback = IsLoopback(req.remote_addr);
  if (access == Access::kPublic) return absl::OkStatus();
  const std::string auth = req.get_header_value("Authorization");
  if (!auth.empty()) {
    if (!absl::StartsWith(auth, "Bearer ")) {
      return absl::UnauthenticatedError("Authorization must be \"Bearer <token>\" (stewardctl token create)");
    }
    absl::StatusOr<proto::TokenInfo> t = tokens_.Check(absl::string_view(auth).substr(7));
    if (!t.ok()) return t.status();
    p.name = t->name();
    p.token_id = t->id();
    p.read_only = t->read_only();
  }
  if (access == Access::kRead) {
    if (p.name.empty() && !loopback_listener_) {
      return absl::UnauthenticatedError("this station's HTTP API needs a token (stewardctl token create)");
    }
    if (p.name.empty() && !LoopbackHostHeader(req.get_header_value("Host"))) {
      return absl::PermissionDeniedError(
          "reads without a token are for loopback names only (Host: localhost or 127.0.0.1); send a token");
    }
    return absl::OkStatus();
  }
  if (p.name.empty()) {
    return absl::UnauthenticatedError("writes need an operator token (stewardctl token create --name NAME)");
  }
  if (p.read_only) return absl::PermissionDeniedError(absl::StrCat("token ", p.token_id, " is read-only"));
  if (!core_.options().key.has_value() && !p.loopback) {
    return absl::PermissionDeniedError(
        "this station runs without keys (development mode): writes are taken from loopback only");
  }
  return absl::OkStatus();
}

bool Router::EndIfTokenGone(const std::string& authorization, httplib::DataSink& sink) const {
  if (authorization.empty()) return false;
  if (absl::StartsWith(authorization, "Bearer ") && tokens_.Check(absl::string_view(authorization).substr(7)).ok()) {
    return false;
  }
  const std::string bye =
      SseFrame("end", "", R"({"reason":"the token this stream was opened with was revoked or expired"})");
  sink.write(bye.data(), bye.size());
  sink.done();
  return true;
}

void Router::Add(const std::string& method, const std::string& pattern, const std::string& name, Access access,
                 Handler handler) {
  auto wrapped = [this, method, name, access, handler = std::move(handler)](const httplib::Request& req,
                                                                            httplib::Response& res) {
    const absl::Time start = absl::Now();
    Principal who;
    if (absl::Status st = Authorize(req, access, who); !st.ok()) {
      if (access == Access::kWrite && !absl::IsUnauthenticated(st)) {
        // A known operator tried to write and may not: that is audited too.
        Call call;
        call.env.set_operator_(absl::StrCat(who.Operator(), " from ", req.remote_addr));
        call.via = "http";
        RecordAction(core_, call, absl::StrCat(method, " ", req.path), "", "", std::string(st.message()));
      }
      STEWARD_LOG_WARNING("http: {} {} from {} refused: {}", method, req.path, req.remote_addr, st.message());
      SendStatus(res, st);
    } else {
      try {
        handler(req, res, who);
      } catch (const std::exception& e) {
        STEWARD_LOG_ERROR("http: {} {}: {}", method, req.path, e.what());
        SendError(res, 500, absl::StrCat("internal error: ", e.what()));
      }
    }
    // A handler that set no status answers 200 (httplib sets it after the handler).
    core_.metrics.http_requests.Add({method, name, std::to_string(res.status == -1 ? 200 : res.status)});
    core_.metrics.http_duration.Observe(absl::ToDoubleSeconds(absl::Now() - start));
  };
  if (method == "GET") {
    server_.Get(pattern, std::move(wrapped));
  } else if (method == "POST") {
    server_.Post(pattern, std::move(wrapped));
  } else if (method == "PUT") {
    server_.Put(pattern, std::move(wrapped));
  } else if (method == "DELETE") {
    server_.Delete(pattern, std::move(wrapped));
  }
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const HttpOptions& options, Core& core, Rpc& rpc,
                                                      Tokens& tokens) {
  const size_t colon = options.listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(options.listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http ", options.listen, ": want HOST:PORT (127.0.0.1:8080; port 0 picks a free one)"));
  }
  std::string host = options.listen.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) host = host.substr(1, host.size() - 2);
  const bool loopback = IsLoopback(host);
  const bool tls = !options.cert_file.empty() || !options.key_file.empty();
  if (!loopback && !tls) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve HTTP on ", options.listen,
        " without TLS: an address other than loopback needs a certificate (--keys with tls/server.pem, or "
        "--http-cert and --http-key) and operators need tokens (stewardctl token create); or listen on "
        "127.0.0.1"));
  }
  std::unique_ptr<Server> s(new Server());
  if (tls) {
    if (options.cert_file.empty() || options.key_file.empty()) {
      return absl::InvalidArgumentError("HTTP TLS needs both a certificate and a key");
    }
    auto ssl = std::make_unique<httplib::SSLServer>(options.cert_file.c_str(), options.key_file.c_str());
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat("cannot use TLS certificate ", options.cert_file, " and key ",
                                                     options.key_file, " (unreadable, or not a pair)"));
    }
    s->http_ = std::move(ssl);
  } else {
    s->http_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& http = *s->http_;
  const int threads = std::max(options.threads, 4);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_payload_max_length(options.max_body_bytes);
  http.set_keep_alive_timeout(5);
  http.set_read_timeout(10);
  http.set_write_timeout(10);
  // Every answer: no type sniffing, and no page of another origin may frame one (the
  // dashboard's buttons act with the token in its storage: clickjacking).
  http.set_default_headers({{"X-Content-Type-Options", "nosniff"}, {"X-Frame-Options", "DENY"}});
  http.set_error_handler([max_body = options.max_body_bytes](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a handler's own error
    if (res.status == 413) {
      // A body sent as a form (curl -d without a Content-Type) is cut off by the HTTP
      // library at 8 KiB, far below the limit for JSON: say what to do instead.
      uint64_t length = 0;
      if (absl::StartsWith(req.get_header_value("Content-Type"), "application/x-www-form-urlencoded") &&
          absl::SimpleAtoi(req.get_header_value("Content-Length"), &length) && length <= max_body) {
        return SendError(res, 413,
                         "a body sent as a form (Content-Type application/x-www-form-urlencoded, what curl -d sends "
                         "without -H) may be at most 8 KiB: send it with Content-Type: application/json");
      }
      return SendError(res, 413, "request body too large");
    }
    if (res.status == 404) return SendError(res, 404, absl::StrCat("no such page: ", req.path));
    SendError(res, res.status, "request refused");
  });
  s->router_ = std::make_unique<Router>(http, core, rpc, tokens, loopback);
  // Leave a few connections for the API and the dashboard however many streams are open.
  s->router_->max_streams = std::max(1, threads - 4);
  AddApi(*s->router_);
  AddEvents(*s->router_);
  AddMetrics(*s->router_, tokens);
  AddDashboard(*s->router_);
  s->debug_ = std::make_unique<DebugRelay>(core.conn());
  AddDebug(*s->router_, *s->debug_);

  if (port == 0) {
    port = http.bind_to_any_port(host);
  } else if (!http.bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    const std::string why = absl::StrCat("cannot listen on ", options.listen, " (in use, or not an address of this host)");
    if (options.listen_is_default) {
      STEWARD_LOG_WARNING("http: {}: no HTTP API, dashboard or /metrics (start with --http HOST:PORT, or --http off)",
                          why);
      return std::unique_ptr<Server>();
    }
    // An error of this configuration, not the broker's: never Unavailable, which a start
    // whose broker connection closed meanwhile would take for the broker's doing.
    return absl::FailedPreconditionError(absl::StrCat("--http: ", why));
  }
  s->port_ = port;
  s->thread_ = ListenOnThread(http);
  STEWARD_LOG_INFO("http: serving the API, dashboard and /metrics on {}://{}:{}/", tls ? "https" : "http",
                   host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host, port);
  if (!core.options().key.has_value()) {
    STEWARD_LOG_WARNING("http: no station keys (development mode): HTTP writes are taken from loopback only");
  }
  return s;
}

std::thread ListenOnThread(httplib::Server& server) {
  auto ended = std::make_shared<std::atomic<bool>>(false);
  std::thread t([&server, ended] {
    server.listen_after_bind();
    ended->store(true);
  });
  while (!server.is_running() && !ended->load()) absl::SleepFor(absl::Milliseconds(1));
  return t;
}

Server::~Server() { Shutdown(); }

void Server::Shutdown() {
  if (stopped_) return;
  stopped_ = true;
  if (debug_) debug_->Close();  // its readers end, and the agents' sessions with them
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace steward::station::http
