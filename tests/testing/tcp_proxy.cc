// TcpProxy: poll() over the listener and every pair of sockets, in one thread.
#include "tests/testing/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace steward::testing {
namespace {

int ConnectUpstream(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

TcpProxy::TcpProxy(uint16_t upstream_port) : upstream_port_(upstream_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 64) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("TcpProxy: cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Run(); });
}

void TcpProxy::Freeze() {
  // The relay may be forwarding what it read before it looks at the flag again: wait
  // for a turn that saw it.
  const uint64_t before = frozen_turns_.load();
  frozen_.store(true);
  while (frozen_turns_.load() == before && !stop_.load()) ::usleep(1'000);
}

TcpProxy::~TcpProxy() {
  stop_.store(true);
  thread_.join();
  ::close(listen_fd_);
}

void TcpProxy::Run() {
  struct Pair {
    int client;
    int upstream;
  };
  std::vector<Pair> pairs;
  char buf[64 * 1024];
  auto close_pair = [](Pair& p) {
    ::close(p.client);
    ::close(p.upstream);
    p.client = p.upstream = -1;
  };
  while (!stop_.load()) {
    if (frozen_.load()) {
      // Silent: nothing read, nothing forwarded, nothing accepted, nothing closed.
      frozen_turns_.fetch_add(1);
      ::usleep(10'000);
      continue;
    }
    if (cut_.load()) {
      for (Pair& p : pairs) {
        if (p.client >= 0) close_pair(p);
      }
      pairs.clear();
      pollfd l{listen_fd_, POLLIN, 0};
      if (::poll(&l, 1, 20) > 0 && (l.revents & POLLIN)) {
        const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client >= 0) ::close(client);
      }
      continue;
    }
    std::vector<pollfd> fds;
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const Pair& p : pairs) {
      fds.push_back({p.client, POLLIN, 0});
      fds.push_back({p.upstream, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
    if (fds[0].revents & POLLIN) {
      const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        const int upstream = ConnectUpstream(upstream_port_);
        if (upstream < 0) {
          ::close(client);
        } else {
          pairs.push_back({client, upstream});
        }
      }
    }
    for (size_t i = 0; i < pairs.size() && 1 + 2 * i + 1 < fds.size(); ++i) {
      for (int side = 0; side < 2; ++side) {
        const pollfd& f = fds[1 + 2 * i + static_cast<size_t>(side)];
        if (!(f.revents & (POLLIN | POLLHUP | POLLERR))) continue;
        Pair& p = pairs[i];
        if (p.client < 0) break;
        const int from = side == 0 ? p.client : p.upstream;
        const int to = side == 0 ? p.upstream : p.client;
        const ssize_t n = ::read(from, buf, sizeof(buf));
        if (n <= 0) {
          close_pair(p);
          break;
        }
        for (ssize_t off = 0; off < n;) {
          const ssize_t w = ::send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);  // a closed end is no signal
          if (w <= 0) break;
          off += w;
        }
      }
    }
    std::vector<Pair> open;
    for (const Pair& p : pairs) {
      if (p.client >= 0) open.push_back(p);
    }
    pairs.swap(open);
  }
  for (Pair& p : pairs) {
    if (p.client >= 0) close_pair(p);
  }
}

namespace {

// Whether `port` on 127.0.0.1 can be bound now (0: any, then *port says which).
bool Bindable(uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(*port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (ok) *port = ntohs(addr.sin_port);
  return ok;
}

// The lowest port the kernel hands out on its own (to connect() and bind to port 0).
uint16_t EphemeralLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  if (!(in >> low) || low <= 0 || low > 65535) return 32768;
  return static_cast<uint16_t>(low);
}

}  // namespace

uint16_t FreeTcpPort() {
  // A port the caller binds later (a broker's route or a proxy's upstream) is free now
  // but not held: a port the kernel hands out could be taken meanwhile by any of the
  // connections the tests running beside this one make. So it comes from below the
  // kernel's range, where only another explicit choice like this one could collide.
  constexpr uint16_t kLowest = 10000;
  const uint16_t high = EphemeralLow();
  if (high > kLowest + 1000) {
    static std::mutex mu;
    static std::mt19937 rng{std::random_device{}()};
    static std::set<uint16_t> given;  // this process's callers bind later: never twice
    std::lock_guard<std::mutex> lock(mu);
    std::uniform_int_distribution<int> pick(kLowest, high - 1);
    for (int tries = 0; tries < 100; ++tries) {
      uint16_t port = static_cast<uint16_t>(pick(rng));
      if (given.count(port) == 0 && Bindable(&port)) {
        given.insert(port);
        return port;
      }
    }
  }
  uint16_t any = 0;
  if (!Bindable(&any)) throw std::runtime_error("no free port on 127.0.0.1");
  return any;
}

}  // namespace steward::testing
