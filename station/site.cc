#include "station/site.h"

#include <algorithm>
#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "common/time_text.h"
#include "station/core.h"
#include "station/intake.h"
#include "subjects/site.h"
#include "subjects/subject.h"

namespace steward::station {
namespace {

using Json = nlohmann::json;

std::string Bytes(const Json& j) {
  if (j.is_binary()) return std::string(j.get_binary().begin(), j.get_binary().end());
  return j.get<std::string>();
}

// How long importing one journal event may take (a ledger commit) before the batch is
// answered with an error (the site sends it again).
constexpr absl::Duration kImportWait = absl::Seconds(20);

}  // namespace

std::string EncodeSiteMessage(const SiteMessage& m) {
  Json j;
  j["op"] = m.op;
  j["site"] = m.site;
  j["nodes"] = m.nodes;
  j["state"] = m.state;
  j["since_ms"] = m.since_ms;
  j["pending"] = m.pending;
  Json entries = Json::array();
  for (const SiteJournalEntry& e : m.entries) {
    entries.push_back({{"seq", e.seq},
                       {"kind", e.kind},
                       {"id", e.id},
                       {"record", Json::binary(std::vector<uint8_t>(e.record.begin(), e.record.end()))}});
  }
  j["entries"] = std::move(entries);
  std::vector<uint8_t> cbor = Json::to_cbor(j);
  return std::string(cbor.begin(), cbor.end());
}

absl::StatusOr<SiteMessage> DecodeSiteMessage(absl::string_view bytes) {
  try {
    Json j = Json::from_cbor(bytes.begin(), bytes.end());
    SiteMessage m;
    m.op = j.at("op").get<std::string>();
    m.site = j.at("site").get<std::string>();
    m.nodes = j.value("nodes", std::vector<std::string>{});
    m.state = j.value("state", std::string());
    m.since_ms = j.value("since_ms", int64_t{0});
    m.pending = j.value("pending", int64_t{0});
    if (j.contains("entries")) {
      for (const Json& e : j.at("entries")) {
        m.entries.push_back({e.at("seq").get<int64_t>(), e.at("kind").get<std::string>(),
                             e.at("id").get<std::string>(), Bytes(e.at("record"))});
      }
    }
    STEWARD_RETURN_IF_ERROR(subjects::ValidateToken(m.site));
    for (const std::string& n : m.nodes) STEWARD_RETURN_IF_ERROR(subjects::ValidateToken(n));
    return m;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed site message: ", e.what()));
  }
}

std::string EncodeSiteAnswer(const absl::Status& st) {
  Json j = {{"ok", st.ok()}, {"error", std::string(st.message())}, {"refused", absl::IsPermissionDenied(st)}};
  std::vector<uint8_t> cbor = Json::to_cbor(j);
  return std::string(cbor.begin(), cbor.end());
}

absl::Status DecodeSiteAnswer(absl::string_view bytes) {
  try {
    Json j = Json::from_cbor(bytes.begin(), bytes.end());
    if (j.at("ok").get<bool>()) return absl::OkStatus();
    const std::string error = absl::StrCat("the central station: ", j.value("error", std::string()));
    if (j.value("refused", false)) return absl::PermissionDeniedError(error);
    return absl::UnavailableError(error);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed answer of the central station: ", e.what()));
  }
}

std::string SiteHeldReason(const std::string& site, int64_t since_ms) {
  return absl::StrCat("site ", site, " is in control since ", UtcTextMs(since_ms),
                      " (its commands go out after it hands control back)");
}

absl::StatusOr<std::optional<SiteRecord>> LoadSiteRecord(ledger::Store& store, const std::string& site) {
  std::optional<SiteRecord> out;
  absl::Status st = store.Rows("SELECT state, since_ms, cursor FROM site_state WHERE site = ?1", {site}, -1,
                               [&](sqlite::Statement& row) -> absl::Status {
                                 SiteRecord r;
                                 STEWARD_ASSIGN_OR_RETURN(r.state, ParseSiteState(row.ColumnText(0)));
                                 r.since_ms = row.ColumnInt(1);
                                 r.cursor = row.ColumnInt(2);
                                 out = r;
                                 return absl::OkStatus();
                               });
  if (!st.ok()) return st;
  return out;
}

ledger::Store::Op PutSiteRecord(std::string site, SiteRecord r) {
  return [site = std::move(site), r](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(
        sqlite::Statement st,
        db.Prepare("INSERT OR REPLACE INTO site_state(site, state, since_ms, cursor) VALUES (?1, ?2, ?3, ?4)"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, site));
    STEWARD_RETURN_IF_ERROR(st.Bind(2, absl::string_view(SiteStateName(r.state))));
    STEWARD_RETURN_IF_ERROR(st.Bind(3, r.since_ms));
    STEWARD_RETURN_IF_ERROR(st.Bind(4, r.cursor));
    return st.Step().status();
  };
}

ledger::Store::Op PutSiteCursor(std::string site, SiteRecord r) {
  return [put = PutSiteRecord(std::move(site), r), cursor = r.cursor](sqlite::Database& db) -> absl::Status {
    STEWARD_RETURN_IF_ERROR(put(db));
    // seq is AUTOINCREMENT: a number is never used again, so the cursor stays right
    // with the rows before it gone.
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("DELETE FROM site_journal WHERE seq <= ?1"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, cursor));
    return st.Step().status();
  };
}

