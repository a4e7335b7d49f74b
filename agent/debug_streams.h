// DebugStreams: the agent's own log lines, live, to operators who asked for them
// (`stewardctl debug NODE --level debug --for 5m`, the `debug` method).
//
// Each session has its level, an end time and a stream subject that only its operator
// reads (subjects::DebugStream). It taps common/log (SetLogTap), so lines below the
// agent's stderr level are streamed without changing what the agent logs for anybody
// else. The lines are best-effort NATS publishes:
//   <subject>.line   a batch of lines, '\n'-terminated
//   <subject>.ping   a request every `probe_every`: the operator's "still there?"
//   <subject>.end    the reason the session ended
// A session ends at its end time, when its operator is gone (a probe finds no
// subscriber, or `max_missed` probes in a row go unanswered), or when the agent stops.
// Each session is rate-limited (a token bucket); what the limit drops is counted and
// said in the stream ("[steward] N lines dropped ...").
//
// Thread-safe. One thread publishes for every session.
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/log.h"

namespace steward::agent {

struct DebugLimits {
  double lines_per_second = 200;  // per session, sustained
  double burst = 400;             // per session, at once
  size_t max_sessions = 8;
  absl::Duration max_for = absl::Hours(24);
  absl::Duration probe_every = absl::Seconds(2);
  absl::Duration probe_timeout = absl::Seconds(2);
  int max_missed = 3;  // unanswered probes in a row that end a session
};


class DebugStreams final : public LogTap {
 public:
  DebugStreams(natsConnection* conn, std::string node, DebugLimits limits = {});
  ~DebugStreams() override;  // Shutdown()
  DebugStreams(const DebugStreams&) = delete;
  DebugStreams& operator=(const DebugStreams&) = delete;

  // Starts streaming lines at or above `level` to `subject` for `duration`, for
  // operator `by`. InvalidArgument for a subject that is not this node's debug stream
  // or a duration out of range; ResourceExhausted past max_sessions. Returns a line
  // saying what was started.
  absl::StatusOr<std::string> Start(LogLevel level, absl::Duration duration, const std::string& subject,
                                    const std::string& by) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends every session ("the agent is stopping") and joins the thread. Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);
  size_t sessions() const ABSL_LOCKS_EXCLUDED(mu_);

  void OnLogLine(LogLevel level, std::string_view text) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Session {
    uint64_t number = 0;
    std::string subject;
    LogLevel level = LogLevel::kInfo;
    absl::Time until;
    std::string by;
    double tokens = 0;
    absl::Time refilled;
    uint64_t dropped = 0;  // since the last notice
    std::string pending;   // lines not published yet
    absl::Time next_probe;
    int missed = 0;
  };
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // The lowest level any session wants (nullopt: none), for SetLogTap.
  std::optional<LogLevel> TapLevelLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Publishes a session's lines on <subject>.line, in messages of at most 256 KiB.
  void Publish(const std::string& subject, const std::string& lines);
  // Ends `s` (already removed from sessions_): its end message and a log line.
  void End(const Session& s, const std::string& why);

  natsConnection* const conn_;
  const std::string node_;
  const DebugLimits limits_;
  mutable absl::Mutex mu_;
  std::list<Session> sessions_ ABSL_GUARDED_BY(mu_);
  uint64_t next_number_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace steward::agent
