// Leftovers (agent/leftovers.h): the processes a command left running are found by
// their STEWARD_COMMAND_ID and stopped, children too; others are left alone.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "agent/leftovers.h"
#include "common/ids.h"
#include "tests/testing/nats_server.h"

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

TEST_CASE("RunningMarks: a file per running command, apart for each data directory, gone when cleared",
          "[agent][leftovers]") {
  CHECK(RunningMarks::NameFor("/var/lib/steward") == "var-lib-steward");
  CHECK(RunningMarks::NameFor("/var/lib/steward/") == "var-lib-steward");
  CHECK(RunningMarks::NameFor("/srv/a-b/c%d") == "srv-a%2Db-c%25d");
  CHECK(RunningMarks::NameFor("/srv/a/b") != RunningMarks::NameFor("/srv/a-b"));
  testing::TempDir tmp;
  const std::string run = tmp.str() + "/run";
  auto a = RunningMarks::Open(run, "/data/one");
  auto b = RunningMarks::Open(run, "/data/two");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK((*a)->dir() == run + "/data-one");
  auto ids = [](const RunningMarks& m) {
    std::vector<std::string> out;
    for (const RunningMarks::Marked& x : m.List()) out.push_back(x.ended ? x.id + " ended" : x.id);
    return out;
  };
  const std::string id = NewId();
  (*a)->Mark(id);
  (*a)->Mark("../../escape");  // not an id: never a path
  CHECK(ids(**a) == std::vector<std::string>{id});
  CHECK((*b)->List().empty());
  CHECK_FALSE(std::filesystem::exists(run + "/escape"));
  CHECK_FALSE(std::filesystem::exists(tmp.str() + "/escape"));
  // A mark outlives its RunningMarks (the agent killed): the next one finds it.
  a->reset();
  auto again = RunningMarks::Open(run, "/data/one");
  REQUIRE(again.ok());
  CHECK(ids(**again) == std::vector<std::string>{id});
  // Its process ended; the result is not recorded yet.
  (*again)->Ended(id);
  CHECK(ids(**again) == std::vector<std::string>{id + " ended"});
  (*again)->Clear(id);
  CHECK((*again)->List().empty());
  // Empty at a clean stop: the directory goes.
  again->reset();
  CHECK_FALSE(std::filesystem::exists(run + "/data-one"));
  // A run directory that cannot be made says so.
  std::ofstream(tmp.str() + "/file") << "x";
  auto bad = RunningMarks::Open(tmp.str() + "/file", "/data/one");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(std::string(bad.status().message()), Catch::Contains("cannot create"));
}

}  // namespace
}  // namespace steward::agent
