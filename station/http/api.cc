// The HTTP API under /api/v1 (docs/api/openapi.yaml): JSON in the shape of
// common/json.h (what `stewardctl --json` prints). Reads and writes go through the
// station's own rpc methods (Rpc::Invoke) wherever one exists, so the HTTP API and
// stewardctl give the same answers from the same code.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/command_rule.h"
#include "common/protocol.h"
#include "station/http/server.h"
#include "station/ledger/surfaces.h"
#include "station/operations.h"

namespace steward::station::http {
namespace {

using Json = nlohmann::ordered_json;

constexpr int64_t kMaxWaitMs = 60'000;
// The longest Idempotency-Key taken.
constexpr size_t kMaxRepeatKey = 128;
// A command's page carries at most this much of each output stream; the rest is read
// in ranges from /api/v1/commands/{id}/output.
constexpr size_t kInlineOutputBytes = 256 * 1024;

// ---- parameters ----

absl::StatusOr<int64_t> IntParam(const httplib::Request& req, const char* name, int64_t fallback) {
  if (!req.has_param(name)) return fallback;
  int64_t v = 0;
  if (!absl::SimpleAtoi(req.get_param_value(name), &v)) {
    return absl::InvalidArgumentError(absl::StrCat("parameter ", name, ": not an integer"));
  }
  return v;
}

// A time: Unix milliseconds, or a duration ago ("10m", "2h").
absl::StatusOr<int64_t> TimeParam(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return 0;
  const std::string v = req.get_param_value(name);
  int64_t ms = 0;
  if (absl::SimpleAtoi(v, &ms)) return ms;
  absl::Duration d;
  if (absl::ParseDuration(v, &d) && d >= absl::ZeroDuration()) return absl::ToUnixMillis(absl::Now() - d);
  return absl::InvalidArgumentError(
      absl::StrCat("parameter ", name, ": want Unix milliseconds or a duration ago (10m, 2h)"));
}

std::string Param(const httplib::Request& req, const char* name) {
  return req.has_param(name) ? req.get_param_value(name) : "";
}

absl::StatusOr<Json> Body(const httplib::Request& req) {
  if (req.body.empty()) return Json::object();
  Json j = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("malformed JSON body");
  if (!j.is_object()) return absl::InvalidArgumentError("the body must be a JSON object");
  return j;
}

// A field of a JSON body, checked for its type.
template <typename T>
absl::Status Field(const Json& body, const char* name, T* out) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  try {
    *out = it->get<T>();
  } catch (const Json::exception&) {
    return absl::InvalidArgumentError(absl::StrCat("field \"", name, "\" has the wrong type"));
  }
  return absl::OkStatus();
}

#define API_TRY(expr)                             \
  do {                                            \
    if (absl::Status st_ = (expr); !st_.ok()) {   \
      return SendStatus(res, st_);                \
    }                                             \
  } while (false)

#define API_ASSIGN(lhs, expr)                     \
  auto API_CONCAT(v_, __LINE__) = (expr);         \
  if (!API_CONCAT(v_, __LINE__).ok()) {           \
    return SendStatus(res, API_CONCAT(v_, __LINE__).status()); \
  }                                               \
  lhs = *std::move(API_CONCAT(v_, __LINE__))
#define API_CONCAT_(a, b) a##b
#define API_CONCAT(a, b) API_CONCAT_(a, b)

Json States(const google::protobuf::RepeatedPtrField<proto::CommandState>& states) {
  Json out = Json::array();
  for (const proto::CommandState& s : states) out.push_back(json::ToJson(s));
  return out;
}

bool Alarm(const proto::NodeInfo& n) {
  return n.status() == proto::NODE_OFFLINE && !n.maintenance().on();
}

// ---- reads ----

void Fleet(Router& r, const httplib::Request&, httplib::Response& res, const Principal& who) {
  // The position first: whatever happens after it is in the stream, so a client that
  // applies the snapshot and then follows from here misses nothing.
  const uint64_t position = r.core().feed.Position();
  API_ASSIGN(proto::NodesReply nodes, CallRpcAs<proto::NodesReply>(r.rpc(), kStationNodes, proto::NodesRequest(), who));
  Json counts = {{"online", 0},      {"offline", 0}, {"unknown", 0},
                 {"pending", 0},     {"maintenance", 0}, {"alarms", 0},
                 {"config_drift", 0}};
  Json rows = Json::array();
  for (const proto::NodeInfo& n : nodes.nodes()) {
    counts[NodeStatusName(n.status())] = counts[NodeStatusName(n.status())].get<int>() + 1;
    if (n.maintenance().on()) counts["maintenance"] = counts["maintenance"].get<int>() + 1;
    if (Alarm(n)) counts["alarms"] = counts["alarms"].get<int>() + 1;
    if (n.config_drift()) counts["config_drift"] = counts["config_drift"].get<int>() + 1;
    rows.push_back({{"name", n.name()},
                    {"status", NodeStatusName(n.status())},
                    {"since_unix_ms", n.since_unix_ms()},
                    {"last_heard_unix_ms", n.last_heard_unix_ms()},
                    {"heartbeat_ms", n.heartbeat_ms()},
                    {"version", n.version()},
                    {"hostname", n.hostname()},
                    {"pending", n.pending()},
                    {"last_command_id", n.last_command_id()},
                    {"last_command_state", n.last_command_state()},
                    {"maintenance", n.maintenance().on()},
                    {"maintenance_reason", n.maintenance().reason()},
                    {"alarm", Alarm(n)},
                    {"config_drift", n.config_drift()}});
  }
  Json out;
  out["event_id"] = position;
  out["station"] = json::ToJson(nodes.station());
  out["dispatch"] = json::ToJson(nodes.dispatch());
  out["counts"] = std::move(counts);
  out["streams"] = r.streams.load();
  out["nodes"] = std::move(rows);
  SendJson(res, out);
}

void Nodes(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  API_ASSIGN(int64_t limit, IntParam(req, "limit", 1000));
  if (limit < 1 || limit > 100000) return SendError(res, 400, "parameter limit: 1..100000");
  const std::string status = Param(req, "status");
  static constexpr const char* kStatuses[] = {"unknown", "online", "offline", "pending", "maintenance", "alarm",
                                              "config_drift"};
  if (!status.empty() && std::find(std::begin(kStatuses), std::end(kStatuses), status) == std::end(kStatuses)) {
    // A typo would otherwise list no node at all, as if none were in that state.
    return SendError(res, 400, absl::StrCat("parameter status: one of ", absl::StrJoin(kStatuses, ", ")));
  }
  const std::string q = Param(req, "q");
  const std::string after = Param(req, "after");
  API_ASSIGN(proto::NodesReply nodes, CallRpcAs<proto::NodesReply>(r.rpc(), kStationNodes, proto::NodesRequest(), who));
  Json rows = Json::array();
  Json next = nullptr;
  for (const proto::NodeInfo& n : nodes.nodes()) {  // sorted by name
    if (!after.empty() && n.name() <= after) continue;
    if (!status.empty() && status != NodeStatusName(n.status()) &&
        !(status == "maintenance" && n.maintenance().on()) && !(status == "alarm" && Alarm(n)) &&
        !(status == "config_drift" && n.config_drift())) {
      continue;
    }
    if (!q.empty() && n.name().find(q) == std::string::npos && n.hostname().find(q) == std::string::npos) continue;
    if (static_cast<int64_t>(rows.size()) == limit) {
      next = rows.back()["name"];
      break;
    }
    rows.push_back(json::ToJson(n));
  }
  Json out;
  out["station"] = json::ToJson(nodes.station());
  out["dispatch"] = json::ToJson(nodes.dispatch());
  out["nodes"] = std::move(rows);
  out["next"] = std::move(next);
  SendJson(res, out);
}

void Node(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  proto::NodesRequest q;
  q.set_node(req.matches[1]);
  const uint64_t position = r.core().feed.Position();
  API_ASSIGN(proto::NodesReply nodes, CallRpcAs<proto::NodesReply>(r.rpc(), kStationNodes, q, who));
  Json errors = Json::array();
  API_ASSIGN(auto events, ledger::NodeEvents(r.core().store(), q.node(), kEventErrorLog, 20));
  for (const auto& [at, payload] : events) {
    proto::ErrorLog e;
    if (e.ParseFromString(payload)) errors.push_back(json::ToJson(e));
  }
  Json out;
  out["node"] = json::ToJson(nodes.nodes(0));
  out["recent"] = States(nodes.recent());
  out["errors"] = std::move(errors);
  out["dispatch"] = json::ToJson(nodes.dispatch());
  out["event_id"] = position;
  SendJson(res, out);
}

void Commands(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  proto::HistoryRequest h;
  API_ASSIGN(int64_t limit, IntParam(req, "limit", 50));
  if (limit < 1 || limit > 1000) return SendError(res, 400, "parameter limit: 1..1000");
  h.set_limit(static_cast<int32_t>(limit));
  h.set_node(Param(req, "node"));
  h.set_state(Param(req, "state"));
  h.set_request_id(Param(req, "request"));
  h.set_before(Param(req, "before"));
  if (!h.before().empty() && !IsValidId(h.before())) return SendError(res, 400, "parameter before: not a command id");
  API_ASSIGN(int64_t since, TimeParam(req, "since"));
  API_ASSIGN(int64_t until, TimeParam(req, "until"));
  h.set_since_unix_ms(since);
  h.set_until_unix_ms(until);
  API_ASSIGN(proto::CommandStates states, CallRpcAs<proto::CommandStates>(r.rpc(), kStationHistory, h, who));
  Json out;
  out["commands"] = States(states.commands());
  // A full page may have more after it: continue with before=<the last id>.
  out["next"] = states.commands_size() == limit || states.incomplete()
                    ? Json(states.commands(states.commands_size() - 1).id())
                    : Json(nullptr);
  out["incomplete"] = states.incomplete();
  SendJson(res, out);
}

void Approvals(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  proto::ApprovalsRequest a;
  a.set_node(Param(req, "node"));
  API_ASSIGN(proto::CommandStates states, CallRpcAs<proto::CommandStates>(r.rpc(), kStationApprovals, a, who));
  SendJson(res, Json{{"commands", States(states.commands())}});
}

void Command(Router& r, const httplib::Request& req, httplib::Response& res, const Principal&) {
  const std::string id = req.matches[1];
  const uint64_t position = r.core().feed.Position();  // before the snapshot (see Fleet)
  API_ASSIGN(std::vector<proto::CommandState> states, r.core().States({id}));
  proto::CommandState& s = states.front();
  const size_t out_bytes = s.result().stdout().size();
  const size_t err_bytes = s.result().stderr().size();
  // Cut here (the full output is read by range); flagged as cut so a client knows.
  const bool cut_out = out_bytes > kInlineOutputBytes;
  const bool cut_err = err_bytes > kInlineOutputBytes;
  if (cut_out) s.mutable_result()->mutable_stdout()->resize(kInlineOutputBytes);
  if (cut_err) s.mutable_result()->mutable_stderr()->resize(kInlineOutputBytes);
  Json out = json::ToJson(s);
  out["stdout_bytes"] = out_bytes;
  out["stderr_bytes"] = err_bytes;
  out["output_cut"] = cut_out || cut_err;
  out["event_id"] = position;
  if (!IsTerminal(s.state())) {
    // Running: the output so far, as the chunks the station holds (station/output_relay.h);
    // the event stream's "output" events after event_id continue it (by seq, once).
    proto::OutputReply held;
    (void)r.core().output.Read(id, 0, "", kInlineOutputBytes, absl::Now(), held);
    Json chunks = Json::array();
    for (const proto::OutputChunk& c : held.chunks()) {
      chunks.push_back({{"seq", c.seq()}, {"text", c.stdout()}, {"stderr", c.stderr()}});
    }
    out["live"] = {{"first_seq", held.first_seq()}, {"chunks", std::move(chunks)}};
  }
  SendJson(res, out);
}

void Output(Router& r, const httplib::Request& req, httplib::Response& res, const Principal&) {
  const std::string id = req.matches[1];
  const std::string stream = req.has_param("stream") ? req.get_param_value("stream") : "stdout";
  if (stream != "stdout" && stream != "stderr") return SendError(res, 400, "parameter stream: stdout or stderr");
  API_ASSIGN(int64_t offset, IntParam(req, "offset", 0));
  API_ASSIGN(int64_t length, IntParam(req, "length", 1 << 20));
  if (offset < 0 || length < 0) return SendError(res, 400, "offset and length must not be negative");
  API_ASSIGN(std::vector<proto::CommandState> states, r.core().States({id}));
  const std::string& all = stream == "stdout" ? states.front().result().stdout() : states.front().result().stderr();
  const size_t from = std::min(all.size(), static_cast<size_t>(offset));
  const size_t n = std::min(all.size() - from, static_cast<size_t>(length));
  res.set_header("X-Total-Bytes", std::to_string(all.size()));
  res.set_header("X-Offset", std::to_string(from));
  res.set_content(all.substr(from, n), "application/octet-stream");
}

// A job (a send by target: a rollout, a continuous job, a scheduled run) with its
// counts and, for a rollout, its batches; null when `id` is no job.
absl::StatusOr<Json> JobOf(Router& r, const std::string& id, const Principal& who) {
  proto::JobRequest q;
  q.set_id(id);
  absl::StatusOr<proto::JobReply> job = CallRpcAs<proto::JobReply>(r.rpc(), kStationJob, q, who);
  if (absl::IsNotFound(job.status())) return Json(nullptr);
  if (!job.ok()) return job.status();
  return json::ToJson(*job);
}

void Job(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  API_ASSIGN(Json job, JobOf(r, req.matches[1], who));
  if (job.is_null()) return SendError(res, 404, absl::StrCat("unknown job ", std::string(req.matches[1])));
  SendJson(res, job);
}

void Request(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  proto::ShowRequest q;
  q.set_request_id(req.matches[1]);
  const uint64_t position = r.core().feed.Position();
  API_ASSIGN(proto::CommandStates states, CallRpcAs<proto::CommandStates>(r.rpc(), kStationShow, q, who));
  Json counts = {{"total", states.commands_size()}, {"succeeded", 0}, {"failed", 0}, {"pending", 0},
                 {"not_answered", 0}};
  Json by_state = Json::object();
  Json not_answered = Json::array();
  for (const proto::CommandState& s : states.commands()) {
    const std::string name = StateName(s.state());
    by_state[name] = by_state.value(name, 0) + 1;
    if (s.state() == proto::STATE_SUCCEEDED) {
      counts["succeeded"] = counts["succeeded"].get<int>() + 1;
    } else if (IsTerminal(s.state())) {
      counts["failed"] = counts["failed"].get<int>() + 1;
    } else {
      counts["pending"] = counts["pending"].get<int>() + 1;
    }
    // Not answered: the node has not even said it received the command.
    if (s.state() == proto::STATE_QUEUED || s.state() == proto::STATE_SENT) {
      counts["not_answered"] = counts["not_answered"].get<int>() + 1;
      not_answered.push_back(s.node());
    }
  }
  Json out;
  out["request_id"] = q.request_id();
  out["event_id"] = position;
  out["counts"] = std::move(counts);
  out["by_state"] = std::move(by_state);
  out["not_answered"] = std::move(not_answered);
  out["commands"] = States(states.commands());
  out["incomplete"] = states.incomplete();
  // A send by target is a job too: a rollout's batches and why it stopped.
  API_ASSIGN(out["job"], JobOf(r, q.request_id(), who));
  SendJson(res, out);
}

void Logs(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  proto::LogsRequest q;
  q.set_node(Param(req, "node"));
  q.set_domain(Param(req, "domain"));
  q.set_grep(Param(req, "grep"));
  q.set_app(Param(req, "app"));
  q.set_host(Param(req, "host"));
  q.set_after(Param(req, "after"));
  q.set_page(Param(req, "page"));
  API_ASSIGN(int64_t since, TimeParam(req, "since"));
  API_ASSIGN(int64_t until, TimeParam(req, "until"));
  q.set_until_unix_ms(until);
  API_ASSIGN(int64_t severity, IntParam(req, "severity", 7));
  API_ASSIGN(int64_t limit, IntParam(req, "limit", 100));
  if (severity < 0 || severity > 7) return SendError(res, 400, "parameter severity: 0..7");
  if (limit < 1 || limit > 10000) return SendError(res, 400, "parameter limit: 1..10000");
  q.set_since_unix_ms(since);
  q.set_max_severity(static_cast<int32_t>(severity));
  q.set_limit(static_cast<int32_t>(limit));
  API_ASSIGN(proto::LogsReply logs, CallRpcAs<proto::LogsReply>(r.rpc(), kStationLogs, q, who));
  Json entries = Json::array();
  for (const proto::LogEntry& e : logs.entries()) entries.push_back(json::ToJson(e));
  // Newest first; next_page (when set) continues the listing: a reply is bounded.
  SendJson(res, Json{{"entries", std::move(entries)}, {"cursor", logs.cursor()}, {"next_page", logs.next_page()}});
}

void Audit(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  proto::AuditRequest q;
  q.set_node(Param(req, "node"));
  q.set_operator_(Param(req, "operator"));
  API_ASSIGN(int64_t limit, IntParam(req, "limit", 50));
  if (limit < 1 || limit > 1000) return SendError(res, 400, "parameter limit: 1..1000");
  q.set_limit(static_cast<int32_t>(limit));
  API_ASSIGN(proto::CommandStates commands, CallRpcAs<proto::CommandStates>(r.rpc(), kStationAudit, q, who));
  Json acts = Json::array();
  for (const proto::OperatorAction& a : commands.actions()) acts.push_back(json::ToJson(a));
  SendJson(res, Json{{"actions", std::move(acts)}, {"commands", States(commands.commands())}});
}

void Dispatch(Router& r, const httplib::Request&, httplib::Response& res, const Principal&) {
  proto::DispatchSwitch sw;
  {
    absl::MutexLock lock(&r.core().model.mu);
    sw = r.core().model.dispatch;
  }
  SendJson(res, json::ToJson(sw));
}

// ---- writes ----

void Submit(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  // A client that may send the same submit twice (its answer lost, a takeover between
  // two stations) names it: the same key from the same operator within a day makes
  // the commands once and answers as the first time.
  const std::string repeat_key = req.get_header_value("Idempotency-Key");
  if (repeat_key.size() > kMaxRepeatKey ||
      !std::all_of(repeat_key.begin(), repeat_key.end(), [](char c) { return c > ' ' && c < 0x7f; })) {
    return SendError(res, 400, absl::StrCat("header Idempotency-Key: at most ", kMaxRepeatKey,
                                            " printable characters without spaces"));
  }
  API_ASSIGN(Json body, Body(req));
  std::vector<std::string> nodes, argv, env;
  bool all = false, shell = false, require_approval = false;
  std::string method = kMethodShell, domain = "operatingsystem", cwd;
  int64_t timeout_ms = 0, ttl_ms = 0, wait_ms = 0, approval_ttl_ms = 0;
  API_TRY(Field(body, "nodes", &nodes));
  API_TRY(Field(body, "all", &all));
  API_TRY(Field(body, "argv", &argv));
  API_TRY(Field(body, "method", &method));
  API_TRY(Field(body, "domain", &domain));
  API_TRY(Field(body, "shell", &shell));
  API_TRY(Field(body, "cwd", &cwd));
  API_TRY(Field(body, "env", &env));
  API_TRY(Field(body, "timeout_ms", &timeout_ms));
  API_TRY(Field(body, "ttl_ms", &ttl_ms));
  API_TRY(Field(body, "wait_ms", &wait_ms));
  API_TRY(Field(body, "require_approval", &require_approval));
  API_TRY(Field(body, "approval_ttl_ms", &approval_ttl_ms));
  if (nodes.empty() && !all) return SendError(res, 400, "name the target nodes (\"nodes\": [...]) or \"all\": true");
  if (!nodes.empty() && all) return SendError(res, 400, "\"all\": true takes every node: name no \"nodes\" with it");
  if (argv.empty() && method == kMethodShell) return SendError(res, 400, "\"argv\" is empty: nothing to run");
  if (timeout_ms < 0 || ttl_ms < 0 || wait_ms < 0) return SendError(res, 400, "times must not be negative");
  // At most a year: beyond it a time is a mistake (and the sum with now would overflow).
  constexpr int64_t kMaxTimeMs = int64_t{366} * 24 * 3600 * 1000;
  if (timeout_ms > kMaxTimeMs || ttl_ms > kMaxTimeMs || approval_ttl_ms > kMaxTimeMs) {
    return SendError(res, 400, "timeout_ms, ttl_ms and approval_ttl_ms must be at most a year (31622400000)");
  }
  {
    absl::MutexLock lock(&r.core().model.mu);
    for (const std::string& n : nodes) {
      if (r.core().model.nodes.Find(n) == nullptr) return SendError(res, 404, absl::StrCat("unknown node ", n));
    }
  }
  proto::SubmitRequest s;
  for (const std::string& n : nodes) s.add_nodes(n);
  s.set_all_nodes(all);
  proto::Envelope* cmd = s.mutable_command();
  cmd->set_method(method);
  cmd->set_domain(domain);
  for (const std::string& a : argv) cmd->add_argv(a);
  cmd->mutable_shell()->set_use_shell(shell);
  cmd->mutable_shell()->set_working_dir(cwd);
  for (const std::string& e : env) cmd->mutable_shell()->add_env(e);
  cmd->set_timeout_ms(timeout_ms);
  if (ttl_ms > 0) cmd->set_expires_unix_ms(NowUnixMillis() + ttl_ms);
  s.set_wait_ms(std::min(wait_ms, kMaxWaitMs));
  s.mutable_control()->set_require_approval(require_approval);
  s.mutable_control()->set_approval_ttl_ms(approval_ttl_ms);
  absl::StatusOr<proto::SubmitReply> reply =
      CallRpcAs<proto::SubmitReply>(r.rpc(), kStationSubmit, s, who, repeat_key);
  std::string targets = all ? "all" : absl::StrJoin(nodes, ",");
  RecordWrite(r, who, "submit", targets,
               absl::StrCat(method, " ", CommandShownText(s.command()),
                            reply.ok() ? absl::StrCat(" request ", reply->request_id()) : ""),
               reply.ok() ? "ok" : std::string(reply.status().message()));
  if (!reply.ok()) return SendStatus(res, reply.status());
  Json out = json::ToJson(*reply);
  SendJson(res, out, 201);
}

void Cancel(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  proto::CancelRequest c;
  c.add_ids(req.matches[1]);
  API_ASSIGN(std::vector<proto::CommandState> exists, r.core().States({c.ids(0)}));  // 404 when unknown
  absl::StatusOr<proto::CommandStates> out = CallRpcAs<proto::CommandStates>(r.rpc(), kStationCancel, c, who);
  if (!out.ok()) {
    // A cancel that is done is in the audit from the station's cancel itself; a refusal
    // is recorded here.
    RecordWrite(r, who, "cancel", c.ids(0), exists.front().node(), std::string(out.status().message()));
    // "already succeeded", "already delivered": the command's state says no.
    return SendStatus(res, absl::IsInvalidArgument(out.status()) ? absl::FailedPreconditionError(out.status().message())
                                                                 : out.status());
  }
  SendJson(res, Json{{"commands", States(out->commands())}});
}

// Approve or deny one command awaiting approval; the station audits the decision (and a
// refused one) itself.
void Decide(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who, bool approve) {
  API_ASSIGN(Json body, Body(req));
  std::string comment;
  API_TRY(Field(body, approve ? "comment" : "reason", &comment));
  if (!approve && comment.empty()) return SendError(res, 400, "\"reason\" is required: the submitter reads it");
  proto::DecideRequest d;
  d.add_ids(req.matches[1]);
  d.set_approve(approve);
  d.set_comment(comment);
  API_ASSIGN(std::vector<proto::CommandState> exists, r.core().States({d.ids(0)}));  // 404 when unknown
  (void)exists;
  absl::StatusOr<proto::CommandStates> out = CallRpcAs<proto::CommandStates>(r.rpc(), kStationDecide, d, who);
  if (!out.ok()) {
    const std::string why(out.status().message());
    if (why.find("four eyes") != std::string::npos) return SendStatus(res, absl::PermissionDeniedError(why));
    return SendStatus(res, absl::IsInvalidArgument(out.status()) ? absl::FailedPreconditionError(why) : out.status());
  }
  SendJson(res, Json{{"commands", States(out->commands())}});
}

void Approve(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  Decide(r, req, res, who, true);
}

void Deny(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  Decide(r, req, res, who, false);
}

void SetDispatch(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  API_ASSIGN(Json body, Body(req));
  bool paused = false;
  std::string reason;
  if (!body.contains("paused")) return SendError(res, 400, "\"paused\": true or false is required");
  API_TRY(Field(body, "paused", &paused));
  API_TRY(Field(body, "reason", &reason));
  proto::PauseRequest p;
  p.set_pause(paused);
  p.set_reason(reason);
  API_ASSIGN(proto::DispatchSwitch sw, CallRpcAs<proto::DispatchSwitch>(r.rpc(), kStationPause, p, who));
  SendJson(res, json::ToJson(sw));
}

void SetMaintenance(Router& r, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  API_ASSIGN(Json body, Body(req));
  bool on = false;
  std::string reason;
  if (!body.contains("on")) return SendError(res, 400, "\"on\": true or false is required");
  API_TRY(Field(body, "on", &on));
  API_TRY(Field(body, "reason", &reason));
  proto::MaintenanceRequest m;
  m.set_node(req.matches[1]);
  m.set_on(on);
  m.set_reason(reason);
  API_ASSIGN(proto::NodesReply nodes, CallRpcAs<proto::NodesReply>(r.rpc(), kStationMaintenance, m, who));
  SendJson(res, json::ToJson(nodes.nodes(0)));
}

}  // namespace

