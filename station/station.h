// Station: the steward-station daemon as a library. It takes operators' requests from
// stewardctl (station.command.<method>.cli), keeps a record of every command,
// dispatches each to its node and retries until the node ACKs it (parking the commands
// of a node that has no responders until it is heard from again), collects results and
// events (station.event.*.*), answers waiters when commands end, and tracks each node's
// live state from its heartbeats.
//
//   auto station = Station::Start(options);   // opens the ledger, connects, serves
//   ... wait for SIGTERM ...
//   (*station)->Shutdown();                    // stops, commits what is queued
//
// The rooms, each a file of this folder: rpc (the operator API's routing),
// command_api, queries, node_api and security (its methods), intake (events from
// nodes), dispatcher (sending and housekeeping), and the model they share (core):
// commands, nodes, waiters and access, pure tables; ledger/ is the SQLite store.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/nats.h"
#include "common/request_pump.h"
#include "proto/ha.pb.h"
#include "station/options.h"

namespace steward::station {

class Core;
class Rpc;
class CommandApi;
class Queries;
class NodeApi;
class Security;
class Intake;
class Backlog;
class Dispatcher;
class JobRunner;
class TargetingApi;
class Operations;
class OutputApi;
class Approvals;
class SiteDesk;
struct SiteMessage;
class SiteRules;
namespace ledger {
class Store;
}
namespace ha {
class Lease;
class Journal;
class Roster;
struct FollowState;
}
struct Call;
namespace http {
class Tokens;
class Server;
}

class Station {
 public:
  static absl::StatusOr<std::unique_ptr<Station>> Start(StationOptions options);
  // The HTTP server's port (0 without one).
  int http_port() const;
  ~Station();
  Station(const Station&) = delete;
  Station& operator=(const Station&) = delete;
  // Stops serving, sends nothing more, and commits what is queued. Idempotent.
  void Shutdown();
  // Serving: the ledger is open and the subscriptions are on the broker (connected, and a
  // round trip to the server since). What READY=1 waits for.
  bool Serving() const;
  // Alive: the dispatcher loop turned within `quiet` (it wakes every 50 ms). What the
  // service watchdog is fed on.
  bool Alive(absl::Duration quiet) const;
  // High availability (options.ha): whether this instance is the active one (always,
  // without HA), and whether it lost the lease while active: it has stopped acting and
  // the process should end, to come back as a standby.
  bool Active() const { return active_.load(std::memory_order_acquire); }
  bool Fenced() const { return fenced_.load(); }
  // Why its broker connection is closed for good, when it is: nats.c closes it when the
  // first connect times out (a broker that accepts the TCP connection and says nothing)
  // and on refused credentials, whatever the reconnect settings. main() then starts the
  // station again in its process.
  std::optional<std::string> BrokerClosed() const;
  // Whether Start failed for want of its broker (the connection closed for good; with
  // --ha also a broker not up yet, since the lease is on it): it may be started again
  // later. Any other failure is one of its configuration or ledger.
  static bool BrokerNotReached(const absl::Status& st);

 private:
  explicit Station(StationOptions options);
  absl::Status Init();
  absl::Status Connect();
  // Builds the rooms over the open ledger and the connection, and subscribes.
  absl::Status Serve();
  // The standby's thread: follows the journal until it holds the lease, then serves,
  // renews the lease, and stops acting the moment it is lost.
  void RunHa();
  // Tells every thread to stop (once, from any thread).
  void Stop();
  // HA: what this instance says about itself in the roster (station/ha/roster.h), and
  // the thread that says it every second.
  proto::StationInstance Self() const;
  void RunRoster();
  // The active instance: drops the journal entries every standby in the roster has
  // applied, but the newest options_.ha.journal_keep.
  void CompactJournal();
  // Answers station.command.stations.cli (`stewardctl station status`).
  void AnswerStatus(const Call& call);
  // Site station (options.site): probes the central station, takes control of its nodes
  // and hands it back by the rules of station/site_rules.h.
  void RunSite();
  void TakeControl();
  // Stops serving (a hand-back), leaving the ledger open: the rooms are torn down.
  void StopServing();
  // Ends the event streams and the HTTP server, wakes the dispatcher and joins the
  // serving threads (told to stop already): Shutdown's and StopServing's first step.
  void JoinServingThreads();
  // Sends the journal after the cursor, then releases; false when central stopped
  // answering (tried again at the next probe).
  bool HandBack();
  // Logs a refusal of the central station, once per reason.
  void SayRefused(const absl::Status& refused);
  absl::Status AskCentral(const SiteMessage& m, absl::Duration timeout);
  // Serves messages from `sub` until Shutdown.
  // `backlog` watches `sub` (falling behind is logged and counted).
  void Serve(const absl::Notification& stop, natsSubscription* sub, Backlog& backlog,
             const std::function<void(nats::MsgPtr)>& serve);

  const StationOptions options_;
  absl::Notification stop_;
  std::once_flag stop_once_;
  std::atomic<bool> shut_down_{false};
  nats::ConnectionPtr conn_;
  std::string inbox_prefix_;
  std::unique_ptr<ha::Lease> lease_;
  std::unique_ptr<ha::Journal> journal_;
  std::unique_ptr<ha::FollowState> follow_;
  std::thread ha_thread_;
  std::unique_ptr<ha::Roster> roster_;
  std::thread roster_thread_;
  std::atomic<uint64_t> journal_first_{0};  // the first entry the journal keeps, when last looked at
  std::string instance_;
  std::atomic<int64_t> role_since_unix_ms_{0};  // when it became a standby, then active
  std::atomic<bool> active_{false};
  std::atomic<bool> fenced_{false};
  std::unique_ptr<ledger::Store> store_;
  std::unique_ptr<RequestPump> pump_;
  std::unique_ptr<Core> core_;
  std::unique_ptr<Rpc> rpc_;
  std::unique_ptr<CommandApi> command_api_;
  std::unique_ptr<Queries> queries_;
  std::unique_ptr<NodeApi> node_api_;
  std::unique_ptr<Security> security_;
  std::unique_ptr<Intake> intake_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<JobRunner> job_runner_;
  std::unique_ptr<TargetingApi> targeting_api_;
  std::unique_ptr<Operations> operations_;
  std::unique_ptr<OutputApi> output_api_;
  std::unique_ptr<Approvals> approvals_;
  std::unique_ptr<http::Tokens> tokens_;
  std::unique_ptr<http::Server> http_;
  nats::SubscriptionPtr requests_;
  nats::SubscriptionPtr events_;
  std::unique_ptr<Backlog> requests_backlog_;
  std::unique_ptr<Backlog> events_backlog_;
  std::vector<std::thread> threads_;
  // What the serving threads stop on: Stop(), or a site station's hand-back.
  absl::Mutex serving_mu_;
  std::shared_ptr<absl::Notification> serving_stop_ ABSL_GUARDED_BY(serving_mu_);
  // Central station: the site desk (station/site.h) and its subscription.
  std::unique_ptr<SiteDesk> site_desk_;
  nats::SubscriptionPtr site_requests_;
  // Site station.
  std::unique_ptr<SiteRules> site_rules_;
  std::thread site_thread_;
  std::atomic<int> site_state_{0};  // a SiteState; written by the site thread only (after Init)
  std::atomic<int64_t> site_since_ms_{0};
  std::atomic<int64_t> site_cursor_{0};
  std::string site_refused_;  // the last refusal logged (RunSite's thread)
};

}  // namespace steward::station
