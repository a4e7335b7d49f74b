// Integration tests for common/request_pump.h against a real nats-server: replies,
// many concurrent requests, no responders, timeouts, and Shutdown completing every
// outstanding callback exactly once.
#include "common/request_pump.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/nats.h"
#include "proto/wire.pb.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/wait.h"

namespace steward {
namespace {

using steward::testing::NatsServer;
using Result = RequestPump::Result;

using steward::testing::WaitUntil;

using steward::testing::MustConnect;

std::unique_ptr<RequestPump> MustPump(natsConnection* nc, absl::string_view inbox_prefix = "") {
  absl::StatusOr<std::unique_ptr<RequestPump>> pump = RequestPump::Create(nc, inbox_prefix);
  INFO(pump.status().ToString());
  REQUIRE(pump.ok());
  return *std::move(pump);
}

// A sync subscription on `subject`, on the server once this returns.
nats::SubscriptionPtr MustSubscribe(natsConnection* nc, const std::string& subject, int pending) {
  absl::StatusOr<nats::SubscriptionPtr> sub = nats::SubscribeSync(nc, subject, pending);
  REQUIRE(sub.ok());
  REQUIRE(nats::Flush(nc, absl::Seconds(5)).ok());
  return *std::move(sub);
}

// A responder on its own connection and thread: a sync subscription whose messages it
// answers (via natsMsg_GetReply) with `prefix` + data, or not at all when `silent`.
class Responder {
 public:
  Responder(const std::string& url, const std::string& subject, std::string prefix,
            bool silent = false)
      : prefix_(std::move(prefix)), silent_(silent) {
    nc_ = MustConnect(url, "responder");
    absl::StatusOr<nats::SubscriptionPtr> sub = nats::SubscribeSync(nc_.get(), subject, 100000);
    REQUIRE(sub.ok());
    sub_ = *std::move(sub);
    REQUIRE(nats::Flush(nc_.get(), absl::Seconds(5)).ok());  // subscribed at the server
    thread_ = std::thread([this] { Loop(); });
  }
  ~Responder() {
    stop_ = true;
    thread_.join();
  }
  int received() const { return received_.load(); }

 private:
  void Loop() {
    while (!stop_) {
      absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub_.get(), absl::Milliseconds(50));
      if (!msg.ok()) continue;
      ++received_;
      if (silent_) continue;
      const char* reply = natsMsg_GetReply(msg->get());
      if (reply == nullptr) continue;
      const std::string out = absl::StrCat(prefix_, nats::Data(msg->get()));
      natsConnection_Publish(nc_.get(), reply, out.data(), static_cast<int>(out.size()));
    }
  }

