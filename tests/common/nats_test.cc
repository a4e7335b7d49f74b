// Integration tests for common/nats.h against a real nats-server: publish/subscribe
// and request/reply round trips, timeouts, "no responders", fail-fast connects, and
// reconnection after a server restart on the same port.
#include "common/nats.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/wait.h"

namespace steward::nats {
namespace {

using steward::testing::NatsServer;
using steward::testing::TcpProxy;

using steward::testing::WaitUntil;

ConnectionPtr MustConnect(const ConnectOptions& opts) {
  absl::StatusOr<ConnectionPtr> nc = Connect(opts);
  INFO(nc.status().ToString());
  REQUIRE(nc.ok());
  return *std::move(nc);
}

SubscriptionPtr MustSubscribe(natsConnection* nc, const std::string& subject) {
  absl::StatusOr<SubscriptionPtr> sub = SubscribeSync(nc, subject, 256);
  INFO(sub.status().ToString());
  REQUIRE(sub.ok());
  return *std::move(sub);
}

// Publishes `data` until it arrives on `sub` (or `timeout` passes); returns whether it did.
bool PublishUntilReceived(natsConnection* nc, natsSubscription* sub, const std::string& subject,
                          const std::string& data, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    Publish(nc, subject, data).IgnoreError();  // may fail while still reconnecting
    absl::StatusOr<MsgPtr> msg = NextMsg(sub, absl::Milliseconds(200));
    if (msg.ok() && Data(msg->get()) == data) return true;
  }
  return false;
}

TEST_CASE("ToStatus maps nats.c codes to canonical codes", "[nats]") {
  CHECK(ToStatus(NATS_OK, "x").ok());
  CHECK(absl::IsDeadlineExceeded(ToStatus(NATS_TIMEOUT, "x")));
  CHECK(absl::IsUnavailable(ToStatus(NATS_NO_RESPONDERS, "x")));
  CHECK(absl::IsUnavailable(ToStatus(NATS_CONNECTION_CLOSED, "x")));
  CHECK(absl::IsUnavailable(ToStatus(NATS_NO_SERVER, "x")));
  CHECK(absl::IsInvalidArgument(ToStatus(NATS_INVALID_SUBJECT, "x")));
  CHECK(absl::IsResourceExhausted(ToStatus(NATS_MAX_PAYLOAD, "x")));
  CHECK(absl::IsPermissionDenied(ToStatus(NATS_NOT_PERMITTED, "x")));
  CHECK(absl::IsInternal(ToStatus(NATS_ERR, "x")));
  CHECK(ToStatus(NATS_TIMEOUT, "doing things").message().find("doing things") !=
        absl::string_view::npos);
}

TEST_CASE("NewInbox makes unique inbox subjects", "[nats]") {
  Library lib;
  const std::string a = NewInbox();
  const std::string b = NewInbox();
  CHECK(a.rfind("_INBOX.", 0) == 0);
  CHECK(a != b);
}

TEST_CASE("Connect, subscribe, publish and receive", "[nats][integration]") {
  Library lib;
  NatsServer server;
  ConnectionPtr nc = MustConnect({.url = server.url(), .name = "roundtrip"});
  SubscriptionPtr sub = MustSubscribe(nc.get(), "ship1.event.test.default");

  SECTION("on one connection") {
    REQUIRE(Publish(nc.get(), "ship1.event.test.default", "hello").ok());
    absl::StatusOr<MsgPtr> msg = NextMsg(sub.get(), absl::Seconds(5));
    INFO(msg.status().ToString());
    REQUIRE(msg.ok());
    CHECK(Data(msg->get()) == "hello");
    CHECK(Subject(msg->get()) == "ship1.event.test.default");
    CHECK(Reply(msg->get()).empty());
  }

  SECTION("from another connection, with a reply subject and binary data") {
    REQUIRE(Flush(nc.get(), absl::Seconds(5)).ok());  // the SUB has reached the server
    ConnectionPtr other = MustConnect({.url = server.url(), .name = "publisher"});
    const std::string data("bin\0ary\xff", 8);
    REQUIRE(Publish(other.get(), "ship1.event.test.default", data, "reply.here").ok());
    absl::StatusOr<MsgPtr> msg = NextMsg(sub.get(), absl::Seconds(5));
    INFO(msg.status().ToString());
    REQUIRE(msg.ok());
    CHECK(Data(msg->get()) == absl::string_view(data));
    CHECK(Reply(msg->get()) == "reply.here");
  }

  SECTION("many messages arrive in order") {
    for (int i = 0; i < 200; ++i) {
      REQUIRE(Publish(nc.get(), "ship1.event.test.default", absl::StrCat("m", i)).ok());
    }
    for (int i = 0; i < 200; ++i) {
      absl::StatusOr<MsgPtr> msg = NextMsg(sub.get(), absl::Seconds(5));
      REQUIRE(msg.ok());
      CHECK(Data(msg->get()) == absl::StrCat("m", i));
    }
  }
}

TEST_CASE("A message is freed by the thread that destroys it, not handed to nats.c's collector",
          "[nats][integration]") {
  Library lib;
  NatsServer server;
  ConnectionPtr nc = MustConnect({.url = server.url(), .name = "free-in-place"});
  SubscriptionPtr sub = MustSubscribe(nc.get(), "ship1.event.free.default");
  REQUIRE(Publish(nc.get(), "ship1.event.free.default", "x").ok());
  absl::StatusOr<MsgPtr> msg = NextMsg(sub.get(), absl::Seconds(5));
  REQUIRE(msg.ok());
  // This libnats's message layout is the one DestroyMsg knows: a newer one that moved
  // the collector link fails here (DestroyMsg then leaves its messages to the collector).
  CHECK(FreesInPlace(msg->get()));
  msg->reset();  // freed here

  natsMsg* made = nullptr;
  REQUIRE(natsMsg_Create(&made, "a.b", nullptr, "data", 4) == NATS_OK);
  CHECK(FreesInPlace(made));
  DestroyMsg(made);

  // Anything else is left to natsMsg_Destroy as it is.
  CHECK_FALSE(FreesInPlace(nullptr));
  alignas(void*) char other[64] = {};
  CHECK_FALSE(FreesInPlace(reinterpret_cast<natsMsg*>(other)));
  DestroyMsg(nullptr);  // as natsMsg_Destroy(nullptr): nothing
}

TEST_CASE("NextMsg times out with DeadlineExceeded", "[nats][integration]") {
  Library lib;
  NatsServer server;
  ConnectionPtr nc = MustConnect({.url = server.url()});
  SubscriptionPtr sub = MustSubscribe(nc.get(), "nobody.publishes.here");
  const absl::Time start = absl::Now();
  absl::StatusOr<MsgPtr> msg = NextMsg(sub.get(), absl::Milliseconds(150));
  const absl::Duration took = absl::Now() - start;
  INFO(msg.status().ToString() << " after " << absl::FormatDuration(took));
  CHECK(absl::IsDeadlineExceeded(msg.status()));
  CHECK(took >= absl::Milliseconds(140));
  CHECK(took < absl::Seconds(2));
}

TEST_CASE("Request gets a reply from a responder", "[nats][integration]") {
  Library lib;
  NatsServer server;
  ConnectionPtr responder_nc = MustConnect({.url = server.url(), .name = "responder"});
  SubscriptionPtr sub = MustSubscribe(responder_nc.get(), "station.command.echo.test");
  REQUIRE(Flush(responder_nc.get(), absl::Seconds(5)).ok());
  std::atomic<bool> stop{false};
  std::thread responder([&] {
    while (!stop) {
      absl::StatusOr<MsgPtr> msg = NextMsg(sub.get(), absl::Milliseconds(50));
      if (!msg.ok()) continue;
      Publish(responder_nc.get(), Reply(msg->get()), absl::StrCat("echo:", Data(msg->get())))
          .IgnoreError();
    }
  });

  ConnectionPtr nc = MustConnect({.url = server.url(), .name = "requester"});
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<MsgPtr> reply =
        Request(nc.get(), "station.command.echo.test", absl::StrCat("q", i), absl::Seconds(5));
    INFO(reply.status().ToString());
    REQUIRE(reply.ok());
    CHECK(Data(reply->get()) == absl::StrCat("echo:q", i));
  }
  stop = true;
  responder.join();
}

