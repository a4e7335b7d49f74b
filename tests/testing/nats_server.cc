// NatsServer and TempDir test fixtures.
#include "tests/testing/nats_server.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace steward::testing {
namespace {

std::atomic<int> g_counter{0};

std::filesystem::path UniqueTempPath(const char* prefix) {
  return std::filesystem::temp_directory_path() /
         absl::StrCat(prefix, ::getpid(), "-", g_counter.fetch_add(1), "-",
                      absl::ToUnixNanos(absl::Now()) % 1000000);
}

}  // namespace

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
  const std::filesystem::path ports = dir_ / absl::StrCat("nats-server_", pid_, ".ports");
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("nats-server exited at start (is it installed?)");
    }
    std::ifstream in(ports);
    std::stringstream buf;
    buf << in.rdbuf();
    const std::string text = buf.str();
    const std::string key = "://127.0.0.1:";
    const size_t at = text.find(key);
    if (at != std::string::npos) {
      port_ = std::stoi(text.substr(at + key.size()));
      url_ = absl::StrCat(config_.empty() ? "nats" : "tls", key, port_);
      return;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  Stop(true);
  throw std::runtime_error("nats-server did not report its port within 5s");
}

NatsServer::~NatsServer() {
  Stop(false);
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void NatsServer::Spawn(const std::string& port_arg) {
  const std::string log = (dir_ / "server.log").string();
  const std::string ports_dir = dir_.string();
  std::vector<std::string> args = {"nats-server", "-a", "127.0.0.1", "-p", port_arg,
                                    "--ports_file_dir", ports_dir, "-l", log};
  if (!config_.empty()) {
    args.push_back("-c");
    args.push_back(config_);
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::execvp("nats-server", argv.data());
    ::_exit(127);
  }
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
  // Ready when a TCP connect to the port succeeds is what clients need; the ports file
  // shows the listener is up.
  const std::filesystem::path ports = dir_ / absl::StrCat("nats-server_", pid_, ".ports");
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline && !std::filesystem::exists(ports)) {
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace steward::testing
