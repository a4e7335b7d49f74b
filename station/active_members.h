// ActiveMembers: one active member per group, for groups that ask for one (issue 13
// part 6, from the Switchboard notes). `stewardctl group set radar a,b --active
// healthiest` makes the first online member, in the group's order (its priority),
// active; it stays active until it goes offline (then the next online member takes
// over) or an operator moves it (`group active radar b`). A member coming back online
// does not take it back: a change costs a switch-over, so it happens only when it must.
// With no member online the last active one stays named (sends to it wait for it like
// any offline node's). `@radar:active` targets the current active member.
//
// Pure: no clock and no I/O of its own. Each change comes back for the caller to
// publish once (feed, audit, log) and to keep in the ledger's settings ("active:<group>").
//
// Not thread-safe: the station calls it under its model mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace steward::station {

class ActiveMembers {
 public:
  struct State {
    std::string policy;  // "healthiest"
    std::string active;  // "" until a member is online
    int64_t since_ms = 0;
    std::string reason;
  };
  struct Change {
    std::string group;
    std::string from;  // "" when there was none
    std::string to;
    std::string reason;
  };
  using IsOnline = std::function<bool(const std::string& node)>;

  // Load takes the ledger's settings ("active:<group>"); others are ignored.
  absl::Status Load(const std::vector<std::pair<std::string, std::string>>& settings);
  // The policies: "healthiest", or "" for none (the group has no active member then).
  static absl::Status ValidatePolicy(const std::string& policy);
  // SetPolicy gives `group` (whose members are `members`, first first) a policy, or
  // takes it away (""), and picks its active member at once.
  std::optional<Change> SetPolicy(const std::string& group, const std::string& policy,
                                  const std::vector<std::string>& members, const IsOnline& online, int64_t now_ms);
  // Move makes `member` active (an operator's choice; it must be a member).
  absl::StatusOr<Change> Move(const std::string& group, const std::string& member,
                              const std::vector<std::string>& members, const std::string& by, int64_t now_ms);
  // Recompute looks at `group` again after a member's status or the members changed.
  std::optional<Change> Recompute(const std::string& group, const std::vector<std::string>& members,
                                  const IsOnline& online, int64_t now_ms);
  // The groups with a policy.
  std::vector<std::string> Groups() const;
  const State* Find(const std::string& group) const;
  // "" when the group has no active member (no policy, or none online yet).
  std::string Active(const std::string& group) const;
  // The ledger setting that keeps `group`'s state (an empty value: none).
  std::pair<std::string, std::string> Setting(const std::string& group) const;

 private:
  std::map<std::string, State> groups_;
};

}  // namespace steward::station
