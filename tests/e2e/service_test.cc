// The daemons under a service manager, without systemd: a test binds the unix datagram
// socket systemd would ($NOTIFY_SOCKET), starts the real binary with it and a watchdog
// ($WATCHDOG_USEC), and reads what it says: READY=1 only once it really serves (broker
// connection up, subscriptions on the server, for the station the ledger open),
// WATCHDOG=1 all along, STOPPING=1 at the end.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/nats.h"
#include "common/unique_fd.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/process.h"
#include "tests/testing/wait.h"

namespace steward::testing {
namespace {

class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd_.get() >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    path.copy(addr.sun_path, path.size());
    REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  const std::string& path() const { return path_; }

  // Every datagram that arrives within `d`, split into lines ("READY=1", ...).
  std::vector<std::string> Collect(absl::Duration d) {
    std::vector<std::string> lines;
    Receive(d, [&](std::string line, absl::Time) { lines.push_back(std::move(line)); });
    return lines;
  }

  // Collect over `at_least`, then on until `pings` WATCHDOG=1 came or `at_most` passed
  // (on a starved machine the pings come late). `gap`: the longest time without a ping
  // once the first came (between two, from the last to the end), which systemd's
  // watchdog would not forgive past its limit.
  std::vector<std::string> CollectPings(int pings, absl::Duration& gap, absl::Duration at_least = absl::Seconds(2),
                                        absl::Duration at_most = absl::Seconds(6)) {
    const absl::Time start = absl::Now();
    const absl::Time end = start + at_most;
    std::vector<std::string> lines;
    std::vector<absl::Time> at;
    auto take = [&](std::string line, absl::Time t) {
      if (line == "WATCHDOG=1") at.push_back(t);
      lines.push_back(std::move(line));
    };
    Receive(at_least, take);
    while (absl::Now() < end && static_cast<int>(at.size()) < pings) Receive(absl::Milliseconds(100), take);
    if (!at.empty()) at.push_back(absl::Now());
    gap = absl::ZeroDuration();
    for (size_t i = 1; i < at.size(); ++i) gap = std::max(gap, at[i] - at[i - 1]);
    return lines;
  }

  // Collects until `line` arrives (true) or `timeout` passed; everything seen goes to `seen`.
  bool WaitFor(const std::string& line, absl::Duration timeout, std::vector<std::string>& seen) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      for (std::string& l : Collect(absl::Milliseconds(100))) {
        seen.push_back(l);
        if (l == line) return true;
      }
    }
    return false;
  }

 private:
  // Calls `fn` with each line of every datagram that arrives within `d`, and its time.
  void Receive(absl::Duration d, const std::function<void(std::string, absl::Time)>& fn) {
    const absl::Time end = absl::Now() + d;
    while (absl::Now() < end) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(end - absl::Now())) + 1) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n <= 0) continue;
      const absl::Time now = absl::Now();
      for (absl::string_view line : absl::StrSplit(absl::string_view(buf, static_cast<size_t>(n)), '\n')) {
        if (!line.empty()) fn(std::string(line), now);
      }
    }
  }

  std::string path_;
  UniqueFd fd_;
};

int Count(const std::vector<std::string>& lines, const std::string& line) {
  return static_cast<int>(std::count(lines.begin(), lines.end(), line));
}

std::map<std::string, std::string> NotifyEnv(const NotifySocket& s) {
  // A 3 s watchdog: pings every 750 ms (a quarter), and a loop quiet for 1.5 s (half)
  // would stop them. The agent's dispatcher beats every second.
  return {{"NOTIFY_SOCKET", s.path()}, {"WATCHDOG_USEC", "3000000"}};
}

std::string EmptyConfig(const TempDir& dir) {
  const std::string path = (dir.path() / "empty.toml").string();
  std::ofstream(path) << "# nothing\n";
  return path;
}

TEST_CASE("station: READY=1 only once the ledger is open and the broker serves it", "[integration][service]") {
  TempDir dir;
  NatsServer nats;
  const std::string url = nats.url();
  nats.Stop();  // the broker is down when the station starts
  NotifySocket sock((dir.path() / "notify").string());
  Process station({BinPath("station/steward-station"), "--config", EmptyConfig(dir), "--nats", url, "--data-dir",
                   (dir.path() / "station").string()},
                  NotifyEnv(sock));

  absl::Duration before_gap;
  std::vector<std::string> before = sock.CollectPings(2, before_gap);
  CHECK(before_gap < absl::Seconds(3));  // the watchdog (WATCHDOG_USEC)
  CHECK(Count(before, "READY=1") == 0);
  CHECK(Count(before, "WATCHDOG=1") >= 2);  // alive while it waits
  CHECK(Count(before, "STATUS=waiting for the broker at " + url) == 1);
  CHECK(std::filesystem::exists(dir.path() / "station" / "station.db"));  // the ledger opened first

  nats.Start();
  std::vector<std::string> seen;
  REQUIRE(sock.WaitFor("READY=1", absl::Seconds(15), seen));
  CHECK(Count(seen, "STATUS=serving") == 1);
  // Ready means serving: the first request is answered, with no retry needed.
  RunResult r = RunProgram({BinPath("ctl/stewardctl"), "--nats", url, "--timeout", "2s", "nodes"});
  INFO(r.err);
  CHECK(r.exit_code == 0);

  absl::Duration after_gap;
  std::vector<std::string> after = sock.CollectPings(2, after_gap);
  CHECK(after_gap < absl::Seconds(3));  // the watchdog (WATCHDOG_USEC)
  CHECK(Count(after, "READY=1") == 0);  // once
  CHECK(Count(after, "WATCHDOG=1") >= 2);

  station.Signal(SIGTERM);
  std::vector<std::string> end;
  CHECK(sock.WaitFor("STOPPING=1", absl::Seconds(5), end));
  REQUIRE(station.Wait(absl::Seconds(10)).has_value());
}

