// Child processes: one fork/exec (StartChild) for tests and benchmarks, and Process.
#include "tests/testing/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

extern char** environ;

namespace steward::testing {
namespace {

std::atomic<int> g_counter{0};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// This environment with `extra` replacing entries of the same name, or appended.
std::vector<std::string> MergedEnvironment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry(*e);
    if (!extra.contains(entry.substr(0, entry.find('=')))) out.push_back(entry);
  }
  for (const auto& [key, value] : extra) out.push_back(absl::StrCat(key, "=", value));
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// In the child, before exec: async-signal-safe calls only.
void WriteStderr(const char* text) {
  if (::write(STDERR_FILENO, text, std::strlen(text)) < 0) {
  }
}

[[noreturn]] void ChildFails(const char* what, const char* path) {
  WriteStderr(what);
  WriteStderr(path);
  WriteStderr(" failed\n");
  ::_exit(127);
}

// Opens `path` (unless null) onto `target`.
void Redirect(const char* path, int flags, int target) {
  if (path == nullptr) return;
  const int fd = ::open(path, flags, 0600);
  if (fd < 0 || ::dup2(fd, target) < 0) ChildFails("open ", path);
}

}  // namespace

std::string BinPath(const std::string& relative) {
  return absl::StrCat(STEWARD_BIN_DIR, "/", relative);
}

absl::StatusOr<std::string> FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return name;
    return absl::NotFoundError(absl::StrCat(name, " is not an executable file"));
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(name, " not found in PATH"));
}

absl::StatusOr<pid_t> StartChild(const ChildOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("empty argv");
  // Everything the child needs is made before fork(): it must not allocate.
  STEWARD_ASSIGN_OR_RETURN(const std::string program, FindProgram(options.argv[0]));
  std::vector<std::string> args = options.argv;
  std::vector<std::string> env = MergedEnvironment(options.env);
  std::vector<char*> argv = CStrings(args);
  std::vector<char*> envp = CStrings(env);
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (options.append ? O_APPEND : O_TRUNC);
  const char* out = options.stdout_path.empty() ? nullptr : options.stdout_path.c_str();
  const bool err_is_out = options.stderr_path == options.stdout_path;
  const char* err = options.stderr_path.empty() || err_is_out ? nullptr : options.stderr_path.c_str();
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) return absl::ErrnoToStatus(errno, "fork");
  if (pid > 0) return pid;
  if (options.die_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
  }
  Redirect("/dev/null", O_RDONLY | O_CLOEXEC, STDIN_FILENO);
  Redirect(out, flags, STDOUT_FILENO);
  if (out != nullptr && err_is_out) {
    if (::dup2(STDOUT_FILENO, STDERR_FILENO) < 0) ChildFails("dup2 ", out);
  }
  Redirect(err, flags, STDERR_FILENO);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(program.c_str(), argv.data(), envp.data());
  ChildFails("exec ", program.c_str());
}

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env) {
  const std::string base =
      (std::filesystem::temp_directory_path() /
       absl::StrCat("steward-proc-", ::getpid(), "-", g_counter.fetch_add(1)))
          .string();
  out_path_ = base + ".out";
  err_path_ = base + ".err";
  absl::StatusOr<pid_t> pid = StartChild(
      {.argv = std::move(argv), .env = std::move(env), .stdout_path = out_path_, .stderr_path = err_path_});
  if (!pid.ok()) throw std::runtime_error(pid.status().ToString());
  pid_ = *pid;
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
