// Tests for PosixCommandRunner: exit status and signals, argv passed as-is, separate
// capped streams, timeout/cancel escalation over the whole process group, descendants
// holding the pipes, working directory, environment, spawn errors, no leaks.
#include "agent/command_runner.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace steward::agent {
namespace {

CommandSpec Spec(std::vector<std::string> argv) {
  CommandSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = absl::Seconds(10);  // a hung test fails instead of hanging
  return spec;
}

CommandSpec Sh(const std::string& script) { return Spec({"sh", "-c", script}); }

CommandResult MustRun(const CommandSpec& spec, const absl::Notification* cancel = nullptr) {
  absl::StatusOr<CommandResult> result = NewPosixCommandRunner()->Run(spec, cancel);
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  return *std::move(result);
}

// /proc/<pid>/stat: state (field 3) and process group (field 5), after the "(comm)".
struct ProcStat {
  char state = '?';
  pid_t pgrp = 0;
};

bool ReadProcStat(pid_t pid, ProcStat* out) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream rest(line.substr(paren + 1));
  pid_t ppid = 0;
  rest >> out->state >> ppid >> out->pgrp;
  return !rest.fail();
}

// Dead: gone, or a zombie (orphans are reparented to PID 1, which in a container may
// not reap them).
bool IsDead(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  ProcStat st;
  return !ReadProcStat(pid, &st) || st.state == 'Z';
}

bool DiesWithin(pid_t pid, absl::Duration within) {
  const absl::Time deadline = absl::Now() + within;
  while (!IsDead(pid)) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// Live (non-zombie) processes whose process group is `pgid`.
std::vector<pid_t> LiveGroupMembers(pid_t pgid) {
  std::vector<pid_t> live;
  DIR* dir = opendir("/proc");
  REQUIRE(dir != nullptr);
  while (dirent* entry = readdir(dir)) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    ProcStat st;
    if (ReadProcStat(pid, &st) && st.pgrp == pgid && st.state != 'Z') live.push_back(pid);
  }
  closedir(dir);
  return live;
}

