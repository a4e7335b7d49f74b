// The command rows of the ledger: how a command's state is split into its state row
// (commands), its envelope row (command_envelopes, re-written only on a new binding) and
// a copy chunk's bytes in the spool (command_payloads, ChunkSpool); and the queries that
// put them together again. The rest of the Store is in store.cc.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "station/ledger/chunk_spool.h"
#include "station/ledger/store.h"

namespace steward::station::ledger {
namespace {

// What changes when a command is re-signed for another installation (Core::BindLocked):
// an envelope row whose binding matches is already the one to keep.
std::string Binding(const proto::Envelope& e) { return absl::StrCat(e.target_instance(), "\n", e.signature()); }

// A copy chunk's bytes go to the spool (smaller payloads stay in the envelope row).
constexpr size_t kSpoolBytes = size_t{64} << 10;
bool Spools(const proto::Envelope& e) { return e.method() == kMethodCopy && e.payload().size() >= kSpoolBytes; }

// The SHA-256 a copy chunk names for itself ("put PATH OFFSET SIZE MODE SHA256
// CHUNK_SHA256 ...", agent/copy_method.cc), raw; empty when it names none. The spool
// checks the bytes against it on a read, and spares hashing every chunk once more.
std::string ChunkSha256(const proto::Envelope& e) {
  if (e.argv_size() < 7 || e.argv(0) != "put" || e.argv(6).size() != 64) return "";
  for (const char ch : e.argv(6)) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(ch))) return "";
  }
  return absl::HexStringToBytes(e.argv(6));
}

// The envelope serialized without its payload (lent out and back: no copy).
std::string WithoutPayload(proto::Envelope& e) {
  std::string payload;
  e.mutable_payload()->swap(payload);
  std::string blob = e.SerializeAsString();
  e.mutable_payload()->swap(payload);
  return blob;
}

}  // namespace

// Writes the envelope of `c` when the ledger has none for it yet, holds another binding,
// or still holds the payload of a chunk that may drop it now; else writes nothing. A
// new copy chunk's bytes go to the spool, its envelope row holds the rest.
absl::Status Store::PutEnvelope(sqlite::Database& db, proto::CommandState& c, bool fresh) {
  proto::Envelope& e = *c.mutable_command();
  const std::string binding = Binding(e);
  const bool drop = DropsPayload(c);
  bool found = false;
  bool same = false;  // the ledger holds this envelope, bound as it is
  int64_t stored_bytes = 0;
  std::optional<int64_t> spool_file;  // where its bytes are, when spooled
  int64_t spooled_bytes = 0;
  // A fresh command has no row yet (a fan-out's submit writes thousands); a copy chunk
  // is looked up all the same, as its spooling must never happen twice.
  if (!fresh || e.method() == kMethodCopy) {
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement st,
        db.Prepare("SELECT binding, payload_dropped, length(envelope), p.file, p.length FROM command_envelopes "
                   "LEFT JOIN command_payloads AS p USING (id) WHERE id = ?1"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, c.id()));
    STEWARD_ASSIGN_OR_RETURN(found, st.Step());
    same = found && st.ColumnBlob(0) == binding;
    if (found && !st.ColumnIsNull(3)) {
      spool_file = st.ColumnInt(3);
      spooled_bytes = st.ColumnInt(4);
    }
    if (same && (!drop || st.ColumnInt(1) > 0)) return absl::OkStatus();
    if (same) stored_bytes = st.ColumnInt(2);
  }
  if (spool_file.has_value() && drop) {
    // Its end: the bytes leave the spool (the file goes once no chunk in it is left).
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement del, db.Prepare("DELETE FROM command_payloads WHERE id = ?1"));
    STEWARD_RETURN_IF_ERROR(del.Bind(1, c.id()));
    STEWARD_RETURN_IF_ERROR(del.Step().status());
    spool_->Released(*spool_file);
  }
  std::string blob;
  int64_t dropped = 0;
  if (spool_file.has_value()) {
    // Spooled: the envelope row never held the bytes; re-signed, it is written anew.
    dropped = drop ? spooled_bytes : 0;
    if (same) {
      STEWARD_ASSIGN_OR_RETURN(sqlite::Statement up,
                               db.Prepare("UPDATE command_envelopes SET payload_dropped = ?2 WHERE id = ?1"));
      STEWARD_RETURN_IF_ERROR(up.Bind(1, c.id()));
      STEWARD_RETURN_IF_ERROR(up.Bind(2, dropped));
      return up.Step().status();
    }
    blob = WithoutPayload(e);
  } else if (!found && !drop && Spools(e) && replication_ == nullptr) {
    // (A replicated ledger keeps chunks in their rows: the journal carries rows only.)
    STEWARD_ASSIGN_OR_RETURN(ChunkSpool::Ref ref, spool_->Append(e.payload(), ChunkSha256(e)));
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement ins,
        db.Prepare("INSERT INTO command_payloads(id, file, pos, length, sha256) VALUES (?1, ?2, ?3, ?4, ?5)"));
    STEWARD_RETURN_IF_ERROR(ins.Bind(1, c.id()));
    STEWARD_RETURN_IF_ERROR(ins.Bind(2, ref.file));
    STEWARD_RETURN_IF_ERROR(ins.Bind(3, ref.offset));
    STEWARD_RETURN_IF_ERROR(ins.Bind(4, ref.length));
    STEWARD_RETURN_IF_ERROR(ins.BindBlob(5, ref.sha256));
    STEWARD_RETURN_IF_ERROR(ins.Step().status());
    spool_->Added(ref.file);
    blob = WithoutPayload(e);
  } else {
    // The table gives a chunk's payload to its first write at its end only (commands.cc):
    // a later one (that write failed, or a late result changed the end) comes without it,
    // and the row still holding it loses it now. The bytes it held, minus the envelope's.
    dropped = drop ? static_cast<int64_t>(e.payload().size()) : 0;
    if (drop && same && e.payload().empty()) {
      const int64_t bare = static_cast<int64_t>(e.ByteSizeLong());
      if (stored_bytes <= bare) return absl::OkStatus();  // nothing to drop (an empty chunk)
      dropped = stored_bytes - bare;
    }
    blob = drop ? WithoutPayload(e) : e.SerializeAsString();
  }
  STEWARD_ASSIGN_OR_RETURN(
      sqlite::Statement st,
      db.Prepare("INSERT INTO command_envelopes(id, binding, payload_dropped, envelope) VALUES (?1, ?2, ?3, ?4) "
                 "ON CONFLICT(id) DO UPDATE SET binding = excluded.binding, "
                 "payload_dropped = excluded.payload_dropped, envelope = excluded.envelope"));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, c.id()));
  STEWARD_RETURN_IF_ERROR(st.BindBlob(2, binding));
  STEWARD_RETURN_IF_ERROR(st.Bind(3, dropped));
  STEWARD_RETURN_IF_ERROR(st.BindBlob(4, blob));
  return st.Step().status();
}

