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
// What an operator who decides about `c` must see: CommandRuleText, then the
// environment variables and the working directory it sets, each of which can change
// what runs ("/opt/radar.sh status [env: BASH_ENV=/tmp/x] [in: /tmp]").
std::string CommandShownText(const proto::Envelope& c);
bool CommandRuleMatches(absl::string_view rule, const proto::Envelope& c);
// Whether an allow rule (an ACL's) lets `c` run: it matches, and when the rule has a
// glob, `c` sets no environment variables and no working directory. The glob bounds
// what runs, and either can change that (BASH_ENV, LD_PRELOAD, PATH, a relative path):
// such a command is allowed only by a rule for the whole method. (Policy rules, which
// a command meets when it matches, use CommandRuleMatches.)
bool CommandRuleAllows(absl::string_view rule, const proto::Envelope& c);
// Why no glob rule could allow `c` ("" when one could): for a refusal's message.
std::string GlobRulesCannotAllow(const proto::Envelope& c);
// Checks a rule's syntax: InvalidArgument naming the problem.
absl::Status ValidateCommandRule(absl::string_view rule);

}  // namespace steward
