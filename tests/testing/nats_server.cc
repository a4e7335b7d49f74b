// NatsServer and TempDir fixtures, and the nats-server start protocol they share with
// the benchmarks.
#include "tests/testing/nats_server.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "tests/testing/process.h"

namespace steward::testing {
namespace {

std::atomic<int> g_counter{0};

std::filesystem::path UniqueTempPath(const char* prefix) {
  return std::filesystem::temp_directory_path() /
         absl::StrCat(prefix, ::getpid(), "-", g_counter.fetch_add(1), "-",
                      absl::ToUnixNanos(absl::Now()) % 1000000);
}

std::string PortsFile(const std::string& ports_dir, pid_t pid) {
  return absl::StrCat(ports_dir, "/nats-server_", pid, ".ports");
}

// The port in a ports file ({"nats":["nats://127.0.0.1:PORT"], ...}), or 0.
int PortIn(const std::string& text) {
  const std::string key = "://127.0.0.1:";
  const size_t at = text.find(key);
  if (at == std::string::npos) return 0;
  size_t end = at + key.size();
  while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
  int port = 0;
  if (!absl::SimpleAtoi(text.substr(at + key.size(), end - at - key.size()), &port)) return 0;
  return port;
}

}  // namespace

std::vector<std::string> NatsServerArgv(const std::string& port, const std::string& ports_dir,
                                        const std::string& log, const std::string& config) {
  std::vector<std::string> argv = {"nats-server", "--ports_file_dir", ports_dir, "-l", log};
  if (!port.empty()) argv.insert(argv.end(), {"-a", "127.0.0.1", "-p", port});
  if (!config.empty()) {
    argv.push_back("-c");
    argv.push_back(config);
  }
  return argv;
}

absl::StatusOr<int> WaitForNatsPort(const std::string& ports_dir, pid_t pid,
                                    const std::function<absl::Status()>& check_alive,
                                    absl::Duration limit) {
  const std::string ports = PortsFile(ports_dir, pid);
  const absl::Time deadline = absl::Now() + limit;
  while (absl::Now() < deadline) {
    STEWARD_RETURN_IF_ERROR(check_alive());
    std::ifstream in(ports);
    std::stringstream buf;
    buf << in.rdbuf();
    if (const int port = PortIn(buf.str()); port > 0) return port;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "nats-server did not write its ports file ", ports, " within ", absl::FormatDuration(limit)));
}

TempDir::TempDir() : path_(UniqueTempPath("steward-test-")) {
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

NatsServer::NatsServer(std::string config)
    : dir_(UniqueTempPath("steward-nats-")), config_(std::move(config)) {
  std::filesystem::create_directories(dir_);
  Spawn("-1");
  absl::StatusOr<int> port = WaitForNatsPort(dir_.string(), pid_, [this]() -> absl::Status {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) != pid_) return absl::OkStatus();
    pid_ = -1;
    return absl::UnavailableError("nats-server exited at start (is it installed?)");
  });
  if (!port.ok()) {
    Stop(true);
    // The server's last words say why (a port in use, a bad configuration).
    std::string log;
    if (std::ifstream in(dir_ / "server.log"); in) log.assign(std::istreambuf_iterator<char>(in), {});
    if (log.size() > 600) log = log.substr(log.size() - 600);
    throw std::runtime_error(absl::StrCat(port.status().message(), log.empty() ? "" : ": ", log));
  }
  port_ = *port;
  url_ = absl::StrCat(config_.empty() ? "nats" : "tls", "://127.0.0.1:", port_);
}

NatsServer::~NatsServer() {
  Stop(false);
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void NatsServer::Spawn(const std::string& port_arg) {
  absl::StatusOr<pid_t> pid = StartChild(
      {.argv = NatsServerArgv(port_arg, dir_.string(), (dir_ / "server.log").string(), config_)});
  if (!pid.ok()) {
    throw std::runtime_error(absl::StrCat(pid.status().message(), " (is nats-server installed?)"));
  }
  pid_ = *pid;
}

void NatsServer::Stop(bool hard) {
  if (pid_ <= 0) return;
  ::kill(pid_, hard ? SIGKILL : SIGTERM);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
}

void NatsServer::Start() {
  if (pid_ > 0) return;
  Spawn(std::to_string(port_));
  // The ports file shows the listener is up, which is what clients need.
  (void)WaitForNatsPort(dir_.string(), pid_, [] { return absl::OkStatus(); });
}

std::string JetStreamConfig(const TempDir& dir) {
  const std::string path = (dir.path() / "jetstream.conf").string();
  std::ofstream(path) << "jetstream { store_dir: \"" << (dir.path() / "jetstream").string() << "\" }\n";
  return path;
}

}  // namespace steward::testing
