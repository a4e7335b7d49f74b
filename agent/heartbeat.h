// Heartbeat: the supervised "heartbeat" process. It sends the station a hello event
// (version, start time, host, OS, load, methods, heartbeat interval, the node's public
// key, its facts for targeting: agent/facts.h) every interval, at once after a
// reconnect (Wake), and again after 500 ms (or the interval, when shorter) while the
// station has not confirmed the last one.
// Hellos are not spooled: a stale one is worthless, the next one follows.
//
// Thread-safe.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/events.h"
#include "agent/facts.h"
#include "agent/supervisor.h"
#include "common/request_pump.h"
#include "proto/steward.pb.h"

namespace steward::agent {

// The process's own resources (RSS, CPU, open fds; free space under `data_dir`), from
// /proc and getrusage, into `s`.
void ReadResources(const std::string& data_dir, proto::AgentStats& s);

class Heartbeat {
 public:
  // The supervisor's name for the heartbeat process.
  static constexpr char kProcessName[] = "heartbeat";

  // `events` must outlive the heartbeat. `public_key`: the node key's, "" for none.
  Heartbeat(const EventWriter& events, std::vector<std::string> methods,
            absl::Duration interval, std::string public_key, FactsOptions facts = {});

  // The process body: sends hellos through `pump` until Stop.
  absl::Status Run(ProcessContext& ctx, RequestPump& pump) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends a hello now (the connection came back).
  void Wake() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends Run, at shutdown.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // `tick` runs on the heartbeat's thread with every hello (set before Run): for what
  // else must happen every interval.
  void OnTick(std::function<void()> tick) { tick_ = std::move(tick); }
  // Every hello carries the agent's counters (proto AgentStats): `fill` adds the
  // agent's own (queues, restarts, outbox, log drops); the heartbeat reads the
  // process's resources (memory, CPU, descriptors) and the free space under
  // `data_dir`. Set before Run.
  void SetStats(std::function<void(proto::AgentStats&)> fill, std::string data_dir);
  absl::Time started() const { return started_; }
  // Hellos from now on every `interval` (the next one at once).
  void SetInterval(absl::Duration interval) ABSL_LOCKS_EXCLUDED(mu_);
  // The station stored a hello of this start (it hears this agent).
  bool HeardByStation() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void SendHello(RequestPump& pump) ABSL_LOCKS_EXCLUDED(mu_);

  const EventWriter& events_;
  const std::vector<std::string> methods_;
  absl::Duration interval_ ABSL_GUARDED_BY(mu_);
  const std::string public_key_;
  const FactsOptions facts_;
  const absl::Time started_;
  std::string facts_problems_;  // reported when they change (SendHello's thread only)
  std::function<void()> tick_;
  std::function<void(proto::AgentStats&)> fill_stats_;
  std::string data_dir_;

  mutable absl::Mutex mu_;
  bool now_ ABSL_GUARDED_BY(mu_) = true;         // send a hello without waiting
  bool stop_ ABSL_GUARDED_BY(mu_) = false;       // shutting down
  bool confirmed_ ABSL_GUARDED_BY(mu_) = false;  // the station stored the last one
  bool heard_ ABSL_GUARDED_BY(mu_) = false;      // ... or any one since the start
};

}  // namespace steward::agent
