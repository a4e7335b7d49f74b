// Rules about commands, as ACLs and approval rules write them: "method" (any use of
// it) or "method:glob", where the glob (fnmatch, '*' also matches '/' and spaces) is
// matched against the command's argv joined by single spaces. A command run through
// the shell is matched as "/bin/sh -c <string>", so a rule for "systemctl *" never
// matches "sh -c '...; rm'".
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/steward.pb.h"

namespace steward {

// The text a rule's glob is matched against.
std::string CommandRuleText(const proto::Envelope& c);
bool CommandRuleMatches(absl::string_view rule, const proto::Envelope& c);
// Checks a rule's syntax: InvalidArgument naming the problem.
absl::Status ValidateCommandRule(absl::string_view rule);

}  // namespace steward
