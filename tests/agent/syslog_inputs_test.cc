// Tests for the syslog inputs (agent/syslog/): listen-spec parsing, the UDP
// listener (datagrams, drops when full, bind errors), the TCP listener (RFC 6587
// newline and octet-counting framing, split writes, many connections, over-long
// frames, backpressure without loss), the real util-linux `logger` when installed,
// and file tailing (appends, partial lines, rotation, truncation, restarts).
#include "agent/syslog/file_tail.h"
#include "agent/syslog/input.h"
#include "agent/syslog/socket.h"
#include "agent/syslog/tcp_input.h"
#include "agent/syslog/udp_input.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/wait.h"

namespace steward::agent::syslog {
namespace {

using steward::testing::TempDir;

// Polls `done` every 2 ms until it holds or `timeout` passes.
using steward::testing::WaitUntil;

// A LineSink that records lines; it can refuse the next N offers, or all while full.
class RecordingSink : public LineSink {
 public:
  bool Offer(RawLine line) override {
    absl::MutexLock lock(&mu_);
    if (full_ || refuse_ > 0) {
      if (refuse_ > 0) --refuse_;
      ++refused_;
      return false;
    }
    lines_.push_back(std::move(line));
    return true;
  }
  bool Flush(absl::Duration) override {
    absl::MutexLock lock(&mu_);
    ++flushes_;
    return true;
  }

  void Refuse(int n) {
    absl::MutexLock lock(&mu_);
    refuse_ = n;
  }
  void SetFull(bool full) {
    absl::MutexLock lock(&mu_);
    full_ = full;
  }
  std::vector<RawLine> Lines() const {
    absl::MutexLock lock(&mu_);
    return lines_;
  }
  std::vector<std::string> Data() const {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const RawLine& l : lines_) out.push_back(l.data);
    return out;
  }
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return lines_.size();
  }
  int refused() const {
    absl::MutexLock lock(&mu_);
    return refused_;
  }
  bool WaitFor(size_t n, absl::Duration timeout = absl::Seconds(5)) const {
    return WaitUntil([&] { return size() >= n; }, timeout);
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<RawLine> lines_;
  int refuse_ = 0;
  int refused_ = 0;
  bool full_ = false;
  int flushes_ = 0;
};

// Runs input.Run on a thread until Stop (or destruction).
class Runner {
 public:
  Runner(Input& input, LineSink& sink) : thread_([this, &input, &sink] {
    status_ = input.Run(stop_, sink);
  }) {}
  ~Runner() { (void)Stop(); }
  absl::Status Stop() {
    if (thread_.joinable()) {
      stop_.Notify();
      thread_.join();
    }
    return status_;
  }

