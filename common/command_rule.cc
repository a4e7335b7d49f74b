#include "common/command_rule.h"

#include <fnmatch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "subjects/subject.h"

namespace steward {

std::string CommandRuleText(const proto::Envelope& c) {
  if (c.shell().use_shell() && c.argv_size() == 1) return absl::StrCat("/bin/sh -c ", c.argv(0));
  return absl::StrJoin(c.argv(), " ");
}

std::string CommandShownText(const proto::Envelope& c) {
  std::string out = CommandRuleText(c);
  if (c.shell().env_size() > 0) absl::StrAppend(&out, " [env: ", absl::StrJoin(c.shell().env(), " "), "]");
  if (!c.shell().working_dir().empty()) absl::StrAppend(&out, " [in: ", c.shell().working_dir(), "]");
  return out;
}

bool CommandRuleMatches(absl::string_view rule, const proto::Envelope& c) {
  const size_t colon = rule.find(':');
  const absl::string_view method = rule.substr(0, colon);
  if (method != c.method()) return false;
  if (colon == absl::string_view::npos) return true;
  const std::string glob(rule.substr(colon + 1));
  return ::fnmatch(glob.c_str(), CommandRuleText(c).c_str(), 0) == 0;
}

bool CommandRuleAllows(absl::string_view rule, const proto::Envelope& c) {
  if (!CommandRuleMatches(rule, c)) return false;
  return rule.find(':') == absl::string_view::npos || GlobRulesCannotAllow(c).empty();
}

std::string GlobRulesCannotAllow(const proto::Envelope& c) {
  if (c.shell().env_size() == 0 && c.shell().working_dir().empty()) return "";
  return absl::StrCat("it sets ", c.shell().env_size() > 0 ? "environment variables" : "a working directory",
                      ", which only a rule for the whole method (\"", c.method(), "\") allows");
}

absl::Status ValidateCommandRule(absl::string_view rule) {
  const size_t colon = rule.find(':');
  if (absl::Status st = subjects::ValidateToken(rule.substr(0, colon)); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("rule \"", rule, "\": ", st.message()));
  }
  if (colon != absl::string_view::npos && colon + 1 == rule.size()) {
    return absl::InvalidArgumentError(absl::StrCat("rule \"", rule, "\" has an empty pattern"));
  }
  return absl::OkStatus();
}

}  // namespace steward
