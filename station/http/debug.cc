// The agent's own log, live, over HTTP (issue 14 part 4; the dashboard's node page):
// the station is the operator's client of the node's debug stream (debug_relay.h).
//
//   POST /api/v1/nodes/{node}/debug   {"level": "debug", "for_ms": 300000}
//        -> 201 {"id": ..., "node": ..., "until_unix_ms": ..., "command": ..., "events": ...}
//   GET  /api/v1/debug/{id}           the stream: who, until when, lines so far, ended and why
//   GET  /api/v1/debug/{id}/events    Server-Sent Events: `line` (id: its number),
//                                     `missed` (lines the station no longer holds), `end`
//   POST /api/v1/debug/{id}/stop      ends it now (the agent stops at its next probe)
//
// Starting is a write: an operator token that may write (refused ones are audited by
// the Router), and the node's access rules must allow `debug` (checked here, as the
// node would, so that a refusal sends nothing). The `debug` command goes through the
// station's submit like any command (signed, in the ledger, audited as the operator),
// naming a stream subject the station reads (_DEBUG.<station>.<node>.<id>). A stream is
// its operator's: only the token name that started it may read or stop it.
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/command_rule.h"
#include "common/log.h"
#include "common/protocol.h"
#include "station/http/debug_relay.h"
#include "station/http/server.h"
#include "station/operations.h"
#include "subjects/subject.h"

namespace steward::station::http {
namespace {

using Json = nlohmann::ordered_json;

constexpr int64_t kDefaultForMs = 5 * 60 * 1000;
constexpr int64_t kMaxForMs = 24 * 3600 * 1000;  // the agent's own bound (DebugLimits::max_for)
// How long a start waits for the node to take the command; it expires unrun soon after.
constexpr absl::Duration kStartWait = absl::Seconds(15);
constexpr absl::Duration kKeepAlive = absl::Seconds(15);
constexpr size_t kMaxFrameLines = 500;  // per write: a backlog goes out in pieces

Json InfoJson(const DebugRelay::Info& i) {
  return Json{{"id", i.id},
              {"node", i.node},
              {"level", i.level},
              {"operator", i.by},
              {"command", i.command},
              {"started_unix_ms", absl::ToUnixMillis(i.started)},
              {"until_unix_ms", absl::ToUnixMillis(i.until)},
              {"readers", i.readers},
              {"lines", i.lines},
              {"ended", i.ended},
              {"reason", i.reason},
              {"events", absl::StrCat("/api/v1/debug/", i.id, "/events")}};
}

std::string Frame(const char* event, const std::string& id, const Json& data) {
  return SseFrame(event, id, data.dump(-1, ' ', false, Json::error_handler_t::replace));
}

// The stream `id` for `who`: NotFound, or PermissionDenied when it is another operator's.
absl::StatusOr<DebugRelay::Info> Owned(DebugRelay& relay, const std::string& id, const Principal& who) {
  absl::StatusOr<DebugRelay::Info> info = relay.Get(id);
  if (!info.ok()) return info.status();
  if (info->by_name != who.name) {
    return absl::PermissionDeniedError(absl::StrCat("debug stream ", id, " is ", info->by_name, "'s"));
  }
  return info;
}

void Start(Router& r, DebugRelay& relay, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  const std::string node = req.matches[1];
  Json body = Json::object();
  if (!req.body.empty()) {
    body = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object()) return SendError(res, 400, "the body must be a JSON object");
  }
  std::string level = "debug";
  int64_t for_ms = kDefaultForMs;
  try {
    if (body.contains("level")) level = body.at("level").get<std::string>();
    if (body.contains("for_ms")) for_ms = body.at("for_ms").get<int64_t>();
  } catch (const Json::exception&) {
    return SendError(res, 400, "\"level\" is a string (debug, info, warning, error), \"for_ms\" an integer");
  }
  if (absl::StatusOr<LogLevel> l = ParseLogLevel(level); !l.ok()) return SendStatus(res, l.status());
  if (for_ms <= 0 || for_ms > kMaxForMs) return SendError(res, 400, "\"for_ms\": more than 0, at most 24 h");
  if (absl::Status st = subjects::ValidateToken(node); !st.ok()) return SendStatus(res, st);