TEST_CASE("Request with nobody listening is Unavailable (no responders)", "[nats][integration]") {
  Library lib;
  NatsServer server;
  ConnectionPtr nc = MustConnect({.url = server.url()});
  const absl::Time start = absl::Now();
  absl::StatusOr<MsgPtr> reply =
      Request(nc.get(), "ghost.command.ping.default", "anyone?", absl::Seconds(5));
  const absl::Duration took = absl::Now() - start;
  INFO(reply.status().ToString() << " after " << absl::FormatDuration(took));
  CHECK(absl::IsUnavailable(reply.status()));
  CHECK(took < absl::Seconds(2));  // answered by the server, not by the timeout
}

TEST_CASE("Connect with keep_trying=false to a dead port fails fast", "[nats][integration]") {
  Library lib;
  std::string url;
  {
    NatsServer server;  // take a port the OS gave out, then free it
    url = server.url();
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<ConnectionPtr> nc =
      Connect({.url = url, .name = "cli", .keep_trying = false});
  const absl::Duration took = absl::Now() - start;
  INFO(nc.status().ToString() << " after " << absl::FormatDuration(took));
  CHECK(absl::IsUnavailable(nc.status()));
  CHECK(took < absl::Seconds(1));
}

TEST_CASE("A keep_trying client survives a server restart", "[nats][integration]") {
  Library lib;
  NatsServer server;
  std::atomic<int> disconnects{0};
  std::atomic<int> reconnects{0};
  ConnectOptions opts;
  opts.url = server.url();
  opts.name = "daemon";
  opts.keep_trying = true;
  opts.reconnect_wait = absl::Milliseconds(50);
  opts.on_disconnected = [&] { ++disconnects; };
  opts.on_reconnected = [&] { ++reconnects; };
  ConnectionPtr nc = MustConnect(opts);
  SubscriptionPtr sub = MustSubscribe(nc.get(), "ship1.command.ping.default");
  REQUIRE(PublishUntilReceived(nc.get(), sub.get(), "ship1.command.ping.default", "before",
                               absl::Seconds(5)));

  server.Stop();
  REQUIRE(WaitUntil([&] { return disconnects.load() >= 1; }));
  CHECK(reconnects == 0);
  server.Start();
  REQUIRE(WaitUntil([&] { return reconnects.load() >= 1; }));
  CHECK(natsConnection_Status(nc.get()) == NATS_CONN_STATUS_CONNECTED);

  // The subscription was re-established: a message published now arrives.
  CHECK(PublishUntilReceived(nc.get(), sub.get(), "ship1.command.ping.default", "after",
                             absl::Seconds(5)));
  // And another client can reach it too.
  ConnectionPtr other = MustConnect({.url = server.url(), .name = "other"});
  REQUIRE(Publish(other.get(), "ship1.command.ping.default", "from other").ok());
  bool got_other = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!got_other && absl::Now() < deadline) {
    absl::StatusOr<MsgPtr> msg = NextMsg(sub.get(), absl::Milliseconds(200));
    got_other = msg.ok() && Data(msg->get()) == "from other";
  }
  CHECK(got_other);
}

