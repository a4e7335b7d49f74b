// PosixCommandRunner: SpawnProcess (common/spawn.h) into a new process group with stdin
// from /dev/null and stdout/stderr on two pipes, then one poll loop that captures
// output, enforces the deadline or cancellation (SIGTERM, then SIGKILL to the group)
// and reaps the child.
// The child's exit wakes the loop through a pidfd in the same poll set as the pipes, so
// a quick command costs no fixed tick; without pidfds (old kernels, seccomp) the exit
// is polled every kPollTickMs instead.
#include "agent/command_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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
#include "common/spawn.h"
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

std::string SpawnFailureMessage(const CommandSpec& spec) {
  std::string msg = absl::StrCat("cannot run \"", spec.argv[0], "\"");
  if (!spec.working_dir.empty()) {
    absl::StrAppend(&msg, " in working directory \"", spec.working_dir, "\"");
  }
  return msg;
}

// In a process group of its own (the deadline and cancellation signal the group).
absl::StatusOr<pid_t> Spawn(const CommandSpec& spec, int stdout_fd, int stderr_fd) {
  return SpawnProcess({.argv = spec.argv,
                       .env = MergeEnvironment(spec.env),
                       .stdout_fd = stdout_fd,
                       .stderr_fd = stderr_fd,
                       .working_dir = spec.working_dir,
                       .new_process_group = true},
                      SpawnFailureMessage(spec));
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
      if (spec_.output != nullptr && !exited_ && now >= spec_.output->FlushDue()) spec_.output->Flush(now);
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
      if (spec_.output != nullptr) wake = std::min(wake, spec_.output->FlushDue());
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
    const size_t kept = std::min(size, room);
    c.data->append(buffer_.get(), kept);
    if (size > room) *c.truncated = true;
    if (spec_.output != nullptr && kept > 0) {
      spec_.output->Add(&c == &captures_[0] ? 1 : 2, absl::string_view(buffer_.get(), kept), last_data_at_);
    }
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
    STEWARD_ASSIGN_OR_RETURN(SpawnPipe out, MakeSpawnPipe());
    STEWARD_ASSIGN_OR_RETURN(SpawnPipe err, MakeSpawnPipe());
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