  const std::string prefix_;
  const bool silent_;
  nats::ConnectionPtr nc_;
  nats::SubscriptionPtr sub_;
  std::atomic<bool> stop_{false};
  std::atomic<int> received_{0};
  std::thread thread_;
};

// Collects callback invocations keyed by a request label.
class Results {
 public:
  struct Entry {
    int calls = 0;
    Result result = Result::kShutdown;
    std::string data;
    absl::Time at;
  };
  RequestPump::Callback For(const std::string& label) {
    return [this, label](Result r, nats::MsgPtr msg) {
      absl::MutexLock lock(&mu_);
      Entry& e = entries_[label];
      ++e.calls;
      e.result = r;
      e.data = msg == nullptr ? std::string() : std::string(nats::Data(msg.get()));
      e.at = absl::Now();
      ++total_calls_;
    };
  }
  int total_calls() const {
    absl::MutexLock lock(&mu_);
    return total_calls_;
  }
  absl::flat_hash_map<std::string, Entry> entries() const {
    absl::MutexLock lock(&mu_);
    return entries_;
  }

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  int total_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST_CASE("RequestPump delivers a reply", "[request_pump][integration]") {
  nats::Library lib;
  NatsServer server;
  Responder responder(server.url(), "station.event.echo.test", "echo:");
  nats::ConnectionPtr nc = MustConnect(server.url(), "client");
  Results results;
  std::unique_ptr<RequestPump> pump = MustPump(nc.get());

  REQUIRE(pump->Send("station.event.echo.test", "hello", absl::Seconds(5), results.For("a")).ok());
  REQUIRE(WaitUntil([&] { return results.total_calls() >= 1; }));
  auto e = results.entries();
  CHECK(e["a"].calls == 1);
  CHECK(e["a"].result == Result::kReply);
  CHECK(e["a"].data == "echo:hello");
  CHECK(pump->in_flight() == 0);
  pump->Shutdown();
  CHECK(results.total_calls() == 1);  // nothing left to complete
}

TEST_CASE("RequestPump: 1000 concurrent requests all get their reply",
          "[request_pump][integration]") {
  nats::Library lib;
  NatsServer server;
  Responder responder(server.url(), "station.event.echo.many", "re:");
  nats::ConnectionPtr nc = MustConnect(server.url(), "client");
  Results results;
  std::unique_ptr<RequestPump> pump = MustPump(nc.get());

  constexpr int kSenders = 4;
  constexpr int kPerSender = 250;
  std::vector<std::thread> senders;
  std::atomic<int> send_errors{0};
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; i < kPerSender; ++i) {
        const std::string payload = absl::StrCat("payload-", s, "-", i);
        if (!pump->Send("station.event.echo.many", payload, absl::Seconds(10),
                        results.For(payload))
                 .ok()) {
          ++send_errors;
        }
      }
    });
  }
  for (std::thread& t : senders) t.join();
  CHECK(send_errors == 0);
  REQUIRE(WaitUntil([&] { return results.total_calls() >= kSenders * kPerSender; }));

  auto entries = results.entries();
  REQUIRE(entries.size() == size_t{kSenders} * kPerSender);
  int bad = 0;
  for (const auto& [payload, e] : entries) {
    if (e.calls != 1 || e.result != Result::kReply || e.data != "re:" + payload) {
      if (++bad <= 5) {
        FAIL_CHECK(payload << ": calls=" << e.calls << " result=" << static_cast<int>(e.result)
                           << " data=" << e.data);
      }
    }
  }
  CHECK(bad == 0);
  CHECK(pump->in_flight() == 0);
  CHECK(responder.received() == kSenders * kPerSender);
  pump->Shutdown();
  CHECK(results.total_calls() == kSenders * kPerSender);
}

TEST_CASE("RequestPump reports no responders", "[request_pump][integration]") {
  nats::Library lib;
  NatsServer server;
  nats::ConnectionPtr nc = MustConnect(server.url(), "client");
  Results results;
  std::unique_ptr<RequestPump> pump = MustPump(nc.get());
  const absl::Time start = absl::Now();
  REQUIRE(pump->Send("ghost.command.ping.default", "x", absl::Seconds(5), results.For("a")).ok());
  REQUIRE(WaitUntil([&] { return results.total_calls() >= 1; }));
  auto e = results.entries();
  CHECK(e["a"].calls == 1);
  CHECK(e["a"].result == Result::kNoResponders);
  CHECK(e["a"].data.empty());
  CHECK(e["a"].at - start < absl::Seconds(2));  // from the server, not the timer
  CHECK(pump->in_flight() == 0);
}

TEST_CASE("RequestPump times out when nobody replies", "[request_pump][integration]") {
  nats::Library lib;
  NatsServer server;
  Responder silent(server.url(), "station.event.silent.test", "", /*silent=*/true);
  nats::ConnectionPtr nc = MustConnect(server.url(), "client");
  Results results;
  std::unique_ptr<RequestPump> pump = MustPump(nc.get());

  const absl::Time start = absl::Now();
  REQUIRE(pump->Send("station.event.silent.test", "a", absl::Milliseconds(200), results.For("a"))
              .ok());
  REQUIRE(pump->Send("station.event.silent.test", "b", absl::Milliseconds(400), results.For("b"))
              .ok());
  CHECK(pump->in_flight() == 2);
  REQUIRE(WaitUntil([&] { return results.total_calls() >= 2; }));
  auto e = results.entries();
  for (const char* label : {"a", "b"}) {
    INFO(label);
    CHECK(e[label].calls == 1);
    CHECK(e[label].result == Result::kTimeout);
  }
  const absl::Duration a_after = e["a"].at - start;
  const absl::Duration b_after = e["b"].at - start;
  INFO("a after " << absl::FormatDuration(a_after) << ", b after "
                  << absl::FormatDuration(b_after));
  CHECK(a_after >= absl::Milliseconds(195));
  CHECK(a_after < absl::Milliseconds(700));
  CHECK(b_after >= absl::Milliseconds(395));
  CHECK(b_after < absl::Milliseconds(900));
  CHECK(silent.received() == 2);
  CHECK(pump->in_flight() == 0);
  pump->Shutdown();
  CHECK(results.total_calls() == 2);
}

