// End-to-end: the syslog inputs in `stewardctl status` (live and --cached), and a TCP
// listener moved by `stewardctl config set` while a sender writes to it (issue 14).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>
#include <regex>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/syslog_helpers.h"
#include "tests/testing/cluster.h"
#include "tests/testing/process.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::RunResult;
using steward::testing::WaitUntil;
using steward::testing::syslog::InputPort;
using steward::testing::syslog::SendTcp;
using steward::testing::syslog::SendUdp;

namespace {

// The first number `pattern` captures in `text`; -1 when it does not match.
int64_t Captured(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern))) return -1;
  return std::stoll(m[1].str());
}

}  // namespace

TEST_CASE("status shows each syslog input: address, lines, drops (the kernel's too), a tail's offset",
          "[integration][agentops][syslog]") {
  Cluster c;
  c.StartStation();
  const std::string log = c.dir().str() + "/app.log";
  std::ofstream(log) << "";
  // The smallest receive buffer, so that a burst while the agent is stopped overflows it.
  auto& agent = c.StartAgent("ship1", {"--syslog-udp", "127.0.0.1:0", "--syslog-tcp", "127.0.0.1:0",
                                       "--syslog-udp-buffer", "4096", "--tail", log + ":app", "--heartbeat",
                                       "1s"});
  const int udp = InputPort(agent, "udp");
  const int tcp = InputPort(agent, "tcp");
  REQUIRE(agent.WaitForOutput("tail:" + log + ": reading from offset", absl::Seconds(10)));

  std::string tcp_lines;
  for (int i = 0; i < 5; ++i) absl::StrAppend(&tcp_lines, "<13>tcp line ", i, "\n");
  SendTcp(tcp, tcp_lines);
  const RunResult logger = steward::testing::RunProgram(
      {"/usr/bin/logger", "--server", "127.0.0.1", "--port", std::to_string(tcp), "--tcp", "-t", "t", "by logger"},
      absl::Seconds(10));
  REQUIRE(logger.exit_code == 0);
  for (int i = 0; i < 3; ++i) SendUdp(udp, absl::StrCat("<13>udp line ", i));
  std::ofstream(log, std::ios::app) << "first\nsecond\n";  // 13 bytes

  const std::string tcp_name = "syslog-tcp:127.0.0.1:" + std::to_string(tcp);
  const std::string udp_name = "syslog-udp:127.0.0.1:" + std::to_string(udp);
  RunResult r;
  auto status_shows = [&](const std::string& line) {
    r = c.Ctl({"status", "ship1"});
    return r.out.find(line) != std::string::npos;
  };
  CHECK(WaitUntil([&] { return status_shows("input " + tcp_name + ": listening on port " + std::to_string(tcp) +
                                            ", 6 lines, 0 dropped\n"); },
                  absl::Seconds(10)));
  CHECK(WaitUntil([&] { return status_shows("input " + udp_name + ": listening on port " + std::to_string(udp) +
                                            ", 3 lines, 0 dropped\n"); },
                  absl::Seconds(10)));
  CHECK(WaitUntil([&] { return status_shows("input tail:" + log + ": reading, 2 lines, 0 dropped, offset 13\n"); },
                  absl::Seconds(10)));
  INFO(r.out << r.err);

  // The kernel drops datagrams while the agent cannot read them (stopped): counted.
  agent.Signal(SIGSTOP);
  const std::string big(1000, 'x');
  for (int i = 0; i < 200; ++i) SendUdp(udp, absl::StrCat("<13>burst ", i, " ", big));
  agent.Signal(SIGCONT);
  const std::string udp_line = "input " + udp_name + ": listening on port [0-9]+, ";
  int64_t kernel = -1, udp_lines = -1, udp_dropped = -1;
  // Every datagram is either delivered or counted as dropped, most by the kernel.
  CHECK(WaitUntil([&] {
    r = c.Ctl({"status", "ship1"});
    kernel = Captured(r.out, udp_line + "[0-9]+ lines, [0-9]+ dropped \\(([0-9]+) by the kernel\\)");
    udp_lines = Captured(r.out, udp_line + "([0-9]+) lines");
    udp_dropped = Captured(r.out, udp_line + "[0-9]+ lines, ([0-9]+) dropped");
    return kernel > 0 && udp_lines + udp_dropped == 203;
  }, absl::Seconds(10)));
  INFO(r.out);
  CHECK(udp_dropped >= kernel);

  // The compact form rides in the hellos: the station shows it for an offline node.
  CHECK(WaitUntil([&] {
    r = c.Ctl({"status", "--cached", "ship1"});
    return r.out.find("input tail:" + log + ": reading, 2 lines, 0 dropped, offset 13\n") != std::string::npos &&
           r.out.find("input " + tcp_name + ": listening, 6 lines, 0 dropped\n") != std::string::npos &&
           r.out.find(absl::StrCat("input ", udp_name, ": listening, ", udp_lines, " lines, ", udp_dropped,
                                   " dropped\n")) != std::string::npos;
  }, absl::Seconds(10)));
  INFO(r.out);
  r = c.Ctl({"--json", "status", "ship1"});
  CHECK_THAT(r.out, Catch::Contains("\"kernel_dropped\""));
  CHECK_THAT(r.out, Catch::Contains("\"file\":\"" + log + "\""));
}

