// Station: opens the ledger, connects, builds the rooms and runs their threads.
#include "station/station.h"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
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
namespace {

// How long a serving thread waits for a message before it looks at `stop_` again.
constexpr absl::Duration kTick = absl::Milliseconds(250);
// Threads serving the events of nodes: results, hellos and log batches of a whole
// fleet arrive at once after a fan-out or a broker restart. Each event is a short
// critical section on the model plus a publish (ledger writes are group-committed by
// the writer thread), so two threads keep both cores busy without queueing on model.mu.
constexpr int kEventThreads = 2;
// The request `stewardctl station status` sends (ctl/client.cc).
constexpr char kStationStations[] = "stations";
// The payload that marks Start's failure for want of its broker (BrokerNotReached).
constexpr char kBrokerNotReachedPayload[] = "steward.dev/broker-not-reached";
// How long an --ha station's start waits for its broker before it starts again later.
constexpr absl::Duration kHaBrokerWait = absl::Seconds(5);

}  // namespace

absl::StatusOr<std::unique_ptr<Station>> Station::Start(StationOptions options) {
  STEWARD_RETURN_IF_ERROR(subjects::ValidateToken(options.name));
  if (options.data_dir.empty()) return absl::InvalidArgumentError("the station needs a data dir");
  if (!options.site.name.empty()) {
    const StationOptions::Site& site = options.site;
    if (absl::Status st = subjects::ValidateToken(site.name); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--site: ", st.message()));
    }
    if (site.nodes.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--site ", site.name, ": a site station needs the nodes it may control (--site-nodes a,b,c)"));
    }
    for (const std::string& n : site.nodes) {
      if (absl::Status st = subjects::ValidateToken(n); !st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("--site-nodes: ", st.message()));
      }
    }
    if (options.ha.enabled) return absl::InvalidArgumentError("--site and --ha do not go together");
    if (site.probe_every <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("--site-probe must be longer than 0s");
    }
  }
  if (options.nats.name.empty()) {
    options.nats.name = options.site.name.empty() ? absl::StrCat("steward-station ", options.name)
                                                  : absl::StrCat("steward-station ", options.name, " site ",
                                                                 options.site.name);
  }
  std::unique_ptr<Station> s(new Station(std::move(options)));
  if (absl::Status st = s->Init(); !st.ok()) {
    if (BrokerNotReached(st)) return st;  // --ha: the broker was not up (Init)
    // A broker call that failed because the connection closed for good: the caller may
    // start the station again. Any other error, one of this configuration or ledger, is
    // returned as it is, closed connection or not.
    std::optional<std::string> closed = s->BrokerClosed();
    if (closed.has_value() && nats::FailedOnClosed(st)) {
      absl::Status again = absl::UnavailableError(absl::StrCat(
          "the broker connection to ", nats::RedactUrl(s->options_.nats.url), " is closed (", *closed, "): ",
          st.message()));
      again.SetPayload(kBrokerNotReachedPayload, absl::Cord("1"));
      return again;
    }
    return st;
  }
  return s;
}

std::optional<std::string> Station::BrokerClosed() const { return nats::ClosedReason(conn_.get()); }

bool Station::BrokerNotReached(const absl::Status& st) { return st.GetPayload(kBrokerNotReachedPayload).has_value(); }

Station::Station(StationOptions options) : options_(std::move(options)) {}

Station::~Station() { Shutdown(); }

