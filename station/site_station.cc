// The site station's side of a Station (options.site; station/site.h): it probes the
// central station, takes control of its nodes and hands control back by the rules of
// station/site_rules.h.
#include "station/station.h"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "station/backlog.h"
#include "station/approvals.h"
#include "station/command_api.h"
#include "station/core.h"
#include "station/dispatcher.h"
#include "station/ha/follower.h"
#include "station/ha/journal.h"
#include "station/ha/lease.h"
#include "station/ha/roster.h"
#include "station/http/server.h"
#include "station/http/tokens.h"
#include "station/intake.h"
#include "station/job_runner.h"
#include "station/ledger/store.h"
#include "station/node_api.h"
#include "station/operations.h"
#include "station/output_api.h"
#include "station/queries.h"
#include "station/rpc.h"
#include "station/security.h"
#include "station/site.h"
#include "station/site_rules.h"
#include "subjects/site.h"
#include "station/targeting_api.h"
#include "subjects/subject.h"

namespace steward::station {

absl::Status Station::AskCentral(const SiteMessage& m, absl::Duration timeout) {
  STEWARD_ASSIGN_OR_RETURN(std::string subject, subjects::SiteSubject(options_.name, options_.site.name));
  STEWARD_ASSIGN_OR_RETURN(nats::MsgPtr answer, nats::Request(conn_.get(), subject, EncodeSiteMessage(m), timeout));
  return DecodeSiteAnswer(nats::Data(answer.get()));
}

void Station::RunSite() {
  const StationOptions::Site& site = options_.site;
  // R1: the timeout counts from the start too: a site station that starts while its
  // link is down waits it out before it takes control.
  absl::Time last_answer = absl::Now();
  bool said_lost = false;
  while (!stop_.WaitForNotificationWithTimeout(site.probe_every)) {
    SiteMessage probe;
    probe.op = "probe";
    probe.site = site.name;
    probe.nodes = site.nodes;
    probe.state = SiteStateName(static_cast<SiteState>(site_state_.load()));
    probe.since_ms = site_since_ms_;
    if (static_cast<SiteState>(site_state_.load()) != SiteState::kCentral) {
      probe.pending = CountSiteJournal(*store_, site_cursor_).value_or(0);
    }
    absl::Status answered = AskCentral(probe, std::max(site.probe_every, absl::Milliseconds(500)));
    const bool refused = absl::IsPermissionDenied(answered);
    if (refused) {
      // The central station answered and refused the claim (a node that is not this
      // site's there): the link is up all the same, which is what the rules go by.
      SayRefused(answered);
      answered = absl::OkStatus();
    }
    const absl::Time now = absl::Now();
    if (answered.ok()) {
      if (said_lost) STEWARD_LOG_INFO("site {}: the central station answers again", site.name);
      said_lost = false;
      last_answer = now;
    } else if (!said_lost) {
      said_lost = true;
      STEWARD_LOG_WARNING("site {}: the central station does not answer ({}); taking control after {} without it",
                          site.name, answered.ToString(), absl::FormatDuration(site.central_timeout));
    }
    if (refused && static_cast<SiteState>(site_state_.load()) == SiteState::kControl) {
      // It answers and does not hold these nodes for this site: it serves them. One
      // station in control, whatever the restore window says: hand back now (what the
      // central station refuses of the journal stays here, said at every try).
      if (HandBack()) last_answer = absl::Now();
      continue;
    }
    switch (site_rules_->Decide(static_cast<SiteState>(site_state_.load()), last_answer, answered.ok(), now)) {
      case SiteAction::kNone:
        break;
      case SiteAction::kTakeControl:
        TakeControl();
        break;
      case SiteAction::kHandBack:
        if (HandBack()) last_answer = absl::Now();
        break;
    }
  }
}

void Station::TakeControl() {
  const StationOptions::Site& site = options_.site;
  const int64_t since = NowUnixMillis();
  // Durable first: a site station killed from here on restarts in control.
  absl::Status st = WriteAndWait(*store_, PutSiteRecord(site.name, {SiteState::kControl, since, site_cursor_}));
  if (st.ok()) st = Serve();
  if (!st.ok()) {
    STEWARD_LOG_ERROR("site {}: taking control failed (tried again at the next probe): {}", site.name, st.ToString());
    StopServing();
    (void)WriteAndWait(*store_, PutSiteRecord(site.name, {SiteState::kCentral, site_since_ms_, site_cursor_}));
    return;
  }
  site_state_ = static_cast<int>(SiteState::kControl);
  site_since_ms_ = since;
  role_since_unix_ms_.store(since);
  active_.store(true, std::memory_order_release);
  STEWARD_LOG_WARNING("site {}: IN CONTROL of {}: the central station did not answer for {}", site.name,
                      absl::StrJoin(site.nodes, ","), absl::FormatDuration(site.central_timeout));
}

void Station::StopServing() {
  active_.store(false, std::memory_order_release);
  {
    absl::MutexLock lock(&serving_mu_);
    // Stop() may have notified it already (a stop during a hand-back), or Serve() did (a
    // stop before it): a second Notify aborts the process.
    if (serving_stop_ != nullptr && !serving_stop_->HasBeenNotified()) serving_stop_->Notify();
  }
  JoinServingThreads();
  // No more messages for this instance: the queue group's other member (the central
  // station) gets them from now on.
  requests_.reset();
  events_.reset();
  if (conn_) (void)nats::Flush(conn_.get(), absl::Seconds(2));
  if (pump_) pump_->Shutdown();
  if (dispatcher_) dispatcher_->Flush();
  if (core_) {
    absl::Notification written;
    core_->AfterWrites([&written](absl::Status) { written.Notify(); });
    written.WaitForNotificationWithTimeout(absl::Seconds(30));
  }
  http_.reset();
  tokens_.reset();
  approvals_.reset();
  output_api_.reset();
  operations_.reset();
  targeting_api_.reset();
  job_runner_.reset();
  dispatcher_.reset();
  intake_.reset();
  security_.reset();
  node_api_.reset();
  queries_.reset();
  command_api_.reset();
  rpc_.reset();
  requests_backlog_.reset();
  events_backlog_.reset();
  core_.reset();
  pump_.reset();
}

void Station::SayRefused(const absl::Status& refused) {
  // Once per reason: it is tried again at every probe until the operators act.
  if (refused.message() == site_refused_) return;
  site_refused_ = std::string(refused.message());
  STEWARD_LOG_ERROR("site {}: REFUSED by {} (tried again at every probe; nothing is handed back until then)",
                    options_.site.name, site_refused_);
}

bool Station::HandBack() {
  const StationOptions::Site& site = options_.site;
  if (static_cast<SiteState>(site_state_.load()) == SiteState::kControl) {
    // (a) no new requests, no more dispatching: from here the central station serves.
    absl::Status st =
        WriteAndWait(*store_, PutSiteRecord(site.name, {SiteState::kHandingBack, site_since_ms_, site_cursor_}));
    if (!st.ok()) {
      STEWARD_LOG_ERROR("site {}: cannot record the hand-back: {}", site.name, st.ToString());
      return false;
    }
    site_state_ = static_cast<int>(SiteState::kHandingBack);
    STEWARD_LOG_INFO("site {}: the central station answers: handing control back", site.name);
    StopServing();
  }
  // (b) the journal, in order, a batch at a time, each acknowledged once the central
  // ledger holds it; (c) the cursor after each, so a restart resumes.
  while (!stop_.HasBeenNotified()) {
    absl::StatusOr<std::vector<SiteJournalEntry>> entries = ReadSiteJournal(*store_, site_cursor_, site.batch_entries);
    if (!entries.ok()) {
      STEWARD_LOG_ERROR("site {}: reading the journal: {}", site.name, entries.status().ToString());
      return false;
    }
    if (entries->empty()) break;
    SiteMessage batch;
    batch.op = "batch";
    batch.site = site.name;
    batch.nodes = site.nodes;
    batch.state = SiteStateName(SiteState::kHandingBack);
    for (SiteJournalEntry& e : *entries) {
      if (e.kind == "command") {
        // What became of it here: the central ledger takes its latest state.
        absl::StatusOr<std::optional<proto::CommandState>> now = store_->GetCommand(e.id);
        if (now.ok() && now->has_value()) e.record = (*now)->SerializeAsString();
      }
    }
    const int64_t last = entries->back().seq;
    batch.entries = *std::move(entries);
    if (absl::Status st = AskCentral(batch, absl::Seconds(30)); !st.ok()) {
      if (absl::IsPermissionDenied(st)) {
        SayRefused(st);
      } else {
        STEWARD_LOG_WARNING("site {}: handing back the journal after entry {}: {} (tried again)", site.name,
                            site_cursor_, st.ToString());
      }
      return false;
    }
    if (absl::Status st =
            WriteAndWait(*store_, PutSiteCursor(site.name, {SiteState::kHandingBack, site_since_ms_, last}));
        !st.ok()) {
      STEWARD_LOG_ERROR("site {}: recording the hand-back cursor: {}", site.name, st.ToString());
      return false;
    }
    site_cursor_ = last;
  }
  if (stop_.HasBeenNotified()) return false;
  // (d) released: the central station drops the claim and dispatches what it held.
  SiteMessage released;
  released.op = "released";
  released.site = site.name;
  released.nodes = site.nodes;
  released.state = SiteStateName(SiteState::kCentral);
  if (absl::Status st = AskCentral(released, absl::Seconds(10)); !st.ok()) {
    STEWARD_LOG_WARNING("site {}: releasing control: {} (tried again)", site.name, st.ToString());
    return false;
  }
  const int64_t now = NowUnixMillis();
  if (absl::Status st = WriteAndWait(*store_, PutSiteRecord(site.name, {SiteState::kCentral, now, site_cursor_}));
      !st.ok()) {
    // The central station knows; at the next probe ("handing-back") it would claim the
    // nodes again, so this is tried again until it is recorded.
    STEWARD_LOG_ERROR("site {}: recording the release: {}", site.name, st.ToString());
    return false;
  }
  site_state_ = static_cast<int>(SiteState::kCentral);
  site_since_ms_ = now;
  site_refused_.clear();
  role_since_unix_ms_.store(now);
  STEWARD_LOG_INFO("site {}: control handed back to the central station (journal up to entry {})", site.name,
                   site_cursor_);
  return true;
}

}  // namespace steward::station
