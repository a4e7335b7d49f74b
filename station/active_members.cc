#include "station/active_members.h"

#include <algorithm>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace steward::station {
namespace {

constexpr char kPrefix[] = "active:";

bool IsMember(const std::vector<std::string>& members, const std::string& node) {
  return std::find(members.begin(), members.end(), node) != members.end();
}

}  // namespace

absl::Status ActiveMembers::Load(const std::vector<std::pair<std::string, std::string>>& settings) {
  for (const auto& [key, value] : settings) {
    if (!absl::StartsWith(key, kPrefix) || value.empty()) continue;
    // policy \t active \t since_ms \t reason
    std::vector<std::string> f = absl::StrSplit(value, absl::MaxSplits('\t', 3));
    State s;
    if (f.size() != 4 || !absl::SimpleAtoi(f[2], &s.since_ms)) {
      return absl::DataLossError(absl::StrCat("corrupt setting ", key));
    }
    s.policy = f[0];
    s.active = f[1];
    s.reason = f[3];
    groups_[key.substr(sizeof(kPrefix) - 1)] = std::move(s);
  }
  return absl::OkStatus();
}

absl::Status ActiveMembers::ValidatePolicy(const std::string& policy) {
  if (policy.empty() || policy == "healthiest") return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown --active policy \"", policy, "\": healthiest (the first online member, in order)"));
}

std::optional<ActiveMembers::Change> ActiveMembers::SetPolicy(const std::string& group, const std::string& policy,
                                                              const std::vector<std::string>& members,
                                                              const IsOnline& online, int64_t now_ms) {
  if (policy.empty()) {
    auto it = groups_.find(group);
    if (it == groups_.end()) return std::nullopt;
    Change c{group, it->second.active, "", "the group has no active member any more"};
    groups_.erase(it);
    return c;
  }
  groups_[group].policy = policy;
  return Recompute(group, members, online, now_ms);
}

absl::StatusOr<ActiveMembers::Change> ActiveMembers::Move(const std::string& group, const std::string& member,
                                                          const std::vector<std::string>& members,
                                                          const std::string& by, int64_t now_ms) {
  auto it = groups_.find(group);
  if (it == groups_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("group ", group, " has no active member (stewardctl group set ", group, " NODES --active healthiest)"));
  }
  if (!IsMember(members, member)) {
    return absl::InvalidArgumentError(absl::StrCat(member, " is not a member of group ", group));
  }
  State& s = it->second;
  Change c{group, s.active, member, absl::StrCat("moved by ", by)};
  s.active = member;
  s.since_ms = now_ms;
  s.reason = c.reason;
  return c;
}

std::optional<ActiveMembers::Change> ActiveMembers::Recompute(const std::string& group,
                                                              const std::vector<std::string>& members,
                                                              const IsOnline& online, int64_t now_ms) {
  auto it = groups_.find(group);
  if (it == groups_.end()) return std::nullopt;
  State& s = it->second;
  const bool member = !s.active.empty() && IsMember(members, s.active);
  if (member && online(s.active)) return std::nullopt;  // sticky while it is up
  std::string next;
  for (const std::string& m : members) {
    if (online(m)) {
      next = m;
      break;
    }
  }
  std::string reason;
  if (next.empty()) {
    if (member) return std::nullopt;  // nobody better: it stays named
    if (s.active.empty()) return std::nullopt;
    reason = absl::StrCat(s.active, " is no longer a member and no member is online");
  } else if (s.active.empty()) {
    reason = absl::StrCat(next, " is the first online member");
  } else if (!member) {
    reason = absl::StrCat(s.active, " is no longer a member");
  } else {
    reason = absl::StrCat(s.active, " went offline");
  }
  Change c{group, s.active, next, reason};
  s.active = next;
  s.since_ms = now_ms;
  s.reason = reason;
  return c;
}

std::vector<std::string> ActiveMembers::Groups() const {
  std::vector<std::string> out;
  for (const auto& [g, s] : groups_) out.push_back(g);
  return out;
}

const ActiveMembers::State* ActiveMembers::Find(const std::string& group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? nullptr : &it->second;
}

std::string ActiveMembers::Active(const std::string& group) const {
  const State* s = Find(group);
  return s == nullptr ? "" : s->active;
}

std::pair<std::string, std::string> ActiveMembers::Setting(const std::string& group) const {
  const State* s = Find(group);
  if (s == nullptr) return {kPrefix + group, ""};
  return {kPrefix + group, absl::StrJoin({s->policy, s->active, absl::StrCat(s->since_ms), s->reason}, "\t")};
}

}  // namespace steward::station
