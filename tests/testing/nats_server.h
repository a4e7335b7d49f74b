// NatsServer: a real nats-server on a port the OS picks (-p -1 --ports_file_dir), owned
// for the life of the object. Restart() keeps the same port so clients reconnect.
// Not thread-safe; one per test.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace steward::testing {

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
