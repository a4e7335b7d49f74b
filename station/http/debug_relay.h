// DebugRelay: the station as the operator's client of an agent's debug stream (issue 14
// part 4), for the dashboard's node page and the HTTP API (station/http/debug.cc).
//
// An operator asks over HTTP; debug.cc sends the node's `debug` method through the
// ledger like any command, naming a stream subject the relay already listens on
// (subjects::DebugStream with the station's name as the reader). The agent then
// publishes its log lines there (agent/debug_streams.h): the relay keeps the latest
// of them in a ring per stream (bounded: a reader that fell behind is told how many
// it missed) and wakes the readers (Server-Sent Events, one per browser). It answers
// the agent's "still there?" probes only while a reader is connected, or for a short
// grace after the last one left (a browser reconnecting); past that it unsubscribes,
// and the agent's next probe finds nobody and ends the session. Stop does the same at
// once. The rate is the agent's (it limits every session); the relay adds no queue
// beyond the ring.
//
//   DebugRelay relay(core.conn());
//   const std::string id = DebugRelay::NewId();
//   auto s = relay.Open(id, "_DEBUG.station.ship1." + id, "ship1", "debug", absl::Minutes(5), "alice",
//                       "alice (http token t1)");
//   ... submit the node's debug command with s->subject ...
//   DebugRelay::Batch b = relay.Wait(s->id, after_seq, absl::Seconds(1));
//   relay.Stop(s->id, "stopped by alice");
//
// Nothing here is durable: a station restart forgets every stream (the agents' probes
// then find nobody and their sessions end). Thread-safe.
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/nats.h"

namespace steward::station::http {

class DebugRelay {
 public:
  struct Limits {
    size_t max_streams = 16;         // open at once, station-wide
    size_t ring_lines = 2000;        // kept per stream for readers that fall behind
    size_t ring_bytes = 1 << 20;     // and at most this much text per stream
    absl::Duration grace = absl::Seconds(5);   // no reader for this long: the stream ends
    absl::Duration first_reader = absl::Seconds(30);  // from Open to the first reader
    absl::Duration silence = absl::Seconds(15);  // past its end time with no word: ended
    absl::Duration keep_ended = absl::Minutes(2);  // an ended stream still answers reads
  };

  // What a stream is, as its readers see it.
  struct Info {
    std::string id;
    std::string node;
    std::string level;
    std::string by_name;   // the operator's name (its token's), who alone may read it
    std::string by;        // as recorded: "alice (http token t...)"
    std::string subject;   // what the agent publishes on
    std::string command;   // the debug command's id, once submitted
    absl::Time started;
    absl::Time until;
    int readers = 0;
    uint64_t lines = 0;    // received so far
    bool ended = false;
    std::string reason;    // why it ended
  };

  struct Line {
    uint64_t seq = 0;
    std::string text;  // one log line, without its '\n'
  };
  struct Batch {
    std::vector<Line> lines;  // after the asked seq, oldest first
    uint64_t missed = 0;      // lines after the asked seq that the ring no longer holds
    bool ended = false;       // and nothing more will come (reason in `reason`)
    std::string reason;
    bool gone = false;        // no such stream (never, or forgotten)
  };

  explicit DebugRelay(natsConnection* conn) : DebugRelay(conn, Limits{}) {}
  DebugRelay(natsConnection* conn, Limits limits);
  ~DebugRelay();  // Close()
  DebugRelay(const DebugRelay&) = delete;
  DebugRelay& operator=(const DebugRelay&) = delete;

  // A fresh stream id (a subject token).
  static std::string NewId();
  // Opens stream `id` of `node`'s log at `level` for `span` for operator `by_name` and
  // subscribes to `subject` (subjects::DebugStream; flushed: the broker has the
  // interest when this returns). ResourceExhausted past max_streams.
  absl::StatusOr<Info> Open(const std::string& id, const std::string& subject, const std::string& node, const std::string& level, absl::Duration span,
                            const std::string& by_name, const std::string& by) ABSL_LOCKS_EXCLUDED(mu_);
  // The command that started stream `id` (shown to readers).
  void SetCommand(const std::string& id, const std::string& command) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends stream `id` with `reason` and unsubscribes (the agent stops at its next probe).
  // False when there is no such stream or it had ended.
  bool Stop(const std::string& id, const std::string& reason) ABSL_LOCKS_EXCLUDED(mu_);
  // NotFound when there is no such stream.
  absl::StatusOr<Info> Get(const std::string& id) const ABSL_LOCKS_EXCLUDED(mu_);

  // A reader of `id` comes and goes (an SSE connection): while one is there the
  // relay answers the agent's probes.
  void AddReader(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  void RemoveReader(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  // The lines of `id` after `after`, waiting up to `timeout` for one when there are
  // none yet (or for the stream to end).
  Batch Wait(const std::string& id, uint64_t after, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  // Ends every stream ("the station is stopping"), wakes every reader, joins. Idempotent.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Stream {
    Info info;
    nats::SubscriptionPtr sub;
    std::deque<Line> ring;
    size_t ring_bytes = 0;
    uint64_t next_seq = 1;
    absl::Time unread_since;  // when the last reader left (or Open, before the first)
    bool ever_read = false;
    absl::Time ended_at;
  };
  static void OnMsg(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* self);
  void Handle(nats::MsgPtr msg) ABSL_LOCKS_EXCLUDED(mu_);
  // Marks `s` ended and wakes its readers. Its subscription is destroyed unlocked by
  // whoever ended it, or by the housekeeper (never from inside its own callback).
  void EndLocked(Stream& s, const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AnswersLocked(const Stream& s, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends streams unread past their grace or silent past their end; forgets old ones.
  void Housekeeping() ABSL_LOCKS_EXCLUDED(mu_);

  natsConnection* const conn_;
  const Limits limits_;
  mutable absl::Mutex mu_;
  std::map<std::string, Stream> streams_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread housekeeper_;
};

}  // namespace steward::station::http
