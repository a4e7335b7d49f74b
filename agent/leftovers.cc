#include "agent/leftovers.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "common/log.h"

namespace steward::agent {
namespace {

constexpr char kEndedSuffix[] = ".ended";

}  // namespace

bool ProcessAlive(pid_t pid, const std::string& proc) {
  std::ifstream in(absl::StrCat(proc, "/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  return stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

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
      if (ProcessAlive(pid, proc)) return true;
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

std::string RunningMarks::NameFor(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(data_dir, ec);
  if (ec) abs = data_dir;
  std::string out;
  for (char c : abs.lexically_normal().string()) {
    if (c == '/') {
      if (!out.empty() && out.back() != '-') out += '-';
    } else if (c == '-' || c == '%' || !std::isprint(static_cast<unsigned char>(c))) {
      out += absl::StrFormat("%%%02X", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "-" : out;
}

absl::StatusOr<std::unique_ptr<RunningMarks>> RunningMarks::Open(const std::string& run_dir,
                                                                 const std::string& data_dir) {
  const std::string name = NameFor(data_dir);
  if (name.size() > 240) {
    return absl::InvalidArgumentError(absl::StrCat("the data directory's path is too long to name a directory: ",
                                                   data_dir));
  }
  const std::string dir = (std::filesystem::path(run_dir) / name).string();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  ::chmod(dir.c_str(), 0700);
  // Writable: an unwritable run directory is found now, not at the first command.
  const std::string probe = dir + "/.probe";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot write in ", dir, ": ", std::strerror(errno)));
  ::close(fd);
  ::unlink(probe.c_str());
  return std::unique_ptr<RunningMarks>(new RunningMarks(dir));
}

RunningMarks::~RunningMarks() { ::rmdir(dir_.c_str()); }

void RunningMarks::Mark(const std::string& command_id) {
  if (!IsValidId(command_id)) return;  // never a path
  const std::string path = absl::StrCat(dir_, "/", command_id);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return;
  }
  const int err = errno;
  absl::MutexLock lock(&mu_);
  if (warned_) return;
  warned_ = true;
  STEWARD_LOG_WARNING("cannot mark command {} running in {}: {}; should this unit be reinstalled while it runs, the "
                      "new installation will not stop what it left (said once)",
                      command_id, dir_, std::strerror(err));
}

void RunningMarks::Ended(const std::string& command_id) {
  if (!IsValidId(command_id)) return;
  const std::string path = absl::StrCat(dir_, "/", command_id);
  ::rename(path.c_str(), absl::StrCat(path, kEndedSuffix).c_str());
}

void RunningMarks::Clear(const std::string& command_id) {
  if (!IsValidId(command_id)) return;
  const std::string path = absl::StrCat(dir_, "/", command_id);
  ::unlink(path.c_str());
  ::unlink(absl::StrCat(path, kEndedSuffix).c_str());
}

std::vector<RunningMarks::Marked> RunningMarks::List() const {
  std::vector<Marked> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    std::string name = entry.path().filename().string();
    const bool ended = absl::EndsWith(name, kEndedSuffix);
    if (ended) name.resize(name.size() - std::strlen(kEndedSuffix));
    if (IsValidId(name)) out.push_back({std::move(name), ended});
  }
  return out;
}

}  // namespace steward::agent