absl::Status Station::Init() {
  if (!options_.site.name.empty()) {
    const StationOptions::Site& site = options_.site;
    STEWARD_ASSIGN_OR_RETURN(SiteRules rules, SiteRules::Make(site.central_timeout, site.restore_window,
                                                              site.restore_length, site.restore_zone));
    site_rules_ = std::make_unique<SiteRules>(std::move(rules));
    role_since_unix_ms_.store(NowUnixMillis());
    STEWARD_ASSIGN_OR_RETURN(store_, ledger::Store::Open(options_.data_dir));
    STEWARD_ASSIGN_OR_RETURN(std::optional<SiteRecord> rec, LoadSiteRecord(*store_, site.name));
    if (rec.has_value()) {
      site_state_ = static_cast<int>(rec->state);
      site_since_ms_ = rec->since_ms;
      site_cursor_ = rec->cursor;
    }
    STEWARD_RETURN_IF_ERROR(Connect());
    STEWARD_LOG_INFO("station {}: site station of {} for nodes {} ({} since {}; journal handed back up to {})",
                     options_.name, site.name, absl::StrJoin(site.nodes, ","),
                     SiteStateName(static_cast<SiteState>(site_state_.load())), site_since_ms_.load(), site_cursor_.load());
    if (static_cast<SiteState>(site_state_.load()) == SiteState::kControl) {
      // It was in control when it stopped: it still is (the journal goes on).
      STEWARD_RETURN_IF_ERROR(Serve());
      active_.store(true, std::memory_order_release);
    }
    site_thread_ = std::thread([this] { RunSite(); });
    return absl::OkStatus();
  }
  if (!options_.ha.enabled) {
    role_since_unix_ms_.store(NowUnixMillis());
    STEWARD_ASSIGN_OR_RETURN(store_, ledger::Store::Open(options_.data_dir));
    STEWARD_RETURN_IF_ERROR(Connect());
    STEWARD_RETURN_IF_ERROR(Serve());
    active_.store(true, std::memory_order_release);
    return absl::OkStatus();
  }
  STEWARD_RETURN_IF_ERROR(Connect());
  // Its lease and journal are on the broker: one not up yet (a host that boots the station
  // first) is no error of this configuration, and the station starts again later. Once it
  // is connected, what the lease says is (no JetStream, no permission: exit 2).
  const absl::Time until = absl::Now() + kHaBrokerWait;
  while (natsConnection_Status(conn_.get()) != NATS_CONN_STATUS_CONNECTED && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  if (natsConnection_Status(conn_.get()) != NATS_CONN_STATUS_CONNECTED) {
    const char* text = nullptr;
    (void)natsConnection_GetLastError(conn_.get(), &text);
    absl::Status st = absl::UnavailableError(absl::StrCat(
        "the broker connection to ", nats::RedactUrl(options_.nats.url), " is not up after ",
        absl::FormatDuration(kHaBrokerWait), text != nullptr && text[0] != '\0' ? absl::StrCat(" (", text, ")") : "",
        ": an --ha station needs its lease bucket on the broker to start"));
    st.SetPayload(kBrokerNotReachedPayload, absl::Cord("1"));
    return st;
  }
  std::string instance = options_.ha.instance;
  if (instance.empty()) {
    char host[256] = {};
    (void)gethostname(host, sizeof(host) - 1);
    instance = absl::StrCat(host, "-", getpid(), "-", NewId().substr(16));
  }
  instance_ = instance;
  role_since_unix_ms_.store(NowUnixMillis());
  // JetStream that does not answer yet is the broker's state, not this configuration's:
  // a cluster rebooted together accepts clients before it has elected its JetStream
  // leader (nats-server 2.9, measured: the bucket's lookup times out, then answers
  // "JetStream system temporarily unavailable"). The station starts again later rather
  // than exiting with 2, which its service manager does not restart. A request the
  // broker's permissions refused also times out: that one is the configuration's (exit
  // 2), told apart by the connection's own error.
  auto not_yet = [this](absl::Status st) {
    const std::string lower = absl::AsciiStrToLower(st.message());
    if (!absl::IsDeadlineExceeded(st) && !absl::StrContains(lower, "temporarily unavailable")) return st;
    const char* last = nullptr;
    (void)natsConnection_GetLastError(conn_.get(), &last);
    if (last != nullptr && absl::StrContains(absl::AsciiStrToLower(last), "permissions violation")) {
      return absl::PermissionDeniedError(absl::StrCat(st.message(), " (", last, ")"));
    }
    absl::Status again = absl::UnavailableError(
        absl::StrCat(st.message(),
                     ": the broker's JetStream did not answer (a cluster that has no JetStream leader yet, "
                     "as after a reboot of all its servers)"));
    again.SetPayload(kBrokerNotReachedPayload, absl::Cord("1"));
    return again;
  };
  absl::StatusOr<std::unique_ptr<ha::Lease>> lease = ha::Lease::Open(
      conn_.get(),
      {.key = options_.name, .holder = instance, .ttl = options_.ha.lease, .replicas = options_.ha.replicas});
  if (!lease.ok()) return not_yet(lease.status());
  lease_ = *std::move(lease);
  absl::StatusOr<std::unique_ptr<ha::Journal>> journal =
      ha::Journal::Open(conn_.get(), {.station = options_.name, .replicas = options_.ha.replicas});
  if (!journal.ok()) return not_yet(journal.status());
  journal_ = *std::move(journal);
  follow_ = std::make_unique<ha::FollowState>();
  STEWARD_LOG_INFO("station {}: instance {} is a standby: following journal {} and waiting for the lease", options_.name,
                   instance, journal_->stream());
  ha_thread_ = std::thread([this] { RunHa(); });
  // The roster only shows who is who: a station that cannot keep it still works.
  absl::StatusOr<std::unique_ptr<ha::Roster>> roster =
      ha::Roster::Open(conn_.get(), {.station = options_.name, .replicas = options_.ha.replicas});
  if (roster.ok()) {
    roster_ = *std::move(roster);
    roster_thread_ = std::thread([this] { RunRoster(); });
  } else {
    STEWARD_LOG_WARNING("station {}: no station roster (stewardctl station status will not list the instances): {}",
                        options_.name, roster.status().ToString());
  }
  return absl::OkStatus();
}

proto::StationInstance Station::Self() const {
  proto::StationInstance r;
  r.set_instance(instance_);
  r.set_since_unix_ms(role_since_unix_ms_.load());
  r.set_updated_unix_ms(NowUnixMillis());
  if (Active()) {
    r.set_role("active");
    r.set_term(lease_->term());
    r.set_applied(store_->journal_seq());
  } else {
    r.set_role(fenced_.load() ? "stopped" : "standby");
    const uint64_t applied = follow_->applied.load();
    const uint64_t journal = follow_->journal.load();
    r.set_applied(applied);
    r.set_lag(journal > applied ? journal - applied : 0);
  }
  return r;
}

void Station::RunRoster() {
  bool warned = false;
  int round = 0;
  do {
    if (absl::Status st = roster_->Put(Self()); !st.ok() && !warned) {
      STEWARD_LOG_WARNING("station {}: writing the station roster: {}", options_.name, st.ToString());
      warned = true;
    } else if (st.ok()) {
      warned = false;
    }
    if (++round % 5 == 0 && Active()) CompactJournal();
  } while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1)));
}

