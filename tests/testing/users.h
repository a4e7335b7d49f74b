// AsOrdinaryUser: a check that root would pass by its rights (reading a mode-000 file,
// writing into a read-only directory) run with an ordinary user's: in this process when
// it is not root, else in a forked child that becomes nobody. Catch2 only (tests).
#pragma once

#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <functional>
#include <string>

#include "absl/status/status.h"

namespace steward::testing {

// Runs `fn` with the rights of an ordinary user: here when this process is not root,
// else in a child that becomes nobody (root writes into any directory). Returns fn's
// status (its code and message).
inline absl::Status AsOrdinaryUser(const std::function<absl::Status()>& fn) {
  if (::geteuid() != 0) return fn();
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    const absl::Status st = fn();
    const std::string out = std::to_string(static_cast<int>(st.code())) + " " +
                            std::string(st.message());
    const ssize_t n = ::write(fds[1], out.data(), out.size());
    ::_exit(n == static_cast<ssize_t>(out.size()) ? 0 : 3);
  }
  ::close(fds[1]);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) {
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int wst = 0;
  REQUIRE(::waitpid(pid, &wst, 0) == pid);
  INFO("child exit status " << wst);
  REQUIRE((WIFEXITED(wst) && WEXITSTATUS(wst) == 0));
  const size_t space = out.find(' ');
  return absl::Status(static_cast<absl::StatusCode>(std::stoi(out.substr(0, space))),
                      out.substr(space + 1));
}

}  // namespace steward::testing
