#include "station/access.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/command_rule.h"
#include "proto/steward.pb.h"

namespace steward::station {
namespace {

const std::vector<std::string>& Empty() {
  static const auto* empty = new std::vector<std::string>();
  return *empty;
}

}  // namespace

absl::Status AccessRules::Load(const std::vector<std::pair<std::string, std::string>>& settings) {
  for (const auto& [key, value] : settings) {
    // Only its own: other rooms keep other messages in the settings.
    if (!absl::StartsWith(key, "acl:") && !absl::StartsWith(key, "group:") && !absl::StartsWith(key, "approval:") &&
        !absl::StartsWith(key, "exclusive:")) {
      continue;
    }
    proto::AclRequest r;
    if (!r.ParseFromString(value)) return absl::DataLossError(absl::StrCat("corrupt setting ", key));
    if (absl::StartsWith(key, "acl:")) rules_[key.substr(4)] = {r.rules().begin(), r.rules().end()};
    if (absl::StartsWith(key, "group:")) groups_[key.substr(6)] = {r.members().begin(), r.members().end()};
    for (Policy p : {Policy::kApproval, Policy::kExclusive}) {
      const std::string prefix = PolicySetting(p, "", {}).first;
      if (absl::StartsWith(key, prefix)) policies_[static_cast<int>(p)][key.substr(prefix.size())] = {r.rules().begin(), r.rules().end()};
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> AccessRules::Effective(const std::string& node) const {
  std::vector<std::string> rules;
  auto add = [&](const std::string& target) {
    for (const std::string& r : Rules(target)) {
      if (std::find(rules.begin(), rules.end(), r) == rules.end()) rules.push_back(r);
    }
  };
  add(node);
  for (const auto& [group, members] : groups_) {
    if (std::find(members.begin(), members.end(), node) != members.end()) add("@" + group);
  }
  return rules;
}

const std::vector<std::string>& AccessRules::Rules(const std::string& target) const {
  auto it = rules_.find(target);
  return it == rules_.end() ? Empty() : it->second;
}

const std::vector<std::string>& AccessRules::Members(const std::string& group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? Empty() : it->second;
}

std::set<std::string> AccessRules::SetPolicyRules(Policy p, const std::string& target,
                                                  std::vector<std::string> rules) {
  if (rules.empty()) {
    policies_[static_cast<int>(p)].erase(target);
  } else {
    policies_[static_cast<int>(p)][target] = std::move(rules);
  }
  if (absl::StartsWith(target, "@")) {
    const std::vector<std::string>& m = Members(target.substr(1));
    return {m.begin(), m.end()};
  }
  return {target};
}

const std::vector<std::string>& AccessRules::PolicyRules(Policy p, const std::string& target) const {
  auto it = policies_[static_cast<int>(p)].find(target);
  return it == policies_[static_cast<int>(p)].end() ? Empty() : it->second;
}

std::pair<std::string, std::string> AccessRules::PolicySetting(Policy p, const std::string& target,
                                                              const std::vector<std::string>& rules) {
  proto::AclRequest r;
  r.set_target(target);
  for (const std::string& rule : rules) r.add_rules(rule);
  return {absl::StrCat(p == Policy::kApproval ? "approval:" : "exclusive:", target), r.SerializeAsString()};
}

std::string AccessRules::PolicyRuleFor(Policy p, const std::string& node, const proto::Envelope& command) const {
  // Every command submitted asks both policies: with no rule, skip the groups' scan.
  if (policies_[static_cast<int>(p)].empty()) return "";
  std::vector<std::string> targets = {node};
  for (const std::string& g : GroupsOf(node)) targets.push_back("@" + g);
  for (const std::string& t : targets) {
    for (const std::string& rule : PolicyRules(p, t)) {
      if (CommandRuleMatches(rule, command)) return absl::StrCat(t, " ", rule);
    }
  }
  return "";
}

std::vector<std::string> AccessRules::GroupsOf(const std::string& node) const {
  std::vector<std::string> out;
  for (const auto& [group, members] : groups_) {
    if (std::find(members.begin(), members.end(), node) != members.end()) out.push_back(group);
  }
  return out;
}

std::set<std::string> AccessRules::SetRules(const std::string& target, std::vector<std::string> rules) {
  rules_[target] = std::move(rules);
  if (absl::StartsWith(target, "@")) {
    const std::vector<std::string>& m = Members(target.substr(1));
    return {m.begin(), m.end()};
  }
  return {target};
}

std::set<std::string> AccessRules::DefineGroup(const std::string& group, std::vector<std::string> members) {
  std::set<std::string> affected(Members(group).begin(), Members(group).end());
  affected.insert(members.begin(), members.end());
  groups_[group] = std::move(members);
  return affected;
}

std::pair<std::string, std::string> AccessRules::RulesSetting(const std::string& target,
                                                             const std::vector<std::string>& rules) {
  proto::AclRequest saved;
  saved.mutable_rules()->Assign(rules.begin(), rules.end());
  return {"acl:" + target, saved.SerializeAsString()};
}

std::pair<std::string, std::string> AccessRules::GroupSetting(const std::string& group,
                                                             const std::vector<std::string>& members) {
  proto::AclRequest saved;
  saved.mutable_members()->Assign(members.begin(), members.end());
  return {"group:" + group, saved.SerializeAsString()};
}

}  // namespace steward::station
