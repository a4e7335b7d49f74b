// Site control (issue 17 part 5): a site station on a site's leaf broker takes over its
// own nodes while the central station is unreachable, and hands control back.
//
// Both stations serve <station>.command.*.* and <station>.event.*.* in one queue group
// (kStationQueue); NATS gives a leaf's messages to a member on the leaf first, so while
// the site station serves, the site's agents and operators are served there and the
// central station's own traffic stays central. The rules of when (station/site_rules.h)
// are the site's; the central station learns of them on _STEWARD.site.<station>.<site>
// (subjects/site.h), in CBOR messages:
//
//   probe     {site, nodes, state, since_ms, pending}: "are you there"; a site in
//             control (or handing back) claims its nodes: the central station records
//             the claim in its ledger and holds its own commands for them.
//   batch     {site, entries: [{seq, kind, id, record}]}: the site's journal, in order;
//             answered once the central ledger holds it (imported idempotently by id:
//             commands inserted when absent, events through Intake, which dedups).
//   released  {site}: the claim ends; the held commands go out.
//
// Every answer is {ok, error}.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/nats.h"
#include "station/ledger/store.h"
#include "station/site_rules.h"

namespace steward::station {

class Core;
class Intake;

// The queue group both the central and the site station serve their subjects in.
inline constexpr char kStationQueue[] = "steward-station";

struct SiteJournalEntry {
  int64_t seq = 0;
  std::string kind;  // "command" or "event"
  std::string id;
  std::string record;
};

struct SiteMessage {
  std::string op;  // "probe", "batch", "released"
  std::string site;
  std::vector<std::string> nodes;
  std::string state;
  int64_t since_ms = 0;
  int64_t pending = 0;
  std::vector<SiteJournalEntry> entries;
};
std::string EncodeSiteMessage(const SiteMessage& m);
absl::StatusOr<SiteMessage> DecodeSiteMessage(absl::string_view bytes);
std::string EncodeSiteAnswer(const absl::Status& st);
absl::Status DecodeSiteAnswer(absl::string_view bytes);

// Why the central station holds a site node's commands.
std::string SiteHeldReason(const std::string& site, int64_t since_ms);

// ---- the site station's ledger ----
struct SiteRecord {
  SiteState state = SiteState::kCentral;
  int64_t since_ms = 0;
  int64_t cursor = 0;  // the last journal entry the central station acknowledged
};
absl::StatusOr<std::optional<SiteRecord>> LoadSiteRecord(ledger::Store& store, const std::string& site);
ledger::Store::Op PutSiteRecord(std::string site, SiteRecord r);
// Appends to the journal (a repeated kind and id is a no-op: an agent's retry).
absl::Status AppendSiteJournal(sqlite::Database& db, absl::string_view kind, absl::string_view id,
                               absl::string_view record);
ledger::Store::Op AppendSiteJournalOp(std::string kind, std::string id, std::string record);
absl::StatusOr<std::vector<SiteJournalEntry>> ReadSiteJournal(ledger::Store& store, int64_t after, int limit);
absl::StatusOr<int64_t> CountSiteJournal(ledger::Store& store, int64_t after);

// Runs `op` and waits for its commit.
absl::Status WriteAndWait(ledger::Store& store, ledger::Store::Op op);

// ---- the central station's side ----
class SiteDesk {
 public:
  SiteDesk(Core& core, Intake& intake) : core_(core), intake_(intake) {}
  // Claims from the ledger (a restart, or a standby taking over) hold their nodes again.
  absl::Status Load();
  // Answers one message of _STEWARD.site.<station>.*.
  void Serve(nats::MsgPtr msg);

 private:
  absl::Status Claim(const SiteMessage& m);
  absl::Status Import(const SiteMessage& m);
  absl::Status Release(const std::string& site);

  Core& core_;
  Intake& intake_;
  struct Claimed {
    std::vector<std::string> nodes;
    int64_t since_ms = 0;
  };
  std::map<std::string, Claimed> claims_;  // by site; the serving thread's only
};

}  // namespace steward::station
