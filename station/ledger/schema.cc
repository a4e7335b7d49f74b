#include "station/ledger/schema.h"

namespace steward::station::ledger {

const std::vector<std::string>& Migrations() {
  static const auto* m = new std::vector<std::string>{
      // 1: commands (the record is a serialized CommandState; `state` is its state's
      // name and the state of record), nodes, their transitions, and node events.
      R"sql(
      CREATE TABLE commands (
        id TEXT PRIMARY KEY,
        node TEXT NOT NULL,
        request_id TEXT NOT NULL,
        state TEXT NOT NULL,
        terminal INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        record BLOB NOT NULL);
      CREATE INDEX commands_node ON commands(node, id);
      CREATE INDEX commands_request ON commands(request_id);
      CREATE INDEX commands_active ON commands(terminal) WHERE terminal = 0;
      CREATE TABLE nodes (name TEXT PRIMARY KEY, info BLOB NOT NULL);
      CREATE TABLE node_transitions (
        node TEXT NOT NULL, online INTEGER NOT NULL, at_ms INTEGER NOT NULL, reason TEXT NOT NULL);
      CREATE INDEX node_transitions_node ON node_transitions(node, at_ms);
      CREATE TABLE events (
        id TEXT PRIMARY KEY, node TEXT NOT NULL, method TEXT NOT NULL, domain TEXT NOT NULL,
        at_ms INTEGER NOT NULL, payload BLOB NOT NULL);
      CREATE INDEX events_node ON events(node, at_ms);
      )sql",
      // 2: syslog lines. seq orders by arrival (follow cursors); (event_id, idx) orders
      // a source's lines as the agent made them and makes repeats a no-op.
      R"sql(
      CREATE TABLE logs (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        node TEXT NOT NULL,
        domain TEXT NOT NULL,
        severity INTEGER NOT NULL,
        received_us INTEGER NOT NULL,
        stored_ms INTEGER NOT NULL,
        message BLOB NOT NULL,
        record BLOB NOT NULL,
        UNIQUE (event_id, idx));
      CREATE INDEX logs_node_time ON logs(node, received_us);
      CREATE INDEX logs_domain_time ON logs(domain, received_us);
      CREATE INDEX logs_severity_time ON logs(severity, received_us);
      CREATE INDEX logs_time ON logs(received_us);
      )sql",
      // 3: settings (ACLs, node groups).
      "CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);",
      // 4 (operator surfaces): what operators did besides sending commands (pause,
      // maintenance, token changes, HTTP writes), and the HTTP tokens, by the SHA-256
      // of their secret (a serialized TokenInfo each).
      R"sql(
      CREATE TABLE operator_actions (
        seq INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        record BLOB NOT NULL);
      CREATE INDEX operator_actions_at ON operator_actions(at_ms);
      CREATE TABLE http_tokens (
        id TEXT PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE,
        info BLOB NOT NULL);
      )sql",
      // 5: targeting: operators' tags on nodes; jobs (a send by target: the expression,
      // the nodes it resolved to, a rollout's progress; `open` while the station follows
      // it); schedules. Audit events of these go to `events` (targeting_store.h).
      R"sql(
      CREATE TABLE node_tags (
        node TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (node, key));
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        schedule TEXT NOT NULL,
        open INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        record BLOB NOT NULL);
      CREATE INDEX jobs_open ON jobs(open) WHERE open = 1;
      CREATE INDEX jobs_schedule ON jobs(schedule, created_ms);
      CREATE TABLE schedules (name TEXT PRIMARY KEY, record BLOB NOT NULL);
      )sql",
  };
  return *m;
}

}  // namespace steward::station::ledger
