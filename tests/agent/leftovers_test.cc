// Leftovers (agent/leftovers.h): the processes a command left running are found by
// their STEWARD_COMMAND_ID and stopped, children too; others are left alone.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "agent/leftovers.h"
#include "common/ids.h"

namespace steward::agent {
namespace {

// A shell in its own process group with STEWARD_COMMAND_ID=`id`, which starts a child
// sleep and waits.
pid_t Start(const std::string& id) {
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    const std::string env = "STEWARD_COMMAND_ID=" + id;
    char* const argv[] = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"),
                          const_cast<char*>("sleep 30 & wait"), nullptr};
    char* const envp[] = {const_cast<char*>(env.c_str()), const_cast<char*>("PATH=/usr/bin:/bin"), nullptr};
    execve("/bin/sh", argv, envp);
    _exit(127);
  }
  return pid;
}

TEST_CASE("the processes a command left running are found by its id and stopped, children too",
          "[agent][leftovers]") {
  const std::string id = NewId();
  const std::string other = NewId();
  const pid_t mine = Start(id);
  const pid_t theirs = Start(other);
  // The shell and its sleep.
  for (int i = 0; i < 200 && ProcessesOfCommand(id).size() < 2; ++i) usleep(10'000);
  REQUIRE(ProcessesOfCommand(id).size() == 2);
  CHECK(StopLeftovers(id) == 2);
  int status = 0;
  REQUIRE(waitpid(mine, &status, 0) == mine);
  CHECK(WIFSIGNALED(status));
  for (int i = 0; i < 200 && !ProcessesOfCommand(id).empty(); ++i) usleep(10'000);
  CHECK(ProcessesOfCommand(id).empty());
  // Another command's processes are not touched.
  CHECK(ProcessesOfCommand(other).size() == 2);
  CHECK(StopLeftovers(other) == 2);
  waitpid(theirs, &status, 0);
  CHECK(StopLeftovers(NewId()) == 0);
}

}  // namespace
}  // namespace steward::agent