TEST_CASE("RequestPump drops a reply that comes after the timeout", "[request_pump][integration]") {
  nats::Library lib;
  NatsServer server;
  // One responder thread on one connection: it answers "slow" after 300 ms, then
  // "fast" at once. The server delivers both replies in that order on the pump's
  // one subscription, so when "fast" completes the late "slow" reply was handled.
  nats::ConnectionPtr rnc = MustConnect(server.url(), "responder");
  nats::SubscriptionPtr rsub = MustSubscribe(rnc.get(), "late.>", 16);
  std::atomic<int> answered{0};
  std::thread responder([&] {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (answered < 2 && absl::Now() < deadline) {
      absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(rsub.get(), absl::Milliseconds(50));
      if (!msg.ok()) continue;
      if (nats::Subject(msg->get()) == "late.slow") absl::SleepFor(absl::Milliseconds(300));
      nats::Publish(rnc.get(), nats::Reply(msg->get()), "answer").IgnoreError();
      ++answered;
    }
  });

  nats::ConnectionPtr nc = MustConnect(server.url(), "client");
  Results results;
  std::unique_ptr<RequestPump> pump = MustPump(nc.get());
  REQUIRE(pump->Send("late.slow", "s", absl::Milliseconds(100), results.For("slow")).ok());
  REQUIRE(WaitUntil([&] { return results.total_calls() >= 1; }));
  REQUIRE(pump->Send("late.fast", "f", absl::Seconds(5), results.For("fast")).ok());
  REQUIRE(WaitUntil([&] { return results.total_calls() >= 2; }));
  responder.join();
  auto e = results.entries();
  CHECK(e["slow"].calls == 1);
  CHECK(e["slow"].result == Result::kTimeout);
  CHECK(e["fast"].calls == 1);
  CHECK(e["fast"].result == Result::kReply);
  CHECK(e["fast"].data == "answer");
  CHECK(answered == 2);
  CHECK(pump->in_flight() == 0);
  pump->Shutdown();
  CHECK(results.total_calls() == 2);
}

TEST_CASE("RequestPump Shutdown completes outstanding requests once with kShutdown",
          "[request_pump][integration]") {
  nats::Library lib;
  NatsServer server;
  Responder silent(server.url(), "station.event.silent.shutdown", "", /*silent=*/true);
  Responder echo(server.url(), "station.event.echo.shutdown", "ok:");
  nats::ConnectionPtr nc = MustConnect(server.url(), "client");
  Results results;
  std::unique_ptr<RequestPump> pump = MustPump(nc.get());

  constexpr int kOutstanding = 50;
  for (int i = 0; i < kOutstanding; ++i) {
    const std::string label = absl::StrCat("silent", i);
    REQUIRE(pump->Send("station.event.silent.shutdown", label, absl::Seconds(30),
                       results.For(label))
                .ok());
  }
  REQUIRE(pump->Send("station.event.echo.shutdown", "done", absl::Seconds(30),
                     results.For("answered"))
              .ok());
  REQUIRE(WaitUntil([&] { return results.total_calls() >= 1 && silent.received() >= kOutstanding; }));
  CHECK(pump->in_flight() == size_t{kOutstanding});

  const absl::Time start = absl::Now();
  pump->Shutdown();
  CHECK(absl::Now() - start < absl::Seconds(3));
  CHECK(pump->in_flight() == 0);
  CHECK(results.total_calls() == kOutstanding + 1);
  auto e = results.entries();
  CHECK(e["answered"].calls == 1);
  CHECK(e["answered"].result == Result::kReply);
  for (int i = 0; i < kOutstanding; ++i) {
    const std::string label = absl::StrCat("silent", i);
    INFO(label);
    CHECK(e[label].calls == 1);
    CHECK(e[label].result == Result::kShutdown);
  }

  // Idempotent; Send afterwards fails without calling its callback; the destructor
  // calls nothing again.
  pump->Shutdown();
  CHECK_FALSE(pump->Send("station.event.echo.shutdown", "late", absl::Seconds(1),
                         results.For("late"))
                  .ok());
  pump.reset();
  CHECK(results.total_calls() == kOutstanding + 1);
  CHECK(results.entries().count("late") == 0);
}