void Station::CompactJournal() {
  absl::StatusOr<ha::Journal::Bounds> bounds = journal_->GetBounds();
  if (!bounds.ok()) return;
  journal_first_.store(bounds->first);
  const uint64_t keep = static_cast<uint64_t>(options_.ha.journal_keep);
  const uint64_t end = store_->journal_seq();
  if (keep == 0 || end <= keep) return;
  // Nothing a standby still needs goes: without the roster, nothing goes at all.
  absl::StatusOr<std::vector<proto::StationInstance>> others = roster_->List();
  if (!others.ok()) return;
  uint64_t below = end + 1 - keep;
  for (const proto::StationInstance& o : *others) {
    if (o.instance() != instance_ && o.role() == "standby") below = std::min(below, o.applied() + 1);
  }
  if (below <= bounds->first) return;
  if (absl::Status st = journal_->Compact(below); !st.ok()) {
    STEWARD_LOG_WARNING("station {}: compacting the journal: {}", options_.name, st.ToString());
    return;
  }
  journal_first_.store(below);
  STEWARD_LOG_INFO("station {}: journal {} now starts at entry {} (every standby has the ones before it; the newest "
                   "{} are kept)",
                   options_.name, journal_->stream(), below, keep);
}

void Station::AnswerStatus(const Call& call) {
  proto::StationStatusReply out;
  out.set_station(options_.name);
  out.set_now_unix_ms(NowUnixMillis());
  *out.mutable_health() = Queries::Health(options_.name, *store_);
  if (site_desk_ != nullptr) site_desk_->Report(out);
  if (!options_.site.name.empty()) {
    proto::SiteStationState* site = out.mutable_site();
    site->set_site(options_.site.name);
    for (const std::string& n : options_.site.nodes) site->add_nodes(n);
    site->set_state(SiteStateName(static_cast<SiteState>(site_state_.load())));
    site->set_since_unix_ms(site_since_ms_.load());
    site->set_journal_pending(CountSiteJournal(*store_, site_cursor_).value_or(0));
  }
  if (!options_.ha.enabled) {
    proto::StationInstance* self = out.add_instances();
    self->set_instance(options_.name);
    self->set_role("active");
    self->set_since_unix_ms(role_since_unix_ms_.load());
    self->set_updated_unix_ms(out.now_unix_ms());
    self->set_answering(true);
    return rpc_->Ok(call, out);
  }
  out.set_ha(true);
  out.set_journal(store_->journal_seq());
  out.set_journal_first(journal_first_.load());
  proto::StationInstance self = Self();
  self.set_answering(true);
  // The active ledger's end, read once: a write between two reads would show the active
  // instance ahead of its own journal.
  if (self.role() == "active") self.set_applied(out.journal());
  *out.add_instances() = self;
  if (roster_ == nullptr) return rpc_->Ok(call, out);
  absl::StatusOr<std::vector<proto::StationInstance>> others = roster_->List();
  if (!others.ok()) {
    // What this instance knows is still the truth about the active one: say it, and why
    // the standbys are missing.
    out.set_roster_error(std::string(others.status().message()));
    return rpc_->Ok(call, out);
  }
  std::sort(others->begin(), others->end(),
            [](const proto::StationInstance& a, const proto::StationInstance& b) { return a.instance() < b.instance(); });
  for (proto::StationInstance& o : *others) {
    if (o.instance() == instance_) continue;
    // One instance is active: the one answering. Another that said so is an old active
    // one that died before it could say otherwise (its record ages out of the bucket).
    if (o.role() == "active") o.set_role("gone");
    // A standby's lag against the active ledger, now.
    if (o.role() == "standby") o.set_lag(out.journal() > o.applied() ? out.journal() - o.applied() : 0);
    *out.add_instances() = std::move(o);
  }
  rpc_->Ok(call, out);
}