absl::Status AppendSiteJournal(sqlite::Database& db, absl::string_view kind, absl::string_view id,
                               absl::string_view record) {
  STEWARD_ASSIGN_OR_RETURN(
      sqlite::Statement st,
      db.Prepare("INSERT OR IGNORE INTO site_journal(kind, id, at_ms, record) VALUES (?1, ?2, ?3, ?4)"));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, kind));
  STEWARD_RETURN_IF_ERROR(st.Bind(2, id));
  STEWARD_RETURN_IF_ERROR(st.Bind(3, NowUnixMillis()));
  STEWARD_RETURN_IF_ERROR(st.BindBlob(4, record));
  return st.Step().status();
}

ledger::Store::Op AppendSiteJournalOp(std::string kind, std::string id, std::string record) {
  return [kind = std::move(kind), id = std::move(id), record = std::move(record)](sqlite::Database& db) {
    return AppendSiteJournal(db, kind, id, record);
  };
}

absl::StatusOr<std::vector<SiteJournalEntry>> ReadSiteJournal(ledger::Store& store, int64_t after, int limit) {
  std::vector<SiteJournalEntry> out;
  absl::Status st = store.Rows("SELECT seq, kind, id, record FROM site_journal WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                               {absl::StrCat(after)}, limit, [&](sqlite::Statement& row) -> absl::Status {
                                 out.push_back({row.ColumnInt(0), row.ColumnText(1), row.ColumnText(2),
                                                row.ColumnBlob(3)});
                                 return absl::OkStatus();
                               });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<int64_t> CountSiteJournal(ledger::Store& store, int64_t after) {
  int64_t n = 0;
  STEWARD_RETURN_IF_ERROR(store.Rows("SELECT count(*) FROM site_journal WHERE seq > ?1", {absl::StrCat(after)}, -1,
                                     [&](sqlite::Statement& row) -> absl::Status {
                                       n = row.ColumnInt(0);
                                       return absl::OkStatus();
                                     }));
  return n;
}

absl::Status WriteAndWait(ledger::Store& store, ledger::Store::Op op) {
  auto done = std::make_shared<absl::Notification>();
  auto result = std::make_shared<absl::Status>();
  store.Write(std::move(op), [done, result](absl::Status st) {
    *result = std::move(st);
    done->Notify();
  });
  if (!done->WaitForNotificationWithTimeout(kImportWait)) {
    return absl::DeadlineExceededError("the ledger write did not commit in time");
  }
  return *result;
}

// ---- SiteDesk ----

