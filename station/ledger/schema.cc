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
      // 5: syslog lines, once, with a full-text index (log_store.h, log_row.h). log_lines
      // keeps each line once: what searches filter and order on in columns (ts_us is
      // the line's own time, its receive time when it has none), the message, and the
      // rest of its LogRecord. seq never goes back (AUTOINCREMENT): follow cursors.
      // Indexes by time: of all lines, of one node's, one app's, and of the warnings
      // and worse (partial: few lines, and --severity err/warning is a common search).
      // log_fts_N index the messages by byte trigrams (log_index.h: substring search)
      // without copying them (external content, no positions: a candidate filter), in
      // parts of lines (log_fts_parts; part 1 here, with the options of kPartOptions,
      // the store makes the next ones). The store adds index entries with the lines, a
      // batch at a time (not by triggers: FTS5 flushes its pending terms at every
      // trigger's savepoint, 4x slower); retention drops a part with its last line.
      // log_batches records each batch once (repeats are no-ops) with its store time and
      // error count, for retention and errors per minute. The 0.1.0 table `logs` is moved
      // over (its record blobs read by steward_log_field, registered by the store) and
      // dropped.
      R"sql(
      CREATE TABLE log_lines (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        node TEXT NOT NULL,
        domain TEXT NOT NULL,
        host TEXT NOT NULL,
        app TEXT NOT NULL,
        severity INTEGER NOT NULL,
        ts_us INTEGER NOT NULL,
        received_us INTEGER NOT NULL,
        flags INTEGER NOT NULL,
        message BLOB NOT NULL,
        rest BLOB NOT NULL);
      CREATE INDEX log_lines_ts ON log_lines(ts_us);
      CREATE INDEX log_lines_node_ts ON log_lines(node, ts_us);
      CREATE INDEX log_lines_app_ts ON log_lines(app, ts_us);
      CREATE INDEX log_lines_warnings_ts ON log_lines(ts_us) WHERE severity BETWEEN 0 AND 4;
      CREATE TABLE log_fts_parts (id INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL);
      INSERT INTO log_fts_parts(id, first_seq) VALUES (1, 1);
      CREATE VIRTUAL TABLE log_fts_1 USING fts5(
        message, content='log_lines', content_rowid='seq', tokenize='steward_trigram', detail='none',
        columnsize=0);
      CREATE TABLE log_batches (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        node TEXT NOT NULL,
        first_seq INTEGER NOT NULL,
        stored_ms INTEGER NOT NULL,
        errors INTEGER NOT NULL);
      INSERT INTO log_lines(seq, node, domain, host, app, severity, ts_us, received_us, flags, message, rest)
        SELECT seq, node, domain, COALESCE(steward_log_field(record, 'host'), ''),
               COALESCE(steward_log_field(record, 'app'), ''), severity,
               COALESCE(steward_log_field(record, 'ts_us'), received_us), received_us,
               COALESCE(steward_log_field(record, 'flags'), 0), message,
               COALESCE(steward_log_field(record, 'rest'), x'')
        FROM logs ORDER BY seq;
      INSERT INTO log_batches(event_id, node, first_seq, stored_ms, errors)
        SELECT event_id, MIN(node), MIN(seq), MAX(stored_ms), SUM(severity BETWEEN 0 AND 3)
        FROM logs GROUP BY event_id ORDER BY MIN(seq);
      INSERT INTO log_fts_1(log_fts_1) VALUES ('rebuild');
      DROP TABLE logs;
      )sql",
      // 6: targeting: operators' tags on nodes; jobs (a send by target: the expression,
      // the nodes it resolved to, a rollout's progress; `open` while the station follows
      // it); schedules. Operators' changes to them are operator actions, found by their
      // target (a node, a schedule, a job) and kind (the action's first word).
      R"sql(
      ALTER TABLE operator_actions ADD COLUMN target TEXT NOT NULL DEFAULT '';
      ALTER TABLE operator_actions ADD COLUMN kind TEXT NOT NULL DEFAULT '';
      CREATE INDEX operator_actions_target ON operator_actions(target, kind, seq);
      CREATE INDEX operator_actions_kind ON operator_actions(kind, seq);
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
      // 7: a command's envelope (what was signed and sent: argv, payload) apart from its
      // state, so that a state change rewrites a small row and not, say, a copy chunk's
      // payload at every step (issue 14: ~3 rewrites of 896 KiB per chunk). Written
      // once, and again only when the command is bound to a new installation and
      // re-signed: `binding` (target instance and signature) tells. commands.record
      // then holds the CommandState without its field `command`. Rows of older ledgers
      // keep the envelope in their record until their next write moves it (a read takes
      // the envelope row when there is one), so the migration itself copies nothing.
      // A finished copy chunk's payload is dropped from its envelope (`payload_dropped`
      // holds its size; the chunk's SHA-256 stays in argv) when its end is written.
      R"sql(
      CREATE TABLE command_envelopes (
        id TEXT PRIMARY KEY,
        binding BLOB NOT NULL,
        payload_dropped INTEGER NOT NULL DEFAULT 0,
        envelope BLOB NOT NULL);
      )sql",
      // 8: node_transitions gets a primary key (its rowid, named), so that a changeset
      // of the SQLite session extension carries its rows: the replicated ledger's
      // record format (station/ha/changes.h) sees no table without one.
      R"sql(
      CREATE TABLE node_transitions_keyed (
        id INTEGER PRIMARY KEY,
        node TEXT NOT NULL, online INTEGER NOT NULL, at_ms INTEGER NOT NULL, reason TEXT NOT NULL);
      INSERT INTO node_transitions_keyed (id, node, online, at_ms, reason)
        SELECT rowid, node, online, at_ms, reason FROM node_transitions;
      DROP TABLE node_transitions;
      ALTER TABLE node_transitions_keyed RENAME TO node_transitions;
      CREATE INDEX node_transitions_node ON node_transitions(node, at_ms);
      )sql",
      // 9: a copy chunk's bytes in a spool file beside the ledger (ledger/chunk_spool),
      // not in its envelope row: SQLite wrote each byte twice (WAL and checkpoint), in
      // pages. The row says where they are; the envelope row holds the envelope without
      // them. Deleted, with the bytes, when the chunk's end is written (as step 7 drops
      // a payload). Envelope rows of older ledgers keep their payload.
      R"sql(
      CREATE TABLE command_payloads (
        id TEXT PRIMARY KEY,
        file INTEGER NOT NULL,
        pos INTEGER NOT NULL,
        length INTEGER NOT NULL,
        sha256 BLOB NOT NULL);
      )sql",
      // 10: operator requests that create commands or jobs (submit, retry, launch), by
      // their operator and request envelope id, with the request they made and the reply
      // they got (station/repeats.h): a repeat of the same envelope (a client's retry of a
      // call whose answer was lost, say through an HA takeover) is answered from here and
      // creates nothing. Kept a day (at_ms).
      R"sql(
      CREATE TABLE request_replies (
        operator TEXT NOT NULL,
        envelope_id TEXT NOT NULL,
        method TEXT NOT NULL,
        request_id TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        reply BLOB NOT NULL,
        PRIMARY KEY (operator, envelope_id));
      CREATE INDEX request_replies_at ON request_replies(at_ms);
      )sql",
      // 11: site control (station/site.h). A site station's state (central / control /
      // handing-back, since when, and how far its journal was handed back), and its
      // journal: what it accepted and stored while in control, in order (`kind`
      // "command": a CommandState at acceptance; "event": an agent's envelope bytes,
      // verbatim). The central station's claims: sites in control of nodes, whose
      // commands it holds until they hand control back.
      R"sql(
      CREATE TABLE site_state (
        site TEXT PRIMARY KEY, state TEXT NOT NULL, since_ms INTEGER NOT NULL, cursor INTEGER NOT NULL);
      CREATE TABLE site_journal (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        record BLOB NOT NULL,
        UNIQUE (kind, id));
      CREATE TABLE site_claims (
        site TEXT PRIMARY KEY, nodes TEXT NOT NULL, since_ms INTEGER NOT NULL, claimed_ms INTEGER NOT NULL);
      )sql",
      // 12: what each recorded request asked for (a SHA-256 digest, station/repeats.h):
      // the same request id with another request (an HTTP client's Idempotency-Key used
      // again for another body) is refused, not answered with the first one's reply.
      // Rows of older ledgers have none and are not checked.
      R"sql(
      ALTER TABLE request_replies ADD COLUMN digest BLOB NOT NULL DEFAULT x'';
      )sql",
  };
  return *m;
}

}  // namespace steward::station::ledger
