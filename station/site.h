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
// Every answer is {ok, error, refused}: `refused` when the central station answered and
// will not do it (a claim or an entry outside the site, below), which the site must tell
// apart from no answer at all (the link is up: it is not a reason to take control).
//
// Which nodes a site holds is the central station's data, never the site's word: the
// operators' tag site=SITE on each node (stewardctl tag set NODE site=SITE, audited and
// replicated like every tag). A claim naming any other node is refused whole, and so is a
// journal batch with a command for, or an event from, a node that is not the site's.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/nats.h"
#include "proto/ha.pb.h"
#include "station/ledger/store.h"
#include "station/site_rules.h"

namespace steward::station {

class Core;
class Intake;

// The operators' tag that makes a node one of a site's (its value is the site's name).
inline constexpr char kSiteTag[] = "site";

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
// A PermissionDenied status is sent as refused.
std::string EncodeSiteAnswer(const absl::Status& st);
// Ok; PermissionDenied when the central station refused; Unavailable for its other errors.
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
// PutSiteRecord, and the journal up to its cursor dropped: the central ledger holds it.
ledger::Store::Op PutSiteCursor(std::string site, SiteRecord r);
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
  // For station status: the claims held now, and the latest refusal of each site.
  void Report(proto::StationStatusReply& out) const;

 private:
  struct Claim {
    std::vector<std::string> nodes;
    int64_t since_ms = 0;
    int64_t claimed_ms = 0;
  };
  std::optional<Claim> Claimed(const std::string& site) const;
  absl::Status TakeClaim(const SiteMessage& m);
  absl::Status Import(const SiteMessage& m);
  absl::Status Release(const std::string& site);
  // PermissionDenied naming the nodes of `nodes` that are not tagged site=`site`.
  absl::Status CheckMembers(const std::string& site, const std::vector<std::string>& nodes);

  Core& core_;
  Intake& intake_;
  mutable absl::Mutex mu_;  // written by the serving thread, read by Report
  std::map<std::string, Claim> claims_ ABSL_GUARDED_BY(mu_);  // by site
  std::map<std::string, proto::SiteRefusal> refusals_ ABSL_GUARDED_BY(mu_);  // by site
};

}  // namespace steward::station
