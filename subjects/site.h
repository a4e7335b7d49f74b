// Site control subjects (issue 17 part 5). A site station (a ship's own station, on its
// leaf broker) asks the central station, and only it, on
//   _STEWARD.site.<station>.<site>
// whether it answers (a probe), hands its journal back and says it released control.
// The central station serves _STEWARD.site.<station>.* ; a site station never
// subscribes there, so on the site's broker nobody answers while the link is cut.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace steward::subjects {

inline constexpr char kSitePrefix[] = "_STEWARD.site";

// "_STEWARD.site.<station>.<site>"; both tokens validated (ValidateToken).
absl::StatusOr<std::string> SiteSubject(absl::string_view station, absl::string_view site);
// "_STEWARD.site.<station>.*": what the central station serves.
absl::StatusOr<std::string> SitePattern(absl::string_view station);
// The site named by a subject SiteSubject made for `station`; InvalidArgument otherwise.
absl::StatusOr<std::string> ParseSiteSubject(absl::string_view subject, absl::string_view station);

}  // namespace steward::subjects
