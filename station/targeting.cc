#include "station/targeting.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "subjects/subject.h"

namespace steward::station {
namespace {

// The view an expression evaluates; valid while model.mu is held.
targets::NodeView ViewLocked(const Model& model, const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu) {
  targets::NodeView v;
  v.name = name;
  v.status = NodeStatusName(proto::NODE_UNKNOWN);
  if (const NodeTable::Node* n = model.nodes.Find(name)) {
    v.status = NodeStatusName(n->info.status());
    v.online = n->info.status() == proto::NODE_ONLINE;
    v.hostname = n->info.hostname();
    v.agent_version = n->info.version();
    v.facts = &n->info.facts();
  }
  v.maintenance = InMaintenance(model, name);
  v.tags = model.tags.Of(name);
  const AccessRules* access = &model.access;
  v.in_group = [access, name](const std::string& group) {
    const std::vector<std::string>& members = access->Members(group);
    return std::find(members.begin(), members.end(), name) != members.end();
  };
  return v;
}

// A node name pattern: a token with glob characters.
absl::Status ValidateGlob(const std::string& pattern) {
  std::string plain = pattern;
  for (char& c : plain) {
    if (c == '*' || c == '?' || c == '[' || c == ']') c = 'x';
  }
  if (absl::Status st = subjects::ValidateToken(plain); !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad node pattern \"", pattern, "\": a node name with * ? [...], no '.', '>' or spaces"));
  }
  // A '[' opens a set that a ']' must close (fnmatch: "[!...]", and a ']' first in the set
  // is one of its characters). Unclosed, fnmatch takes it as a plain '[', and the pattern
  // matches no node's name: a typo would pass as "no node matches".
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '[') continue;
    size_t j = i + 1;
    if (j < pattern.size() && (pattern[j] == '!' || pattern[j] == '^')) ++j;
    if (j < pattern.size() && pattern[j] == ']') ++j;
    const size_t close = pattern.find(']', j);
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad node pattern \"", pattern, "\": the '[' at column ", i + 1, " is not closed by a ']'"));
    }
    i = close;
  }
  return absl::OkStatus();
}

bool Heard(const NodeTable::Node& n) {
  return n.info.status() != proto::NODE_UNKNOWN && n.info.status() != proto::NODE_PENDING;
}

bool EveryNode(const proto::TargetSpec& spec) { return spec.all_nodes() || spec.selectors().empty(); }

constexpr absl::string_view kActiveSuffix = ":active";

// "@radar:active": the group's active member only (station/active_members.h).
bool IsActiveSelector(absl::string_view s) { return absl::StartsWith(s, "@") && absl::EndsWith(s, kActiveSuffix); }

std::string GroupOf(absl::string_view s) {
  s.remove_prefix(1);
  if (absl::EndsWith(s, kActiveSuffix)) s.remove_suffix(kActiveSuffix.size());
  return std::string(s);
}

// The nodes a "@group" or "@group:active" selector names.
std::vector<std::string> GroupNodesLocked(const Model& model, const std::string& selector)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(model.mu) {
  const std::string g = GroupOf(selector);
  if (!IsActiveSelector(selector)) return model.access.Members(g);
  std::string active = model.active.Active(g);
  if (active.empty()) return {};
  return {active};
}

}  // namespace

bool InMaintenance(const Model& model, const std::string& node) {
  const NodeTable::Node* n = model.nodes.Find(node);
  return n != nullptr && n->info.maintenance().on();
}

absl::Status CheckChosenTarget(const proto::TargetSpec& spec) {
  if (spec.all_nodes() && !spec.selectors().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--all takes every node: name no nodes with it (",
                                                   absl::StrJoin(spec.selectors(), ","), ")"));
  }
  if (!spec.all_nodes() && spec.selectors().empty() && spec.where().empty()) {
    return absl::InvalidArgumentError("no target: name nodes (names, globs, @groups), --where or --all");
  }
  return absl::OkStatus();
}