absl::Status SiteDesk::Load() {
  std::map<std::string, Claim> claims;
  absl::Status st = core_.store().Rows("SELECT site, nodes, since_ms, claimed_ms FROM site_claims", {}, -1,
                                       [&](sqlite::Statement& row) -> absl::Status {
                                         Claim c;
                                         c.nodes = absl::StrSplit(row.ColumnText(1), ',', absl::SkipEmpty());
                                         c.since_ms = row.ColumnInt(2);
                                         c.claimed_ms = row.ColumnInt(3);
                                         claims[row.ColumnText(0)] = std::move(c);
                                         return absl::OkStatus();
                                       });
  STEWARD_RETURN_IF_ERROR(st);
  {
    absl::MutexLock lock(&mu_);
    claims_ = claims;
  }
  absl::MutexLock lock(&core_.model.mu);
  for (const auto& [site, c] : claims) {
    for (const std::string& n : c.nodes) core_.model.site_held[n] = SiteHeldReason(site, c.since_ms);
    STEWARD_LOG_WARNING("site {} holds control of {} (since {}): their commands wait for its hand-back", site,
                        absl::StrJoin(c.nodes, ","), c.since_ms);
  }
  return absl::OkStatus();
}

void SiteDesk::Serve(nats::MsgPtr msg) {
  const std::string reply = nats::Reply(msg.get());
  absl::StatusOr<std::string> site = subjects::ParseSiteSubject(nats::Subject(msg.get()), core_.options().name);
  absl::StatusOr<SiteMessage> m = DecodeSiteMessage(nats::Data(msg.get()));
  absl::Status st;
  if (!site.ok()) {
    st = site.status();
  } else if (!m.ok()) {
    st = m.status();
  } else if (m->site != *site) {
    st = absl::InvalidArgumentError(absl::StrCat("site ", m->site, " wrote on the subject of site ", *site));
  } else if (m->op == "probe") {
    if (m->state == SiteStateName(SiteState::kControl) || m->state == SiteStateName(SiteState::kHandingBack)) {
      st = TakeClaim(*m);
    } else if (Claimed(m->site).has_value()) {
      // It says the central station is in control: its release was answered before, and
      // that answer (or this ledger's record of it) was lost.
      st = Release(m->site);
    }
  } else if (m->op == "batch") {
    st = Import(*m);
  } else if (m->op == "released") {
    st = Release(m->site);
  } else {
    st = absl::InvalidArgumentError(absl::StrCat("unknown site request \"", m->op, "\""));
  }
  if (!st.ok()) STEWARD_LOG_WARNING("site request on {}: {}", nats::Subject(msg.get()), st.ToString());
  if (site.ok() && m.ok() && m->site == *site) {
    // What station status shows: a site refused until it asks for something it may.
    absl::MutexLock lock(&mu_);
    if (absl::IsPermissionDenied(st)) {
      proto::SiteRefusal& r = refusals_[*site];
      r.set_site(*site);
      r.set_error(std::string(st.message()));
      r.set_at_unix_ms(NowUnixMillis());
    } else if (st.ok()) {
      refusals_.erase(*site);
    }
  }
  if (!reply.empty()) core_.Publish(reply, EncodeSiteAnswer(st));
}

std::optional<SiteDesk::Claim> SiteDesk::Claimed(const std::string& site) const {
  absl::MutexLock lock(&mu_);
  auto it = claims_.find(site);
  if (it == claims_.end()) return std::nullopt;
  return it->second;
}

void SiteDesk::Report(proto::StationStatusReply& out) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [site, c] : claims_) {
    proto::SiteClaim* claim = out.add_site_claims();
    claim->set_site(site);
    for (const std::string& n : c.nodes) claim->add_nodes(n);
    claim->set_since_unix_ms(c.since_ms);
    claim->set_claimed_unix_ms(c.claimed_ms);
  }
  for (const auto& [site, r] : refusals_) *out.add_site_refusals() = r;
}

absl::Status SiteDesk::CheckMembers(const std::string& site, const std::vector<std::string>& nodes) {
  std::vector<std::string> strangers;
  {
    absl::MutexLock lock(&core_.model.mu);
    for (const std::string& n : nodes) {
      const TagTable::Tags* tags = core_.model.tags.Of(n);
      auto it = tags == nullptr ? TagTable::Tags::const_iterator() : tags->find(kSiteTag);
      if (tags == nullptr || it == tags->end() || it->second != site) strangers.push_back(n);
    }
  }
  if (strangers.empty()) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "site ", site, " spoke for ", absl::StrJoin(strangers, ","), ", not its nodes here (a node is a site's with ",
      "the tag ", kSiteTag, "=", site, ": stewardctl tag set NODE ", kSiteTag, "=", site, ")"));
}

