// PosixCommandRunner: posix_spawnp into a new process group with stdin from /dev/null
// and stdout/stderr on two pipes, then one poll loop that captures output, enforces the
// deadline or cancellation (SIGTERM, then SIGKILL to the group) and reaps the child.
// The child's exit wakes the loop through a pidfd in the same poll set as the pipes, so
// a quick command costs no fixed tick; without pidfds (old kernels, seccomp) the exit
// is polled every kPollTickMs instead.
#include "agent/command_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

extern char** environ;

namespace steward::agent {
namespace {

// Without a pidfd the exit is noticed by polling waitid this often.
constexpr int kPollTickMs = 20;
// A cancel Notification cannot be polled: while one may still arrive, poll sleeps at
// most this long. Exit and output wake the loop at once regardless.
constexpr absl::Duration kCancelCheck = absl::Milliseconds(50);
// After the child exits, output is drained until the pipes close, until no data came
// for kDrainIdle, or for kMaxDrain at most: a descendant that keeps the pipe open
// (a background job) must not hold Run.
constexpr absl::Duration kDrainIdle = absl::Milliseconds(100);
constexpr absl::Duration kMaxDrain = absl::Milliseconds(500);
// After SIGKILL, how long to wait for pipes held by processes outside the group.
constexpr absl::Duration kDrainAfterKill = absl::Milliseconds(100);
constexpr size_t kReadChunk = 64 * 1024;

using Fd = ::steward::UniqueFd;

struct Pipe {
  Fd read;
  Fd write;
};

// A pidfd for the (unreaped, so not reusable) child `pid`, readable once it has exited;
// an invalid Fd when the kernel or a seccomp policy refuses (ENOSYS, EPERM, ...).
// Always close-on-exec. The raw syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C",
// so its pidfd_open does not link from C++.
Fd OpenPidfd(pid_t pid) {
#if defined(SYS_pidfd_open)
  return Fd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
#else
  (void)pid;
  return Fd();
#endif
}

// Keeps `fd` off 0-2 so the file actions (open 0, dup2 to 1 and 2) cannot clobber it
// when the agent runs with a standard descriptor closed.
absl::StatusOr<Fd> AboveStdio(Fd fd) {
  if (fd.get() > STDERR_FILENO) return fd;
  const int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  if (moved < 0) return absl::ErrnoToStatus(errno, "fcntl(F_DUPFD_CLOEXEC)");
  return Fd(moved);
}

absl::StatusOr<Pipe> MakePipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);
  Pipe p;
  STEWARD_ASSIGN_OR_RETURN(p.read, AboveStdio(std::move(read_end)));
  STEWARD_ASSIGN_OR_RETURN(p.write, AboveStdio(std::move(write_end)));
  return p;
}

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

absl::Status ValidateSpec(const CommandSpec& spec) {
  if (spec.argv.empty()) return absl::InvalidArgumentError("empty argv");
  for (const std::string& arg : spec.argv) {
    if (HasNul(arg)) return absl::InvalidArgumentError("argv entry contains a NUL byte");
  }
  for (const std::string& entry : spec.env) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0 || HasNul(entry)) {
      return absl::InvalidArgumentError(
          absl::StrCat("env entry is not KEY=VALUE: \"", entry, "\""));
    }
  }
  return absl::OkStatus();
}

// `environ` with each KEY=VALUE of `overrides` replacing the same KEY or appended.
std::vector<std::string> MergeEnvironment(const std::vector<std::string>& overrides) {
  std::vector<std::string> merged;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) merged.emplace_back(*e);
  for (const std::string& entry : overrides) {
    const std::string prefix = entry.substr(0, entry.find('=') + 1);  // "KEY="
    auto same_key = [&prefix](const std::string& s) { return s.rfind(prefix, 0) == 0; };
    auto it = std::find_if(merged.begin(), merged.end(), same_key);
    if (it == merged.end()) {
      merged.push_back(entry);
    } else {
      *it = entry;
    }
  }
  return merged;
}

