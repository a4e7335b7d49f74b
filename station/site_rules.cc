#include "station/site_rules.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace steward::station {

const char* SiteStateName(SiteState s) {
  switch (s) {
    case SiteState::kCentral:
      return "central";
    case SiteState::kControl:
      return "control";
    case SiteState::kHandingBack:
      return "handing-back";
  }
  return "central";
}

absl::StatusOr<SiteState> ParseSiteState(absl::string_view text) {
  if (text == "central") return SiteState::kCentral;
  if (text == "control") return SiteState::kControl;
  if (text == "handing-back") return SiteState::kHandingBack;
  return absl::InvalidArgumentError(absl::StrCat("unknown site state \"", text, "\""));
}

absl::StatusOr<SiteRules> SiteRules::Make(absl::Duration central_timeout, const std::string& window,
                                          absl::Duration window_length, const std::string& zone) {
  if (central_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the central timeout must be longer than 0s");
  }
  SiteRules r;
  r.central_timeout_ = central_timeout;
  r.window_length_ = window_length;
  if (!window.empty()) {
    if (window_length <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("the restore window's length must be longer than 0s");
    }
    absl::StatusOr<CronSpec> spec = CronSpec::Parse(window);
    if (!spec.ok()) return absl::InvalidArgumentError(absl::StrCat("restore window: ", spec.status().message()));
    r.window_ = *std::move(spec);
  }
  STEWARD_ASSIGN_OR_RETURN(r.zone_, LoadZone(zone));
  return r;
}

bool SiteRules::InRestoreWindow(absl::Time now) const {
  if (!window_.has_value()) return true;
  // The first start after (now - length) is a start no older than `length`: inside
  // when it is not in the future.
  return window_->Next(now - window_length_, zone_) <= now;
}

SiteAction SiteRules::Decide(SiteState state, absl::Time last_answer, bool answered, absl::Time now) const {
  switch (state) {
    case SiteState::kCentral:
      // R1 / R2.
      if (!answered && now - last_answer >= central_timeout_) return SiteAction::kTakeControl;
      return SiteAction::kNone;
    case SiteState::kControl:
      // R3 / R4: central answers again; the window decides.
      if (answered && InRestoreWindow(now)) return SiteAction::kHandBack;
      return SiteAction::kNone;
    case SiteState::kHandingBack:
      // Finish it whenever central answers.
      return answered ? SiteAction::kHandBack : SiteAction::kNone;
  }
  return SiteAction::kNone;
}

}  // namespace steward::station