namespace {

int TryConnect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A relay writing numbered lines over TCP, about five a millisecond, as rsyslog's omfwd
// does: before each write it looks whether the receiver closed its side (a FIN: recv
// with MSG_PEEK says 0); then it closes the connection and connects to `next_port`
// (retrying until something listens there). A write that fails is kept and written
// again on the next connection; the lines whose write failed are counted.
class Relay {
 public:
  explicit Relay(int port) : port_(port) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Relay() { Stop(); }

  void SwitchTo(int port) { next_port_ = port; }
  // Stops once `after_switch` lines went over a connection to the new port.
  void Stop(int after_switch = 0) {
    stop_after_ = after_switch;
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int sent() const { return next_; }
  int failed_writes() const { return failed_; }
  int reconnects() const { return reconnects_; }

 private:
  void Run() {
    int fd = TryConnect(port_);
    REQUIRE(fd >= 0);
    int on_new = 0;
    bool switched = false;
    while (!stop_ || on_new < stop_after_) {
      if (fd >= 0) {
        char b;
        const ssize_t peek = ::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (peek == 0 || (peek < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
          ::close(fd);
          fd = -1;
        }
      }
      if (fd < 0) {
        const int port = next_port_.load();
        if (port == 0 || (fd = TryConnect(port)) < 0) {
          absl::SleepFor(absl::Milliseconds(10));
          continue;
        }
        switched = true;
        ++reconnects_;
      }
      const std::string line = absl::StrCat("<13>relay: move seq ", next_.load(), "\n");
      if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
        ++failed_;  // written again on the next connection
        ::close(fd);
        fd = -1;
        continue;
      }
      ++next_;
      if (switched) ++on_new;
      if (next_ % 5 == 0) absl::SleepFor(absl::Milliseconds(1));
    }
    if (fd >= 0) ::close(fd);
  }

  const int port_;
  std::atomic<int> next_port_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> stop_after_{0};
  std::atomic<int> next_{0};
  std::atomic<int> failed_{0};
  std::atomic<int> reconnects_{0};
  std::thread thread_;
};

}  // namespace

TEST_CASE("a TCP syslog listener moved by config set loses no line a relay sent during the change",
          "[integration][agentops][syslog]") {
  Cluster c;
  c.StartStation();
  const std::string file = c.dir().str() + "/ship1.toml";
  std::ofstream(file) << "syslog_tcp = [\"127.0.0.1:0\"]\n";
  auto& agent = c.StartAgent("ship1", {"--config", file});
  const int old_port = InputPort(agent, "tcp");

  Relay relay(old_port);
  REQUIRE(WaitUntil([&] { return relay.sent() >= 300; }, absl::Seconds(10)));
  const int new_port = steward::testing::FreeTcpPort();
  relay.SwitchTo(new_port);
  const RunResult r = c.Ctl({"config", "set", "ship1", absl::StrCat("syslog.tcp=127.0.0.1:", new_port)});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(WaitUntil([&] { return relay.reconnects() > 0; }, absl::Seconds(20)));
  relay.Stop(/*after_switch=*/300);
  const int sent = relay.sent();
  INFO("sent " << sent << ", failed writes " << relay.failed_writes());

  // Every line the relay wrote is stored once, in order per connection.
  std::vector<std::string> lines;
  CHECK(WaitUntil([&] {
    lines = steward::testing::syslog::WaitForLogs(c, {"--node", "ship1", "--grep", "move seq", "-n", "0"},
                                                  static_cast<size_t>(sent), absl::Seconds(1));
    return lines.size() >= static_cast<size_t>(sent);
  }, absl::Seconds(30)));
  std::vector<int> count(static_cast<size_t>(sent), 0);
  int strays = 0;
  for (const std::string& l : lines) {
    const int64_t seq = Captured(l, "move seq ([0-9]+)");
    if (seq < 0 || seq >= sent) {
      ++strays;
      continue;
    }
    ++count[static_cast<size_t>(seq)];
  }
  std::vector<int> missing, doubled;
  for (int i = 0; i < sent; ++i) {
    if (count[i] == 0) missing.push_back(i);
    if (count[i] > 1) doubled.push_back(i);
  }
  INFO("missing " << missing.size() << " (first " << (missing.empty() ? -1 : missing[0]) << "), doubled "
                  << doubled.size());
  CHECK(missing.empty());
  CHECK(doubled.empty());
  CHECK(strays == 0);
  CHECK(relay.failed_writes() == 0);
  // The old listener is gone, the new one serves.
  CHECK(TryConnect(old_port) < 0);
}

TEST_CASE("a configuration change the agent cannot start with is undone, and the agent goes on serving",
          "[integration][agentops][syslog]") {
  Cluster c;
  c.StartStation();
  const std::string file = c.dir().str() + "/ship1.toml";
  const std::string original = "syslog_tcp = [\"127.0.0.1:0\"]\n";
  std::ofstream(file) << original;
  auto& agent = c.StartAgent("ship1", {"--config", file});
  // A port another process listens on: the agent's syslog listener cannot bind it.
  steward::testing::syslog::TakenTcpPort blocker;
  const int taken = blocker.port();

  RunResult set = c.Ctl({"config", "set", "ship1", absl::StrCat("syslog.tcp=127.0.0.1:", taken)});
  INFO(set.out << set.err);
  REQUIRE(set.exit_code == 0);  // valid as a file: written, then the restart finds the port taken
  REQUIRE(agent.WaitForOutput("the new configuration does not start", absl::Seconds(20)));
  CHECK(agent.running());
  // Back to the file that ran, and serving: commands run, the old listener is back.
  CHECK(WaitUntil([&] {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    return text.str() == original;
  }, absl::Seconds(5)));
  RunResult echo;
  CHECK(WaitUntil([&] {
    echo = c.Ctl({"send", "--wait", "5s", "ship1", "--method", "echo", "--", "still", "here"});
    return echo.exit_code == 0;
  }, absl::Seconds(30)));
  CHECK_THAT(echo.out, Catch::Contains("still here"));
  // And a later start of the service takes the file as it is now.
  c.StopAgent("ship1");
  c.StartAgent("ship1", {"--config", file});
  CHECK(c.Ctl({"send", "--wait", "10s", "ship1", "--method", "echo", "--", "again"}).exit_code == 0);
}
