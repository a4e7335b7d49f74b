#include "station/tags.h"

namespace steward::station {

void TagTable::Load(const std::vector<std::tuple<std::string, std::string, std::string>>& rows) {
  for (const auto& [node, key, value] : rows) tags_[node][key] = value;
  ++version_;
}

const TagTable::Tags* TagTable::Of(const std::string& node) const {
  auto it = tags_.find(node);
  return it == tags_.end() || it->second.empty() ? nullptr : &it->second;
}

std::vector<TagTable::Change> TagTable::Set(const std::string& node, const Tags& set,
                                            const std::vector<std::string>& unset) {
  std::vector<Change> changes;
  Tags& tags = tags_[node];
  for (const std::string& key : unset) {
    auto it = tags.find(key);
    if (it == tags.end()) continue;
    changes.push_back(Change{node, key, it->second, "", true});
    tags.erase(it);
  }
  for (const auto& [key, value] : set) {
    auto [it, inserted] = tags.try_emplace(key, value);
    if (!inserted && it->second == value) continue;
    changes.push_back(Change{node, key, inserted ? "" : it->second, value, false});
    it->second = value;
  }
  if (tags.empty()) tags_.erase(node);
  if (!changes.empty()) ++version_;
  return changes;
}

}  // namespace steward::station
