// ErrorLogLimiter: how many error-kernel decisions become errorlog events. A flood of
// garbage at a node's subjects makes one decision per message; sent one by one they
// would fill the node's spool, the link and the station's table. So: at most `burst`
// events per `window`; past that, repeats are counted, and when the window turns
// one event per kind of error (process and error text, severity, decision) says how
// many were left out ("... (and 1,234 more like it in the last minute)"). Errors that
// differ only in their numbers ("(812 messages dropped so far)") are one kind, and a
// window holds at most `burst` kinds: further kinds are counted in one summary per
// process. Never silent: every decision is either sent or counted in one that is.
//
// Pure (given `now`); not thread-safe (the agent calls it under its own lock).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/time/time.h"
#include "proto/steward.pb.h"

namespace steward::agent {

class ErrorLogLimiter {
 public:
  explicit ErrorLogLimiter(int burst = 20, absl::Duration window = absl::Minutes(1))
      : burst_(burst), window_(window) {}

  // Offer decides about `log`: the events to send now (it, or none when it is only
  // counted; plus the summaries of a window that turned).
  std::vector<proto::ErrorLog> Offer(proto::ErrorLog log, absl::Time now);
  // Flush hands out the summaries of what was counted, when the window has turned.
  std::vector<proto::ErrorLog> Flush(absl::Time now);

 private:
  using Kind = std::tuple<std::string, std::string, std::string, std::string>;
  struct Suppressed {
    proto::ErrorLog last;
    uint64_t count = 0;
  };

  const int burst_;
  const absl::Duration window_;
  absl::Time window_start_ = absl::InfinitePast();
  int sent_ = 0;
  std::map<Kind, Suppressed> suppressed_;
};

}  // namespace steward::agent