absl::Status SiteDesk::TakeClaim(const SiteMessage& m) {
  // Before anything is held: a site holds only the nodes the operators gave it.
  STEWARD_RETURN_IF_ERROR(CheckMembers(m.site, m.nodes));
  std::optional<Claim> before;
  {
    // One site holds a node at a time (a node moved to another site while the first
    // held it: the first hands back before the second may hold it).
    absl::MutexLock lock(&mu_);
    for (const auto& [other, c] : claims_) {
      if (other == m.site) {
        before = c;
        continue;
      }
      for (const std::string& n : m.nodes) {
        if (std::find(c.nodes.begin(), c.nodes.end(), n) != c.nodes.end()) {
          return absl::PermissionDeniedError(absl::StrCat("site ", m.site, " claimed ", n, ", which site ", other,
                                                          " holds until it hands control back"));
        }
      }
    }
  }
  if (before.has_value() && before->nodes == m.nodes) return absl::OkStatus();
  const int64_t since = m.since_ms > 0 ? m.since_ms : NowUnixMillis();
  const int64_t claimed = NowUnixMillis();
  const std::string nodes = absl::StrJoin(m.nodes, ",");
  STEWARD_RETURN_IF_ERROR(WriteAndWait(
      core_.store(), [site = m.site, nodes, since, claimed](sqlite::Database& db) -> absl::Status {
        STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                                 db.Prepare("INSERT OR REPLACE INTO site_claims(site, nodes, since_ms, claimed_ms) "
                                            "VALUES (?1, ?2, ?3, ?4)"));
        STEWARD_RETURN_IF_ERROR(st.Bind(1, site));
        STEWARD_RETURN_IF_ERROR(st.Bind(2, nodes));
        STEWARD_RETURN_IF_ERROR(st.Bind(3, since));
        STEWARD_RETURN_IF_ERROR(st.Bind(4, claimed));
        return st.Step().status();
      }));
  {
    absl::MutexLock lock(&core_.model.mu);
    if (before.has_value()) {
      for (const std::string& n : before->nodes) core_.model.site_held.erase(n);
    }
    for (const std::string& n : m.nodes) core_.model.site_held[n] = SiteHeldReason(m.site, since);
  }
  {
    absl::MutexLock lock(&mu_);
    claims_[m.site] = Claim{m.nodes, since, claimed};
  }
  STEWARD_LOG_WARNING("site {} is in control of {} since {}: their commands are held until it hands control back",
                      m.site, nodes, since);
  return absl::OkStatus();
}

