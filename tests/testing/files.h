// Files that tests read: what commands wrote on the nodes (marker files, one line per
// run), to count executions.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

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

}  // namespace steward::testing