void Station::RunHa() {
  absl::StatusOr<bool> held = ha::FollowUntilActive(options_.data_dir, *lease_, *journal_, stop_, *follow_);
  if (!held.ok()) {
    STEWARD_LOG_ERROR("station {}: standby stopped: {}", options_.name, held.status().ToString());
    fenced_.store(true);
    return;
  }
  if (!*held) return;  // stopping
  const uint64_t term = lease_->term();
  ledger::Store::Options store_options;
  store_options.journal_end = follow_->journal.load();
  store_options.replicate = [this](uint64_t seq, absl::string_view changes) -> absl::StatusOr<uint64_t> {
    // Past the lease, nothing more is written: the standby may be taking over.
    const uint64_t now = lease_->term();
    if (now == 0) return absl::FailedPreconditionError("this station instance lost its lease: it is not active");
    return journal_->Append(seq, now, changes);
  };
  absl::Status st = [&]() -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(store_, ledger::Store::Open(options_.data_dir, store_options));
    return Serve();
  }();
  if (!st.ok()) {
    STEWARD_LOG_ERROR("station {}: taking over failed: {}", options_.name, st.ToString());
    (void)lease_->Release();
    fenced_.store(true);
    return;
  }
  role_since_unix_ms_.store(NowUnixMillis());
  active_.store(true, std::memory_order_release);
  STEWARD_LOG_INFO("station {}: ACTIVE (lease term {}), ledger at journal entry {}", options_.name, term,
                   store_->journal_seq());
  while (!stop_.WaitForNotificationWithTimeout(lease_->renew_every())) {
    absl::StatusOr<bool> still = lease_->Step();
    if (!lease_->Held()) {
      fenced_.store(true);
      // When acting stopped being safe: the writer refused to write from then on (the
      // broker call that found out may have taken longer).
      STEWARD_LOG_ERROR("station {}: lost the lease ({}): not active since its last renewal ran out at {} UTC; "
                        "stopping at once; a standby takes over",
                        options_.name, still.ok() ? "taken by another instance" : still.status().ToString(),
                        absl::FormatTime("%H:%M:%E3S", lease_->ValidUntil(), absl::UTCTimeZone()));
      Stop();
      return;
    }
  }
  (void)lease_->Release();  // a clean stop: the standby need not wait for the lease to run out
}

