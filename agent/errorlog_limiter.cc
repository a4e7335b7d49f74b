#include "agent/errorlog_limiter.h"

#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"

namespace steward::agent {
namespace {

// The kind key of the summaries for errors of too many kinds.
constexpr char kOtherKinds[] = "\x01other kinds";

// An error's text with each run of digits as "#": errors that differ only in their
// numbers are one kind.
std::string Shape(const std::string& error) {
  std::string out;
  out.reserve(error.size());
  bool in_number = false;
  for (const char c : error) {
    const bool digit = c >= '0' && c <= '9';
    if (!digit) {
      out.push_back(c);
    } else if (!in_number) {
      out.push_back('#');
    }
    in_number = digit;
  }
  return out;
}

}  // namespace

std::vector<proto::ErrorLog> ErrorLogLimiter::Flush(absl::Time now) {
  std::vector<proto::ErrorLog> out;
  if (now - window_start_ < window_) return out;
  for (auto& [kind, s] : suppressed_) {
    // The last one counted goes out and stands for the others like it.
    proto::ErrorLog summary = std::move(s.last);
    const uint64_t others = s.count - 1;
    const bool other_kinds = std::get<2>(kind) == kOtherKinds;
    if (others > 0) {
      summary.set_error(absl::StrCat(summary.error(), " (and ", others,
                                     other_kinds ? " more errors of other kinds" : " more like it", " since ",
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
  Kind kind{log.process(), log.severity(), Shape(log.error()), log.decision()};
  if (suppressed_.size() >= static_cast<size_t>(burst_) && suppressed_.find(kind) == suppressed_.end()) {
    // Too many kinds to summarise each: one summary per process stands for the rest.
    kind = Kind{log.process(), "", kOtherKinds, ""};
  }
  Suppressed& s = suppressed_[kind];
  ++s.count;
  s.last = std::move(log);
  return out;
}

}  // namespace steward::agent