 private:
  absl::Notification stop_;
  absl::Status status_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------------
// Network helpers.

int Connect(int type, uint16_t port) {
  const int fd = socket(AF_INET, type, 0);
  if (fd < 0) throw std::runtime_error("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    throw std::runtime_error("connect");
  }
  return fd;
}

void SendUdp(uint16_t port, const std::string& datagram) {
  const int fd = Connect(SOCK_DGRAM, port);
  REQUIRE(send(fd, datagram.data(), datagram.size(), 0) == static_cast<ssize_t>(datagram.size()));
  close(fd);
}

// A TCP client connection to 127.0.0.1:port.
class TcpClient {
 public:
  explicit TcpClient(uint16_t port) : fd_(Connect(SOCK_STREAM, port)) {
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~TcpClient() { Close(); }
  // Sends all of `data` (blocking); false on error.
  bool Send(const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::string Octets(const std::string& msg) { return absl::StrCat(msg.size(), " ", msg); }

ListenSpec Loopback() { return ListenSpec{.host = "127.0.0.1", .port = 0}; }

InputOptions Options(size_t max, std::string domain = "") {
  return InputOptions{.domain = std::move(domain), .max_frame_bytes = max};
}

std::unique_ptr<Input> MustUdp(size_t max = 1024) {
  auto input = NewUdpInput(Loopback(), Options(max, "dom"));
  REQUIRE(input.ok());
  return std::move(*input);
}

std::unique_ptr<Input> MustTcp(size_t max = 1024) {
  auto input = NewTcpInput(Loopback(), Options(max, "dom"));
  REQUIRE(input.ok());
  return std::move(*input);
}

bool HaveLogger() { return std::system("command -v logger >/dev/null 2>&1") == 0; }

// ---------------------------------------------------------------------------------

TEST_CASE("ParseListenSpec accepts host:port forms", "[syslog]") {
  auto v4 = ParseListenSpec("127.0.0.1:5514");
  REQUIRE(v4.ok());
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 5514);
  auto v6 = ParseListenSpec("[::1]:5514");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->port == 5514);
  auto any = ParseListenSpec("0.0.0.0:514");
  REQUIRE(any.ok());
  CHECK(any->host == "0.0.0.0");
  CHECK(any->port == 514);
  auto zero = ParseListenSpec("localhost:0");
  REQUIRE(zero.ok());
  CHECK(zero->port == 0);
  CHECK(ParseListenSpec("127.0.0.1:65535").ok());
}

TEST_CASE("ParseListenSpec rejects bad specs with a clear message", "[syslog]") {
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:99999999",
                          "127.0.0.1:abc", "127.0.0.1:-1", ":514", "[::1]", "[::1]514",
                          "[]:514", "::1:514", "[::1:514", ""}) {
    INFO(bad);
    auto spec = ParseListenSpec(bad);
    REQUIRE_FALSE(spec.ok());
    CHECK(spec.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(absl::StrContains(spec.status().message(), bad));
  }
  CHECK(absl::StrContains(ParseListenSpec("1.2.3.4").status().message(), "missing port"));
  CHECK(absl::StrContains(ParseListenSpec("1.2.3.4:70000").status().message(), "range"));
  CHECK(absl::StrContains(ParseListenSpec("1.2.3.4:x1").status().message(), "not a number"));
  CHECK(absl::StrContains(ParseListenSpec(":1").status().message(), "empty host"));
}

TEST_CASE("UDP input delivers datagrams as lines", "[syslog]") {
  auto input = MustUdp();
  REQUIRE(input->port() != 0);
  const std::string where = absl::StrCat("127.0.0.1:", input->port());
  CHECK(input->name() == "syslog-udp:" + where);
  RecordingSink sink;
  Runner runner(*input, sink);
  SendUdp(input->port(), "<13>1 - - - - - - one\n");
  REQUIRE(sink.WaitFor(1));
  SendUdp(input->port(), "<13>two\r\n");
  REQUIRE(sink.WaitFor(2));
  SendUdp(input->port(), "three\n\n");  // only one newline is stripped
  REQUIRE(sink.WaitFor(3));
  SendUdp(input->port(), "four");
  REQUIRE(sink.WaitFor(4));
  const std::vector<RawLine> lines = sink.Lines();
  CHECK(lines[0].data == "<13>1 - - - - - - one");
  CHECK(lines[1].data == "<13>two");
  CHECK(lines[2].data == "three\n");
  CHECK(lines[3].data == "four");
  CHECK(lines[0].source() == "udp:" + where);
  CHECK(lines[0].domain() == "dom");
  CHECK(absl::Now() - lines[0].received < absl::Seconds(10));
  CHECK(input->dropped() == 0);
  CHECK(runner.Stop().ok());
}

TEST_CASE("UDP input cuts long datagrams and counts drops when the sink is full",
          "[syslog]") {
  auto input = MustUdp(/*max=*/8);
  RecordingSink sink;
  Runner runner(*input, sink);
  SendUdp(input->port(), "0123456789abcdef\n");
  REQUIRE(sink.WaitFor(1));
  CHECK(sink.Data()[0] == "01234567");
  CHECK(sink.Lines()[0].truncated);
  sink.SetFull(true);
  for (int i = 0; i < 3; ++i) SendUdp(input->port(), "lost");
  REQUIRE(WaitUntil([&] { return input->dropped() == 3; }));
  sink.SetFull(false);
  SendUdp(input->port(), "kept");
  REQUIRE(sink.WaitFor(2));
  CHECK(sink.Data()[1] == "kept");
  CHECK_FALSE(sink.Lines()[1].truncated);
  CHECK(input->dropped() == 3);
  // Exactly the limit (with or without a newline) is whole; one byte more is cut.
  SendUdp(input->port(), "abcdefgh\r\n");
  SendUdp(input->port(), "abcdefgh");
  SendUdp(input->port(), "abcdefghi");
  REQUIRE(sink.WaitFor(5));
  const std::vector<RawLine> lines = sink.Lines();
  CHECK(sink.Data() == std::vector<std::string>{"01234567", "kept", "abcdefgh", "abcdefgh", "abcdefgh"});
  CHECK_FALSE(lines[2].truncated);
  CHECK_FALSE(lines[3].truncated);
  CHECK(lines[4].truncated);
}

TEST_CASE("UDP input counts the datagrams the kernel dropped", "[syslog]") {
  auto input = MustUdp(/*max=*/2048);
  // Nobody reads yet: the socket's receive buffer fills and the kernel drops the rest.
  constexpr int kFlood = 20000;
  const int fd = Connect(SOCK_DGRAM, input->port());
  const std::string datagram(1000, 'x');
  for (int i = 0; i < kFlood; ++i) REQUIRE(send(fd, datagram.data(), datagram.size(), 0) > 0);
  RecordingSink sink;
  Runner runner(*input, sink);
  REQUIRE(send(fd, "last", 4, 0) == 4);
  close(fd);
  REQUIRE(WaitUntil([&] {
    const std::vector<std::string> data = sink.Data();
    return !data.empty() && data.back() == "last";
  }));
  INFO("delivered " << sink.size() << ", dropped " << input->dropped());
  CHECK(input->dropped() > 0);
  CHECK(sink.size() + input->dropped() == kFlood + 1);
}

TEST_CASE("TCP input: framing is decided at a connection's first frame", "[syslog]") {
  auto input = MustTcp();
  RecordingSink sink;
  Runner runner(*input, sink);
  {
    TcpClient lines(input->port());  // newline framing: "300 " starts a line, not a count
    REQUIRE(lines.Send("<13>first\n300 apples\n<13>second\n"));
    REQUIRE(sink.WaitFor(3));
  }
  {
    TcpClient counted(input->port());  // octet counting: a newline is part of a frame
    REQUIRE(counted.Send(Octets("<13>a\n300 b") + Octets("<13>c")));
    REQUIRE(sink.WaitFor(5));
  }
  CHECK(sink.Data() == std::vector<std::string>{"<13>first", "300 apples", "<13>second", "<13>a\n300 b", "<13>c"});
}

TEST_CASE("UDP and TCP inputs report a port in use", "[syslog]") {
  auto udp = MustUdp();
  auto again = NewUdpInput(ListenSpec{.host = "127.0.0.1", .port = udp->port()}, Options(1024));
  REQUIRE_FALSE(again.ok());
  CHECK(absl::StrContains(again.status().message(), absl::StrCat("127.0.0.1:", udp->port())));
  auto tcp = MustTcp();
  auto tcp_again = NewTcpInput(ListenSpec{.host = "127.0.0.1", .port = tcp->port()}, Options(1024));
  REQUIRE_FALSE(tcp_again.ok());
  CHECK(absl::StrContains(tcp_again.status().message(), absl::StrCat("127.0.0.1:", tcp->port())));
  CHECK_FALSE(NewTcpInput(ListenSpec{.host = "no.such.host.invalid", .port = 0}, Options(1)).ok());
  CHECK_FALSE(NewUdpInput(Loopback(), Options(0)).ok());
}

TEST_CASE("Inputs on [::1] name the address in brackets", "[syslog]") {
  auto input = NewTcpInput(ListenSpec{.host = "::1", .port = 0}, Options(1024));
  if (!input.ok()) {
    WARN("no IPv6 loopback: " << input.status().ToString());
    return;
  }
  CHECK((*input)->name() == absl::StrCat("syslog-tcp:[::1]:", (*input)->port()));
}

TEST_CASE("Inputs see stop promptly", "[syslog]") {
  TempDir dir;
  auto udp = MustUdp();
  auto tcp = MustTcp();
  auto tail = NewFileTail((dir.path() / "f.log").string(), Options(1024), dir.str() + "/state");
  REQUIRE(tail.ok());
  RecordingSink sink;
  for (Input* input : {udp.get(), tcp.get(), tail->get()}) {
    Runner runner(*input, sink);
    absl::SleepFor(absl::Milliseconds(50));
    const absl::Time start = absl::Now();
    CHECK(runner.Stop().ok());
    CHECK(absl::Now() - start < absl::Milliseconds(600));
  }
}

// ---------------------------------------------------------------------------------
// TCP.

TEST_CASE("TCP input: newline framing", "[syslog]") {
  auto input = MustTcp();
  RecordingSink sink;
  Runner runner(*input, sink);
  TcpClient client(input->port());
  REQUIRE(client.Send("<13>first line\n<13>second\r\n\n<14>third\n"));
  REQUIRE(sink.WaitFor(3));
  CHECK(sink.Data() == std::vector<std::string>{"<13>first line", "<13>second", "<14>third"});
  const RawLine line = sink.Lines()[0];
  CHECK(line.source() == absl::StrCat("tcp:127.0.0.1:", input->port()));
  CHECK(line.domain() == "dom");
  CHECK(input->name() == absl::StrCat("syslog-tcp:127.0.0.1:", input->port()));
}

TEST_CASE("TCP input: octet-counting framing and mixed framings", "[syslog]") {
  auto input = MustTcp();
  RecordingSink sink;
  Runner runner(*input, sink);
  TcpClient client(input->port());
  const std::string a = "<13>1 - - - - hi";
  const std::string b = "<13>1 - - - - has\nnewline inside";
  REQUIRE(Octets(a) == "16 <13>1 - - - - hi");
  REQUIRE(client.Send(Octets(a) + Octets(b) + "<14>plain line\n" + Octets("x") +
                      "2024-01-01 starts with digits\n" + Octets("last")));
  REQUIRE(sink.WaitFor(6));
  CHECK(sink.Data() == std::vector<std::string>{a, b, "<14>plain line", "x",
                                                "2024-01-01 starts with digits", "last"});
}

TEST_CASE("TCP input: frames split across many small writes", "[syslog]") {
  auto input = MustTcp();
  RecordingSink sink;
  Runner runner(*input, sink);
  TcpClient client(input->port());
  std::string stream;
  std::vector<std::string> want;
  for (int i = 0; i < 20; ++i) {
    const std::string msg = absl::StrCat("<13>message number ", i);
    want.push_back(msg);
    // Octet counted first (the connection's framing); newline-framed lines among the
    // counted frames are read as lines (they do not start with a count).
    stream += i % 2 == 0 ? Octets(msg) : msg + "\n";
  }
  for (size_t pos = 0; pos < stream.size(); pos += 3) {
    REQUIRE(client.Send(stream.substr(pos, 3)));
    if (pos % 30 == 0) absl::SleepFor(absl::Milliseconds(1));
  }
  REQUIRE(sink.WaitFor(want.size()));
  CHECK(sink.Data() == want);
}

TEST_CASE("TCP input: several concurrent connections keep their order", "[syslog]") {
  auto input = MustTcp();
  RecordingSink sink;
  Runner runner(*input, sink);
  constexpr int kClients = 8;
  constexpr int kLines = 300;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      TcpClient client(input->port());
      for (int i = 0; i < kLines; ++i) {
        const std::string msg = absl::StrCat("c", c, " ", i);
        if (!client.Send(i % 3 == 0 ? Octets(msg) : msg + "\n")) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(failures == 0);
  REQUIRE(sink.WaitFor(kClients * kLines));
  std::map<int, int> next;  // client -> next expected line
  for (const std::string& line : sink.Data()) {
    int c = -1;
    int i = -1;
    REQUIRE(std::sscanf(line.c_str(), "c%d %d", &c, &i) == 2);
    CHECK(i == next[c]);
    next[c] = i + 1;
  }
  for (int c = 0; c < kClients; ++c) CHECK(next[c] == kLines);
}

TEST_CASE("TCP input: a final line without newline is delivered at close", "[syslog]") {
  auto input = MustTcp();
  RecordingSink sink;
  Runner runner(*input, sink);
  {
    TcpClient client(input->port());
    REQUIRE(client.Send("complete\nunterminated"));
  }
  REQUIRE(sink.WaitFor(2));
  CHECK(sink.Data() == std::vector<std::string>{"complete", "unterminated"});
}

TEST_CASE("TCP input: over-long frames are cut, marked truncated, and the next frame is intact",
          "[syslog]") {
  auto input = MustTcp(/*max=*/16);
  RecordingSink sink;
  Runner runner(*input, sink);
  const std::string big(1000, 'A');
  const std::string big_counted = std::string(500, 'B') + "\n" + std::string(500, 'C');
  {
    TcpClient lines(input->port());
    // Sent in pieces so the cut happens across reads too.
    REQUIRE(lines.Send(big.substr(0, 10)));
    absl::SleepFor(absl::Milliseconds(20));
    REQUIRE(lines.Send(big.substr(10) + "\nnext line\nexactly 16 bytes\n"));
    REQUIRE(sink.WaitFor(3));
  }
  {
    TcpClient counted(input->port());
    REQUIRE(counted.Send(Octets(big_counted).substr(0, 300)));
    absl::SleepFor(absl::Milliseconds(20));
    REQUIRE(counted.Send(Octets(big_counted).substr(300) + Octets("after")));
    REQUIRE(sink.WaitFor(5));
  }
  CHECK(sink.Data() == std::vector<std::string>{std::string(16, 'A'), "next line", "exactly 16 bytes",
                                                std::string(16, 'B'), "after"});
  std::vector<bool> truncated;
  for (const RawLine& l : sink.Lines()) truncated.push_back(l.truncated);
  CHECK(truncated == std::vector<bool>{true, false, false, true, false});
}

TEST_CASE("TCP input: backpressure loses no line and keeps order", "[syslog]") {
  auto input = MustTcp();
  RecordingSink sink;
  Runner runner(*input, sink);
  constexpr int kLines = 30000;
  sink.SetFull(true);
  std::atomic<bool> sent{false};
  std::thread writer([&] {
    TcpClient client(input->port());
    std::string batch;
    for (int i = 0; i < kLines; ++i) {
      batch += i % 2 == 0 ? Octets(absl::StrCat("line ", i)) : absl::StrCat("line ", i, "\n");
      if (batch.size() > 4096) {
        client.Send(batch);
        batch.clear();
      }
    }
    client.Send(batch);
    sent = true;
  });
  REQUIRE(WaitUntil([&] { return sink.refused() > 0; }));
  absl::SleepFor(absl::Milliseconds(300));
  CHECK(sink.size() == 0);
  sink.SetFull(false);
  // Refuse now and then while the rest streams in.
  for (int round = 0; round < 5; ++round) {
    sink.Refuse(3);
    absl::SleepFor(absl::Milliseconds(20));
  }
  writer.join();
  CHECK(sent);
  REQUIRE(sink.WaitFor(kLines, absl::Seconds(10)));
  const std::vector<std::string> data = sink.Data();
  REQUIRE(data.size() == kLines);
  for (int i = 0; i < kLines; ++i) {
    if (data[i] != absl::StrCat("line ", i)) FAIL("line " << i << " is " << data[i]);
  }
}

TEST_CASE("TCP and UDP inputs take messages from util-linux logger", "[syslog]") {
  if (!HaveLogger()) {
    WARN("logger is not installed; skipped");
    return;
  }
  auto tcp = MustTcp();
  auto udp = MustUdp();
  RecordingSink sink;
  Runner tcp_runner(*tcp, sink);
  Runner udp_runner(*udp, sink);
  const std::string base = "logger --server 127.0.0.1 --rfc5424 -t app";
  REQUIRE(std::system(absl::StrCat(base, " --port ", tcp->port(), " --tcp 'via tcp'").c_str()) ==
          0);
  REQUIRE(sink.WaitFor(1));
  REQUIRE(std::system(absl::StrCat(base, " --port ", tcp->port(),
                                   " --tcp --octet-count 'via octets'")
                          .c_str()) == 0);
  REQUIRE(sink.WaitFor(2));
  REQUIRE(std::system(absl::StrCat(base, " --port ", udp->port(), " --udp 'via udp'").c_str()) ==
          0);
  REQUIRE(sink.WaitFor(3));
  const std::vector<RawLine> lines = sink.Lines();
  const char* want[] = {"via tcp", "via octets", "via udp"};
  for (size_t i = 0; i < 3; ++i) {
    INFO(lines[i].data);
    CHECK(absl::StartsWith(lines[i].data, "<13>1 "));
    CHECK(absl::StrContains(lines[i].data, " app "));
    CHECK(absl::EndsWith(lines[i].data, want[i]));
  }
  CHECK(absl::StartsWith(lines[0].source(), "tcp:"));
  CHECK(absl::StartsWith(lines[2].source(), "udp:"));
}

// ---------------------------------------------------------------------------------
// File tail.

void Append(const std::filesystem::path& path, const std::string& data) {
  std::ofstream out(path, std::ios::app | std::ios::binary);
  out << data;
  out.flush();
  REQUIRE(out.good());
}

struct TailFixture {
  TempDir dir;
  std::filesystem::path log = dir.path() / "app.log";
  std::string state = (dir.path() / "state").string();

  std::unique_ptr<Input> Tail(bool from_start = false, size_t max = 1024) {
    auto input = NewFileTail(log.string(), Options(max, "dom"), state, from_start);
    REQUIRE(input.ok());
    return std::move(*input);
  }
};

TEST_CASE("File tail delivers appended lines and waits for partial ones", "[syslog]") {
  TailFixture f;
  Append(f.log, "old line before start\n");
  auto input = f.Tail();
  CHECK(input->name() == "tail:" + f.log.string());
  CHECK(input->port() == 0);
  RecordingSink sink;
  Runner runner(*input, sink);
  absl::SleepFor(absl::Milliseconds(150));  // let it open the file at its end
  Append(f.log, "one\ntwo\r\n");
  REQUIRE(sink.WaitFor(2));
  Append(f.log, "par");
  absl::SleepFor(absl::Milliseconds(300));
  CHECK(sink.size() == 2);
  Append(f.log, "tial\n");
  REQUIRE(sink.WaitFor(3));
  CHECK(sink.Data() == std::vector<std::string>{"one", "two", "partial"});
  const RawLine line = sink.Lines()[0];
  CHECK(line.source() == "file:" + f.log.string());
  CHECK(line.domain() == "dom");
  CHECK(runner.Stop().ok());
}

TEST_CASE("File tail starts at 0 with from_start, and waits for a missing file",
          "[syslog]") {
  SECTION("from_start") {
    TailFixture f;
    Append(f.log, "a\nb\n");
    auto input = f.Tail(/*from_start=*/true);
    RecordingSink sink;
    Runner runner(*input, sink);
    REQUIRE(sink.WaitFor(2));
    CHECK(sink.Data() == std::vector<std::string>{"a", "b"});
  }
  SECTION("created after start") {
    TailFixture f;
    auto input = f.Tail();
    RecordingSink sink;
    Runner runner(*input, sink);
    absl::SleepFor(absl::Milliseconds(150));
    Append(f.log, "born\n");
    REQUIRE(sink.WaitFor(1));
    CHECK(sink.Data() == std::vector<std::string>{"born"});
  }
}

TEST_CASE("File tail cuts over-long lines", "[syslog]") {
  TailFixture f;
  Append(f.log, std::string(5000, 'x') + "\nshort\n");
  auto input = f.Tail(/*from_start=*/true, /*max=*/10);
  RecordingSink sink;
  Runner runner(*input, sink);
  REQUIRE(sink.WaitFor(2));
  CHECK(sink.Data() == std::vector<std::string>{std::string(10, 'x'), "short"});
  CHECK(sink.Lines()[0].truncated);
  CHECK_FALSE(sink.Lines()[1].truncated);
}

TEST_CASE("File tail follows rename rotation without loss or duplicates", "[syslog]") {
  TailFixture f;
  Append(f.log, "");
  auto input = f.Tail();
  RecordingSink sink;
  Runner runner(*input, sink);
  absl::SleepFor(absl::Milliseconds(150));
  Append(f.log, "old 1\nold 2\n");
  REQUIRE(sink.WaitFor(2));
  Append(f.log, "old 3\n");
  std::filesystem::rename(f.log, f.log.string() + ".1");
  Append(f.log.string() + ".1", "old 4\nold 5 unterminated");  // a writer not reopened yet
  Append(f.log, "new 1\n");
  absl::SleepFor(absl::Milliseconds(20));
  Append(f.log, "new 2\n");
  REQUIRE(sink.WaitFor(7));
  absl::SleepFor(absl::Milliseconds(300));  // nothing more (no duplicates) may come
  CHECK(sink.Data() == std::vector<std::string>{"old 1", "old 2", "old 3", "old 4",
                                                "old 5 unterminated", "new 1", "new 2"});
}

TEST_CASE("File tail restarts after truncation", "[syslog]") {
  TailFixture f;
  auto input = f.Tail(/*from_start=*/true);
  RecordingSink sink;
  Runner runner(*input, sink);
  Append(f.log, "a fairly long line before truncation\nanother long line\n");
  REQUIRE(sink.WaitFor(2));
  std::filesystem::resize_file(f.log, 0);
  absl::SleepFor(absl::Milliseconds(150));
  Append(f.log, "after\n");
  REQUIRE(sink.WaitFor(3));
  absl::SleepFor(absl::Milliseconds(150));
  CHECK(sink.Data() == std::vector<std::string>{"a fairly long line before truncation",
                                                "another long line", "after"});
}

TEST_CASE("File tail resumes at its saved offset after a restart", "[syslog]") {
  TailFixture f;
  Append(f.log, "before\n");
  RecordingSink first;
  {
    auto input = f.Tail();  // no state: starts at the end
    Runner runner(*input, first);
    absl::SleepFor(absl::Milliseconds(150));
    Append(f.log, "1\n2\n");
    REQUIRE(first.WaitFor(2));
    absl::SleepFor(absl::Milliseconds(150));  // let it save
    Append(f.log, "3\n");
    REQUIRE(first.WaitFor(3));
    CHECK(runner.Stop().ok());  // the final flush saves "after 3"
  }
  CHECK(first.Data() == std::vector<std::string>{"1", "2", "3"});
  Append(f.log, "4 while down\n5 while down\n");
  RecordingSink second;
  {
    auto input = f.Tail();
    Runner runner(*input, second);
    REQUIRE(second.WaitFor(2));
    Append(f.log, "6\n");
    REQUIRE(second.WaitFor(3));
    absl::SleepFor(absl::Milliseconds(150));
    CHECK(runner.Stop().ok());
  }
  CHECK(second.Data() == std::vector<std::string>{"4 while down", "5 while down", "6"});
  SECTION("rotated while down: the rest of the old file, found beside it, then the new one from 0") {
    Append(f.log, "7 while down\n");
    std::filesystem::rename(f.log, f.log.string() + ".1");
    Append(f.log.string() + ".1", "8 after the rename\n");
    Append(f.log, "new a\nnew b\n");
    RecordingSink third;
    auto input = f.Tail();
    Runner runner(*input, third);
    REQUIRE(third.WaitFor(4));
    absl::SleepFor(absl::Milliseconds(300));  // nothing more (no duplicates) may come
    CHECK(third.Data() == std::vector<std::string>{"7 while down", "8 after the rename", "new a", "new b"});
  }
  SECTION("rotated while down and the old file gone: the new file is read from 0") {
    std::filesystem::remove(f.log);
    Append(f.log, "new a\nnew b\n");
    RecordingSink third;
    auto input = f.Tail();
    Runner runner(*input, third);
    REQUIRE(third.WaitFor(2));
    absl::SleepFor(absl::Milliseconds(150));
    CHECK(third.Data() == std::vector<std::string>{"new a", "new b"});
  }
  SECTION("truncated while down: read from 0") {
    std::filesystem::resize_file(f.log, 0);
    Append(f.log, "x\n");
    RecordingSink third;
    auto input = f.Tail();
    Runner runner(*input, third);
    REQUIRE(third.WaitFor(1));
    absl::SleepFor(absl::Milliseconds(150));
    CHECK(third.Data() == std::vector<std::string>{"x"});
  }
}

TEST_CASE("File tail retries refused lines and never skips them", "[syslog]") {
  TailFixture f;
  auto input = f.Tail(/*from_start=*/true);
  RecordingSink sink;
  sink.Refuse(20);
  std::string data;
  std::vector<std::string> want;
  for (int i = 0; i < 500; ++i) {
    want.push_back(absl::StrCat("line ", i));
    data += want.back() + "\n";
  }
  Append(f.log, data);
  Runner runner(*input, sink);
  REQUIRE(sink.WaitFor(want.size()));
  CHECK(sink.refused() == 20);
  CHECK(sink.Data() == want);
}

}  // namespace
}  // namespace steward::agent::syslog