void Station::Stop() {
  std::call_once(stop_once_, [this] { stop_.Notify(); });
  absl::MutexLock lock(&serving_mu_);
  if (serving_stop_ != nullptr && !serving_stop_->HasBeenNotified()) serving_stop_->Notify();
}

absl::Status Station::Connect() {
  nats::ConnectOptions copts = options_.nats;
  if (copts.inbox_prefix.empty()) copts.inbox_prefix = kNodeInboxPrefix + options_.name;
  inbox_prefix_ = copts.inbox_prefix;
  // Its own half-open link is seen within about two heartbeats, like a node's.
  if (copts.ping_interval == absl::ZeroDuration()) copts.ping_interval = options_.default_heartbeat;
  copts.on_disconnected = [name = options_.name] {
    STEWARD_LOG_WARNING("station {}: lost the broker connection; reconnecting", name);
  };
  copts.on_reconnected = [name = options_.name] {
    STEWARD_LOG_INFO("station {}: reconnected to the broker", name);
  };
  STEWARD_ASSIGN_OR_RETURN(conn_, nats::Connect(copts));
  return absl::OkStatus();
}

absl::Status Station::Serve() {
  std::shared_ptr<absl::Notification> stop = std::make_shared<absl::Notification>();
  {
    absl::MutexLock lock(&serving_mu_);
    serving_stop_ = stop;
    if (stop_.HasBeenNotified()) stop->Notify();
  }
  STEWARD_ASSIGN_OR_RETURN(pump_, RequestPump::Create(conn_.get(), inbox_prefix_));
  core_ = std::make_unique<Core>(options_, *store_, conn_.get(), *pump_);
  STEWARD_RETURN_IF_ERROR(core_->Load());
  rpc_ = std::make_unique<Rpc>(*core_);
  rpc_->Handle<proto::StationStatusRequest>(kStationStations,
                                            [this](const Call& c, proto::StationStatusRequest) { AnswerStatus(c); });
  command_api_ = std::make_unique<CommandApi>(*core_, *rpc_);
  queries_ = std::make_unique<Queries>(*core_, *rpc_);
  node_api_ = std::make_unique<NodeApi>(*core_, *rpc_);
  security_ = std::make_unique<Security>(*core_, *rpc_);
  intake_ = std::make_unique<Intake>(*core_);
  if (!options_.site.name.empty()) {
    intake_->ServeOnly({options_.site.nodes.begin(), options_.site.nodes.end()}, options_.site.name);
  }
  dispatcher_ = std::make_unique<Dispatcher>(*core_);
  job_runner_ = std::make_unique<JobRunner>(*core_);
  STEWARD_RETURN_IF_ERROR(job_runner_->Load());  // its holds, before anything is dispatched
  targeting_api_ = std::make_unique<TargetingApi>(*core_, *rpc_, *job_runner_);
  operations_ = std::make_unique<Operations>(*core_, *rpc_);
  output_api_ = std::make_unique<OutputApi>(*core_, *rpc_);
  approvals_ = std::make_unique<Approvals>(*core_, *rpc_);
  tokens_ = std::make_unique<http::Tokens>(*core_, *rpc_);
  STEWARD_RETURN_IF_ERROR(tokens_->Load());
  if (!options_.http.listen.empty()) {
    STEWARD_ASSIGN_OR_RETURN(http_, http::Server::Start(options_.http, *core_, *rpc_, *tokens_));
  }

  STEWARD_ASSIGN_OR_RETURN(std::string requests, subjects::KindPattern(options_.name, subjects::Kind::kCommand));
  STEWARD_ASSIGN_OR_RETURN(std::string events, subjects::KindPattern(options_.name, subjects::Kind::kEvent));
  // One queue group for the central and any site station (station/site.h): on a site's
  // leaf broker its own station, while it serves, gets the site's messages first.
  STEWARD_ASSIGN_OR_RETURN(requests_, nats::QueueSubscribeSync(conn_.get(), requests, kStationQueue,
                                                               kIntakePendingMsgs, kIntakePendingBytes));
  STEWARD_ASSIGN_OR_RETURN(
      events_, nats::QueueSubscribeSync(conn_.get(), events, kStationQueue, kIntakePendingMsgs, kIntakePendingBytes));
  requests_backlog_ = std::make_unique<Backlog>(requests_.get(), "requests", core_->metrics);
  events_backlog_ = std::make_unique<Backlog>(events_.get(), "events", core_->metrics);
  auto serve_request = [this](nats::MsgPtr m) { rpc_->Serve(std::move(m)); };
  std::function<void(nats::MsgPtr)> serve_event = [this](nats::MsgPtr m) { intake_->Serve(std::move(m)); };
  if (!options_.site.name.empty()) {
    // A site station in control journals each agent event it is offered (verbatim), in
    // the order they came, before it stores it: the ledger's writes commit in order, so
    // no event is answered "stored" before its journal entry is durable.
    serve_event = [this](nats::MsgPtr m) {
      proto::Envelope ev;
      if (ev.ParseFromArray(natsMsg_GetData(m.get()), natsMsg_GetDataLength(m.get())) && !ev.id().empty() &&
          ev.method() != kEventOutput && ev.method() != kEventNodeState && intake_->Serves(ev.from_node())) {
        store_->Write(AppendSiteJournalOp("event", ev.id(), std::string(nats::Data(m.get()))));
      }
      intake_->Serve(std::move(m));
    };
  }
  if (options_.site.name.empty()) {
    // Before the request threads: station status reads it.
    site_desk_ = std::make_unique<SiteDesk>(*core_, *intake_);
    STEWARD_RETURN_IF_ERROR(site_desk_->Load());
  }
  // Two request threads: operator requests are independent, and checking their
  // signatures is the costliest thing the station does per request.
  for (int i = 0; i < 2; ++i) {
    threads_.emplace_back(
        [this, stop, serve_request] { Serve(*stop, requests_.get(), *requests_backlog_, serve_request); });
  }
  for (int i = 0; i < kEventThreads; ++i) {
    threads_.emplace_back([this, stop, serve_event] { Serve(*stop, events_.get(), *events_backlog_, serve_event); });
  }
  threads_.emplace_back([this, stop] { dispatcher_->Run(*stop, events_backlog_.get()); });
  threads_.emplace_back([this, stop] { job_runner_->Run(*stop); });
  if (options_.site.name.empty()) {
    // The central station answers site stations (station/site.h); a site station never
    // subscribes there.
    STEWARD_ASSIGN_OR_RETURN(std::string sites, subjects::SitePattern(options_.name));
    STEWARD_ASSIGN_OR_RETURN(site_requests_, nats::SubscribeSync(conn_.get(), sites, 1024));
    threads_.emplace_back([this, stop] {
      while (!stop->HasBeenNotified()) {
        absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(site_requests_.get(), kTick);
        if (msg.ok()) {
          site_desk_->Serve(std::move(*msg));
        } else if (natsConnection_IsClosed(conn_.get())) {
          stop->WaitForNotificationWithTimeout(kTick);  // NextMsg answers at once now: no spinning
        }
      }
    });
  }
  STEWARD_LOG_INFO("station {} takes requests on {} and events on {}", options_.name, requests, events);
  if (!options_.key.has_value()) {
    STEWARD_LOG_WARNING("station {}: no station key: commands go out UNSIGNED and every node's events are "
                        "believed (development mode; run with --keys for a fleet)",
                        options_.name);
  }
  if (options_.operators == nullptr || options_.operators->empty()) {
    STEWARD_LOG_WARNING("station {}: no operator keys: ANY client of the broker may send commands "
                        "(development mode)",
                        options_.name);
  }
  return absl::OkStatus();
}