TEST_CASE("RequestPump destructor completes outstanding requests", "[request_pump][integration]") {
  nats::Library lib;
  NatsServer server;
  Responder silent(server.url(), "station.event.silent.dtor", "", /*silent=*/true);
  nats::ConnectionPtr nc = MustConnect(server.url(), "client");
  Results results;
  {
    std::unique_ptr<RequestPump> pump = MustPump(nc.get());
    for (int i = 0; i < 10; ++i) {
      REQUIRE(pump->Send("station.event.silent.dtor", "x", absl::Seconds(30),
                         results.For(absl::StrCat(i)))
                  .ok());
    }
  }
  CHECK(results.total_calls() == 10);
  for (const auto& [label, e] : results.entries()) {
    INFO(label);
    CHECK(e.calls == 1);
    CHECK(e.result == Result::kShutdown);
  }
}

TEST_CASE("RequestPump mixes replies, no responders and timeouts", "[request_pump][integration]") {
  nats::Library lib;
  NatsServer server;
  Responder echo(server.url(), "mix.echo", "e:");
  Responder silent(server.url(), "mix.silent", "", /*silent=*/true);
  nats::ConnectionPtr nc = MustConnect(server.url(), "client");
  Results results;
  std::unique_ptr<RequestPump> pump = MustPump(nc.get());
  for (int i = 0; i < 30; ++i) {
    const std::string n = absl::StrCat(i);
    REQUIRE(pump->Send("mix.echo", n, absl::Seconds(5), results.For("echo" + n)).ok());
    REQUIRE(pump->Send("mix.nobody", n, absl::Seconds(5), results.For("nobody" + n)).ok());
    REQUIRE(pump->Send("mix.silent", n, absl::Milliseconds(300), results.For("silent" + n)).ok());
  }
  REQUIRE(WaitUntil([&] { return results.total_calls() >= 90; }));
  auto e = results.entries();
  for (int i = 0; i < 30; ++i) {
    const std::string n = absl::StrCat(i);
    INFO(n);
    CHECK(e["echo" + n].result == Result::kReply);
    CHECK(e["echo" + n].data == "e:" + n);
    CHECK(e["nobody" + n].result == Result::kNoResponders);
    CHECK(e["silent" + n].result == Result::kTimeout);
    CHECK(e["echo" + n].calls + e["nobody" + n].calls + e["silent" + n].calls == 3);
  }
  CHECK(pump->in_flight() == 0);
}

TEST_CASE("RequestPump reads replies on each inbox it was given", "[request_pump][integration]") {
  nats::Library lib;
  NatsServer server;
  nats::ConnectionPtr responder = MustConnect(server.url(), "responder");
  nats::SubscriptionPtr sub = MustSubscribe(responder.get(), "station.event.>", 100);
  nats::ConnectionPtr nc = MustConnect(server.url(), "client");
  std::unique_ptr<RequestPump> pump = MustPump(nc.get(), "_INBOX_a");
  absl::StatusOr<uint32_t> b = pump->AddInbox("_INBOX_b");
  REQUIRE(b.ok());
  CHECK(*b == 1);
  CHECK(absl::IsInvalidArgument(pump->Send("station.event.x.y", "", absl::Seconds(1), [](Result, nats::MsgPtr) {}, 2)));

  Results results;
  REQUIRE(pump->Send("station.event.x.a", "to a", absl::Seconds(5), results.For("a")).ok());
  REQUIRE(pump->Send("station.event.x.b", "to b", absl::Seconds(5), results.For("b"), *b).ok());
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub.get(), absl::Seconds(5));
    REQUIRE(msg.ok());
    const std::string reply = nats::Reply(msg->get());
    // Each request's reply subject is under the inbox it was sent from.
    const std::string from = nats::Subject(msg->get()) == "station.event.x.a" ? "_INBOX_a." : "_INBOX_b.";
    CHECK(reply.rfind(from, 0) == 0);
    REQUIRE(nats::Publish(responder.get(), reply, absl::StrCat("re ", nats::Data(msg->get()))).ok());
  }
  REQUIRE(WaitUntil([&] { return results.total_calls() == 2; }));
  auto e = results.entries();
  CHECK(e["a"].result == Result::kReply);
  CHECK(e["a"].data == "re to a");
  CHECK(e["b"].result == Result::kReply);
  CHECK(e["b"].data == "re to b");
  pump->Shutdown();
  CHECK(results.total_calls() == 2);
}