void RecordWrite(Router& r, const Principal& who, const std::string& action, const std::string& target,
                 const std::string& detail, const std::string& outcome) {
  Call call;
  call.env.set_operator_(who.Operator());
  call.via = "http";
  RecordAction(r.core(), call, action, target, detail, outcome);
}

void AddApi(Router& r) {
  // Node names and ids are subject tokens: no '/', '.', white space or wildcards.
  const std::string name = "([^/.*>\\s]+)";
  const std::string id = "([0-9A-Z]{26})";
  auto route = [&r](auto fn) {
    return [&r, fn](const httplib::Request& req, httplib::Response& res, const Principal& who) {
      fn(r, req, res, who);
    };
  };
  r.Add("GET", "/api/v1/fleet", "fleet", Access::kRead, route(Fleet));
  r.Add("GET", "/api/v1/nodes", "nodes", Access::kRead, route(Nodes));
  r.Add("GET", "/api/v1/nodes/" + name, "node", Access::kRead, route(Node));
  r.Add("POST", "/api/v1/nodes/" + name + "/maintenance", "maintenance", Access::kWrite, route(SetMaintenance));
  r.Add("GET", "/api/v1/commands", "commands", Access::kRead, route(Commands));
  r.Add("POST", "/api/v1/commands", "submit", Access::kWrite, route(Submit));
  r.Add("GET", "/api/v1/commands/" + id, "command", Access::kRead, route(Command));
  r.Add("GET", "/api/v1/commands/" + id + "/output", "output", Access::kRead, route(Output));
  r.Add("POST", "/api/v1/commands/" + id + "/cancel", "cancel", Access::kWrite, route(Cancel));
  r.Add("POST", "/api/v1/commands/" + id + "/approve", "approve", Access::kWrite, route(Approve));
  r.Add("POST", "/api/v1/commands/" + id + "/deny", "deny", Access::kWrite, route(Deny));
  r.Add("GET", "/api/v1/approvals", "approvals", Access::kRead, route(Approvals));
  r.Add("GET", "/api/v1/requests/" + id, "request", Access::kRead, route(Request));
  r.Add("GET", "/api/v1/jobs/" + id, "job", Access::kRead, route(Job));
  r.Add("GET", "/api/v1/logs", "logs", Access::kRead, route(Logs));
  r.Add("GET", "/api/v1/audit", "audit", Access::kRead, route(Audit));
  r.Add("GET", "/api/v1/dispatch", "dispatch", Access::kRead, route(Dispatch));
  r.Add("POST", "/api/v1/dispatch", "pause", Access::kWrite, route(SetDispatch));
}

}  // namespace steward::station::http
