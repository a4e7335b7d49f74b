#include "subjects/site.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "subjects/subject.h"

namespace steward::subjects {

absl::StatusOr<std::string> SiteSubject(absl::string_view station, absl::string_view site) {
  if (absl::Status st = ValidateToken(station); !st.ok()) return st;
  if (absl::Status st = ValidateToken(site); !st.ok()) return st;
  return absl::StrCat(kSitePrefix, ".", station, ".", site);
}

absl::StatusOr<std::string> SitePattern(absl::string_view station) {
  if (absl::Status st = ValidateToken(station); !st.ok()) return st;
  return absl::StrCat(kSitePrefix, ".", station, ".*");
}

absl::StatusOr<std::string> ParseSiteSubject(absl::string_view subject, absl::string_view station) {
  const std::string prefix = absl::StrCat(kSitePrefix, ".", station, ".");
  if (!absl::StartsWith(subject, prefix)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", subject, "\" is not a site subject of station ", station));
  }
  absl::string_view site = subject.substr(prefix.size());
  if (absl::Status st = ValidateToken(site); !st.ok()) return st;
  return std::string(site);
}

}  // namespace steward::subjects