TEST_CASE("RequestPump hands each reply of a bundle to its own request", "[request_pump][integration]") {
  nats::Library lib;
  NatsServer server;
  nats::ConnectionPtr responder = MustConnect(server.url(), "responder");
  nats::SubscriptionPtr sub = MustSubscribe(responder.get(), "station.event.>", 100);
  nats::ConnectionPtr nc = MustConnect(server.url(), "client");
  std::unique_ptr<RequestPump> pump = MustPump(nc.get(), "_INBOX_a");
  absl::StatusOr<uint32_t> b = pump->AddInbox("_INBOX_b");
  REQUIRE(b.ok());

  Results results;
  for (const char* label : {"1", "2", "3"}) {
    REQUIRE(pump->Send(absl::StrCat("station.event.x.", label), label, absl::Seconds(5), results.For(label)).ok());
  }
  // On the pump's second inbox: a bundle to the first must not answer it.
  REQUIRE(pump->Send("station.event.x.other", "other", absl::Seconds(2), results.For("other"), *b).ok());
  absl::flat_hash_map<std::string, std::string> reply_of;  // by request data
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub.get(), absl::Seconds(5));
    REQUIRE(msg.ok());
    reply_of[std::string(nats::Data(msg->get()))] = nats::Reply(msg->get());
  }
  const std::string bundle_subject = RequestPump::BundleSubject(reply_of["1"]);
  CHECK(bundle_subject.rfind("_INBOX_a.", 0) == 0);
  CHECK(absl::EndsWith(bundle_subject, ".bundle"));
  CHECK(RequestPump::BundleSubject(reply_of["2"]) == bundle_subject);  // one inbox, one bundle subject
  CHECK(RequestPump::BundleSubject("nodot").empty());
  // Only a pump's reply subjects: three tokens or more, the last one decimal.
  CHECK(RequestPump::BundleSubject("_INBOX.12").empty());
  CHECK(RequestPump::BundleSubject("_INBOX.abc.x7").empty());
  CHECK(RequestPump::BundleSubject("_INBOX.abc.").empty());
  CHECK(RequestPump::BundleSubject("_INBOX_u.abc.17") == "_INBOX_u.abc.bundle");

  proto::ReplyBundle bundle;
  auto add = [&bundle](const std::string& subject, const std::string& data) {
    proto::BundledReply* r = bundle.add_replies();
    r->set_subject(subject);
    r->set_data(data);
  };
  add(reply_of["2"], "re 2");
  add(reply_of["1"], "re 1");
  add(reply_of["other"], "not from this inbox");  // refused: another inbox's reply
  const std::string other_token = reply_of["other"].substr(reply_of["other"].rfind('.') + 1);
  add(bundle_subject.substr(0, bundle_subject.size() - 6) + other_token,
      "another inbox's request");                          // refused: its request went on the other inbox
  add(bundle_subject + ".9", "below the inbox");           // refused: not one token
  add(absl::StrCat(reply_of["1"], "0"), "no such token");  // nobody waits: dropped quietly
  REQUIRE(nats::Publish(responder.get(), bundle_subject, bundle.SerializeAsString()).ok());
  REQUIRE(nats::Publish(responder.get(), bundle_subject, "\xff not a bundle").ok());
  REQUIRE(WaitUntil([&] { return results.total_calls() == 2 && pump->bundle_refused() == 4; }));
  auto e = results.entries();
  CHECK(e["1"].result == Result::kReply);
  CHECK(e["1"].data == "re 1");
  CHECK(e["2"].result == Result::kReply);
  CHECK(e["2"].data == "re 2");
  CHECK(e.count("3") == 0);
  CHECK(e.count("other") == 0);

  // The third still takes its reply alone, and the other inbox's request its timeout.
  REQUIRE(nats::Publish(responder.get(), reply_of["3"], "re 3").ok());
  REQUIRE(WaitUntil([&] { return results.total_calls() == 4; }));
  e = results.entries();
  CHECK(e["3"].data == "re 3");
  CHECK(e["other"].result == Result::kTimeout);
  CHECK(e["1"].calls == 1);
  CHECK(pump->bundle_refused() == 4);
  pump->Shutdown();
}

}  // namespace
}  // namespace steward
