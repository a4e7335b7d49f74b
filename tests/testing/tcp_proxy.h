// TcpProxy: a TCP relay on 127.0.0.1 for tests of what crosses a link. Freeze makes the
// path go silent without a reset, the way a NAT box or a satellite modem that lost its
// state does: nothing is read or forwarded in either direction, nothing is closed, and
// new connections are left waiting in the listen queue. Thaw lets bytes flow again.
// Cut is the loud failure: every connection is closed, new ones are refused.
//
//   TcpProxy proxy(upstream_port);
//   agent --nats nats://127.0.0.1:<proxy.port()>
//   proxy.Freeze(); ... proxy.Thaw();
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace steward::testing {

// A free TCP port on 127.0.0.1, below the kernel's ephemeral range (bound and
// released: only another such choice could take it meanwhile, which the test then
// reports as a failed bind). Throws when it cannot.
uint16_t FreeTcpPort();

class TcpProxy {
 public:
  explicit TcpProxy(uint16_t upstream_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  uint16_t port() const { return port_; }
  // Returns once the relay has stopped: nothing sent after it crosses.
  void Freeze();
  void Thaw() { frozen_.store(false); }
  // Cut closes every relayed connection and refuses new ones (accepted and closed at
  // once), the way a link that went down does; Restore relays again.
  void Cut() { cut_.store(true); }
  void Restore() { cut_.store(false); }

 private:
  void Run();

  const uint16_t upstream_port_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> frozen_{false};
  std::atomic<uint64_t> frozen_turns_{0};  // relay loop turns that found it frozen
  std::atomic<bool> cut_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace steward::testing
