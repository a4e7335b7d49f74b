// Agent: the steward-agent daemon as a library. One NATS connection (reconnects
// forever); a dispatcher process that routes each message on <node>.command.*.* to the
// process of its subject (one thread + bounded queue per subject, created on demand
// for registered methods); the error kernel supervising them all; an outbox that
// delivers results and errorlog events to the station until it confirms them; a
// heartbeat that sends hello events.
//
//   nats::Library lib;
//   auto agent = Agent::Start(options, BuiltinMethods(), NewPosixCommandRunner(), ...);
//   ... wait for SIGTERM ...
//   (*agent)->Shutdown();   // stop intake, kill running commands, join, < 2 s
//
// Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/acl.h"
#include "agent/command_log.h"
#include "agent/command_runner.h"
#include "agent/method.h"
#include "agent/supervisor.h"
#include "agent/syslog/forwarder.h"
#include "agent/syslog/input.h"
#include "common/bounded_queue.h"
#include "common/nats.h"
#include "common/outbox.h"
#include "common/request_pump.h"
#include "common/signing.h"

namespace steward::agent {

struct SyslogOptions {
  std::vector<std::string> udp;  // "host:port" to listen on
  std::vector<std::string> tcp;
  // Files to tail: path and domain ("" = each line's app-name).
  std::vector<std::pair<std::string, std::string>> tails;
  std::string state_dir;  // tail offsets
  size_t max_message_bytes = 64 * 1024;
  size_t spool_max_bytes = size_t{256} << 20;  // then the oldest batches are dropped
  size_t batch_lines = 500;
  absl::Duration batch_delay = absl::Milliseconds(100);
};

struct AgentSecurity {
  // Station keys whose signatures the agent accepts. Empty: unsigned commands are run
  // (development only; the agent says so at start).
  std::shared_ptr<signing::TrustedKeys> trusted;
  // Signs everything the agent sends (results, events, hellos); announced in hellos.
  std::optional<signing::KeyPair> node_key;
  std::shared_ptr<Acl> acl;  // null: an in-memory ACL (accept all until set)
  // Signed commands must expire within this long: the command log keeps every id at
  // least that long, so a replay is always recognised.
  absl::Duration max_ttl = absl::Hours(24 * 7);
};

struct AgentOptions {
  std::string node;
  std::string station = "station";
  nats::ConnectOptions nats;
  // When set, the agent uses this connection (not owned; it must outlive the agent)
  // instead of making its own: many simulated nodes can share a few connections.
  natsConnection* shared_connection = nullptr;
  absl::Duration heartbeat = absl::Seconds(5);
  size_t queue_capacity = 64;  // per subject
  RestartPolicy restart;
  MethodLimits limits;
  OutboxOptions outbox;
  SyslogOptions syslog;
  AgentSecurity security;
  // How long Shutdown waits for undelivered results before giving up on them
  // (they stay in a persistent spool, when there is one).
  absl::Duration shutdown_flush = absl::Milliseconds(500);
};

class Agent {
 public:
  // Start validates the options, connects (in the background if the server is not up
  // yet), and starts the dispatcher, heartbeat and outbox. InvalidArgument for a bad
  // node or station name.
  // `interrupted`: commands the log holds as received with no result (the previous
  // run of the agent stopped while they ran); each gets a truthful final result.
  static absl::StatusOr<std::unique_ptr<Agent>> Start(AgentOptions options,
                                                      MethodRegistry methods,
                                                      std::unique_ptr<CommandRunner> runner,
                                                      std::unique_ptr<CommandLog> log,
                                                      std::unique_ptr<Spool> spool,
                                                      std::vector<proto::Ack> interrupted = {},
                                                      std::unique_ptr<Spool> log_spool = nullptr);
  // The ports the syslog listeners bound (in the order configured: udp, then tcp).
  std::vector<uint16_t> syslog_ports() const;
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Stop intake, cancel running commands (their process groups are killed), join every
  // thread, give the outbox a moment to deliver results. Idempotent.
  void Shutdown();