bool GroupDiesWithin(pid_t pgid, absl::Duration within) {
  const absl::Time deadline = absl::Now() + within;
  while (!LiveGroupMembers(pgid).empty()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// The first whitespace-separated token of `text` that is a number.
pid_t FirstPid(absl::string_view text) {
  for (absl::string_view token : absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    int pid = 0;
    if (absl::SimpleAtoi(token, &pid) && pid > 1) return pid;
  }
  FAIL("no pid in \"" << std::string(text) << "\"");
  return -1;
}

size_t OpenFdCount() {
  size_t n = 0;
  DIR* dir = opendir("/proc/self/fd");
  REQUIRE(dir != nullptr);
  while (readdir(dir) != nullptr) ++n;
  closedir(dir);
  return n;
}

uint64_t StatusMask(const std::string& proc_status, absl::string_view field) {
  for (absl::string_view line : absl::StrSplit(proc_status, '\n')) {
    if (absl::ConsumePrefix(&line, field)) {
      uint64_t mask = 0;
      REQUIRE(absl::SimpleHexAtoi(absl::StripAsciiWhitespace(line), &mask));
      return mask;
    }
  }
  FAIL("no " << std::string(field) << " in " << proc_status);
  return 0;
}

uint64_t SignalBit(int sig) { return uint64_t{1} << (sig - 1); }

TEST_CASE("exit status of a normal exit", "[command_runner]") {
  const CommandResult ok = MustRun(Spec({"true"}));
  CHECK(ok.exited);
  CHECK(ok.exit_code == 0);
  CHECK(ok.term_signal == 0);
  CHECK_FALSE(ok.timed_out);
  CHECK_FALSE(ok.canceled);
  CHECK(ok.stdout_data.empty());
  CHECK(ok.started <= ok.finished);

  const CommandResult three = MustRun(Sh("exit 3"));
  CHECK(three.exited);
  CHECK(three.exit_code == 3);
}

TEST_CASE("stdout and stderr are captured separately", "[command_runner]") {
  const CommandResult r = MustRun(Sh("echo out; echo err >&2; echo out2"));
  CHECK(r.stdout_data == "out\nout2\n");
  CHECK(r.stderr_data == "err\n");
  CHECK_FALSE(r.stdout_truncated);
  CHECK_FALSE(r.stderr_truncated);
}

TEST_CASE("argv is passed as-is, never re-parsed by a shell", "[command_runner]") {
  const CommandResult r = MustRun(Spec({"echo", "$(id); rm -rf /"}));
  CHECK(r.stdout_data == "$(id); rm -rf /\n");

  const CommandResult args = MustRun(Spec({"printf", "[%s]\\n", "a b", "\"c\"", "*", ""}));
  CHECK(args.stdout_data == "[a b]\n[\"c\"]\n[*]\n[]\n");
}

TEST_CASE("stdin is /dev/null", "[command_runner]") {
  const CommandResult cat = MustRun(Spec({"cat"}));  // would block on an inherited stdin
  CHECK(cat.exited);
  CHECK(cat.stdout_data.empty());
  const CommandResult link = MustRun(Spec({"readlink", "/proc/self/fd/0"}));
  CHECK(link.stdout_data == "/dev/null\n");
}

TEST_CASE("a process killed by a signal reports the signal", "[command_runner]") {
  const CommandResult r = MustRun(Sh("kill -9 $$"));
  CHECK_FALSE(r.exited);
  CHECK(r.exit_code == -1);
  CHECK(r.term_signal == SIGKILL);
  CHECK_FALSE(r.timed_out);
}

TEST_CASE("the child leads its own process group", "[command_runner]") {
  const CommandResult r = MustRun(Spec({"cat", "/proc/self/stat"}));
  std::istringstream in(r.stdout_data);
  pid_t pid = 0;
  in >> pid;
  const size_t paren = r.stdout_data.rfind(')');
  REQUIRE(paren != std::string::npos);
  std::istringstream rest(r.stdout_data.substr(paren + 1));
  char state = 0;
  pid_t ppid = 0;
  pid_t pgrp = 0;
  rest >> state >> ppid >> pgrp;
  CHECK(pid > 0);
  CHECK(ppid == getpid());
  CHECK(pgrp == pid);
  CHECK(pgrp != getpgrp());
}

TEST_CASE("the child gets an empty signal mask and default dispositions", "[command_runner]") {
  // The agent blocks SIGTERM/SIGINT and may ignore SIGPIPE; none of it may leak.
  sigset_t block;
  sigset_t saved_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  REQUIRE(pthread_sigmask(SIG_BLOCK, &block, &saved_mask) == 0);
  struct sigaction ignore = {};
  struct sigaction saved_pipe = {};
  ignore.sa_handler = SIG_IGN;
  REQUIRE(sigaction(SIGPIPE, &ignore, &saved_pipe) == 0);

  absl::StatusOr<CommandResult> r =
      NewPosixCommandRunner()->Run(Spec({"cat", "/proc/self/status"}), nullptr);

  sigaction(SIGPIPE, &saved_pipe, nullptr);
  pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  REQUIRE(r.ok());
  CHECK(StatusMask(r->stdout_data, "SigBlk:") == 0);
  const uint64_t ignored = StatusMask(r->stdout_data, "SigIgn:");
  CHECK((ignored & SignalBit(SIGPIPE)) == 0);
  CHECK((ignored & SignalBit(SIGTERM)) == 0);
  CHECK((ignored & SignalBit(SIGINT)) == 0);
}

TEST_CASE("output beyond the cap is drained and discarded", "[command_runner]") {
  CommandSpec spec = Spec({"head", "-c", "100000", "/dev/zero"});
  spec.max_output_bytes = 1000;
  const CommandResult r = MustRun(spec);
  CHECK(r.exited);
  CHECK(r.exit_code == 0);  // not blocked on a full pipe, not killed by SIGPIPE
  CHECK(r.stdout_data.size() == 1000);
  CHECK(r.stdout_data == std::string(1000, '\0'));
  CHECK(r.stdout_truncated);
  CHECK_FALSE(r.stderr_truncated);
  CHECK_FALSE(r.timed_out);
}

TEST_CASE("stderr has its own cap", "[command_runner]") {
  CommandSpec spec = Sh("head -c 50000 /dev/zero >&2; echo done");
  spec.max_output_bytes = 1000;
  const CommandResult r = MustRun(spec);
  CHECK(r.exit_code == 0);
  CHECK(r.stderr_data.size() == 1000);
  CHECK(r.stderr_truncated);
  CHECK(r.stdout_data == "done\n");
  CHECK_FALSE(r.stdout_truncated);
}

TEST_CASE("output exactly at the cap is not truncated", "[command_runner]") {
  CommandSpec spec = Spec({"printf", "abc"});
  spec.max_output_bytes = 3;
  const CommandResult exact = MustRun(spec);
  CHECK(exact.stdout_data == "abc");
  CHECK_FALSE(exact.stdout_truncated);

  spec.max_output_bytes = 2;
  const CommandResult over = MustRun(spec);
  CHECK(over.stdout_data == "ab");
  CHECK(over.stdout_truncated);
}

TEST_CASE("large output under the default cap", "[command_runner]") {
  const CommandResult r = MustRun(Spec({"head", "-c", "3000000", "/dev/zero"}));
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_data.size() == (size_t{1} << 20));
  CHECK(r.stdout_truncated);
}

TEST_CASE("timeout sends SIGTERM", "[command_runner]") {
  CommandSpec spec = Spec({"sleep", "30"});
  spec.timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  const CommandResult r = MustRun(spec);
  const absl::Duration took = absl::Now() - start;
  CHECK(r.timed_out);
  CHECK_FALSE(r.canceled);
  CHECK_FALSE(r.exited);
  CHECK(r.term_signal == SIGTERM);
  CHECK(took >= absl::Milliseconds(300));
  CHECK(took < absl::Seconds(3));
}

TEST_CASE("a group that ignores SIGTERM gets SIGKILL after the grace", "[command_runner]") {
  // sh ignores TERM and the sleep inherits the ignored disposition: only SIGKILL works.
  CommandSpec spec = Sh("trap '' TERM; echo $$; sleep 30; echo not reached");
  spec.timeout = absl::Milliseconds(300);
  spec.kill_grace = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  const CommandResult r = MustRun(spec);
  const absl::Duration took = absl::Now() - start;
  CHECK(r.timed_out);
  CHECK_FALSE(r.exited);
  CHECK(r.term_signal == SIGKILL);
  CHECK(took >= absl::Milliseconds(600));
  CHECK(took < absl::Milliseconds(600) + absl::Seconds(2));
  const pid_t pgid = FirstPid(r.stdout_data);
  CHECK(GroupDiesWithin(pgid, absl::Seconds(1)));
}

TEST_CASE("timeout kills the whole process group", "[command_runner]") {
  CommandSpec spec = Sh("sleep 30 & echo $!; wait");
  spec.timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  const CommandResult r = MustRun(spec);
  CHECK(absl::Now() - start < absl::Seconds(3));
  CHECK(r.timed_out);
  const pid_t grandchild = FirstPid(r.stdout_data);
  CHECK(DiesWithin(grandchild, absl::Seconds(1)));
}

TEST_CASE("timeout kills members that ignore SIGTERM and hold no pipe", "[command_runner]") {
  // The shell dies of SIGTERM and the pipes close at once; the straggler still dies.
  CommandSpec spec = Sh("(trap '' TERM; exec sleep 30) >/dev/null 2>&1 & echo $!; wait");
  spec.timeout = absl::Milliseconds(300);
  const CommandResult r = MustRun(spec);
  CHECK(r.timed_out);
  CHECK(r.term_signal == SIGTERM);
  CHECK(DiesWithin(FirstPid(r.stdout_data), absl::Seconds(1)));
}

TEST_CASE("a background job that closed the pipes does not hold Run", "[command_runner]") {
  const absl::Time start = absl::Now();
  const CommandResult r = MustRun(Sh("sleep 30 >/dev/null 2>&1 & echo started $$"));
  CHECK(absl::Now() - start < absl::Seconds(1));
  CHECK(r.exited);
  CHECK(r.exit_code == 0);
  CHECK(absl::StartsWith(r.stdout_data, "started "));
  const pid_t pgid = FirstPid(r.stdout_data);
  CHECK_FALSE(LiveGroupMembers(pgid).empty());  // left alone: the command finished normally
  kill(-pgid, SIGKILL);
}

TEST_CASE("a background job that keeps stdout open does not hold Run", "[command_runner]") {
  const absl::Time start = absl::Now();
  const CommandResult r = MustRun(Sh("(sleep 30 &); echo hi $$"));
  CHECK(absl::Now() - start < absl::Seconds(3));
  CHECK(r.exited);
  CHECK(r.exit_code == 0);
  CHECK(absl::StartsWith(r.stdout_data, "hi "));
  kill(-FirstPid(r.stdout_data), SIGKILL);
}

TEST_CASE("a background job that keeps writing does not hold Run", "[command_runner]") {
  CommandSpec spec = Sh("yes & echo $$ >&2");
  spec.max_output_bytes = 1000;
  const absl::Time start = absl::Now();
  const CommandResult r = MustRun(spec);
  CHECK(absl::Now() - start < absl::Seconds(3));
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_data.size() == 1000);
  CHECK(r.stdout_truncated);
  kill(-FirstPid(r.stderr_data), SIGKILL);
}