absl::Status SiteDesk::Import(const SiteMessage& m) {
  // The whole batch is checked first, so that a refused one imports nothing; its
  // commands are parsed once, here.
  std::vector<std::string> nodes;
  std::vector<proto::CommandState> states(m.entries.size());
  for (size_t i = 0; i < m.entries.size(); ++i) {
    const SiteJournalEntry& e = m.entries[i];
    if (e.kind == "command") {
      proto::CommandState& s = states[i];
      if (!s.ParseFromString(e.record) || s.id() != e.id) {
        return absl::InvalidArgumentError(absl::StrCat("journal entry ", e.seq, ": malformed command ", e.id));
      }
      if (!IsTerminal(s.state()) && !s.has_command()) {
        return absl::InvalidArgumentError(
            absl::StrCat("journal entry ", e.seq, ": unfinished command ", e.id, " without its command"));
      }
      if (s.has_command() && s.command().to_node() != s.node()) {
        return absl::PermissionDeniedError(
            absl::StrCat("journal entry ", e.seq, ": command ", e.id, " for ", s.node(), " is addressed to ",
                         s.command().to_node()));
      }
      nodes.push_back(s.node());
    } else if (e.kind == "event") {
      absl::StatusOr<proto::Envelope> env = DecodeEnvelope(e.record);
      if (!env.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("journal entry ", e.seq, ": ", env.status().message()));
      }
      // What a site journals: what its intake stores and answers (never a live output
      // relay or the station's own node-state publication, which have no answer).
      if (env->method() == kEventOutput || env->method() == kEventNodeState) {
        return absl::InvalidArgumentError(
            absl::StrCat("journal entry ", e.seq, ": a ", env->method(), " event is not journaled"));
      }
      nodes.push_back(env->from_node());
    } else {
      return absl::InvalidArgumentError(absl::StrCat("journal entry ", e.seq, ": unknown kind ", e.kind));
    }
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  STEWARD_RETURN_IF_ERROR(CheckMembers(m.site, nodes));
  int commands = 0, events = 0;
  for (size_t i = 0; i < m.entries.size(); ++i) {
    const SiteJournalEntry& e = m.entries[i];
    if (e.kind == "command") {
      proto::CommandState& s = states[i];
      bool known = false;
      {
        absl::MutexLock lock(&core_.model.mu);
        known = core_.model.commands.Find(s.id()) != nullptr;
      }
      if (!known) {
        STEWARD_ASSIGN_OR_RETURN(std::optional<proto::CommandState> stored, core_.store().GetCommand(s.id()));
        known = stored.has_value();
      }
      if (known) continue;  // imported before: a batch sent again
      if (IsTerminal(s.state())) {
        STEWARD_RETURN_IF_ERROR(WriteAndWait(core_.store(), core_.store().PutCommand(s)));
      } else {
        // Unfinished at the site: the central station's to finish, after the hand-back
        // (the node answers a repeat from its record and never runs it twice).
        s.set_state(proto::STATE_QUEUED);
        s.clear_result();
        // The site may have sent it: its node's result (imported below, or sent again)
        // is taken, never refused as one for a command nobody sent.
        s.set_attempts(std::max(s.attempts(), 1));
        auto done = std::make_shared<absl::Notification>();
        auto result = std::make_shared<absl::Status>();
        core_.Submit({std::move(s)}, [done, result](absl::Status st) {
          *result = std::move(st);
          done->Notify();
        });
        if (!done->WaitForNotificationWithTimeout(kImportWait)) {
          return absl::DeadlineExceededError("importing a command did not commit in time");
        }
        STEWARD_RETURN_IF_ERROR(*result);
      }
      ++commands;
    } else {  // an event (the check above refused any other kind)
      auto done = std::make_shared<absl::Notification>();
      auto ack = std::make_shared<proto::Ack>();
      intake_.Import(e.record, [done, ack](const proto::Ack& a) {
        *ack = a;
        done->Notify();
      });
      if (!done->WaitForNotificationWithTimeout(kImportWait)) {
        return absl::DeadlineExceededError(absl::StrCat("importing event ", e.id, " did not commit in time"));
      }
      // Refused is final (the node would have been told the same); "not now" is not.
      if (ack->outcome() == proto::OUTCOME_ERROR) {
        return absl::UnavailableError(absl::StrCat("event ", e.id, ": ", ack->error()));
      }
      ++events;
    }
  }
  STEWARD_LOG_INFO("site {}: imported {} journal entries ({} new commands, {} events)", m.site, m.entries.size(),
                   commands, events);
  return absl::OkStatus();
}

absl::Status SiteDesk::Release(const std::string& site) {
  const std::optional<Claim> claim = Claimed(site);
  if (!claim.has_value()) return absl::OkStatus();
  STEWARD_RETURN_IF_ERROR(WriteAndWait(core_.store(), [site](sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("DELETE FROM site_claims WHERE site = ?1"));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, site));
    return st.Step().status();
  }));
  {
    absl::MutexLock lock(&core_.model.mu);
    const absl::Time now = absl::Now();
    for (const std::string& n : claim->nodes) {
      core_.model.site_held.erase(n);
      core_.model.commands.Unpark(n, now);
    }
    core_.model.wake = true;
  }
  STEWARD_LOG_INFO("site {} handed control of {} back", site, absl::StrJoin(claim->nodes, ","));
  {
    absl::MutexLock lock(&mu_);
    claims_.erase(site);
  }
  return absl::OkStatus();
}

}  // namespace steward::station