void Station::Serve(const absl::Notification& stop, natsSubscription* sub, Backlog& backlog,
                    const std::function<void(nats::MsgPtr)>& serve) {
  while (!stop.HasBeenNotified()) {
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub, kTick);
    if (msg.ok()) {
      serve(std::move(*msg));
      backlog.Served();
      backlog.Check();
    } else if (natsConnection_IsClosed(conn_.get())) {
      // Closed for good (BrokerClosed): main() starts the station again. NextMsg answers
      // at once now; waited out, not logged each time.
      stop.WaitForNotificationWithTimeout(kTick);
    } else if (!absl::IsDeadlineExceeded(msg.status())) {
      // A slow consumer (nats.c dropped messages) is counted and logged by the backlog.
      backlog.Check(/*force=*/true);
      if (!absl::StrContains(msg.status().message(), "Slow Consumer")) {
        STEWARD_LOG_WARNING("{}: {}", backlog.name(), msg.status().ToString());
      }
    }
  }
}

int Station::http_port() const { return http_ ? http_->port() : 0; }
bool Station::Serving() const {
  if (!Active()) {  // a standby: ready when it follows
    return conn_ != nullptr && natsConnection_Status(conn_.get()) == NATS_CONN_STATUS_CONNECTED;
  }
  if (store_ == nullptr || conn_ == nullptr || requests_ == nullptr || events_ == nullptr) return false;
  if (natsConnection_Status(conn_.get()) != NATS_CONN_STATUS_CONNECTED) return false;
  return nats::Flush(conn_.get(), absl::Seconds(1)).ok();
}

