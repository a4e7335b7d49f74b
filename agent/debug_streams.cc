// Implementation of DebugStreams: the log tap fills each session's pending text under
// the lock; one thread, every kTick, takes it and publishes it, ends the sessions whose
// time is up, and probes the operators (all outside the lock: no I/O under mu_).
#include "agent/debug_streams.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/nats.h"
#include "subjects/subject.h"

namespace steward::agent {
namespace {

// How often lines are published: a batch per session per tick.
constexpr absl::Duration kTick = absl::Milliseconds(100);
// A line is cut here, and a message holds at most kMaxMessage of lines.
constexpr size_t kMaxLine = 2048;
constexpr size_t kMaxMessage = size_t{256} << 10;

}  // namespace

DebugStreams::DebugStreams(natsConnection* conn, std::string node, DebugLimits limits)
    : conn_(conn), node_(std::move(node)), limits_(limits), thread_([this] { Run(); }) {}

DebugStreams::~DebugStreams() { Shutdown(); }

absl::StatusOr<std::string> DebugStreams::Start(LogLevel level, absl::Duration duration, const std::string& subject,
                                                const std::string& by) {
  if (absl::Status s = subjects::ValidateDebugStream(subject, node_); !s.ok()) return s;
  if (duration <= absl::ZeroDuration() || duration > limits_.max_for) {
    return absl::InvalidArgumentError(absl::StrCat("a debug stream lasts more than 0s and at most ",
                                                   absl::FormatDuration(limits_.max_for), ", not ",
                                                   absl::FormatDuration(duration)));
  }
  std::optional<LogLevel> tap;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the agent is stopping");
    for (const Session& s : sessions_) {
      if (s.subject == subject) return absl::AlreadyExistsError(absl::StrCat(subject, " is streaming already"));
    }
    if (sessions_.size() >= limits_.max_sessions) {
      return absl::ResourceExhaustedError(
          absl::StrCat(sessions_.size(), " debug streams run already (at most ", limits_.max_sessions, ")"));
    }
    const absl::Time now = absl::Now();
    Session& s = sessions_.emplace_back();
    s.number = next_number_++;
    s.subject = subject;
    s.level = level;
    s.until = now + duration;
    s.by = by;
    s.tokens = limits_.burst;
    s.refilled = now;
    s.next_probe = now + limits_.probe_every;
    tap = TapLevelLocked();
    wake_ = true;  // the thread sleeps while there is no session
  }
  SetLogTap(this, tap);
  const std::string what =
      fmt::format("streaming {} lines and above to {} for {}, at most {:.0f} lines/s", LogLevelName(level), subject,
                  absl::FormatDuration(duration), limits_.lines_per_second);
  Log(LogLevel::kInfo, "debug stream for {}: {}", by.empty() ? "an operator" : by, what);
  return what;
}

void DebugStreams::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    wake_ = true;
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  SetLogTap(this, std::nullopt);
}

size_t DebugStreams::sessions() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

void DebugStreams::OnLogLine(LogLevel level, std::string_view text) {
  if (text.size() > kMaxLine) text = text.substr(0, kMaxLine);
  const std::string line = fmt::format("{} {} {}\n", absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::UTCTimeZone()),
                                       LogLevelName(level), text);
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  for (Session& s : sessions_) {
    if (level < s.level) continue;
    s.tokens = std::min(limits_.burst, s.tokens + absl::ToDoubleSeconds(now - s.refilled) * limits_.lines_per_second);
    s.refilled = now;
    if (s.tokens >= 1) {
      s.tokens -= 1;
      s.pending += line;
    } else {
      ++s.dropped;
    }
  }
}

std::optional<LogLevel> DebugStreams::TapLevelLocked() const {
  std::optional<LogLevel> lowest;
  for (const Session& s : sessions_) {
    if (!lowest.has_value() || s.level < *lowest) lowest = s.level;
  }
  return lowest;
}

void DebugStreams::Publish(const std::string& subject, const std::string& lines) {
  // Best effort: a line that does not get through is not sent again.
  const std::string to = subject + ".line";
  size_t from = 0;
  while (from < lines.size()) {
    size_t n = std::min(kMaxMessage, lines.size() - from);
    if (from + n < lines.size()) {
      const size_t nl = lines.rfind('\n', from + n - 1);
      if (nl != std::string::npos && nl >= from) n = nl + 1 - from;
    }
    (void)nats::Publish(conn_, to, absl::string_view(lines).substr(from, n));
    from += n;
  }
}

void DebugStreams::End(const Session& s, const std::string& why) {
  (void)nats::Publish(conn_, s.subject + ".end", why);
  Log(LogLevel::kInfo, "debug stream {} for {} ended: {}", s.subject, s.by.empty() ? "an operator" : s.by, why);
}

void DebugStreams::Run() {
  std::optional<LogLevel> tapped;
  while (true) {
    struct Out {
      std::string subject;
      std::string lines;
    };
    std::vector<Out> out;
    std::vector<std::pair<Session, std::string>> ended;
    std::vector<std::pair<uint64_t, std::string>> probes;  // session number, subject
    std::optional<LogLevel> tap;
    bool stop = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&wake_), sessions_.empty() ? absl::InfiniteDuration() : kTick);
      wake_ = false;
      const absl::Time now = absl::Now();
      for (auto it = sessions_.begin(); it != sessions_.end();) {
        Session& s = *it;
        if (s.dropped > 0) {
          s.pending += fmt::format("[steward] {} lines dropped by the rate limit ({:.0f} lines/s, bursts of {:.0f})\n",
                                   s.dropped, limits_.lines_per_second, limits_.burst);
          s.dropped = 0;
        }
        if (!s.pending.empty()) out.push_back({s.subject, std::exchange(s.pending, {})});
        std::string why;
        if (stopping_) {
          why = "the agent is stopping";
        } else if (now >= s.until) {
          why = "its time is up";
        } else if (now >= s.next_probe) {
          probes.emplace_back(s.number, s.subject);
          s.next_probe = now + limits_.probe_every;
        }
        if (why.empty()) {
          ++it;
          continue;
        }
        ended.emplace_back(std::move(s), why);
        it = sessions_.erase(it);
      }
      tap = TapLevelLocked();
      stop = stopping_;
    }
    if (tap != tapped) {
      SetLogTap(this, tap);
      tapped = tap;
    }
    for (const Out& o : out) Publish(o.subject, o.lines);
    for (const auto& [s, why] : ended) End(s, why);
    for (const auto& [number, subject] : probes) {
      // The operator's client answers on the stream's own subject: no subscriber there
      // means it is gone (killed, Ctrl-C, its link broke).
      const absl::Status probe = nats::Request(conn_, subject + ".ping", "", limits_.probe_timeout).status();
      std::optional<Session> gone;
      std::string why;
      {
        absl::MutexLock lock(&mu_);
        for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
          if (it->number != number) continue;
          if (probe.ok()) {
            it->missed = 0;
          } else if (absl::IsUnavailable(probe) || ++it->missed >= limits_.max_missed) {
            why = absl::StrCat("the operator went away (", probe.message(), ")");
            gone = std::move(*it);
            sessions_.erase(it);
          }
          break;
        }
      }
      if (gone.has_value()) End(*gone, why);
    }
    if (stop) break;
  }
  if (conn_ != nullptr) (void)nats::Flush(conn_, absl::Milliseconds(500));
}

}  // namespace steward::agent
