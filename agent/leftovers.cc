#include "agent/leftovers.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace steward::agent {
namespace {

// Alive and not a zombie (a zombie is dead; only its parent's wait is missing).
bool Alive(pid_t pid, const std::string& proc) {
  std::ifstream in(absl::StrCat(proc, "/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  return stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

}  // namespace

std::vector<pid_t> ProcessesOfCommand(const std::string& command_id, const std::string& proc) {
  std::vector<pid_t> out;
  if (command_id.empty()) return out;
  const std::string want = absl::StrCat("STEWARD_COMMAND_ID=", command_id);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(proc, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return std::isdigit(c) != 0; })) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == getpid()) continue;
    std::ifstream in(entry.path() / "environ", std::ios::binary);
    if (!in) continue;  // gone, or not ours to read
    std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t start = 0;
    while (start < env.size()) {
      size_t end = env.find('\0', start);
      if (end == std::string::npos) end = env.size();
      if (env.compare(start, end - start, want) == 0) {
        out.push_back(pid);
        break;
      }
      start = end + 1;
    }
  }
  return out;
}

int StopLeftovers(const std::string& command_id, absl::Duration grace, const std::string& proc) {
  std::vector<pid_t> pids = ProcessesOfCommand(command_id, proc);
  if (pids.empty()) return 0;
  const pid_t own_group = getpgrp();
  std::set<pid_t> groups;
  for (pid_t pid : pids) {
    const pid_t g = getpgid(pid);
    if (g > 1 && g != own_group) groups.insert(g);
  }
  for (pid_t g : groups) kill(-g, SIGTERM);
  for (pid_t pid : pids) kill(pid, SIGTERM);
  const absl::Time deadline = absl::Now() + grace;
  auto any_alive = [&] {
    for (pid_t pid : pids) {
      if (Alive(pid, proc)) return true;
    }
    return false;
  };
  while (any_alive() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  // What is still there, found again (a pid that ended meanwhile may be another process now).
  for (pid_t pid : ProcessesOfCommand(command_id, proc)) {
    const pid_t g = getpgid(pid);
    if (g > 1 && g != own_group) kill(-g, SIGKILL);
    kill(pid, SIGKILL);
  }
  return static_cast<int>(pids.size());
}

}  // namespace steward::agent
