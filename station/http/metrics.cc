// GET /metrics: the station in the Prometheus text format (version 0.0.4).
//
// Names follow Prometheus conventions: steward_ prefix, base units in the name
// (_seconds, _bytes), _total for counters. Per node (label node="..."): status, the
// offline alarm, maintenance, last heard, log counters, and the counters its agent
// reported in its last hello (steward_agent_...).
//
// The offline alarm: steward_node_offline_alarm is 1 for a node that is offline and
// not in maintenance. Alert on it (not on steward_node_online == 0): a node in
// maintenance raises none.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include <fmt/format.h>
#include "absl/time/clock.h"
#include "common/protocol.h"
#include "station/http/server.h"

namespace steward::station::http {
namespace {

std::string Escape(absl::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// The shortest text that reads back as `v` ("0.0025", "12", "1.5e+09").
std::string Num(double v) { return fmt::format("{}", v); }

class Writer {
 public:
  void Family(const char* name, const char* type, const char* help) {
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  }
  void Sample(absl::string_view name, const std::vector<std::pair<std::string, std::string>>& labels, double v) {
    absl::StrAppend(&out_, name);
    if (!labels.empty()) {
      out_ += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        absl::StrAppend(&out_, i ? "," : "", labels[i].first, "=\"", Escape(labels[i].second), "\"");
      }
      out_ += '}';
    }
    absl::StrAppend(&out_, " ", Num(v), "\n");
  }
  void Gauge(const char* name, const char* help, double v) {
    Family(name, "gauge", help);
    Sample(name, {}, v);
  }
  void Counter(const char* name, const char* help, double v) {
    Family(name, "counter", help);
    Sample(name, {}, v);
  }
  void Histo(const char* name, const char* help, const Histogram& h) {
    Family(name, "histogram", help);
    const Histogram::Snapshot s = h.Read();
    for (size_t i = 0; i < s.bounds.size(); ++i) {
      Sample(absl::StrCat(name, "_bucket"), {{"le", Num(s.bounds[i])}}, static_cast<double>(s.cumulative[i]));
    }
    Sample(absl::StrCat(name, "_bucket"), {{"le", "+Inf"}}, static_cast<double>(s.cumulative.back()));
    Sample(absl::StrCat(name, "_sum"), {}, s.sum);
    Sample(absl::StrCat(name, "_count"), {}, static_cast<double>(s.count));
  }
  void Labeled(const char* name, const char* type, const char* help, const std::vector<std::string>& keys,
               const std::map<LabeledCounter::Labels, uint64_t>& values) {
    Family(name, type, help);
    for (const auto& [labels, v] : values) {
      std::vector<std::pair<std::string, std::string>> l;
      for (size_t i = 0; i < keys.size() && i < labels.size(); ++i) l.emplace_back(keys[i], labels[i]);
      Sample(name, l, static_cast<double>(v));
    }
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string Render(Router& r, const Tokens& tokens) {
  Core& core = r.core();
  std::vector<proto::NodeInfo> nodes;
  std::map<std::pair<proto::State, std::string>, int64_t> unfinished;
  bool paused = false;
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&core.model.mu);
    for (const std::string& name : core.model.nodes.Names()) {
      nodes.push_back(core.model.nodes.Info(name, now));
      nodes.back().set_pending(static_cast<int>(core.model.commands.Pending(name)));
    }
    unfinished = core.model.commands.CountUnfinished();
    paused = core.model.dispatch.paused();
  }
  Writer w;
  // Nodes.
  std::map<std::string, int> by_status = {{"unknown", 0}, {"online", 0}, {"offline", 0}, {"pending", 0}};
  int maintenance = 0, alarms = 0;
  for (const proto::NodeInfo& n : nodes) {
    ++by_status[NodeStatusName(n.status())];
    if (n.maintenance().on()) ++maintenance;
    if (n.status() == proto::NODE_OFFLINE && !n.maintenance().on()) ++alarms;
  }
  w.Family("steward_nodes", "gauge", "Nodes by status (unknown, online, offline, pending).");
  for (const auto& [status, n] : by_status) w.Sample("steward_nodes", {{"status", status}}, n);
  w.Gauge("steward_nodes_in_maintenance", "Nodes in maintenance (no dispatch, no offline alarm).", maintenance);
  w.Gauge("steward_nodes_offline_alarms", "Nodes offline and not in maintenance.", alarms);
  w.Gauge("steward_station_unheard_seconds",
          "How long ago the station last proved it heard its broker (a probe through it came back and "
          "the events before it were served): 0.05 (a housekeeping turn) on a healthy link; while it "
          "grows (a half-open link, the broker gone, an intake behind) no node's silence counts.",
          static_cast<double>(core.counters.unheard_ms.load()) / 1000);
  w.Gauge("steward_dispatch_paused", "1 while dispatch is paused (stewardctl pause).", paused ? 1 : 0);

  // Commands.
  w.Family("steward_commands_unfinished", "gauge", "Unfinished commands held by the station, by state and method.");
  for (const auto& [key, n] : unfinished) {
    w.Sample("steward_commands_unfinished", {{"state", StateName(key.first)}, {"method", key.second}},
             static_cast<double>(n));
  }
  w.Labeled("steward_commands_finished_total", "counter",
            "Commands that reached a terminal state since the station started, by state and method.",
            {"state", "method"}, core.metrics.finished.Read());
  w.Histo("steward_dispatch_latency_seconds", "From a command's creation to its first dispatch.",
          core.metrics.dispatch_latency);
  w.Histo("steward_receipt_latency_seconds", "From a dispatch to the node's answer.", core.metrics.receipt_latency);
  w.Histo("steward_result_latency_seconds", "From a command's creation to its terminal state.",
          core.metrics.result_latency);
  auto answers = core.metrics.dispatch_answers.Read();
  w.Labeled("steward_dispatch_answers_total", "counter",
            "Answers to dispatches: received, result, timeout, no_responders, refused (not believed), bad_ack, "
            "not_sent (the publish failed: no broker connection), unanswered_in_batch (a batch's answer "
            "left it out: it waits behind another command of its subject; sent again alone), bad_batch (a batch's "
            "answer the station could not take: its commands are sent again alone), rebound (refused by a "
            "reinstalled node's new installation for being bound to the old one: bound anew and sent again).",
            {"answer"}, answers);
  uint64_t retries = 0;
  for (const auto& [labels, n] : answers) {
    if (labels[0] == "timeout" || labels[0] == "no_responders" || labels[0] == "refused" || labels[0] == "not_sent" ||
        labels[0] == "unanswered_in_batch" || labels[0] == "bad_batch" || labels[0] == "rebound") {
      retries += n;
    }
  }
  w.Counter("steward_dispatch_retries_total",
            "Dispatches that will be repeated: no answer in time, an answer not believed, or no responders "
            "(parked until heard from).",
            static_cast<double>(retries));
  w.Counter("steward_dispatch_batches_total",
            "Messages that carried several first sends to one node at once (agents whose hello says they take "
            "batches).",
            static_cast<double>(core.counters.batches.load()));
  w.Counter("steward_dispatch_batched_commands_total", "Commands sent in those batches.",
            static_cast<double>(core.counters.batched_commands.load()));
  w.Counter("steward_bad_acks_total", "Node answers the station could not read (the command ends lost).",
            static_cast<double>(core.counters.bad_acks.load()));
  w.Counter("steward_refused_answers_total",
            "Node answers not believed (another id or installation, no valid signature): sent again.",
            static_cast<double>(core.counters.refused_answers.load()));
  w.Counter("steward_misdirected_replies_total", "Requests and events dropped: reply subject not the sender's inbox.",
            static_cast<double>(core.counters.misdirected_replies.load()));
  w.Labeled("steward_intake_dropped_total", "counter",
            "Messages from nodes and operators dropped unread because the station fell behind (slow "
            "consumer); their senders resend them. By subscription: events, requests.",
            {"subscription"}, core.metrics.intake_dropped.Read());
  w.Labeled("steward_intake_backlog", "gauge",
            "Messages received and not yet served, at the last look (every 100 ms while busy).",
            {"subscription"}, core.metrics.intake_backlog.Read());
  w.Counter("steward_refused_hellos_total", "Hellos that did not verify against the node's pinned key.",
            static_cast<double>(core.counters.refused_hellos.load()));

  // Ledger.
  const ledger::Store::Health health = core.store().health();
  w.Histo("steward_ledger_commit_seconds", "Ledger transactions (group commits), from BEGIN to COMMIT.",
          core.store().commit_seconds());
  w.Gauge("steward_ledger_degraded",
          "1 while ledger writes fail: transactions, or writes for want of room or on damaged storage (what the "
          "ledger cannot store is not acknowledged).",
          health.degraded ? 1 : 0);
  w.Counter("steward_ledger_failed_transactions_total",
            "Ledger transactions that failed since the station started, and transactions that committed while one "
            "of their writes failed for want of room or on damaged storage.",
            static_cast<double>(health.failed_writes));
  const ledger::Store::CheckpointCounts checkpoints = core.store().checkpoints();
  w.Labeled("steward_ledger_checkpoints_total", "counter",
            "WAL checkpoints: by the checkpoint thread (background), or by the writer itself when the "
            "WAL outgrew its limit (writer: commits waited for it; a steady rise means the disk falls behind).",
            {"by"},
            {{{"background"}, checkpoints.background},
             {{"writer"}, checkpoints.by_writer}});

  // Logs and events.
  double log_lines = 0, log_dropped = 0;
  for (const proto::NodeInfo& n : nodes) {
    log_lines += static_cast<double>(n.log_lines());
    log_dropped += static_cast<double>(n.log_dropped());
  }
  w.Counter("steward_log_lines_stored_total", "Syslog lines stored (all nodes).", log_lines);
  w.Counter("steward_log_lines_dropped_total", "Syslog lines the agents reported dropped (all nodes).", log_dropped);
  w.Counter("steward_events_published_total", "Events published on the live feed (SSE).",
            static_cast<double>(core.feed.published()));
  w.Gauge("steward_http_event_streams", "Event streams (SSE) open now.", r.streams.load());
  w.Gauge("steward_http_tokens", "HTTP tokens the station holds.", static_cast<double>(tokens.size()));
  w.Labeled("steward_http_requests_total", "counter", "HTTP requests by method, route and status code.",
            {"method", "route", "code"}, core.metrics.http_requests.Read());
  w.Histo("steward_http_request_duration_seconds", "HTTP request handling time (event streams: until they end).",
          core.metrics.http_duration);

  // Per node.
  using Labels = std::vector<std::pair<std::string, std::string>>;
  struct PerNode {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const proto::NodeInfo&);
    bool agent;  // from the agent's stats: only nodes that sent some
  };
  static const PerNode kPerNode[] = {
      {"steward_node_online", "gauge", "1 while the node is online.",
       [](const proto::NodeInfo& n) { return n.status() == proto::NODE_ONLINE ? 1.0 : 0.0; }, false},
      {"steward_node_offline_alarm", "gauge", "1 while the node is offline and not in maintenance: alert on this.",
       [](const proto::NodeInfo& n) {
         return n.status() == proto::NODE_OFFLINE && !n.maintenance().on() ? 1.0 : 0.0;
       },
       false},
      {"steward_node_maintenance", "gauge", "1 while the node is in maintenance.",
       [](const proto::NodeInfo& n) { return n.maintenance().on() ? 1.0 : 0.0; }, false},
      {"steward_node_last_heard_timestamp_seconds", "gauge", "When the node was last heard from (Unix time).",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.last_heard_unix_ms()) / 1000; }, false},
      {"steward_node_pending_commands", "gauge", "The node's unfinished commands.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.pending()); }, false},
      {"steward_node_errors_total", "counter", "Errors the node's error kernel reported.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.errors()); }, false},
      {"steward_node_log_lines_total", "counter", "Syslog lines stored for the node.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.log_lines()); }, false},
      {"steward_agent_queue_depth", "gauge", "Commands waiting in the agent's process queues.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.agent_stats().queue_depth()); }, true},
      {"steward_agent_processes", "gauge", "Handler processes the agent runs.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.agent_stats().processes()); }, true},
      {"steward_agent_restarts_total", "counter", "Process restarts by the agent's error kernel since it started.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.agent_stats().restarts()); }, true},
      {"steward_agent_outbox_entries", "gauge", "Results and events the agent holds until the station confirms them.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.agent_stats().outbox_entries()); }, true},
      {"steward_agent_outbox_bytes", "gauge", "Bytes the agent's outbox holds.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.agent_stats().outbox_bytes()); }, true},
      {"steward_agent_outbox_oldest_age_seconds", "gauge", "Age of the oldest entry in the agent's outbox.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.agent_stats().outbox_oldest_age_ms()) / 1000; },
       true},
      {"steward_agent_log_spool_bytes", "gauge", "Syslog batches the agent holds, in bytes.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.agent_stats().log_spool_bytes()); }, true},
      {"steward_agent_log_dropped_total", "counter", "Syslog lines the agent dropped since it started.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.agent_stats().log_dropped()); }, true},
      {"steward_agent_intake_dropped_total", "counter",
       "Messages at the node's command subjects the agent dropped unread (a flood).",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.agent_stats().intake_dropped()); }, true},
      {"steward_agent_resident_memory_bytes", "gauge", "The agent's resident memory.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.agent_stats().rss_bytes()); }, true},
      {"steward_agent_cpu_seconds_total", "counter", "The agent's CPU time (user and system) since it started.",
       [](const proto::NodeInfo& n) { return n.agent_stats().cpu_seconds(); }, true},
      {"steward_agent_open_fds", "gauge", "File descriptors the agent has open.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.agent_stats().open_fds()); }, true},
      {"steward_agent_data_disk_free_bytes", "gauge", "Free space under the agent's data directory.",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.agent_stats().data_disk_free_bytes()); }, true},
      {"steward_agent_stats_timestamp_seconds", "gauge", "When the agent read these counters (Unix time).",
       [](const proto::NodeInfo& n) { return static_cast<double>(n.agent_stats().at_unix_ms()) / 1000; }, true},
  };
  for (const PerNode& m : kPerNode) {
    w.Family(m.name, m.type, m.help);
    for (const proto::NodeInfo& n : nodes) {
      if (m.agent && !n.has_agent_stats()) continue;
      w.Sample(m.name, Labels{{"node", n.name()}}, m.value(n));
    }
  }
  return w.Take();
}

}  // namespace

void AddMetrics(Router& r, const Tokens& tokens) {
  r.Add("GET", "/metrics", "metrics", Access::kRead,
        [&r, &tokens](const httplib::Request&, httplib::Response& res, const Principal&) {
          res.set_content(Render(r, tokens), "text/plain; version=0.0.4; charset=utf-8");
        });
}

}  // namespace steward::station::http
