// Agent: the steward-agent daemon as a library. One NATS connection (reconnects
// forever); a dispatcher process that routes each message on <node>.command.*.* to the
// process of its subject (one thread + bounded queue per subject, created on demand
// for registered methods); the error kernel supervising them all; an outbox that
// delivers results and errorlog events to the station until it confirms them; a
// heartbeat that sends hello events. Each is a room of its own: dispatcher.h,
// process.h, heartbeat.h, events.h (every event sent to the station) and syslog/
// (log forwarding); the Agent wires them together and owns their threads.
//
//   nats::Library lib;
//   auto agent = Agent::Start(options, BuiltinMethods(), NewPosixCommandRunner(), ...);
//   ... wait for SIGTERM ...
//   (*agent)->Shutdown();   // stop intake, kill running commands, join, < 2 s
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/command_log.h"
#include "agent/command_runner.h"
#include "agent/control.h"
#include "agent/debug_streams.h"
#include "agent/dispatcher.h"
#include "agent/errorlog_limiter.h"
#include "agent/events.h"
#include "agent/heartbeat.h"
#include "agent/method.h"
#include "agent/options.h"
#include "agent/process.h"
#include "agent/supervisor.h"
#include "agent/syslog/forwarder.h"
#include "agent/syslog/input.h"
#include "common/nats.h"
#include "common/outbox.h"
#include "common/request_pump.h"
#include "proto/steward.pb.h"

namespace steward::agent {

class Agent final : public AgentControl {
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
  ~Agent() override;
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Stop intake, cancel running commands (their process groups are killed), join every
  // thread, give the outbox a moment to deliver results. Idempotent. `why` is what the
  // stopped commands' results say ("canceled: WHY").
  void Shutdown(absl::string_view why = CommandProcessor::kShuttingDown);

  // Notified when the agent cannot go on (its dispatcher was stopped by the error
  // kernel); main() then exits non-zero so the service manager restarts it.
  const absl::Notification& fatal() const { return fatal_; }
  // Serving: the dispatcher's subscription is on the broker (connected, and a round trip
  // to the server since it subscribed). What READY=1 waits for.
  bool Serving() const;
  // Why the agent's own broker connection is closed for good, when it is: nats.c gives
  // up on a broker that did not answer its first connect in time, or that refused its
  // credentials, and tries no more. main() starts the agent again (or undoes a change on
  // trial). nullopt while it is open or reconnecting, or on a shared connection.
  std::optional<std::string> BrokerClosed() const;
  // Alive: not fatal, the error kernel answers, and no watched process (the
  // dispatcher) has been quiet for `quiet`. What the service watchdog is fed on.
  bool Alive(absl::Duration quiet) const;
  size_t outbox_pending() const { return outbox_->pending(); }
  // Every supervised process, command handlers with their queues and counters.
  std::vector<proto::ProcessStatus> Processes() const;
  const std::string& node() const { return options_.node; }

  // AgentControl: the status and process methods' view of the agent.
  proto::AgentStatus Status() const override;
  absl::StatusOr<std::string> StopHandler(const std::string& name, bool cancel_running) override;
  absl::StatusOr<std::string> StartHandler(const std::string& name) override;
  ConfigHost* config() const override { return options_.config.get(); }
  DebugStreams* debug() const override { return debug_.get(); }
  // A new heartbeat interval, at once (a reloaded configuration).
  void SetHeartbeat(absl::Duration interval) { heartbeat_.SetInterval(interval); }
  // The station stored a hello of this agent's (what a change on trial waits for).
  bool HeardByStation() const { return heartbeat_.HeardByStation(); }

 private:
  Agent(AgentOptions options, MethodRegistry methods, std::unique_ptr<CommandRunner> runner,
        std::unique_ptr<CommandLog> log);
  absl::Status Init(std::unique_ptr<Spool> spool, const std::vector<proto::Ack>& interrupted,
                    std::unique_ptr<Spool> log_spool);
  absl::Status StartSyslog(std::unique_ptr<Spool> log_spool);
  // Before the processes stop (a reload, a shutdown): the syslog inputs finish their
  // open sources (TCP: each sender is told with a FIN and read until it closes), for at
  // most kSyslogDrainGrace, while the forwarder still spools what they read.
  void DrainSyslogInputs();
  static constexpr absl::Duration kSyslogDrainGrace = absl::Seconds(2);
  // The error kernel's decisions: each goes to the station as an errorlog event; the
  // dispatcher's stop is fatal().
  void OnDecision(const DecisionRecord& d) ABSL_LOCKS_EXCLUDED(errorlog_mu_);
  void SendErrorLogs(const std::vector<proto::ErrorLog>& logs);
  // The agent's counters for its hellos.
  void FillStats(proto::AgentStats& s) const;
  // Opens the run directory's marks (agent/leftovers.h) and stops what commands marked
  // there, unknown to this installation's log, left running: an earlier installation of
  // this node, whose data directory is gone, ran them. `interrupted` were stopped already.
  void StopEarlierInstallations(const std::vector<proto::Ack>& interrupted);
  // The reconnected callback's way to this agent: nats.c runs a connection's callbacks on
  // its own thread, possibly after the connection (and the agent) is gone. Shutdown
  // clears `agent` first, waiting for a callback that runs at that moment.
  struct ReconnectHook {
    absl::Mutex mu;
    Agent* agent ABSL_GUARDED_BY(mu) = nullptr;
  };
  // The broker connection is back: say so at once (hello, spooled events and logs).
  void OnReconnected();

  const AgentOptions options_;
  const MethodRegistry methods_;
  const std::shared_ptr<ReconnectHook> reconnect_hook_ = std::make_shared<ReconnectHook>();
  std::unique_ptr<CommandRunner> runner_;
  std::unique_ptr<CommandLog> log_;
  const EventWriter events_;
  Heartbeat heartbeat_;
  absl::Notification cancel_;  // running commands: stop now
  absl::Notification fatal_;
  std::atomic<bool> fatal_flag_{false};  // Notify() only once
  absl::Mutex errorlog_mu_;
  ErrorLogLimiter errorlog_limiter_ ABSL_GUARDED_BY(errorlog_mu_);
  std::atomic<uint64_t> restarts_{0};    // the error kernel's restart decisions (hello stats)

  // Declaration order is destruction order reversed: the connection outlives the pump,
  // the pump the outbox, the outbox the processes, which outlive the supervisor's threads.
  nats::ConnectionPtr owned_conn_;
  natsConnection* conn_ = nullptr;  // owned_conn_ or the shared one
  std::unique_ptr<RequestPump> pump_;
  std::unique_ptr<DebugStreams> debug_;  // publishes on conn_
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<Outbox> log_outbox_;  // syslog batches, drop-oldest when full
  std::unique_ptr<syslog::Forwarder> forwarder_;
  std::vector<std::unique_ptr<syslog::Input>> inputs_;
  std::unique_ptr<RunningMarks> marks_;  // null: none (no run directory)
  std::unique_ptr<CommandProcessor> processor_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<Supervisor> supervisor_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace steward::agent
