// TagTable: operators' tags on nodes (key=value, such as region=north, role=radar), for
// targeting (tag.role == "radar"). A tag may be set on a node the station has not heard
// from yet (it is waiting to be installed), and stays when the node is forgotten: tags
// are the operators' data about a name. The ledger keeps them (node_tags) and every
// change is audited (station/targeting_api.cc).
//
// Pure. Not thread-safe: the station calls it under its model mutex.
#pragma once

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace steward::station {

class TagTable {
 public:
  using Tags = std::map<std::string, std::string>;

  // One tag changed: `before` or `after` is absent ("") when it was added or removed.
  struct Change {
    std::string node;
    std::string key;
    std::string before;
    std::string after;
    bool removed = false;
  };

  // Load takes the ledger's rows (node, key, value).
  void Load(const std::vector<std::tuple<std::string, std::string, std::string>>& rows);
  // The tags of `node`; null when it has none.
  const Tags* Of(const std::string& node) const;
  // Set sets `set` and removes `unset` on `node`; the changes (none when nothing changed).
  std::vector<Change> Set(const std::string& node, const Tags& set, const std::vector<std::string>& unset);
  // Counts changes, so that continuous jobs know when to look again.
  uint64_t version() const { return version_; }

 private:
  absl::flat_hash_map<std::string, Tags> tags_;
  uint64_t version_ = 0;
};

}  // namespace steward::station
