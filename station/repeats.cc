#include "station/repeats.h"

#include <sodium.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "common/status_macros.h"

namespace steward::station {
namespace {

// What Record's write fails with when the request is recorded already (IsRecorded).
constexpr absl::string_view kRecordedAlready = "this request is recorded already (a repeat)";

}  // namespace

std::string Repeats::Digest(const google::protobuf::Message& request) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream sos(&bytes);
    google::protobuf::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    request.SerializeToCodedStream(&cos);
  }
  std::string digest(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(digest.data()),
                     reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return digest;
}

std::string Repeats::Other(const Call& call) {
  const bool key = absl::StartsWith(call.id(), "http:");
  return absl::StrCat(key ? absl::StrCat("Idempotency-Key \"", call.id().substr(5), "\"")
                          : absl::StrCat("request id ", call.id()),
                      " was used within the last ", absl::FormatDuration(kWindow), " by ", call.op(),
                      " for another request: nothing was done (a new request needs a new ",
                      key ? "key" : "id", ")");
}

absl::StatusOr<Repeats::Begun> Repeats::Begin(const Call& call, std::string digest, Lookup lookup) {
  const std::string key = Key(call);
  {
    absl::MutexLock lock(&mu_);
    auto [it, fresh] = doing_.try_emplace(key);
    if (!fresh) {
      if (it->second.digest != digest) return Begun{.what = Begun::kOther, .first = call, .why = Other(call)};
      it->second.joined.push_back(call);
      return Begun{.what = Begun::kJoined};
    }
    it->second.digest = digest;
  }
  Begun b;
  b.first = call;
  b.first.repeat_digest = digest;
  // Whatever answers the first call answers the repeats that joined it, and ends its
  // turn: a repeat after that finds the record (or, when the first one was refused and
  // made nothing, is done afresh).
  b.first.respond = [this, key, call](const proto::Ack& ack) {
    std::vector<Call> joined;
    {
      absl::MutexLock lock(&mu_);
      auto it = doing_.find(key);
      if (it != doing_.end()) {
        joined = std::move(it->second.joined);
        doing_.erase(it);
      }
    }
    Deliver(call, ack);
    for (const Call& j : joined) Deliver(j, ack);
  };
  if (lookup == Lookup::kAtWrite) return b;
  absl::StatusOr<Begun> found = Recorded(b.first);
  if (!found.ok() || found->what == Begun::kOther) {
    absl::MutexLock lock(&mu_);
    doing_.erase(key);  // (a repeat that joined meanwhile is answered by its own next try)
    if (!found.ok()) return found.status();
    return Begun{.what = Begun::kOther, .first = call, .why = Other(call)};
  }
  return found;
}

absl::StatusOr<Repeats::Begun> Repeats::Recorded(const Call& first) {
  Begun b;
  b.first = first;
  bool found = false;
  std::string recorded_digest;
  STEWARD_RETURN_IF_ERROR(core_.store().Rows(
      "SELECT request_id, reply, digest FROM request_replies WHERE operator = ?1 AND envelope_id = ?2",
      {first.op(), first.id()}, -1, [&](sqlite::Statement& row) {
        found = true;
        b.request_id = row.ColumnText(0);
        b.stored = row.ColumnBlob(1);
        recorded_digest = row.ColumnBlob(2);
        return absl::OkStatus();
      }));
  if (!found) return b;
  if (!recorded_digest.empty() && recorded_digest != first.repeat_digest) {
    b.what = Begun::kOther;
    b.why = Other(first);
    return b;
  }
  b.what = Begun::kStored;
  return b;
}

bool Repeats::IsRecorded(const absl::Status& st) {
  return absl::IsAlreadyExists(st) && st.message() == kRecordedAlready;
}

void Repeats::Deliver(const Call& call, const proto::Ack& ack) {
  if (call.respond) return call.respond(ack);
  core_.Reply(call.reply, ack);
}

ledger::Store::Op Repeats::Record(const Call& call, std::string request_id, std::string reply) {
  return [op = call.op(), id = call.id(), method = call.env.method(), request_id = std::move(request_id),
          reply = std::move(reply), digest = call.repeat_digest,
          at_ms = absl::ToUnixMillis(absl::Now())](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             db.Prepare("INSERT INTO request_replies(operator, envelope_id, method, "
                                        "request_id, at_ms, reply, digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                                        "ON CONFLICT(operator, envelope_id) DO NOTHING"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, op));
    STEWARD_RETURN_IF_ERROR(st.Bind(2, id));
    STEWARD_RETURN_IF_ERROR(st.Bind(3, method));
    STEWARD_RETURN_IF_ERROR(st.Bind(4, request_id));
    STEWARD_RETURN_IF_ERROR(st.Bind(5, at_ms));
    STEWARD_RETURN_IF_ERROR(st.BindBlob(6, reply));
    STEWARD_RETURN_IF_ERROR(st.BindBlob(7, digest));
    STEWARD_RETURN_IF_ERROR(st.Step().status());
    // Its one statement changed nothing: the group goes on without it.
    if (db.Changes() == 0) return ledger::Store::WroteNothing(absl::AlreadyExistsError(kRecordedAlready));
    return absl::OkStatus();
  };
}

ledger::Store::Op Repeats::PruneBefore(int64_t before_ms) {
  return [before_ms](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("DELETE FROM request_replies WHERE at_ms < ?1"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, before_ms));
    return st.Step().status();
  };
}

}  // namespace steward::station
