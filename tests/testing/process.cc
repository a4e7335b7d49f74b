// Process test helper: fork/exec with output to files, wait with a deadline.
#include "tests/testing/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace steward::testing {
namespace {

std::atomic<int> g_counter{0};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace

std::string BinPath(const std::string& relative) {
  return absl::StrCat(STEWARD_BIN_DIR, "/", relative);
}

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env) {
  const std::string base =
      (std::filesystem::temp_directory_path() /
       absl::StrCat("steward-proc-", ::getpid(), "-", g_counter.fetch_add(1)))
          .string();
  out_path_ = base + ".out";
  err_path_ = base + ".err";
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(absl::StrCat(k, "=", v));
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (std::string& e : env_strings) ::putenv(e.data());
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    Wait(absl::Seconds(5));
  }
  std::error_code ignored;
  std::filesystem::remove(out_path_, ignored);
  std::filesystem::remove(err_path_, ignored);
}

bool Process::running() {
  if (result_.has_value() || pid_ <= 0) return false;
  return !Wait(absl::ZeroDuration()).has_value();
}

void Process::Signal(int sig) {
  if (!result_.has_value() && pid_ > 0) ::kill(pid_, sig);
}

std::optional<RunResult> Process::Wait(absl::Duration timeout) {
  if (result_.has_value()) return result_;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      RunResult res;
      if (WIFEXITED(st)) res.exit_code = WEXITSTATUS(st);
      if (WIFSIGNALED(st)) res.term_signal = WTERMSIG(st);
      res.out = Stdout();
      res.err = Stderr();
      result_ = res;
      return result_;
    }
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

std::string Process::Stdout() const { return ReadFile(out_path_); }
std::string Process::Stderr() const { return ReadFile(err_path_); }

bool Process::WaitForOutput(const std::string& text, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (Stderr().find(text) != std::string::npos || Stdout().find(text) != std::string::npos) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

RunResult RunProgram(std::vector<std::string> argv, absl::Duration timeout,
                     std::map<std::string, std::string> env) {
  Process p(std::move(argv), std::move(env));
  auto r = p.Wait(timeout);
  if (!r.has_value()) {
    p.Signal(SIGKILL);
    r = p.Wait(absl::Seconds(5));
    RunResult killed = r.value_or(RunResult{});
    killed.exit_code = -2;  // Marks "did not finish in time".
    return killed;
  }
  return *r;
}

}  // namespace steward::testing
