// What an agent is started with (Agent::Start): its name and station, the broker
// connection, timings and limits, the syslog inputs and the security material.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "agent/acl.h"
#include "agent/facts.h"
#include "agent/method.h"
#include "agent/syslog/config.h"
#include "agent/supervisor.h"
#include "common/nats.h"
#include "common/outbox.h"
#include "common/signing.h"

namespace steward::agent {

class ConfigHost;

struct SyslogOptions {
  std::vector<std::string> udp;  // "host:port" to listen on
  std::vector<std::string> tcp;
  std::vector<syslog::TailSpec> tails;  // files to tail
  std::string state_dir;  // tail offsets
  size_t max_message_bytes = 64 * 1024;
  size_t udp_buffer_bytes = size_t{4} << 20;  // each UDP socket's receive buffer
  syslog::Zones zones;  // RFC 3164 timestamps: the agent's local zone unless configured
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
  // This installation (AgentStore::instance_id); empty: a fresh one for this run
  // (tests and simulated nodes without a store).
  std::string instance_id;
  std::string station = "station";
  nats::ConnectOptions nats;
  // When set, the agent uses this connection (not owned; it must outlive the agent)
  // instead of making its own: many simulated nodes can share a few connections.
  natsConnection* shared_connection = nullptr;
  // The agent's data directory: the free space under it rides in its hellos.
  std::string data_dir;
  // Where marks of the commands now running are kept, outside the data directory and
  // cleared by a reboot (agent/leftovers.h): a new installation of this node stops what
  // an earlier one left running. Empty: no marks.
  std::string run_dir;
  absl::Duration heartbeat = absl::Seconds(5);
  FactsOptions facts;  // reported in every hello
  size_t queue_capacity = 64;  // per subject
  // What the node buffers of commands not yet taken by its dispatcher: a flood at its
  // subjects costs at most this much memory (a small edge box has little to spare);
  // beyond it commands are dropped unanswered (the station sends its own again),
  // counted and reported.
  size_t intake_max_bytes = size_t{16} << 20;
  RestartPolicy restart;
  MethodLimits limits;
  OutboxOptions outbox;
  SyslogOptions syslog;
  AgentSecurity security;
  // The configuration it was loaded from: `config show/set/push`, and its hash rides
  // in the hellos. Null: none (tests, simulated nodes).
  std::shared_ptr<ConfigHost> config;
  // How long Shutdown waits for undelivered results before giving up on them
  // (they stay in a persistent spool, when there is one).
  absl::Duration shutdown_flush = absl::Milliseconds(500);
};

}  // namespace steward::agent
