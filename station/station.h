// Station: the steward-station daemon as a library. It takes operators' commands from
// stewardctl (station.command.<method>.cli), keeps a record of every command,
// dispatches each to its node and retries until the node ACKs it (parking the commands
// of a node that has no responders until it is heard from again), collects results and
// events (station.event.*.*), answers waiters when commands end, and tracks each node's
// live state from its heartbeats.
//
// Thread-safe. One mutex guards the ledger; NATS replies are published outside it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/nats.h"
#include "common/request_pump.h"
#include "proto/steward.pb.h"

namespace steward::station {

struct StationOptions {
  std::string name = "station";
  nats::ConnectOptions nats;
  absl::Duration ack_timeout = absl::Seconds(2);       // wait for a node's received ACK
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(30);
  absl::Duration default_ttl = absl::Hours(24);
  absl::Duration default_timeout = absl::Minutes(10);  // execution timeout when none given
  // After a command's execution timeout, how long to wait for its result before asking
  // the node again (it answers with what it recorded).
  absl::Duration result_grace = absl::Seconds(10);
  int missed_heartbeats = 3;                           // offline after this many
  absl::Duration default_heartbeat = absl::Seconds(5);
};

class Station {
 public:
  static absl::StatusOr<std::unique_ptr<Station>> Start(StationOptions options);
  ~Station();
  Station(const Station&) = delete;
  Station& operator=(const Station&) = delete;
  void Shutdown();

 private:
  struct Command {
    proto::Envelope env;
    std::string state = "queued";
    proto::Ack result;
    int attempts = 0;
    absl::Time next_attempt;
    bool in_flight = false;
    absl::Time created;
    absl::Time updated;
  };
  struct Node {
    proto::NodeInfo info;
    absl::Time last_heard = absl::InfinitePast();
    absl::Duration heartbeat;
    bool known_online = false;
  };
  struct Waiter {
    std::vector<std::string> ids;
    std::string reply;
    absl::Time deadline;
  };
  struct Outgoing {  // a reply to publish once the lock is released
    std::string subject;
    std::string data;
  };

  explicit Station(StationOptions options);
  absl::Status Init();

  void IntakeLoop();
  void EventLoop();
  void DispatchLoop();
  void Serve(nats::MsgPtr msg, bool events);

  // Intake methods. Each returns the ACK to send back (its payload the answer).
  proto::Ack HandleSubmit(const proto::Envelope& req) ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<proto::Ack> HandleWait(const proto::Envelope& req, const std::string& reply)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<proto::Ack> HandlePing(const proto::Envelope& req, const std::string& reply);
  proto::Ack HandleNodes(const proto::Envelope& req) ABSL_LOCKS_EXCLUDED(mu_);
  proto::Ack HandleShow(const proto::Envelope& req) ABSL_LOCKS_EXCLUDED(mu_);
  // Events from nodes; the returned ACK tells the node whether it was stored.
  proto::Ack HandleEvent(const proto::Envelope& ev) ABSL_LOCKS_EXCLUDED(mu_);

  void OnNodeAck(const std::string& id, RequestPump::Result r, nats::MsgPtr msg)
      ABSL_LOCKS_EXCLUDED(mu_);
  void ApplyAckLocked(Command& c, const proto::Ack& ack, std::vector<Outgoing>& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(Command& c, const std::string& state, std::vector<Outgoing>& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HeardFromLocked(const std::string& node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkOfflineLocked(const std::string& node, const char* why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Node& NodeLocked(const std::string& node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleRetryLocked(Command& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AnswerWaitersLocked(const std::string& id, std::vector<Outgoing>& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  proto::CommandState StateOfLocked(const Command& c) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Outgoing WaiterReplyLocked(const Waiter& w) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish(std::vector<Outgoing>& out);
  bool IsTerminal(const std::string& state) const;

  const StationOptions options_;
  absl::Notification stop_;
  nats::ConnectionPtr conn_;
  std::unique_ptr<RequestPump> pump_;
  nats::SubscriptionPtr intake_sub_;
  nats::SubscriptionPtr event_sub_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Command> commands_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Node> nodes_ ABSL_GUARDED_BY(mu_);
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  bool wake_ ABSL_GUARDED_BY(mu_) = false;

  std::vector<std::thread> threads_;
};

// Terminal command states an operator sees.
bool IsTerminalState(absl::string_view state);

}  // namespace steward::station