Store::Op Store::PutCommand(proto::CommandState c) {
  return [this, c = std::move(c)](sqlite::Database& db) mutable -> absl::Status { return WriteCommand(db, c); };
}

absl::Status Store::WriteCommand(sqlite::Database& db, proto::CommandState& c, bool fresh) {
  if (c.has_command()) STEWARD_RETURN_IF_ERROR(PutEnvelope(db, c, fresh));
  // The record without its envelope (schema step 7), serialized without copying it.
  std::unique_ptr<proto::Envelope> envelope(c.release_command());
  std::string record = c.SerializeAsString();
  c.set_allocated_command(envelope.release());
  STEWARD_ASSIGN_OR_RETURN(
      sqlite::Statement st,
      // An upsert, not INSERT OR REPLACE: a state change rewrites the row in place and
      // leaves the node and request indexes alone.
      db.Prepare("INSERT INTO commands(id, node, request_id, state, terminal, created_ms, "
                 "updated_ms, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                 "ON CONFLICT(id) DO UPDATE SET state = excluded.state, "
                 "terminal = excluded.terminal, updated_ms = excluded.updated_ms, "
                 "record = excluded.record"));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, c.id()));
  STEWARD_RETURN_IF_ERROR(st.Bind(2, c.node()));
  STEWARD_RETURN_IF_ERROR(st.Bind(3, c.request_id()));
  STEWARD_RETURN_IF_ERROR(st.Bind(4, absl::string_view(StateName(c.state()))));
  STEWARD_RETURN_IF_ERROR(st.Bind(5, int64_t{IsTerminal(c.state()) ? 1 : 0}));
  STEWARD_RETURN_IF_ERROR(st.Bind(6, c.created_unix_ms()));
  STEWARD_RETURN_IF_ERROR(st.Bind(7, c.updated_unix_ms()));
  STEWARD_RETURN_IF_ERROR(st.BindBlob(8, record));
  return st.Step().status();
}