bool Station::Alive(absl::Duration quiet) const {
  if (!Active()) return !fenced_.load();
  return dispatcher_ != nullptr && absl::Now() - dispatcher_->last_turn() < quiet;
}

void Station::Shutdown() {
  if (shut_down_.exchange(true)) return;
  Stop();
  if (ha_thread_.joinable()) ha_thread_.join();  // before the rooms: it may be building them
  if (site_thread_.joinable()) site_thread_.join();  // the same: it may be building or tearing them down
  if (roster_thread_.joinable()) roster_thread_.join();
  JoinServingThreads();
  if (pump_) pump_->Shutdown();
  if (dispatcher_) dispatcher_->Flush();
  if (store_) store_->Shutdown();  // Commits what is queued; completions may publish.
  requests_.reset();
  events_.reset();
  site_requests_.reset();
  if (conn_) natsConnection_FlushTimeout(conn_.get(), 500);
}

void Station::JoinServingThreads() {
  if (core_) core_->feed.Close();  // ends the event streams
  if (core_) {
    // Waiting operators get the states as they are now, as when their time is up: an HTTP
    // submit that waits (for its wait, up to the 2 minutes CallRpc allows; the dashboard's
    // debug start waits 15 s) holds a server thread that the server's shutdown below joins:
    // past a service manager's stop timeout, before the ledger's queued writes commit.
    std::vector<Waiter> ready;
    {
      absl::MutexLock lock(&core_->model.mu);
      core_->model.closing = true;
      ready = core_->model.waiters.Expire(absl::InfiniteFuture());
    }
    core_->Answer(std::move(ready));
  }
  if (http_) http_->Shutdown();
  if (core_) {
    // Wakes the dispatcher, which sleeps until the next due command.
    absl::MutexLock lock(&core_->model.mu);
    core_->model.wake = true;
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

}  // namespace steward::station
