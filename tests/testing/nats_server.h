// A private nats-server for tests and benchmarks (no Catch2 here: bench/ links it
// too). The server listens on 127.0.0.1 on a port it picks itself (-p -1) and names it
// in a ports file (--ports_file_dir), which is where the port is read from:
// NatsServerArgv and WaitForNatsPort are that protocol, and the one place it is
// written down.
//
// NatsServer: such a server owned for the life of the object. Start() after Stop()
// keeps the same port so clients reconnect. Not thread-safe; one per test.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace steward::testing {

// argv for nats-server on 127.0.0.1 at `port` ("-1": a port it picks), writing its
// ports file into `ports_dir` and its log to `log`; with `config` (a configuration
// file), whose listen address the command line overrides unless `port` is "".
std::vector<std::string> NatsServerArgv(const std::string& port, const std::string& ports_dir,
                                        const std::string& log, const std::string& config = "");

// Waits up to `limit` for the ports file that nats-server `pid` writes into
// `ports_dir`, and returns the port it listens on. Between looks, `check_alive` is
// asked: its error (the server exited) ends the wait.
absl::StatusOr<int> WaitForNatsPort(const std::string& ports_dir, pid_t pid,
                                    const std::function<absl::Status()>& check_alive,
                                    absl::Duration limit = absl::Seconds(5));

class NatsServer {
 public:
  // Starts the server and waits (up to 5 s) until its ports file names the URL.
  // Throws std::runtime_error when it cannot.
  // `config`: a nats-server configuration file (its listen address is overridden: the
  // server still binds 127.0.0.1 on a port it picks).
  explicit NatsServer(std::string config = "");
  ~NatsServer();
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  const std::string& url() const { return url_; }
  int port() const { return port_; }

  // Stop kills the server (SIGTERM, or SIGKILL when `hard`) and waits for it.
  void Stop(bool hard = false);
  // Start brings it back on the same port (after Stop).
  void Start();

 private:
  void Spawn(const std::string& port_arg);

  std::filesystem::path dir_;
  std::string config_;
  pid_t pid_ = -1;
  std::string url_;
  int port_ = 0;
};

class TempDir;

// Writes a nats-server configuration file into `dir` that turns JetStream on, its
// store in `dir`, and returns its path (for NatsServer's `config`).
std::string JetStreamConfig(const TempDir& dir);

// A fresh temporary directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace steward::testing