absl::StatusOr<std::vector<proto::CommandState>> Store::QueryCommands(
    const std::string& where, const std::vector<std::string>& args, int64_t limit,
    std::vector<std::pair<std::string, std::string>>* damaged) {
  std::vector<proto::CommandState> out;
  std::vector<std::pair<size_t, ChunkSpool::Ref>> spooled;  // read after the query
  // The envelope row when there is one (schema step 7); a record of an older ledger
  // may still hold its envelope itself. A chunk's bytes from the spool (step 9).
  STEWARD_RETURN_IF_ERROR(Rows(absl::StrCat("SELECT record, state, e.envelope, p.file, p.pos, p.length, p.sha256 "
                                            "FROM commands LEFT JOIN command_envelopes AS e USING (id) "
                                            "LEFT JOIN command_payloads AS p USING (id) ",
                                            where),
                               args, limit, [&](sqlite::Statement& st) -> absl::Status {
    proto::CommandState c;
    if (!c.ParseFromString(st.ColumnBlob(0))) return absl::DataLossError("corrupt command record");
    if (!st.ColumnIsNull(2) && !c.mutable_command()->ParseFromString(st.ColumnBlob(2))) {
      return absl::DataLossError(absl::StrCat("corrupt envelope of command ", c.id()));
    }
    if (!st.ColumnIsNull(3)) {
      spooled.emplace_back(out.size(),
                           ChunkSpool::Ref{st.ColumnInt(3), st.ColumnInt(4), st.ColumnInt(5), st.ColumnBlob(6)});
    }
    // The column is the state of record: ledgers of 0.1.0 kept it as text only.
    std::optional<proto::State> state = StateFromName(st.ColumnText(1));
    if (!state.has_value()) {
      return absl::DataLossError(
          absl::StrCat("command ", c.id(), " has unknown state \"", st.ColumnText(1), "\""));
    }
    c.set_state(*state);
    out.push_back(std::move(c));
    return absl::OkStatus();
  }));
  for (auto& [i, ref] : spooled) {
    absl::StatusOr<std::string> bytes = spool_->Read(ref);
    if (!bytes.ok()) {
      std::string why = absl::StrCat("command ", out[i].id(), ": ", bytes.status().message());
      if (damaged == nullptr) return absl::DataLossError(why);
      damaged->emplace_back(out[i].id(), std::move(why));
      continue;
    }
    out[i].mutable_command()->set_payload(*std::move(bytes));
  }
  return out;
}

absl::StatusOr<std::vector<proto::CommandState>> Store::ActiveCommands(
    std::vector<std::pair<std::string, std::string>>* damaged) {
  return QueryCommands("WHERE terminal = 0 ORDER BY id", {}, -1, damaged);
}

absl::StatusOr<std::optional<proto::CommandState>> Store::GetCommand(const std::string& id) {
  STEWARD_ASSIGN_OR_RETURN(auto rows, QueryCommands("WHERE id = ?1", {id}, -1));
  if (rows.empty()) return std::optional<proto::CommandState>();
  return std::optional<proto::CommandState>(std::move(rows[0]));
}

absl::StatusOr<std::vector<proto::CommandState>> Store::ByRequest(const std::string& request_id) {
  return QueryCommands("WHERE request_id = ?1 ORDER BY node", {request_id}, -1);
}

absl::StatusOr<std::vector<proto::CommandState>> Store::History(const std::string& node,
                                                                proto::State state, int limit) {
  const std::string name = state == proto::STATE_UNSPECIFIED ? "" : StateName(state);
  return QueryCommands(
      "WHERE (?1 = '' OR node = ?1) AND (?2 = '' OR state = ?2) ORDER BY id DESC LIMIT ?3",
      {node, name}, limit > 0 ? limit : 20);
}

absl::StatusOr<std::vector<proto::CommandState>> Store::Commands(const CommandFilter& f) {
  return QueryCommands(
      "WHERE (?1 = '' OR node = ?1) AND (?2 = '' OR state = ?2) AND (?3 = '' OR request_id = ?3) "
      "AND (?4 = '' OR id < ?4) AND (CAST(?5 AS INTEGER) = 0 OR created_ms >= CAST(?5 AS INTEGER)) "
      "AND (CAST(?6 AS INTEGER) = 0 OR created_ms < CAST(?6 AS INTEGER)) ORDER BY id DESC LIMIT ?7",
      {f.node, f.state == proto::STATE_UNSPECIFIED ? "" : StateName(f.state), f.request_id, f.before,
       absl::StrCat(f.since_unix_ms), absl::StrCat(f.until_unix_ms)},
      f.limit > 0 ? f.limit : 20);
}

}  // namespace steward::station::ledger
