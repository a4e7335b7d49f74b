// Unit tests for common/spawn.h: stdin from /dev/null, output on the given pipe, the
// environment, the working directory, the process group, and failures to start.
#include "common/spawn.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace steward {
namespace {

struct Ran {
  pid_t pid = -1;
  std::string out;
  int exit_code = -1;
};

// Spawns `options` with stdout and stderr on one pipe; reads to EOF and reaps it.
Ran RunToEnd(SpawnOptions options) {
  absl::StatusOr<SpawnPipe> pipe = MakeSpawnPipe();
  REQUIRE(pipe.ok());
  CHECK(pipe->read.get() > 2);
  CHECK(pipe->write.get() > 2);
  options.stdout_fd = options.stderr_fd = pipe->write.get();
  absl::StatusOr<pid_t> pid = SpawnProcess(options, "test");
  INFO(pid.status().ToString());
  REQUIRE(pid.ok());
  pipe->write.Reset();
  Ran ran{.pid = *pid};
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe->read.get(), buf, sizeof(buf))) > 0;) {
    ran.out.append(buf, static_cast<size_t>(n));
  }
  int st = 0;
  REQUIRE(::waitpid(*pid, &st, 0) == *pid);
  if (WIFEXITED(st)) ran.exit_code = WEXITSTATUS(st);
  return ran;
}

TEST_CASE("SpawnProcess runs argv with stdin from /dev/null and output on the pipe",
          "[spawn]") {
  const Ran ran = RunToEnd({.argv = {"sh", "-c", "cat; echo out; echo err >&2; exit 7"}});
  CHECK(ran.out == "out\nerr\n");  // cat read /dev/null: nothing, and no hang
  CHECK(ran.exit_code == 7);
}

TEST_CASE("SpawnProcess sets the environment, working directory and process group",
          "[spawn]") {
  // Field 5 of /proc/<pid>/stat is the process group.
  const std::string script = "echo \"$A $(pwd) $(cut -d' ' -f5 /proc/$$/stat)\"";
  Ran ran = RunToEnd({.argv = {"sh", "-c", script},
                      .env = std::vector<std::string>{"A=1", "PATH=/usr/bin:/bin"},
                      .working_dir = "/tmp",
                      .new_process_group = true});
  CHECK(ran.out == absl::StrCat("1 /tmp ", ran.pid, "\n"));
  ran = RunToEnd({.argv = {"sh", "-c", "cut -d' ' -f5 /proc/$$/stat"}});
  CHECK(ran.out == absl::StrCat(::getpgrp(), "\n"));  // ours, unless asked
}

TEST_CASE("SpawnProcess says what could not start", "[spawn]") {
  absl::StatusOr<pid_t> pid = SpawnProcess({.argv = {"steward-no-such-program"}}, "cannot run it");
  CHECK(absl::IsNotFound(pid.status()));
  CHECK(absl::StartsWith(pid.status().message(), "cannot run it"));
  pid = SpawnProcess({.argv = {"true"}, .working_dir = "/no/such/dir"}, "cannot run true");
  CHECK(absl::IsNotFound(pid.status()));
  CHECK(absl::IsInvalidArgument(SpawnProcess({}, "nothing").status()));
}

}  // namespace
}  // namespace steward
