#include "station/ha/journal.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/nats.h"
#include "common/status_macros.h"
#include "station/ha/js_error.h"

namespace steward::station::ha {
namespace {

constexpr char kTermHeader[] = "Steward-Term";
constexpr char kPartHeader[] = "Steward-Part";  // "i/k", on an entry of k > 1 parts
// What a part leaves of the broker's max_payload for the headers and the protocol line.
constexpr size_t kHeaderRoom = 1024;
constexpr size_t kMinPartBytes = 1024;

struct StreamInfoDeleter {
  void operator()(jsStreamInfo* si) const noexcept { jsStreamInfo_Destroy(si); }
};
struct PubAckDeleter {
  void operator()(jsPubAck* pa) const noexcept { jsPubAck_Destroy(pa); }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(natsConnection* nc, JournalOptions options) {
  if (options.station.empty()) return absl::InvalidArgumentError("journal: no station name");
  for (char c : options.station) {
    if (c == '.' || c == '*' || c == '>' || c == ' ' || static_cast<unsigned char>(c) < 0x20) {
      return absl::InvalidArgumentError(absl::StrCat("journal: station name \"", options.station,
                                                     "\" cannot name a stream"));
    }
  }
  if (options.replicas < 1 || options.replicas > 5) return absl::InvalidArgumentError("journal replicas must be 1 to 5");
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = absl::ToInt64Milliseconds(options.timeout);
  jsCtx* js = nullptr;
  if (natsStatus s = natsConnection_JetStream(&js, nc, &jo); s != NATS_OK) return JsError(s, 0, "JetStream context");
  std::unique_ptr<Journal> journal(new Journal(std::move(options), nc, js));

  jsStreamInfo* raw = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&raw, js, journal->stream_.c_str(), nullptr, &code);
  if (s == NATS_NOT_FOUND || code == JSStreamNotFoundErr) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = journal->stream_.c_str();
    const char* subjects[] = {journal->subject_.c_str()};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = journal->options_.replicas;
    cfg.Retention = js_LimitsPolicy;
    cfg.Discard = js_DiscardNew;  // never drop an entry to make room: refuse the new one
    cfg.DenyDelete = true;        // an entry cannot be taken out of the middle
    code = static_cast<jsErrCode>(0);
    s = js_AddStream(&raw, js, &cfg, nullptr, &code);
  }
  if (s != NATS_OK) return JsError(s, code, absl::StrCat("journal stream ", journal->stream_));
  std::unique_ptr<jsStreamInfo, StreamInfoDeleter> info(raw);
  return journal;
}

Journal::Journal(JournalOptions options, natsConnection* nc, jsCtx* js)
    : options_(std::move(options)),
      nc_(nc),
      stream_(absl::StrCat("STEWARD_LEDGER_", options_.station)),
      subject_(absl::StrCat("steward.ledger.", options_.station)),
      js_(js) {}

Journal::~Journal() { jsCtx_Destroy(js_); }

size_t Journal::PartBytes() const {
  if (options_.part_bytes > 0) return std::max(options_.part_bytes, kMinPartBytes);
  const int64_t max_payload = natsConnection_GetMaxPayload(nc_);
  return std::max(max_payload > 0 ? static_cast<size_t>(max_payload) - std::min(kHeaderRoom, static_cast<size_t>(max_payload)) : 0,
                  kMinPartBytes);
}

absl::StatusOr<uint64_t> Journal::Append(uint64_t seq, uint64_t term, absl::string_view changes) {
  if (seq == 0) return absl::InvalidArgumentError("journal entries are numbered from 1");
  const size_t part_bytes = PartBytes();
  const size_t parts = changes.empty() ? 1 : (changes.size() + part_bytes - 1) / part_bytes;
  if (parts > UINT32_MAX) return absl::InvalidArgumentError("journal entry too large");
  for (size_t i = 0; i < parts; ++i) {
    STEWARD_RETURN_IF_ERROR(AppendPart(seq + i, term, static_cast<uint32_t>(i + 1), static_cast<uint32_t>(parts),
                                       changes.substr(i * part_bytes, part_bytes)));
  }
  return seq + parts - 1;
}

absl::Status Journal::AppendPart(uint64_t seq, uint64_t term, uint32_t part, uint32_t parts,
                                 absl::string_view bytes) {
  natsMsg* raw = nullptr;
  if (natsStatus s = natsMsg_Create(&raw, subject_.c_str(), nullptr, bytes.data(), static_cast<int>(bytes.size()));
      s != NATS_OK) {
    return JsError(s, 0, "journal entry");
  }
  nats::MsgPtr msg(raw);
  const std::string term_text = absl::StrCat(term);
  if (natsStatus s = natsMsgHeader_Set(msg.get(), kTermHeader, term_text.c_str()); s != NATS_OK) {
    return JsError(s, 0, "journal entry header");
  }
  if (parts > 1) {
    const std::string part_text = absl::StrCat(part, "/", parts);
    if (natsStatus s = natsMsgHeader_Set(msg.get(), kPartHeader, part_text.c_str()); s != NATS_OK) {
      return JsError(s, 0, "journal entry header");
    }
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  if (seq == 1) {
    po.ExpectNoMessage = true;  // an expected last sequence of 0 is "not set" to nats.c
  } else {
    po.ExpectLastSeq = seq - 1;
  }
  jsPubAck* ack_raw = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_PublishMsg(&ack_raw, js_, msg.get(), &po, &code);
  std::unique_ptr<jsPubAck, PubAckDeleter> ack(ack_raw);
  if (s == NATS_OK) {
    if (ack->Sequence != seq) {
      return absl::InternalError(absl::StrCat("journal entry ", seq, " was stored as message ", ack->Sequence,
                                              " of ", stream_, ": the stream holds more than the journal"));
    }
    return absl::OkStatus();
  }
  if (s == NATS_MAX_PAYLOAD) {
    return absl::ResourceExhaustedError(absl::StrCat("journal message ", seq, " is ", bytes.size(),
                                                     " bytes, more than the broker takes (max_payload)"));
  }
  if (code != JSStreamWrongLastSequenceErr) return JsError(s, code, absl::StrCat("appending journal message ", seq));
  // The place is taken: by this very part (an earlier attempt whose answer was lost),
  // or by another writer.
  absl::StatusOr<JournalEntry> there = Get(seq);
  if (there.ok() && there->term == term && there->part == part && there->parts == parts && there->changes == bytes) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      there.ok() ? absl::StrCat("journal message ", seq, " was written in term ", there->term, ", not ", term,
                                ": another station instance is active")
                 : absl::StrCat("journal message ", seq, " cannot follow the stream's last message: another station "
                                "instance is active, or this one is behind"));
}

absl::StatusOr<uint64_t> Journal::LastSeq() {
  STEWARD_ASSIGN_OR_RETURN(const Bounds b, GetBounds());
  return b.last;
}

absl::StatusOr<Journal::Bounds> Journal::GetBounds() {
  jsStreamInfo* raw = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  if (natsStatus s = js_GetStreamInfo(&raw, js_, stream_.c_str(), nullptr, &code); s != NATS_OK) {
    return JsError(s, code, absl::StrCat("journal stream ", stream_));
  }
  std::unique_ptr<jsStreamInfo, StreamInfoDeleter> info(raw);
  Bounds b;
  b.last = info->State.LastSeq;
  // An empty stream reports a first sequence of last + 1 once something was purged,
  // and 0 when nothing was ever stored.
  b.first = info->State.Msgs == 0 ? b.last + 1 : std::max<uint64_t>(info->State.FirstSeq, 1);
  return b;
}

absl::Status Journal::Compact(uint64_t below) {
  if (below <= 1) return absl::OkStatus();
  jsOptions o;
  jsOptions_Init(&o);
  o.Wait = absl::ToInt64Milliseconds(options_.timeout);
  o.Stream.Purge.Sequence = below;
  jsErrCode code = static_cast<jsErrCode>(0);
  if (natsStatus s = js_PurgeStream(js_, stream_.c_str(), &o, &code); s != NATS_OK) {
    return JsError(s, code, absl::StrCat("compacting journal ", stream_, " below message ", below));
  }
  return absl::OkStatus();
}

absl::StatusOr<JournalEntry> Journal::Get(uint64_t seq) {
  natsMsg* raw = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetMsg(&raw, js_, stream_.c_str(), seq, nullptr, &code);
  if (s == NATS_NOT_FOUND || code == JSNoMessageFoundErr) {
    return absl::NotFoundError(absl::StrCat("journal entry ", seq, " is not in ", stream_));
  }
  if (s != NATS_OK) return JsError(s, code, absl::StrCat("reading journal entry ", seq));
  nats::MsgPtr msg(raw);
  JournalEntry e;
  e.seq = seq;
  const char* term = nullptr;
  if (natsMsgHeader_Get(msg.get(), kTermHeader, &term) != NATS_OK || term == nullptr ||
      !absl::SimpleAtoi(term, &e.term)) {
    return absl::DataLossError(absl::StrCat("journal entry ", seq, " of ", stream_, " names no term: not ours"));
  }
  const char* part = nullptr;
  if (natsMsgHeader_Get(msg.get(), kPartHeader, &part) == NATS_OK && part != nullptr) {
    const std::pair<std::string, std::string> ik = absl::StrSplit(part, absl::MaxSplits('/', 1));
    if (!absl::SimpleAtoi(ik.first, &e.part) || !absl::SimpleAtoi(ik.second, &e.parts) || e.part == 0 ||
        e.part > e.parts) {
      return absl::DataLossError(absl::StrCat("journal message ", seq, " of ", stream_, " has a bad part header \"",
                                              part, "\""));
    }
  }
  e.changes = std::string(nats::Data(msg.get()));
  return e;
}

absl::StatusOr<uint64_t> Journal::ReadFrom(uint64_t from, const std::function<absl::Status(const JournalEntry&)>& apply) {
  if (from == 0) from = 1;
  STEWARD_ASSIGN_OR_RETURN(const uint64_t last, LastSeq());
  uint64_t done = from - 1;
  std::optional<JournalEntry> open;  // an entry whose parts are coming
  for (uint64_t seq = from; seq <= last; ++seq) {
    STEWARD_ASSIGN_OR_RETURN(JournalEntry m, Get(seq));
    if (open.has_value() && (m.part != open->part + 1 || m.parts != open->parts || m.term != open->term)) {
      // Its writer stopped part-way: it never committed that transaction.
      STEWARD_LOG_WARNING("journal {}: dropped an unfinished entry (messages {} to {} of {} parts, term {})", stream_,
                          done + 1, seq - 1, open->parts, open->term);
      open.reset();
    }
    if (!open.has_value()) {
      if (m.part != 1) {
        // The rest of an entry whose beginning was dropped: nothing to apply.
        STEWARD_LOG_WARNING("journal {}: message {} is part {} of {} of an entry not read from its start; skipped",
                            stream_, seq, m.part, m.parts);
        continue;
      }
      open = std::move(m);
    } else {
      open->part = m.part;
      open->changes += m.changes;
    }
    if (open->part < open->parts) continue;
    open->first = done + 1;
    open->seq = seq;
    STEWARD_RETURN_IF_ERROR(apply(*open));
    open.reset();
    done = seq;
  }
  return done;
}

}  // namespace steward::station::ha
