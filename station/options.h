// StationOptions: everything steward-station is configured with.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/cpu_affinity.h"
#include "common/nats.h"
#include "common/signing.h"
#include "station/http/options.h"

namespace steward::station {

struct StationOptions {
  std::string name = "station";
  std::string data_dir;  // the ledger: <data_dir>/station.db (required)
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
  // Terminal commands stay in memory this long (for waiters), then only in the ledger.
  absl::Duration keep_finished = absl::Seconds(30);
  // Syslog retention: lines older than this, and beyond the newest max lines, go.
  absl::Duration log_retention = absl::Hours(24 * 7);
  int64_t log_max_lines = 10'000'000;
  absl::Duration log_prune_every = absl::Minutes(1);
  // Events (errorlog, the raw hellos kept for the record) and node transitions: older
  // than this, and beyond the newest max rows, go (with the syslog pruning).
  absl::Duration event_retention = absl::Hours(24 * 30);
  int64_t event_max_rows = 1'000'000;
  // Security. With a key the station signs every command, and nodes must be accepted
  // (their announced key pinned) before their results and events are stored.
  std::optional<signing::KeyPair> key;
  // Operators whose signed requests are accepted; empty: any request (development).
  std::shared_ptr<signing::TrustedKeys> operators;
  // The keys directory (stewardctl keys init): names enrolled there (nodes/<name>/)
  // are the nodes the station issued credentials for, and a node key made at
  // enrolment (nodes/<name>/node.pub) is pinned at the node's first hello.
  std::string keys_dir;
  // The HTTP API, dashboard, event stream and /metrics (station/http/).
  http::HttpOptions http;
  // High availability (station/ha/): several instances of one station name, one active
  // (the lease holder), the others following the replicated ledger.
  struct Ha {
    bool enabled = false;
    absl::Duration lease = absl::Seconds(5);
    int replicas = 1;  // of the lease bucket and the journal stream: 3 on a three-broker cluster
    std::string instance;  // this instance's name in the lease (default: host, pid and a random part)
    // The active instance drops journal entries that every standby in the roster has
    // applied, keeping at least this many of the newest (0: drops nothing).
    int64_t journal_keep = 100'000;
  } ha;
  // Site control (station/site.h, issue 17 part 5): a site station runs on a site's
  // (a ship's) leaf broker under the central station's name, and takes over dispatch
  // for `nodes` while the central station does not answer for `central_timeout`; it
  // hands control back when it answers again (only inside the restore window when one
  // is set). Empty name: a central (or single-host) station.
  struct Site {
    std::string name;
    std::vector<std::string> nodes;
    absl::Duration probe_every = absl::Seconds(1);
    absl::Duration central_timeout = absl::Seconds(30);
    std::string restore_window;  // cron (station/cron.h); empty: hand back at once
    absl::Duration restore_length = absl::Hours(1);
    std::string restore_zone;  // the window's time zone; empty: UTC
    int batch_entries = 100;   // journal entries per hand-back request
  } site;
  // --cpus: the CPUs the station's threads are kept on (common/cpu_affinity.h), applied
  // by main before any thread starts; none: every CPU the process may use.
  std::optional<CpuList> cpus;
};

}  // namespace steward::station