TEST_CASE("cancel stops the command", "[command_runner]") {
  absl::Notification cancel;
  std::thread canceller([&cancel] {
    absl::SleepFor(absl::Milliseconds(200));
    cancel.Notify();
  });
  CommandSpec spec = Spec({"sleep", "30"});
  const absl::Time start = absl::Now();
  absl::StatusOr<CommandResult> r = NewPosixCommandRunner()->Run(spec, &cancel);
  const absl::Duration took = absl::Now() - start;
  canceller.join();
  REQUIRE(r.ok());
  CHECK(r->canceled);
  CHECK_FALSE(r->timed_out);
  CHECK(r->term_signal == SIGTERM);
  CHECK(took >= absl::Milliseconds(200));
  CHECK(took < absl::Seconds(2));
}

TEST_CASE("cancel escalates to SIGKILL after cancel_grace", "[command_runner]") {
  absl::Notification cancel;
  std::thread canceller([&cancel] {
    absl::SleepFor(absl::Milliseconds(100));
    cancel.Notify();
  });
  CommandSpec spec = Sh("trap '' TERM; sleep 30");
  spec.cancel_grace = absl::Milliseconds(200);
  const absl::Time start = absl::Now();
  absl::StatusOr<CommandResult> r = NewPosixCommandRunner()->Run(spec, &cancel);
  const absl::Duration took = absl::Now() - start;
  canceller.join();
  REQUIRE(r.ok());
  CHECK(r->canceled);
  CHECK(r->term_signal == SIGKILL);
  CHECK(took >= absl::Milliseconds(300));
  CHECK(took < absl::Seconds(2));
}

