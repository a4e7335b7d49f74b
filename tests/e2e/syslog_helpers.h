// Helpers of the syslog end-to-end tests (syslog_test.cc, logs_test.cc): the ports an
// agent's inputs bound, stewardctl logs polled until lines arrive, senders (`logger`,
// raw TCP and UDP sockets), and an rsyslogd relay run as a child with its own
// configuration and work directory (never the system's syslog); a TCP port held for a
// listener that must fail to bind.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/testing/cluster.h"

namespace steward::testing::syslog {

// A TCP port on 127.0.0.1 that another socket listens on until this goes: an agent's
// syslog listener configured on it cannot bind.
class TakenTcpPort {
 public:
  TakenTcpPort() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd_, 4) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("TakenTcpPort: no listening socket on 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~TakenTcpPort() { ::close(fd_); }
  TakenTcpPort(const TakenTcpPort&) = delete;
  TakenTcpPort& operator=(const TakenTcpPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

// The port an agent's syslog input bound, from its log line "syslog input <name> (port N)".
inline int InputPort(Process& agent, const std::string& kind) {
  const std::string marker = "syslog input syslog-" + kind + ":";
  REQUIRE(agent.WaitForOutput(marker, absl::Seconds(10)));
  const std::string err = agent.Stderr();
  const size_t at = err.find(marker);
  const size_t port_at = err.find("(port ", at);
  REQUIRE(port_at != std::string::npos);
  return std::stoi(err.substr(port_at + 6));
}

// Waits until `stewardctl logs` (with args) prints at least `n` lines; returns them.
inline std::vector<std::string> WaitForLogs(Cluster& c, std::vector<std::string> args, size_t n,
                                            absl::Duration timeout) {
  args.insert(args.begin(), "logs");
  std::vector<std::string> lines;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    RunResult r = c.Ctl(args);
    lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
    if (lines.size() >= n) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return lines;
}

// The count after "log lines: " in `stewardctl node NAME`; -1 when not there.
inline int64_t StoredLines(Cluster& c, const std::string& node) {
  const std::string out = c.Ctl({"node", node}).out;
  const size_t at = out.find("log lines: ");
  int64_t n = -1;
  if (at == std::string::npos) return n;
  const std::string rest = out.substr(at + 11);
  if (!absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &n)) return -1;
  return n;
}

// The value of "field":NUMBER (or "field":"NUMBER") in a JSON line; -1 when absent.
inline int64_t JsonInt(const std::string& json, const std::string& field) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + field + "\":\"?(-?[0-9]+)"))) return -1;
  int64_t v = -1;
  return absl::SimpleAtoi(m[1].str(), &v) ? v : -1;
}

inline bool HasProgram(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

inline int ConnectLoopback(int type, int port) {
  const int fd = ::socket(AF_INET, type, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

// Writes all of `data` to a new TCP connection to 127.0.0.1:port, then closes it.
inline void SendTcp(int port, const std::string& data) {
  const int fd = ConnectLoopback(SOCK_STREAM, port);
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::write(fd, data.data() + sent, data.size() - sent);
    REQUIRE(n > 0);
    sent += static_cast<size_t>(n);
  }
  ::close(fd);
}

inline void SendUdp(int port, const std::string& datagram) {
  const int fd = ConnectLoopback(SOCK_DGRAM, port);
  REQUIRE(::send(fd, datagram.data(), datagram.size(), 0) == static_cast<ssize_t>(datagram.size()));
  ::close(fd);
}

// rsyslogd as a child relay: listens on TCP (a port it picks, written to a file) and
// forwards everything to 127.0.0.1:`to_port` over TCP with `framing` ("traditional":
// newline, or "octet-counted") in `template_name`. Control characters are passed
// through unescaped, as a relay configured for multi-line messages does.
class RsyslogRelay {
 public:
  static constexpr char kPath[] = "/usr/sbin/rsyslogd";

  RsyslogRelay(const TempDir& dir, int to_port, const std::string& framing,
               const std::string& template_name)
      : dir_(dir.path() / "rsyslog") {
    std::filesystem::create_directories(dir_);
    const std::string conf = (dir_ / "rsyslog.conf").string();
    std::ofstream(conf) << absl::StrCat(
        "global(workDirectory=\"", dir_.string(), "\" parser.escapeControlCharactersOnReceive=\"off\")\n",
        "module(load=\"imtcp\")\n",
        "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"0\" listenPortFileName=\"",
        (dir_ / "port").string(), "\")\n",
        "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"", to_port, "\" protocol=\"tcp\" TCP_Framing=\"",
        framing, "\" template=\"", template_name, "\")\n");
    process_ = std::make_unique<Process>(std::vector<std::string>{
        kPath, "-n", "-f", conf, "-i", (dir_ / "rsyslogd.pid").string()});
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline && port_ <= 0) {
      std::ifstream in(dir_ / "port");
      int p = 0;
      if (in >> p) port_ = p;
      if (!process_->running()) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    INFO(process_->Stderr());
    REQUIRE(port_ > 0);
  }

  int port() const { return port_; }
  Process& process() { return *process_; }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

}  // namespace steward::testing::syslog
