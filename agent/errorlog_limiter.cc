#include "agent/errorlog_limiter.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace steward::agent {

std::vector<proto::ErrorLog> ErrorLogLimiter::Flush(absl::Time now) {
  std::vector<proto::ErrorLog> out;
  if (now - window_start_ < window_) return out;
  for (auto& [kind, s] : suppressed_) {
    // The last one counted goes out and stands for the others like it.
    proto::ErrorLog summary = std::move(s.last);
    const uint64_t others = s.count - 1;
    if (others > 0) {
      summary.set_error(absl::StrCat(summary.error(), " (and ", others, " more like it since ",
                                     absl::FormatTime("%H:%M:%S", window_start_, absl::UTCTimeZone()),
                                     " UTC)"));
    }
    summary.set_suppressed(others);
    out.push_back(std::move(summary));
  }
  suppressed_.clear();
  window_start_ = now;
  sent_ = static_cast<int>(out.size());
  return out;
}

std::vector<proto::ErrorLog> ErrorLogLimiter::Offer(proto::ErrorLog log, absl::Time now) {
  std::vector<proto::ErrorLog> out = Flush(now);
  if (sent_ < burst_) {
    ++sent_;
    out.push_back(std::move(log));
    return out;
  }
  Suppressed& s = suppressed_[Kind{log.process(), log.severity(), log.error(), log.decision()}];
  ++s.count;
  s.last = std::move(log);
  return out;
}

}  // namespace steward::agent