// A daemon started before its broker must not block in Connect: it returns at once
// and connects in the background. Connect runs on a helper thread so a regression
// fails the test instead of hanging it.
TEST_CASE("A keep_trying client connects to a server that starts later",
          "[nats][integration]") {
  Library lib;
  NatsServer server;
  server.Stop();
  ConnectOptions opts;
  opts.url = server.url();
  opts.keep_trying = true;
  opts.reconnect_wait = absl::Milliseconds(50);
  absl::StatusOr<ConnectionPtr> nc = absl::UnknownError("not returned");
  absl::Notification returned;
  std::thread connector([&] {
    nc = Connect(opts);
    returned.Notify();
  });
  const bool returned_while_down = returned.WaitForNotificationWithTimeout(absl::Seconds(3));
  server.Start();
  // With the server up, even a blocking Connect returns promptly.
  CHECK(returned.WaitForNotificationWithTimeout(absl::Seconds(10)));
  connector.join();
  CHECK(returned_while_down);  // Connect must not block while the server is down
  INFO(nc.status().ToString());
  REQUIRE(nc.ok());
  REQUIRE(WaitUntil(
      [&] { return natsConnection_Status(nc->get()) == NATS_CONN_STATUS_CONNECTED; }));
  SubscriptionPtr sub = MustSubscribe(nc->get(), "late.start");
  CHECK(PublishUntilReceived(nc->get(), sub.get(), "late.start", "hi", absl::Seconds(5)));
}