TEST_CASE("a command canceled before Run is not started", "[command_runner]") {
  char path[] = "/tmp/command_runner_test_XXXXXX";
  REQUIRE(mkdtemp(path) != nullptr);
  const std::string marker = std::string(path) + "/ran";
  absl::Notification cancel;
  cancel.Notify();
  absl::StatusOr<CommandResult> r =
      NewPosixCommandRunner()->Run(Spec({"touch", marker}), &cancel);
  REQUIRE(r.ok());
  CHECK(r->canceled);
  CHECK_FALSE(r->exited);
  CHECK(access(marker.c_str(), F_OK) != 0);
  unlink(marker.c_str());
  rmdir(path);
}

TEST_CASE("working_dir", "[command_runner]") {
  CommandSpec spec = Spec({"pwd"});
  spec.working_dir = "/tmp";
  CHECK(MustRun(spec).stdout_data == "/tmp\n");

  spec.working_dir = "/nonexistent/steward-dir";
  absl::StatusOr<CommandResult> missing = NewPosixCommandRunner()->Run(spec, nullptr);
  REQUIRE_FALSE(missing.ok());
  CHECK(absl::IsNotFound(missing.status()));
  CHECK(missing.status().message().find("/nonexistent/steward-dir") != absl::string_view::npos);
}

TEST_CASE("env entries are added and replace the agent's", "[command_runner]") {
  CommandSpec spec = Sh("echo \"$STEWARD_TEST_FOO\"; echo \"$PATH\"; env | grep -c '^HOME='");
  spec.env = {"STEWARD_TEST_FOO=bar baz", "HOME=/steward-home"};
  const CommandResult r = MustRun(spec);
  const char* path = std::getenv("PATH");
  REQUIRE(path != nullptr);
  CHECK(r.stdout_data == "bar baz\n" + std::string(path) + "\n1\n");

  spec = Sh("echo \"$HOME\"");
  spec.env = {"HOME=/first", "HOME=/second"};
  CHECK(MustRun(spec).stdout_data == "/second\n");

  spec.env = {"EMPTY="};
  spec.argv = {"sh", "-c", "echo \"${EMPTY-unset}\""};
  CHECK(MustRun(spec).stdout_data == "\n");
}