TEST_CASE("station: a ledger that cannot open means no READY=1 and exit 2", "[integration][service]") {
  TempDir dir;
  NatsServer nats;
  NotifySocket sock((dir.path() / "notify").string());
  const std::string not_a_dir = (dir.path() / "file").string();
  std::ofstream(not_a_dir) << "x";
  Process station({BinPath("station/steward-station"), "--config", EmptyConfig(dir), "--nats", nats.url(),
                   "--data-dir", not_a_dir},
                  NotifyEnv(sock));
  std::optional<RunResult> r = station.Wait(absl::Seconds(10));
  REQUIRE(r.has_value());
  CHECK(r->exit_code == 2);
  CHECK(Count(sock.Collect(absl::Milliseconds(200)), "READY=1") == 0);
}

TEST_CASE("agent: READY=1 only once its dispatcher is subscribed on the broker", "[integration][service]") {
  TempDir dir;
  NatsServer nats;
  const std::string url = nats.url();
  nats.Stop();
  NotifySocket sock((dir.path() / "notify").string());
  Process agent({BinPath("agent/steward-agent"), "--config", EmptyConfig(dir), "--node", "ship1", "--nats", url,
                 "--data-dir", (dir.path() / "ship1").string()},
                NotifyEnv(sock));

  absl::Duration before_gap;
  std::vector<std::string> before = sock.CollectPings(2, before_gap);
  CHECK(before_gap < absl::Seconds(3));  // the watchdog (WATCHDOG_USEC)
  CHECK(Count(before, "READY=1") == 0);
  CHECK(Count(before, "WATCHDOG=1") >= 2);

  nats.Start();
  std::vector<std::string> seen;
  REQUIRE(sock.WaitFor("READY=1", absl::Seconds(15), seen));
  // Ready means subscribed: a command (here malformed bytes) is answered at once, with a
  // rejection, instead of "no responders".
  nats::Library lib;
  {
    nats::ConnectionPtr nc = MustConnect(url, "probe");
    absl::StatusOr<nats::MsgPtr> reply =
        nats::Request(nc.get(), "ship1.command.echo.default", "not an envelope", absl::Seconds(2));
    INFO(reply.status().ToString());
    CHECK(reply.ok());
  }
  absl::Duration gap;
  CHECK(Count(sock.CollectPings(2, gap), "WATCHDOG=1") >= 2);
  CHECK(gap < absl::Seconds(3));  // the watchdog (WATCHDOG_USEC)
  agent.Signal(SIGTERM);
  std::vector<std::string> end;
  CHECK(sock.WaitFor("STOPPING=1", absl::Seconds(5), end));
  REQUIRE(agent.Wait(absl::Seconds(10)).has_value());
}

TEST_CASE("agent: on the journal, log lines carry sd-daemon priorities instead of a timestamp",
          "[integration][service]") {
  TempDir dir;
  NatsServer nats;
  // systemd sets $JOURNAL_STREAM to the device and inode of the stream stderr is; here
  // stderr is a file, and the variable names that file.
  const std::string err = (dir.path() / "stderr").string();
  std::ofstream(err).close();
  struct stat st {};
  REQUIRE(::stat(err.c_str(), &st) == 0);
  absl::StatusOr<pid_t> pid = StartChild({
      .argv = {BinPath("agent/steward-agent"), "--config", EmptyConfig(dir), "--node", "ship1", "--nats", nats.url(),
               "--data-dir", (dir.path() / "ship1").string()},
      .env = {{"JOURNAL_STREAM", absl::StrCat(st.st_dev, ":", st.st_ino)}},
      .stderr_path = err,
  });
  REQUIRE(pid.ok());
  auto text = [&] {
    std::ifstream in(err);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(WaitUntil([&] { return absl::StrContains(text(), "serving: the broker at"); }));
  ::kill(*pid, SIGTERM);
  int status = 0;
  REQUIRE(::waitpid(*pid, &status, 0) == *pid);
  const std::string log = text();
  INFO(log);
  CHECK(absl::StrContains(log, "<4>[agent ship1] agent ship1: no trusted station key"));  // a warning
  CHECK(absl::StrContains(log, "<6>[agent ship1] agent ship1 started: commands on ship1.command"));  // info
  CHECK(absl::StrContains(log, "<6>[agent ship1] serving: the broker at nats://"));
  CHECK_FALSE(absl::StrContains(log, " INFO "));
}

TEST_CASE("daemons: without NOTIFY_SOCKET nothing is sent and they run as before", "[integration][service]") {
  TempDir dir;
  NatsServer nats;
  Process agent({BinPath("agent/steward-agent"), "--config", EmptyConfig(dir), "--node", "ship1", "--nats",
                 nats.url(), "--data-dir", (dir.path() / "ship1").string()});
  CHECK(agent.WaitForOutput("serving: the broker at", absl::Seconds(10)));
  agent.Signal(SIGTERM);
  std::optional<RunResult> r = agent.Wait(absl::Seconds(10));
  REQUIRE(r.has_value());
  CHECK(r->exit_code == 0);
}

}  // namespace
}  // namespace steward::testing