absl::StatusOr<Target> CompileChosenTarget(const proto::TargetSpec& spec) {
  STEWARD_RETURN_IF_ERROR(CheckChosenTarget(spec));
  return CompileTarget(spec);
}

absl::StatusOr<Target> CompileTarget(const proto::TargetSpec& spec) {
  Target t;
  t.spec = spec;
  for (const std::string& s : spec.selectors()) {
    absl::Status st;
    if (absl::StartsWith(s, "@")) {
      st = subjects::ValidateToken(GroupOf(s));
      if (!st.ok()) st = absl::InvalidArgumentError(absl::StrCat("bad group \"", s, "\": ", st.message()));
    } else if (targets::IsGlob(s)) {
      st = ValidateGlob(s);
    } else {
      st = subjects::ValidateToken(s);
    }
    if (!st.ok()) return st;
  }
  if (!spec.where().empty()) {
    absl::StatusOr<targets::Expression> e = targets::Expression::Parse(spec.where());
    if (!e.ok()) return absl::InvalidArgumentError(absl::StrCat("--where: ", e.status().message()));
    t.where = *std::move(e);
  }
  return t;
}

std::vector<std::string> ResolveLocked(const Model& model, const Target& target) {
  std::set<std::string> candidates;
  const proto::TargetSpec& spec = target.spec;
  for (const std::string& s : spec.selectors()) {
    if (absl::StartsWith(s, "@")) {
      const std::vector<std::string> m = GroupNodesLocked(model, s);
      candidates.insert(m.begin(), m.end());
    } else if (!targets::IsGlob(s)) {
      candidates.insert(s);
    }
  }
  const bool globs = std::any_of(spec.selectors().begin(), spec.selectors().end(),
                                 [](const std::string& s) { return targets::IsGlob(s); });
  if (globs || EveryNode(spec)) {
    for (const std::string& name : model.nodes.Names(/*heard_only=*/true)) {
      if (PicksLocked(model, target, name)) candidates.insert(name);
    }
  }
  std::vector<std::string> out;
  for (const std::string& name : candidates) {
    if (target.where.Matches(ViewLocked(model, name))) out.push_back(name);
  }
  return out;
}

bool PicksLocked(const Model& model, const Target& target, const std::string& node) {
  const NodeTable::Node* n = model.nodes.Find(node);
  if (n == nullptr || !Heard(*n)) return false;
  bool picked = EveryNode(target.spec);
  for (const std::string& s : target.spec.selectors()) {
    if (picked) break;
    if (absl::StartsWith(s, "@")) {
      const std::vector<std::string> m = GroupNodesLocked(model, s);
      picked = std::find(m.begin(), m.end(), node) != m.end();
    } else if (targets::IsGlob(s)) {
      picked = targets::GlobMatch(s, node);
    }
  }
  return picked && target.where.Matches(ViewLocked(model, node));
}

proto::TargetRow RowLocked(const Model& model, const std::string& name) {
  proto::TargetRow row;
  row.set_name(name);
  row.set_status(proto::NODE_UNKNOWN);
  if (const NodeTable::Node* n = model.nodes.Find(name)) {
    row.set_status(n->info.status());
    row.set_online(n->info.status() == proto::NODE_ONLINE);
    row.set_hostname(n->info.hostname());
    row.set_agent_version(n->info.version());
    *row.mutable_facts() = n->info.facts();
    row.set_last_heard_unix_ms(n->info.last_heard_unix_ms());
  }
  row.set_maintenance(InMaintenance(model, name));
  if (const TagTable::Tags* tags = model.tags.Of(name)) row.mutable_tags()->insert(tags->begin(), tags->end());
  for (std::string& g : model.access.GroupsOf(name)) row.add_groups(std::move(g));
  return row;
}

std::string Describe(const proto::TargetSpec& spec) {
  std::string out = EveryNode(spec) ? "every node" : absl::StrJoin(spec.selectors(), ",");
  if (!spec.where().empty()) absl::StrAppend(&out, " where ", spec.where());
  return out;
}

}  // namespace steward::station
