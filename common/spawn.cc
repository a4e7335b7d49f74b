// SpawnProcess: posix_spawnp with steward's attributes and file actions.
#include "common/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "common/status_macros.h"

extern char** environ;

namespace steward {
namespace {

// A null-terminated char* array over `strings` (which must outlive it).
std::vector<char*> CStringArray(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Empty signal mask, default dispositions for the signals the daemons block or
// ignore, and a new process group when asked.
absl::Status ConfigureAttributes(posix_spawnattr_t* attr, bool new_process_group) {
  sigset_t empty;
  sigset_t defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGCHLD}) sigaddset(&defaults, sig);
  int flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (new_process_group) flags |= POSIX_SPAWN_SETPGROUP;
  if (int rc = posix_spawnattr_setflags(attr, static_cast<short>(flags)); rc != 0) {
    return absl::ErrnoToStatus(rc, "posix_spawnattr_setflags");
  }
  if (new_process_group) {
    if (int rc = posix_spawnattr_setpgroup(attr, 0); rc != 0) {
      return absl::ErrnoToStatus(rc, "posix_spawnattr_setpgroup");
    }
  }
  if (int rc = posix_spawnattr_setsigmask(attr, &empty); rc != 0) {
    return absl::ErrnoToStatus(rc, "posix_spawnattr_setsigmask");
  }
  if (int rc = posix_spawnattr_setsigdefault(attr, &defaults); rc != 0) {
    return absl::ErrnoToStatus(rc, "posix_spawnattr_setsigdefault");
  }
  return absl::OkStatus();
}

// stdin from /dev/null, stdout and stderr to the given descriptors, then the working
// directory.
absl::Status ConfigureFileActions(posix_spawn_file_actions_t* actions,
                                  const SpawnOptions& options) {
  if (int rc = posix_spawn_file_actions_addopen(actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
      rc != 0) {
    return absl::ErrnoToStatus(rc, "posix_spawn_file_actions_addopen");
  }
  for (const auto& [from, to] : {std::pair{options.stdout_fd, STDOUT_FILENO},
                                 std::pair{options.stderr_fd, STDERR_FILENO}}) {
    if (from < 0) continue;
    if (int rc = posix_spawn_file_actions_adddup2(actions, from, to); rc != 0) {
      return absl::ErrnoToStatus(rc, "posix_spawn_file_actions_adddup2");
    }
  }
  if (!options.working_dir.empty()) {
    if (int rc = posix_spawn_file_actions_addchdir_np(actions, options.working_dir.c_str());
        rc != 0) {
      return absl::ErrnoToStatus(rc, "posix_spawn_file_actions_addchdir_np");
    }
  }
  return absl::OkStatus();
}

// `fd`, moved above 2 when it is a standard descriptor.
absl::StatusOr<UniqueFd> AboveStdio(UniqueFd fd) {
  if (fd.get() > STDERR_FILENO) return fd;
  const int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  if (moved < 0) return absl::ErrnoToStatus(errno, "fcntl(F_DUPFD_CLOEXEC)");
  return UniqueFd(moved);
}

}  // namespace

absl::StatusOr<pid_t> SpawnProcess(const SpawnOptions& options, absl::string_view what) {
  if (options.argv.empty()) return absl::InvalidArgumentError("empty argv");
  posix_spawnattr_t attr;
  if (int rc = posix_spawnattr_init(&attr); rc != 0) {
    return absl::ErrnoToStatus(rc, "posix_spawnattr_init");
  }
  absl::Cleanup destroy_attr = [&attr] { posix_spawnattr_destroy(&attr); };
  posix_spawn_file_actions_t actions;
  if (int rc = posix_spawn_file_actions_init(&actions); rc != 0) {
    return absl::ErrnoToStatus(rc, "posix_spawn_file_actions_init");
  }
  absl::Cleanup destroy_actions = [&actions] { posix_spawn_file_actions_destroy(&actions); };
  STEWARD_RETURN_IF_ERROR(ConfigureAttributes(&attr, options.new_process_group));
  STEWARD_RETURN_IF_ERROR(ConfigureFileActions(&actions, options));

  std::vector<char*> argv = CStringArray(options.argv);
  std::vector<char*> env;
  if (options.env.has_value()) env = CStringArray(*options.env);
  pid_t pid = -1;
  // posix_spawnp reports exec and file-action failures (ENOENT for a missing program
  // or working directory) as its return value.
  if (int rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(),
                            options.env.has_value() ? env.data() : environ);
      rc != 0) {
    return absl::ErrnoToStatus(rc, what);
  }
  return pid;
}

absl::StatusOr<SpawnPipe> MakeSpawnPipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  SpawnPipe p;
  STEWARD_ASSIGN_OR_RETURN(p.read, AboveStdio(std::move(read_end)));
  STEWARD_ASSIGN_OR_RETURN(p.write, AboveStdio(std::move(write_end)));
  return p;
}

}  // namespace steward
