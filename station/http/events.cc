// GET /api/v1/events: the station's live events as Server-Sent Events.
//
//   event: command
//   id: 1764490000123456
//   data: {"id":1764490000123456,"type":"command","node":"ship1","command":"01J...",...}
//
// Each event's id is its position in the station's feed (station/feed.h); a client
// that reconnects sends the last one it saw (the Last-Event-ID header, as browsers do,
// or ?after=ID, e.g. the event_id of a snapshot it just read) and gets exactly what
// came after it: no gap, no duplicate. When those events are no longer held (the
// client was away too long, or the station restarted) it gets `event: reset` instead:
// reload, then follow. With ?types=...,log it also gets the log lines that match
// node/domain/severity/grep, read from the log store as they are stored; their ids
// are then "FEED:LOGCURSOR" so that both resume.
//
// Filters: types (command,node,dispatch,maintenance,output,log; default all but log),
// node, command, request. A comment line every 15 s keeps idle connections alive.
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "station/http/server.h"
#include "station/ledger/log_query.h"

namespace steward::station::http {
namespace {

constexpr absl::Duration kKeepAlive = absl::Seconds(15);
constexpr absl::Duration kLogPoll = absl::Milliseconds(500);
constexpr absl::Duration kCoalesce = absl::Milliseconds(100);

struct Stream {
  std::set<std::string> types;
  std::string node, command, request;
  bool logs = false;
  proto::LogsRequest log_query;  // its `after` is the log cursor
  uint64_t position = 0;
  bool started = false;
  absl::Time last_write = absl::Now();
  std::string sent_id;  // the last id the client was given
  absl::Time next_log_poll = absl::InfinitePast();
  std::string authorization;  // the request's, checked again as the stream goes

