// SiteRules: when a site station takes control of its nodes and when it hands it back
// (issue 17 part 5; the engine-HA "edge location wins" rules). Pure: the caller passes
// the time and what the probes said, so every rule is unit-tested with an injected clock.
//
//   R1  no takeover while the central station answers, nor before `central_timeout`
//       has passed without an answer (counted from the start, too);
//   R2  takeover once nothing answered for `central_timeout`;
//   R3  hand-back when the central station answers again, at once without a window;
//   R4  with a restore window, hand-back only inside it: a closed window keeps control;
//   R5  (central side) a command queued centrally for a site node while the site is in
//       control is held, and goes out once after hand-back (station/site.h).
//
// A hand-back under way is finished whatever the window says (it started inside it,
// and the site stopped serving then).
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "station/cron.h"

namespace steward::station {

enum class SiteState {
  kCentral,      // the central station is in control: the site station only probes
  kControl,      // the site station serves its nodes
  kHandingBack,  // it stopped serving and sends its journal; then it releases
};
const char* SiteStateName(SiteState s);
absl::StatusOr<SiteState> ParseSiteState(absl::string_view text);

enum class SiteAction { kNone, kTakeControl, kHandBack };

class SiteRules {
 public:
  // `window` empty: hand back at once. Errors name the bad cron field or zone.
  static absl::StatusOr<SiteRules> Make(absl::Duration central_timeout, const std::string& window,
                                        absl::Duration window_length, const std::string& zone);

  // Whether `now` is inside a restore window: one of its starts is in (now - length, now].
  // Always true without a window.
  bool InRestoreWindow(absl::Time now) const;

  // What to do now, in `state`, when the central station last answered at
  // `last_answer` (the start, when it never did) and `answered` says whether the
  // latest probe was answered.
  SiteAction Decide(SiteState state, absl::Time last_answer, bool answered, absl::Time now) const;

  absl::Duration central_timeout() const { return central_timeout_; }

 private:
  absl::Duration central_timeout_;
  std::optional<CronSpec> window_;
  absl::Duration window_length_;
  absl::TimeZone zone_;
};

}  // namespace steward::station