// A null-terminated char* array over `strings` (which must outlive it).
std::vector<char*> CStringArray(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// New process group, empty signal mask, default dispositions for the signals the
// agent blocks or ignores.
absl::Status ConfigureAttributes(posix_spawnattr_t* attr) {
  sigset_t empty;
  sigset_t defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGCHLD}) sigaddset(&defaults, sig);
  const auto flags =
      static_cast<short>(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (int rc = posix_spawnattr_setflags(attr, flags); rc != 0) {
    return absl::ErrnoToStatus(rc, "posix_spawnattr_setflags");
  }
  if (int rc = posix_spawnattr_setpgroup(attr, 0); rc != 0) {
    return absl::ErrnoToStatus(rc, "posix_spawnattr_setpgroup");
  }
  if (int rc = posix_spawnattr_setsigmask(attr, &empty); rc != 0) {
    return absl::ErrnoToStatus(rc, "posix_spawnattr_setsigmask");
  }
  if (int rc = posix_spawnattr_setsigdefault(attr, &defaults); rc != 0) {
    return absl::ErrnoToStatus(rc, "posix_spawnattr_setsigdefault");
  }
  return absl::OkStatus();
}

// stdin from /dev/null, stdout and stderr to the pipes, then the working directory.
absl::Status ConfigureFileActions(posix_spawn_file_actions_t* actions, const CommandSpec& spec,
                                  int stdout_fd, int stderr_fd) {
  if (int rc = posix_spawn_file_actions_addopen(actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
      rc != 0) {
    return absl::ErrnoToStatus(rc, "posix_spawn_file_actions_addopen");
  }
  if (int rc = posix_spawn_file_actions_adddup2(actions, stdout_fd, STDOUT_FILENO); rc != 0) {
    return absl::ErrnoToStatus(rc, "posix_spawn_file_actions_adddup2");
  }
  if (int rc = posix_spawn_file_actions_adddup2(actions, stderr_fd, STDERR_FILENO); rc != 0) {
    return absl::ErrnoToStatus(rc, "posix_spawn_file_actions_adddup2");
  }
  if (!spec.working_dir.empty()) {
    if (int rc = posix_spawn_file_actions_addchdir_np(actions, spec.working_dir.c_str());
        rc != 0) {
      return absl::ErrnoToStatus(rc, "posix_spawn_file_actions_addchdir_np");
    }
  }
  return absl::OkStatus();
}

std::string SpawnFailureMessage(const CommandSpec& spec) {
  std::string msg = absl::StrCat("cannot run \"", spec.argv[0], "\"");
  if (!spec.working_dir.empty()) {
    absl::StrAppend(&msg, " in working directory \"", spec.working_dir, "\"");
  }
  return msg;
}

absl::StatusOr<pid_t> Spawn(const CommandSpec& spec, int stdout_fd, int stderr_fd) {
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
  STEWARD_RETURN_IF_ERROR(ConfigureAttributes(&attr));
  STEWARD_RETURN_IF_ERROR(ConfigureFileActions(&actions, spec, stdout_fd, stderr_fd));

  const std::vector<std::string> env = MergeEnvironment(spec.env);
  std::vector<char*> argv_ptrs = CStringArray(spec.argv);
  std::vector<char*> env_ptrs = CStringArray(env);
  pid_t pid = -1;
  // posix_spawnp reports exec and file-action failures (ENOENT for a missing program
  // or working directory) as its return value.
  if (int rc = posix_spawnp(&pid, argv_ptrs[0], &actions, &attr, argv_ptrs.data(),
                            env_ptrs.data());
      rc != 0) {
    return absl::ErrnoToStatus(rc, SpawnFailureMessage(spec));
  }
  return pid;
}

// One captured stream: the pipe's read end and where its bytes go.
struct Capture {
  Fd fd;
  std::string* data = nullptr;
  bool* truncated = nullptr;
};

// Watches one spawned child until it has exited and its output is drained, then reaps
// it. The child is detected as exited with waitid(WNOWAIT) and reaped only at the
// end: the unreaped leader keeps its pid (and so the group id) from being reused, so
// signalling the group stays safe until then. The pidfd only says when to look: poll
// wakes on it, the pipes and the next deadline, never on a fixed tick (unless there
// is no pidfd).
class ChildWatch {
 public:
  ChildWatch(const CommandSpec& spec, const absl::Notification* cancel, pid_t pid,
             Fd pidfd, Fd stdout_fd, Fd stderr_fd, CommandResult* result)
      : spec_(spec),
        cancel_(cancel),
        pid_(pid),
        pidfd_(std::move(pidfd)),
        result_(result),
        timeout_at_(result->started + spec.timeout),
        buffer_(std::make_unique_for_overwrite<char[]>(kReadChunk)) {
    captures_[0] = {std::move(stdout_fd), &result->stdout_data, &result->stdout_truncated};
    captures_[1] = {std::move(stderr_fd), &result->stderr_data, &result->stderr_truncated};
  }

  // Runs to completion. On an internal error the group is killed and the child reaped
  // (unless someone else reaped it) before the error is returned.
  absl::Status Run() {
    absl::Status status = Loop();
    if (!child_lost_) {
      if (!status.ok() || terminating_) SignalGroup(SIGKILL);
      for (Capture& c : captures_) c.fd.Reset();
      pidfd_.Reset();
      absl::Status reaped = Reap();
      if (status.ok()) status = reaped;
    }
    result_->finished = absl::Now();
    return status;
  }

 private:
  absl::Status Loop() {
    while (true) {
      const absl::Time now = absl::Now();
      if (!exited_) HandleStopRequests(now);
      if (terminating_ && !killed_ && now >= kill_at_) {
        SignalGroup(SIGKILL);
        killed_ = true;
        killed_at_ = now;
      }
      if (Done(now)) return absl::OkStatus();
      bool pidfd_ready = false;
      STEWARD_RETURN_IF_ERROR(PollAndRead(PollTimeoutMs(now), &pidfd_ready));
      if (exited_) continue;
      if (!pidfd_.valid()) {
        STEWARD_RETURN_IF_ERROR(CheckExited());
      } else if (pidfd_ready) {
        STEWARD_RETURN_IF_ERROR(CheckExited());
        // Readable means exited, so waitid sees it; should it not, stop trusting the
        // pidfd (it would keep poll from sleeping) and tick instead.
        if (!exited_) pidfd_.Reset();
      }
    }
  }

  void HandleStopRequests(absl::Time now) {
    if (cancel_ != nullptr && !result_->canceled && cancel_->HasBeenNotified()) {
      result_->canceled = true;
      BeginTermination(now + spec_.cancel_grace);
    }
    if (!terminating_ && now >= timeout_at_) {
      result_->timed_out = true;
      BeginTermination(now + spec_.kill_grace);
    }
  }

  // SIGTERM to the group (SIGCONT too, so stopped members see it); SIGKILL by kill_at.
  void BeginTermination(absl::Time kill_at) {
    if (terminating_) {
      kill_at_ = std::min(kill_at_, kill_at);
      return;
    }
    terminating_ = true;
    kill_at_ = kill_at;
    SignalGroup(SIGTERM);
    SignalGroup(SIGCONT);
  }

  void SignalGroup(int sig) { kill(-pid_, sig); }  // ESRCH (group gone) is fine

  bool AnyCaptureOpen() const { return captures_[0].fd.valid() || captures_[1].fd.valid(); }

  bool Done(absl::Time now) const {
    if (!exited_) return false;
    if (!AnyCaptureOpen()) return true;
    if (terminating_) return killed_ && now - killed_at_ >= kDrainAfterKill;
    const absl::Time last_activity = std::max(exited_at_, last_data_at_);
    return now - last_activity >= kDrainIdle || now - exited_at_ >= kMaxDrain;
  }

  // The earliest moment the loop has something to do other than react to the child's
  // exit or output (which wake poll by themselves), as a poll timeout: -1 for none.
  int PollTimeoutMs(absl::Time now) const {
    absl::Time wake = absl::InfiniteFuture();
    if (!exited_) {
      if (!terminating_) wake = std::min(wake, timeout_at_);
      if (cancel_ != nullptr && !result_->canceled) wake = std::min(wake, now + kCancelCheck);
      if (!pidfd_.valid()) wake = std::min(wake, now + absl::Milliseconds(kPollTickMs));
    }
    if (terminating_ && !killed_) wake = std::min(wake, kill_at_);
    if (exited_) {  // the drain deadlines of Done
      if (!terminating_) {
        wake = std::min({wake, std::max(exited_at_, last_data_at_) + kDrainIdle,
                         exited_at_ + kMaxDrain});
      } else if (killed_) {
        wake = std::min(wake, killed_at_ + kDrainAfterKill);
      }
    }
    if (wake == absl::InfiniteFuture()) return -1;
    if (wake <= now) return 0;
    // Rounded up: waking before the deadline would only spin.
    const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(wake - now, absl::Milliseconds(1)));
    return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
  }

  // Waits up to `timeout_ms` for output or (with a pidfd, before the exit is known) the
  // child's exit, reads what is ready and sets *pidfd_ready when the pidfd fired.
  absl::Status PollAndRead(int timeout_ms, bool* pidfd_ready) {
    pollfd fds[3];
    Capture* owners[3] = {nullptr, nullptr, nullptr};  // null: the pidfd
    nfds_t n = 0;
    for (Capture& c : captures_) {
      if (!c.fd.valid()) continue;
      fds[n] = {c.fd.get(), POLLIN, 0};
      owners[n++] = &c;
    }
    if (!exited_ && pidfd_.valid()) fds[n++] = {pidfd_.get(), POLLIN, 0};
    const int ready = poll(n == 0 ? nullptr : fds, n, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) return absl::OkStatus();
      return absl::ErrnoToStatus(errno, "poll");
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (owners[i] == nullptr) {
        *pidfd_ready = true;
      } else {
        STEWARD_RETURN_IF_ERROR(ReadOnce(*owners[i]));
      }
    }
    return absl::OkStatus();
  }

  // One read: keeps up to max_output_bytes, discards (and flags) the rest, closes on EOF.
  absl::Status ReadOnce(Capture& c) {
    ssize_t got;
    do {
      got = read(c.fd.get(), buffer_.get(), kReadChunk);
    } while (got < 0 && errno == EINTR);
    if (got < 0) return absl::ErrnoToStatus(errno, "read");
    if (got == 0) {
      c.fd.Reset();
      return absl::OkStatus();
    }
    last_data_at_ = absl::Now();
    const auto size = static_cast<size_t>(got);
    const size_t room =
        spec_.max_output_bytes > c.data->size() ? spec_.max_output_bytes - c.data->size() : 0;
    c.data->append(buffer_.get(), std::min(size, room));
    if (size > room) *c.truncated = true;
    return absl::OkStatus();
  }

  // Notices the exit without reaping (WNOWAIT).
  absl::Status CheckExited() {
    siginfo_t info;
    std::memset(&info, 0, sizeof(info));
    if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      if (errno == EINTR) return absl::OkStatus();
      child_lost_ = errno == ECHILD;
      return absl::ErrnoToStatus(errno, "waitid");
    }
    if (info.si_pid == pid_) {
      exited_ = true;
      exited_at_ = absl::Now();
      pidfd_.Reset();  // done its job; it would stay readable
    }
    return absl::OkStatus();
  }

  absl::Status Reap() {
    int status = 0;
    pid_t rc;
    do {
      rc = waitpid(pid_, &status, 0);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return absl::ErrnoToStatus(errno, "waitpid");
    if (WIFEXITED(status)) {
      result_->exited = true;
      result_->exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      result_->term_signal = WTERMSIG(status);
    }
    return absl::OkStatus();
  }

  const CommandSpec& spec_;
  const absl::Notification* cancel_;
  const pid_t pid_;
  Fd pidfd_;  // invalid: no pidfd support, or the exit is already known
  CommandResult* result_;
  Capture captures_[2];
  const absl::Time timeout_at_;
  std::unique_ptr<char[]> buffer_;  // not zero-filled: read() writes before we look
  bool exited_ = false;  // exited but not yet reaped
  bool child_lost_ = false;  // reaped by someone else: never signal or wait for pid_
  absl::Time exited_at_ = absl::InfinitePast();
  absl::Time last_data_at_ = absl::InfinitePast();
  bool terminating_ = false;
  absl::Time kill_at_ = absl::InfiniteFuture();
  bool killed_ = false;
  absl::Time killed_at_ = absl::InfiniteFuture();
};

