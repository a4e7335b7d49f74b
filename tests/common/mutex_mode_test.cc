// Tests for common/mutex_mode.h: Debian's Abseil checks lock order on every lock and
// aborts on a cycle (the tests rely on that check), and SkipLockOrderChecks, which the
// programs call at start, turns it off. Each case runs the cycle in a child process.
#include "common/mutex_mode.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>

#include "absl/synchronization/mutex.h"

namespace steward {
namespace {

// Takes two locks in one order, then in the other, in a child; returns its wait status.
int CycleInChild(bool skip_checks) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child dies of its own SIGABRT: not through Catch2's handler (which would print
    // a failure report for the parent's test), without a core file, and never hangs.
    std::signal(SIGABRT, SIG_DFL);
    const struct rlimit no_core = {0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    ::alarm(10);
    if (skip_checks) SkipLockOrderChecks();
    absl::Mutex a;
    absl::Mutex b;
    {
      absl::MutexLock la(&a);
      absl::MutexLock lb(&b);
    }
    {
      absl::MutexLock lb(&b);
      absl::MutexLock la(&a);  // a after b: the order above reversed
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

TEST_CASE("Abseil here aborts a process whose locks are taken in a cycle", "[mutex_mode]") {
  const int status = CycleInChild(/*skip_checks=*/false);
  INFO("wait status " << status
                      << " (this fails if Abseil is ever built with NDEBUG: its Mutex then checks "
                         "nothing, and common/mutex_mode.h's reason is gone)");
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGABRT);
}

TEST_CASE("SkipLockOrderChecks lets a program run past a lock-order cycle", "[mutex_mode]") {
  const int status = CycleInChild(/*skip_checks=*/true);
  INFO("wait status " << status);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace steward
