// Files that tests read: what commands wrote on the nodes (marker files, one line per
// run), to count executions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/match.h"

namespace steward::testing {

// How often each non-empty line occurs in the file at `p` (empty when it is missing).
inline std::map<std::string, int> LineCounts(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::map<std::string, int> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) ++out[line];
  }
  return out;
}

// What a node holds of a copy in `dir` from offset 0 with no gap (chunks come in any
// order): the number in the part's .have file, 0 when there is none.
inline uintmax_t CopyPartHas(const std::filesystem::path& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (!absl::EndsWith(e.path().filename().string(), ".part.have")) continue;
    std::ifstream in(e.path());
    uintmax_t have = 0;
    in >> have;
    return have;
  }
  return 0;
}

}  // namespace steward::testing