class PosixCommandRunner : public CommandRunner {
 public:
  absl::StatusOr<CommandResult> Run(const CommandSpec& spec,
                                    const absl::Notification* cancel) override {
    STEWARD_RETURN_IF_ERROR(ValidateSpec(spec));
    CommandResult result;
    result.started = absl::Now();
    if (cancel != nullptr && cancel->HasBeenNotified()) {  // canceled before it started
      result.canceled = true;
      result.finished = result.started;
      return result;
    }
    STEWARD_ASSIGN_OR_RETURN(Pipe out, MakePipe());
    STEWARD_ASSIGN_OR_RETURN(Pipe err, MakePipe());
    STEWARD_ASSIGN_OR_RETURN(const pid_t pid, Spawn(spec, out.write.get(), err.write.get()));
    out.write.Reset();  // the child holds the write ends now; EOF comes when it (and
    err.write.Reset();  // every descendant sharing them) has closed them
    // The child is ours and not reaped yet, so the pidfd names it and no reused pid.
    ChildWatch watch(spec, cancel, pid, OpenPidfd(pid), std::move(out.read),
                     std::move(err.read), &result);
    STEWARD_RETURN_IF_ERROR(watch.Run());
    return result;
  }
};

}  // namespace

std::unique_ptr<CommandRunner> NewPosixCommandRunner() {
  return std::make_unique<PosixCommandRunner>();
}

}  // namespace steward::agent
