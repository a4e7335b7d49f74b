// AccessRules: which methods and argv globs each node accepts. Rules are "method" or
// "method:glob" (fnmatch on argv joined by spaces), set per node ("ship1") or per group
// ("@web"); a node enforces its own rules and its groups'. A node with no rules at all
// accepts every method. The station keeps them here and in the ledger's settings, and
// sends each affected node its effective rules as a signed setacl command.
//
// Not thread-safe: the station calls it under its model mutex.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "proto/steward.pb.h"

namespace steward::station {

class AccessRules {
 public:
  // Load takes the ledger's settings ("acl:<target>", "group:<name>").
  absl::Status Load(const std::vector<std::pair<std::string, std::string>>& settings);
  // The rules `node` enforces: its own and its groups', each once.
  std::vector<std::string> Effective(const std::string& node) const;
  bool HasOwnRules(const std::string& target) const { return rules_.count(target) > 0; }
  const std::vector<std::string>& Rules(const std::string& target) const;
  const std::vector<std::string>& Members(const std::string& group) const;
  // Policy rules (the ACL's syntax) on a node or "@group": what needs an operator's
  // approval before the station sends it, and what runs as an exclusive job.
  enum class Policy { kApproval, kExclusive };
  std::set<std::string> SetPolicyRules(Policy p, const std::string& target, std::vector<std::string> rules);
  const std::vector<std::string>& PolicyRules(Policy p, const std::string& target) const;
  static std::pair<std::string, std::string> PolicySetting(Policy p, const std::string& target,
                                                          const std::vector<std::string>& rules);
  // The first rule of policy `p` that `command` to `node` matches, as "TARGET RULE"
  // ("@radar exec:systemctl *"), or "" when none does.
  std::string PolicyRuleFor(Policy p, const std::string& node, const proto::Envelope& command) const;
  // The groups `node` is a member of, by name.
  std::vector<std::string> GroupsOf(const std::string& node) const;

  // SetRules replaces the rules of a node or "@group"; the nodes affected.
  std::set<std::string> SetRules(const std::string& target, std::vector<std::string> rules);
  // DefineGroup replaces a group's members; the nodes affected (old and new members).
  std::set<std::string> DefineGroup(const std::string& group, std::vector<std::string> members);
  // The ledger settings that hold a target's rules and a group's members.
  static std::pair<std::string, std::string> RulesSetting(const std::string& target,
                                                         const std::vector<std::string>& rules);
  static std::pair<std::string, std::string> GroupSetting(const std::string& group,
                                                         const std::vector<std::string>& members);

 private:
  std::map<std::string, std::vector<std::string>> rules_;   // node or "@group" -> rules
  std::map<std::string, std::vector<std::string>> groups_;  // group -> members
  // Per policy: node or "@group" -> rules.
  std::map<std::string, std::vector<std::string>> policies_[2];
};

}  // namespace steward::station