  // Notified when the agent cannot go on (its dispatcher was stopped by the error
  // kernel); main() then exits non-zero so the service manager restarts it.
  const absl::Notification& fatal() const { return fatal_; }
  size_t outbox_pending() const { return outbox_->pending(); }
  const std::string& node() const { return options_.node; }

 private:
  struct Work {
    proto::Envelope command;
    std::string reply;
  };
  using WorkQueue = BoundedQueue<Work>;

  Agent(AgentOptions options, MethodRegistry methods, std::unique_ptr<CommandRunner> runner,
        std::unique_ptr<CommandLog> log);
  absl::Status Init(std::unique_ptr<Spool> spool, const std::vector<proto::Ack>& interrupted,
                    std::unique_ptr<Spool> log_spool);
  absl::Status StartSyslog(std::unique_ptr<Spool> log_spool);

  // Ends intake at shutdown: no new processes, and the dispatcher and the processes,
  // which sleep until there is work, are woken to return.
  void StopIntake() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status DispatchLoop(ProcessContext& ctx) ABSL_LOCKS_EXCLUDED(mu_);
  void Route(ProcessContext& ctx, nats::MsgPtr msg);
  void Reject(ProcessContext& ctx, const std::string& reply, const std::string& id,
              const std::string& reason);
  // The queue of the process serving `subject`, started on first use; nullptr when the
  // error kernel has stopped that process.
  std::shared_ptr<WorkQueue> ProcessFor(const std::string& subject, const std::string& method)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status ProcessLoop(ProcessContext& ctx, const std::string& method,
                           const std::shared_ptr<WorkQueue>& queue);
  absl::Status Handle(ProcessContext& ctx, Method& method, const Work& work);
  // Records the result and queues it for the station as a result event.
  absl::Status SendResult(const std::string& domain, const std::string& request_id, proto::Ack ack);
  absl::Status HeartbeatLoop(ProcessContext& ctx);
  void SendHello();
  void OnDecision(const DecisionRecord& d);
  absl::Status ReplyAck(const std::string& reply, const proto::Ack& ack);
  // Signs an outgoing envelope with the node key (when there is one).
  void Seal(proto::Envelope& env) const;
  // Signature, expiry horizon and ACL checks of an incoming command.
  absl::Status Admit(const proto::Envelope& env) const;

  const AgentOptions options_;
  const MethodRegistry methods_;
  std::unique_ptr<CommandRunner> runner_;
  std::unique_ptr<CommandLog> log_;
  const absl::Time started_;
  absl::Notification cancel_;  // running commands: stop now
  absl::Notification fatal_;
  std::atomic<bool> fatal_flag_{false};  // Notify() only once
  absl::Mutex hello_mu_;
  bool hello_now_ ABSL_GUARDED_BY(hello_mu_) = true;      // send a hello without waiting
  bool hello_stop_ ABSL_GUARDED_BY(hello_mu_) = false;    // shutting down
  bool hello_confirmed_ ABSL_GUARDED_BY(hello_mu_) = false;  // the station stored the last one

  // Declaration order is destruction order reversed: the connection outlives the pump,
  // the pump the outbox, the outbox the supervisor.
  nats::ConnectionPtr owned_conn_;
  natsConnection* conn_ = nullptr;  // owned_conn_ or the shared one
  std::unique_ptr<RequestPump> pump_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<Outbox> log_outbox_;  // syslog batches, drop-oldest when full
  std::unique_ptr<syslog::Forwarder> forwarder_;
  std::vector<std::unique_ptr<syslog::Input>> inputs_;
  std::unique_ptr<Supervisor> supervisor_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<WorkQueue>> queues_ ABSL_GUARDED_BY(mu_);
  natsSubscription* dispatch_sub_ ABSL_GUARDED_BY(mu_) = nullptr;  // the dispatcher's, while it runs
  bool intake_closed_ ABSL_GUARDED_BY(mu_) = false;                // StopIntake ran
  std::atomic<bool> shut_down_{false};
};

}  // namespace steward::agent