TEST_CASE("invalid env entries are rejected", "[command_runner]") {
  for (const char* entry : {"NOEQUALS", "=value", ""}) {
    CommandSpec spec = Spec({"true"});
    spec.env = {"OK=1", entry};
    absl::StatusOr<CommandResult> r = NewPosixCommandRunner()->Run(spec, nullptr);
    INFO(entry);
    CHECK(absl::IsInvalidArgument(r.status()));
  }
}

TEST_CASE("spawn errors", "[command_runner]") {
  auto runner = NewPosixCommandRunner();
  absl::StatusOr<CommandResult> missing =
      runner->Run(Spec({"steward-no-such-program", "x"}), nullptr);
  CHECK(absl::IsNotFound(missing.status()));
  CHECK(missing.status().message().find("steward-no-such-program") != absl::string_view::npos);

  CHECK(absl::IsNotFound(runner->Run(Spec({"/nonexistent/prog"}), nullptr).status()));
  CHECK(absl::IsInvalidArgument(runner->Run(Spec({}), nullptr).status()));
  CHECK(absl::IsInvalidArgument(runner->Run(Spec({"echo", std::string("a\0b", 3)}), nullptr)
                                    .status()));
  // A directory is not executable.
  CHECK_FALSE(runner->Run(Spec({"/tmp"}), nullptr).ok());
}

TEST_CASE("concurrent runs on different threads", "[command_runner]") {
  constexpr int kThreads = 4;
  std::vector<std::string> outputs(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([i, &outputs] {
      auto r = NewPosixCommandRunner()->Run(Sh("for n in 1 2 3; do echo " + std::to_string(i) +
                                               "; done"),
                                            nullptr);
      if (r.ok()) outputs[i] = r->stdout_data;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    const std::string n = std::to_string(i);
    CHECK(outputs[i] == n + "\n" + n + "\n" + n + "\n");
  }
}

TEST_CASE("no zombies and no leaked descriptors", "[command_runner]") {
  const size_t fds_before = OpenFdCount();
  auto runner = NewPosixCommandRunner();
  CommandSpec quick_timeout = Spec({"sleep", "30"});
  quick_timeout.timeout = absl::Milliseconds(50);
  for (const CommandSpec& spec :
       {Spec({"true"}), Sh("exit 7"), Sh("kill -9 $$"), quick_timeout, Spec({"no-such-prog"})}) {
    (void)runner->Run(spec, nullptr);
  }
  CHECK(OpenFdCount() == fds_before);
  siginfo_t info = {};
  // WNOWAIT: look for an exited, unreaped child without reaping it.
  const int rc = waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
  if (rc == 0) {
    CHECK(info.si_pid == 0);
  } else {
    CHECK(errno == ECHILD);
  }
}

// An OutputSink that keeps what it is given and when it was asked to flush.
class RecordingSink final : public OutputSink {
 public:
  void Add(int stream, absl::string_view data, absl::Time now) override {
    (stream == 1 ? out : err).append(data.data(), data.size());
    if (due == absl::InfiniteFuture()) due = now + absl::Milliseconds(50);
  }
  absl::Time FlushDue() const override { return due; }
  void Flush(absl::Time now) override {
    flushes.push_back(out);
    due = absl::InfiniteFuture();
    (void)now;
  }
  std::string out, err;
  std::vector<std::string> flushes;  // stdout as it was at each flush
  absl::Time due = absl::InfiniteFuture();
};

TEST_CASE("an output sink sees the kept output as it comes and is flushed while the command runs",
          "[agent][runner][stream]") {
  RecordingSink sink;
  CommandSpec spec = Sh("echo one; echo err >&2; sleep 0.3; echo two; head -c 5000 /dev/zero | tr '\\0' x");
  spec.max_output_bytes = 1000;
  spec.output = &sink;
  CommandResult r = MustRun(spec);
  // What the sink saw is what the result keeps (within the cap), byte for byte.
  CHECK(sink.out == r.stdout_data);
  CHECK(sink.err == "err\n");
  CHECK(r.stdout_truncated);
  CHECK(r.stdout_data.size() == 1000);
  // "one" was flushed during the sleep, before "two" was printed; nothing is flushed
  // once the command has ended (the result carries the rest).
  REQUIRE_FALSE(sink.flushes.empty());
  CHECK(sink.flushes.front() == "one\n");
}

}  // namespace
}  // namespace steward::agent