  bool Wants(const FeedEvent& e) const {
    if (!types.count(e.TypeName())) return false;
    if (!node.empty() && e.node != node && e.type != FeedEvent::Type::kDispatch) return false;
    if (!command.empty() && e.command != command) return false;
    if (!request.empty() && e.request != request) return false;
    return true;
  }
  std::string Id() const {
    return logs ? absl::StrCat(position, ":", log_query.after()) : absl::StrCat(position);
  }
};

// Where a client resumes: "FEED" or "FEED:LOGCURSOR".
bool ParseResume(const std::string& text, Stream& s) {
  std::pair<std::string, std::string> parts = absl::StrSplit(text, absl::MaxSplits(':', 1));
  uint64_t pos = 0;
  if (!absl::SimpleAtoi(parts.first, &pos)) return false;
  s.position = pos;
  if (!parts.second.empty()) s.log_query.set_after(parts.second);
  return true;
}

}  // namespace

void AddEvents(Router& r) {
  r.Add("GET", "/api/v1/events", "events", Access::kRead,
        [&r](const httplib::Request& req, httplib::Response& res, const Principal&) {
          auto s = std::make_shared<Stream>();
          const std::string types = req.has_param("types") ? req.get_param_value("types")
                                                           : "command,node,dispatch,maintenance,output,active";
          for (absl::string_view t : absl::StrSplit(types, ',', absl::SkipEmpty())) {
            if (t == "log") {
              s->logs = true;
            } else if (t == "command" || t == "node" || t == "dispatch" || t == "maintenance" || t == "output" ||
                       t == "active") {
              s->types.insert(std::string(t));
            } else {
              return SendError(res, 400, absl::StrCat("unknown event type \"", t, "\""));
            }
          }
          s->authorization = req.get_header_value("Authorization");
          s->node = req.has_param("node") ? req.get_param_value("node") : "";
          s->command = req.has_param("command") ? req.get_param_value("command") : "";
          s->request = req.has_param("request") ? req.get_param_value("request") : "";
          s->log_query.set_node(s->node);
          s->log_query.set_domain(req.has_param("domain") ? req.get_param_value("domain") : "");
          s->log_query.set_grep(req.has_param("grep") ? req.get_param_value("grep") : "");
          int severity = 7;
          if (req.has_param("severity") && (!absl::SimpleAtoi(req.get_param_value("severity"), &severity) ||
                                             severity < 0 || severity > 7)) {
            return SendError(res, 400, "parameter severity: 0..7");
          }
          s->log_query.set_max_severity(severity);
          s->log_query.set_limit(500);
          // Last-Event-ID (a browser reconnecting) wins over ?after (where a page started).
          const std::string resume = req.has_header("Last-Event-ID") ? req.get_header_value("Last-Event-ID")
                                     : req.has_param("after")        ? req.get_param_value("after")
                                                                     : "";
          if (!resume.empty() && !ParseResume(resume, *s)) {
            return SendError(res, 400, "Last-Event-ID / after: want an event id");
          }
          if (resume.empty()) s->position = r.core().feed.Position();
          if (s->logs && s->log_query.after().empty()) {
            // From now on: the cursor of the newest line stored.
            proto::LogsRequest now;
            now.set_max_severity(-1);  // any line: the newest comes first, at no search
            now.set_limit(1);
            absl::StatusOr<proto::LogsReply> last = ledger::QueryLogs(r.core().store(), now, ledger::LogQueryLimits{});
            if (!last.ok()) return SendStatus(res, last.status());
            s->log_query.set_after(last->cursor());
          }
          if (r.streams.fetch_add(1) >= r.max_streams) {
            r.streams.fetch_sub(1);
            return SendError(res, 503, "too many event streams open; try again later");
          }
          res.set_header("Cache-Control", "no-store");
          res.set_header("X-Accel-Buffering", "no");
          res.set_chunked_content_provider(
              "text/event-stream",
              [&r, s](size_t, httplib::DataSink& sink) {
                if (r.EndIfTokenGone(s->authorization, sink)) return true;
                std::string out;
                if (!s->started) {
                  s->started = true;
                  s->sent_id = s->Id();
                  // Where this stream starts, as an id without an event: a client that
                  // drops before the first event resumes from here.
                  out = absl::StrCat("retry: 2000\nid: ", s->sent_id, "\n\n");
                }
                Feed::Batch b = r.core().feed.Wait(s->position, s->logs ? kLogPoll : absl::Seconds(1));
                if (b.closed) return false;
                if (b.reset) {
                  s->position = b.position;
                  s->sent_id = s->Id();
                  out += SseFrame("reset", s->sent_id,
                               R"({"reason":"the events after the given id are no longer held: reload, then follow"})");
                }
                for (const std::shared_ptr<const FeedEvent>& e : b.events) {
                  s->position = e->id;
                  if (s->Wants(*e)) {
                    s->sent_id = s->Id();
                    out += SseFrame(e->TypeName(), s->sent_id, e->Json());
                  }
                }
                if (s->logs && absl::Now() >= s->next_log_poll) {
                  s->next_log_poll = absl::Now() + kLogPoll;
                  absl::StatusOr<proto::LogsReply> logs = ledger::QueryLogs(r.core().store(), s->log_query, ledger::LogQueryLimits{});
                  if (logs.ok()) {
                    for (const proto::LogEntry& e : logs->entries()) {
                      s->log_query.set_after(e.cursor());
                      s->sent_id = s->Id();
                      out += SseFrame("log", s->sent_id,
                                   json::ToJson(e).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
                    }
                  } else {
                    STEWARD_LOG_WARNING("http events: log query: {}", logs.status().ToString());
                  }
                }
                // Events it does not want moved the stream on: an id line alone (no event)
                // tells the client where it is, so a resume starts there.
                if (s->sent_id != s->Id()) {
                  s->sent_id = s->Id();
                  out += absl::StrCat("id: ", s->sent_id, "\n\n");
                }
                if (out.empty() && absl::Now() - s->last_write >= kKeepAlive) out = ": keepalive\n\n";
                if (out.empty()) return sink.is_writable();
                s->last_write = absl::Now();
                if (!sink.write(out.data(), out.size())) return false;
                // Coalesce: a busy station's events go out in batches, at most ten writes a
                // second per stream, not one wake-up per event for every client.
                absl::SleepFor(kCoalesce);
                return true;
              },
              [&r](bool) { r.streams.fetch_sub(1); });
        });
}

}  // namespace steward::station::http