// A daemon that starts again in its process after its connection closed (the agent, the
// station) makes a connection, with callbacks, each time: they must not outlive it.
TEST_CASE("A connection's callbacks are freed once it is closed, however it closed", "[nats][integration]") {
  Library lib;
  NatsServer server;
  const int before = LiveConnectionCallbacks();
  ConnectOptions opts;
  opts.name = "daemon";
  opts.keep_trying = true;
  opts.reconnect_wait = absl::Milliseconds(50);
  opts.on_disconnected = [] {};
  opts.on_reconnected = [] {};
  SECTION("destroyed by its owner") {
    opts.url = server.url();
    ConnectionPtr nc = MustConnect(opts);
    CHECK(LiveConnectionCallbacks() == before + 1);
    nc.reset();
  }
  SECTION("closed by nats.c: the first connect timed out") {
    TcpProxy proxy(static_cast<uint16_t>(server.port()));
    proxy.Freeze();  // accepted by the kernel, never answered
    opts.url = absl::StrCat("nats://127.0.0.1:", proxy.port());
    opts.connect_timeout = absl::Milliseconds(300);
    ConnectionPtr nc = MustConnect(opts);
    REQUIRE(WaitUntil([&] { return natsConnection_IsClosed(nc.get()); }, absl::Seconds(20)));
    // Freed by the closed callback, before the owner lets go of the connection.
    CHECK(WaitUntil([&] { return LiveConnectionCallbacks() == before; }));
    nc.reset();
  }
  SECTION("no connection made") {
    opts.url = "nats://127.0.0.1:1";
    opts.keep_trying = false;
    CHECK_FALSE(Connect(opts).ok());
  }
  CHECK(WaitUntil([&] { return LiveConnectionCallbacks() == before; }));
}

// A daemon's start subscribes while nats.c still tries its first connect; when that times
// out, the connection closes and takes the subscriptions made so far with it. Each later
// broker call of that start fails in a way FailedOnClosed names, so the daemon starts again
// rather than exiting (the station's start used to exit 2 on "Invalid Subscription").
TEST_CASE("Broker calls of a start whose first connect times out fail as FailedOnClosed", "[nats][integration]") {
  Library lib;
  NatsServer server;
  TcpProxy proxy(static_cast<uint16_t>(server.port()));
  proxy.Freeze();  // accepted by the kernel, never answered
  ConnectOptions opts;
  opts.name = "daemon";
  opts.keep_trying = true;
  opts.url = absl::StrCat("nats://127.0.0.1:", proxy.port());
  opts.connect_timeout = absl::Seconds(2);  // the subscribe below comes before it, even under load
  ConnectionPtr nc = MustConnect(opts);
  // nats.c's connect thread holds the connection's lock through its attempt: a subscribe
  // that comes after the thread took it waits out the attempt and finds the connection
  // closed, the other order a start meets. Both must read as FailedOnClosed.
  natsSubscription* raw = nullptr;
  const absl::Status made_before =
      ToStatus(natsConnection_SubscribeSync(&raw, nc.get(), "made.before"), "SubscribeSync");
  SubscriptionPtr early(raw);
  REQUIRE(WaitUntil([&] { return natsConnection_IsClosed(nc.get()); }, absl::Seconds(20)));
  CHECK(ClosedReason(nc.get()).has_value());
  if (made_before.ok()) {
    const absl::Status limits =
        ToStatus(natsSubscription_SetPendingLimits(early.get(), 16, 1 << 20), "SetPendingLimits");
    INFO(limits.ToString());
    CHECK(FailedOnClosed(limits));
  } else {
    INFO(made_before.ToString());
    CHECK(FailedOnClosed(made_before));
  }
  const absl::Status subscribe = SubscribeSync(nc.get(), "made.after", 16).status();
  INFO(subscribe.ToString());
  CHECK(FailedOnClosed(subscribe));
  // A start's own error is not the broker's doing, closed connection or not.
  CHECK_FALSE(FailedOnClosed(absl::FailedPreconditionError("--http: cannot listen on 127.0.0.1:80")));
  CHECK_FALSE(FailedOnClosed(absl::OkStatus()));
}

}  // namespace
}  // namespace steward::nats