  const std::string id = DebugRelay::NewId();
  absl::StatusOr<std::string> subject = subjects::DebugStream(r.core().options().name, node, id);
  if (!subject.ok()) return SendStatus(res, subject.status());
  proto::SubmitRequest s;
  s.add_nodes(node);
  proto::Envelope* cmd = s.mutable_command();
  cmd->set_method(kMethodDebug);
  cmd->set_domain(kAgentDomain);
  for (const std::string& a : {level, absl::StrCat(for_ms), *subject}) cmd->add_argv(a);
  // Of no use later: it expires unrun shortly after the wait.
  cmd->set_expires_unix_ms(absl::ToUnixMillis(absl::Now() + kStartWait + absl::Seconds(30)));
  s.set_wait_ms(absl::ToInt64Milliseconds(kStartWait));
  const std::string what = absl::StrCat("level ", level, " for ", absl::FormatDuration(absl::Milliseconds(for_ms)),
                                        ", stream ", id);
  bool known = false, allowed = false;
  {
    absl::MutexLock lock(&r.core().model.mu);
    known = r.core().model.nodes.Find(node) != nullptr;
    // The node's own check, made here first: a refusal sends nothing.
    const std::vector<std::string> rules = r.core().model.access.Effective(node);
    allowed = rules.empty();
    for (const std::string& rule : rules) allowed = allowed || CommandRuleAllows(rule, *cmd);
  }
  if (!known) return SendError(res, 404, absl::StrCat("unknown node ", node));
  if (!allowed) {
    const std::string why = absl::StrCat(node, "'s access rules do not allow debug (stewardctl acl show ", node, ")");
    RecordWrite(r, who, "debug", node, what, why);
    return SendError(res, 403, why);
  }
  absl::StatusOr<DebugRelay::Info> opened =
      relay.Open(id, *subject, node, level, absl::Milliseconds(for_ms), who.name, who.Operator());
  if (!opened.ok()) {
    RecordWrite(r, who, "debug", node, what, std::string(opened.status().message()));
    return SendStatus(res, opened.status());
  }
  absl::StatusOr<proto::SubmitReply> reply = CallRpcAs<proto::SubmitReply>(r.rpc(), kStationSubmit, s, who);
  absl::Status started = reply.status();
  std::string command;
  if (reply.ok()) {
    command = reply->commands_size() == 1 ? reply->commands(0).id() : "";
    relay.SetCommand(id, command);
    absl::StatusOr<std::vector<proto::CommandState>> states = r.core().States({command});
    if (!states.ok()) {
      started = states.status();
    } else if (const proto::CommandState& st = states->front(); st.state() != proto::STATE_SUCCEEDED) {
      started = IsTerminal(st.state())
                    ? absl::FailedPreconditionError(absl::StrCat(node, " ", StateName(st.state()), ": ",
                                                                 st.result().error()))
                    : absl::DeadlineExceededError(absl::StrCat(
                          node, " did not take the debug command within ", absl::FormatDuration(kStartWait),
                          " (", StateName(st.state()), "); command ", command, " expires unrun soon"));
    }
  }
  RecordWrite(r, who, "debug", node, absl::StrCat(what, command.empty() ? "" : ", command " + command),
              started.ok() ? "ok" : std::string(started.message()));
  if (!started.ok()) {
    relay.Stop(id, absl::StrCat("not started: ", started.message()));
    return SendStatus(res, started);
  }
  absl::StatusOr<DebugRelay::Info> info = relay.Get(id);
  if (!info.ok()) return SendStatus(res, info.status());
  SendJson(res, InfoJson(*info), 201);
}

void Show(DebugRelay& relay, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  absl::StatusOr<DebugRelay::Info> info = Owned(relay, req.matches[1], who);
  if (!info.ok()) return SendStatus(res, info.status());
  SendJson(res, InfoJson(*info));
}

void Stop(Router& r, DebugRelay& relay, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  absl::StatusOr<DebugRelay::Info> info = Owned(relay, req.matches[1], who);
  if (!info.ok()) return SendStatus(res, info.status());
  const bool stopped = relay.Stop(info->id, absl::StrCat("stopped by ", who.Operator()));
  if (stopped) RecordWrite(r, who, "debug stop", info->node, absl::StrCat("stream ", info->id), "ok");
  info = relay.Get(info->id);
  if (!info.ok()) return SendStatus(res, info.status());
  SendJson(res, InfoJson(*info));
}

void Events(Router& r, DebugRelay& relay, const httplib::Request& req, httplib::Response& res, const Principal& who) {
  absl::StatusOr<DebugRelay::Info> info = Owned(relay, req.matches[1], who);
  if (!info.ok()) return SendStatus(res, info.status());
  uint64_t after = 0;
  const std::string resume = req.has_header("Last-Event-ID") ? req.get_header_value("Last-Event-ID")
                             : req.has_param("after")        ? req.get_param_value("after")
                                                             : "";
  if (!resume.empty() && !absl::SimpleAtoi(resume, &after)) {
    return SendError(res, 400, "Last-Event-ID / after: want a line number");
  }
  if (r.streams.fetch_add(1) >= r.max_streams) {
    r.streams.fetch_sub(1);
    return SendError(res, 503, "too many event streams open; try again later");
  }
  struct State {
    std::string id;
    uint64_t after = 0;
    bool started = false;
    bool done = false;
    absl::Time last_write = absl::Now();
    std::string authorization;  // the request's, checked again as the stream goes
  };
  auto st = std::make_shared<State>();
  st->id = info->id;
  st->authorization = req.get_header_value("Authorization");
  st->after = after;
  relay.AddReader(st->id);
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [&r, &relay, st, start = InfoJson(*info)](size_t, httplib::DataSink& sink) {
        if (st->done) return false;
        if (r.EndIfTokenGone(st->authorization, sink)) {
          st->done = true;
          return true;
        }
        std::string out;
        if (!st->started) {
          st->started = true;
          out = absl::StrCat("retry: 2000\n\n", Frame("stream", "", start));
        }
        DebugRelay::Batch b = relay.Wait(st->id, st->after, absl::Seconds(1));
        if (b.gone) return false;
        if (b.missed > 0) {
          out += Frame("missed", "", Json{{"lines", b.missed}});
        }
        size_t n = 0;
        for (const DebugRelay::Line& l : b.lines) {
          if (n++ == kMaxFrameLines) break;
          st->after = l.seq;
          out += Frame("line", absl::StrCat(l.seq), Json{{"seq", l.seq}, {"text", l.text}});
        }
        if (b.missed > 0 && b.lines.empty()) st->after += b.missed;
        if (b.ended && n <= kMaxFrameLines) {
          out += Frame("end", "", Json{{"reason", b.reason}});
          st->done = true;
        }
        if (out.empty() && absl::Now() - st->last_write >= kKeepAlive) out = ": keepalive\n\n";
        if (out.empty()) return sink.is_writable();
        st->last_write = absl::Now();
        if (!sink.write(out.data(), out.size())) return false;
        if (st->done) sink.done();
        return true;
      },
      [&r, &relay, st](bool) {
        relay.RemoveReader(st->id);
        r.streams.fetch_sub(1);
      });
}

}  // namespace

void AddDebug(Router& r, DebugRelay& relay) {
  const std::string name = "([^/.*>\\s]+)";
  const std::string id = "([0-9A-Za-z]+)";
  r.Add("POST", "/api/v1/nodes/" + name + "/debug", "debug", Access::kWrite,
        [&r, &relay](const httplib::Request& req, httplib::Response& res, const Principal& who) {
          Start(r, relay, req, res, who);
        });
  // Reading a stream is part of the write that started it: its operator's token.
  r.Add("GET", "/api/v1/debug/" + id, "debug_show", Access::kWrite,
        [&relay](const httplib::Request& req, httplib::Response& res, const Principal& who) {
          Show(relay, req, res, who);
        });
  r.Add("GET", "/api/v1/debug/" + id + "/events", "debug_events", Access::kWrite,
        [&r, &relay](const httplib::Request& req, httplib::Response& res, const Principal& who) {
          Events(r, relay, req, res, who);
        });
  r.Add("POST", "/api/v1/debug/" + id + "/stop", "debug_stop", Access::kWrite,
        [&r, &relay](const httplib::Request& req, httplib::Response& res, const Principal& who) {
          Stop(r, relay, req, res, who);
        });
}

}  // namespace steward::station::http
