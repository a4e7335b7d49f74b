// Integration tests for common/outbox.h against a real nats-server and a fake station
// that answers each item with an ACK: delivery and removal, retries while the station
// answers "not stored" or is absent, final outcomes, the size limit, and items that
// were already in the spool at Start.
#include "common/outbox.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/ids.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "common/request_pump.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/wait.h"

namespace steward {
namespace {

using steward::testing::NatsServer;

constexpr char kSubject[] = "station.event.result.test";

using steward::testing::WaitUntil;

using steward::testing::MustConnect;

std::string AckBytes(const std::string& id, proto::Outcome outcome) {
  return NewAck(id, "station", proto::STAGE_RESULT, outcome).SerializeAsString();
}

// What the fake station answers to attempt number `attempt` (1-based) of item `id`:
// reply bytes, or nullopt for no reply at all.
using Policy = std::function<std::optional<std::string>(const std::string& id, int attempt)>;

Policy Always(proto::Outcome outcome) {
  return [outcome](const std::string& id, int) { return AckBytes(id, outcome); };
}

// A fake station: its own connection, a sync subscription on `subject`, a thread that
// answers each message (whose data is the item id) as the policy says, via the reply.
class Station {
 public:
  Station(const std::string& url, Policy policy, const std::string& subject = kSubject)
      : policy_(std::move(policy)) {
    nc_ = MustConnect(url, "station");
    absl::StatusOr<nats::SubscriptionPtr> sub = nats::SubscribeSync(nc_.get(), subject, 100000);
    REQUIRE(sub.ok());
    sub_ = *std::move(sub);
    REQUIRE(nats::Flush(nc_.get(), absl::Seconds(5)).ok());  // subscribed at the server
    thread_ = std::thread([this] { Loop(); });
  }
  ~Station() {
    stop_ = true;
    thread_.join();
  }

  void SetPolicy(Policy policy) {
    absl::MutexLock lock(&mu_);
    policy_ = std::move(policy);
  }
  int Seen(const std::string& id) const {
    absl::MutexLock lock(&mu_);
    auto it = seen_.find(id);
    return it == seen_.end() ? 0 : it->second;
  }
  int total() const {
    absl::MutexLock lock(&mu_);
    return total_;
  }
  // Ids in the order of their first arrival.
  std::vector<std::string> first_seen() const {
    absl::MutexLock lock(&mu_);
    return first_seen_;
  }
  // Ids seen at least `n` times.
  size_t CountSeenAtLeast(int n) const {
    absl::MutexLock lock(&mu_);
    size_t count = 0;
    for (const auto& [id, times] : seen_) count += times >= n ? 1 : 0;
    return count;
  }

 private:
  void Loop() {
    while (!stop_) {
      absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub_.get(), absl::Milliseconds(50));
      if (!msg.ok()) continue;
      const std::string id(nats::Data(msg->get()));
      std::optional<std::string> reply;
      {
        absl::MutexLock lock(&mu_);
        const int attempt = ++seen_[id];
        if (attempt == 1) first_seen_.push_back(id);
        ++total_;
        reply = policy_(id, attempt);
      }
      const char* to = natsMsg_GetReply(msg->get());
      if (!reply.has_value() || to == nullptr) continue;
      natsConnection_Publish(nc_.get(), to, reply->data(), static_cast<int>(reply->size()));
    }
  }

  mutable absl::Mutex mu_;
  Policy policy_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> seen_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> first_seen_ ABSL_GUARDED_BY(mu_);
  int total_ ABSL_GUARDED_BY(mu_) = 0;
  nats::ConnectionPtr nc_;
  nats::SubscriptionPtr sub_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A spool whose contents the test can watch after handing it to the Outbox.
struct SpoolState {
  mutable absl::Mutex mu;
  std::map<std::string, OutboxItem> items ABSL_GUARDED_BY(mu);
  int puts ABSL_GUARDED_BY(mu) = 0;
  int removes ABSL_GUARDED_BY(mu) = 0;

  size_t size() const {
    absl::MutexLock lock(&mu);
    return items.size();
  }
  int put_count() const {
    absl::MutexLock lock(&mu);
    return puts;
  }
  int remove_count() const {
    absl::MutexLock lock(&mu);
    return removes;
  }
};

class WatchedSpool final : public Spool {
 public:
  explicit WatchedSpool(std::shared_ptr<SpoolState> state) : state_(std::move(state)) {}
  absl::Status Put(const OutboxItem& item) override {
    absl::MutexLock lock(&state_->mu);
    state_->items[item.id] = item;
    ++state_->puts;
    return absl::OkStatus();
  }
  absl::Status Remove(const std::string& id) override {
    absl::MutexLock lock(&state_->mu);
    state_->items.erase(id);
    ++state_->removes;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<OutboxItem>> LoadAll() override {
    absl::MutexLock lock(&state_->mu);
    std::vector<OutboxItem> out;
    for (const auto& [id, item] : state_->items) out.push_back(item);
    return out;
  }

 private:
  std::shared_ptr<SpoolState> state_;
};

OutboxOptions FastOptions() {
  OutboxOptions o;
  o.initial_backoff = absl::Milliseconds(20);
  o.max_backoff = absl::Milliseconds(200);
  o.ack_timeout = absl::Milliseconds(300);
  return o;
}

OutboxItem Item() {
  OutboxItem item;
  item.id = NewId();
  item.subject = kSubject;
  item.data = item.id;  // the fake station answers for the id it reads here
  return item;
}

// The client side: connection, pump and outbox, torn down in a safe order. The
// pump's Shutdown calls outstanding callbacks, which call into the outbox, so both
// are shut down while both still exist, before either is destroyed.
class Client {
 public:
  Client(const std::string& url, OutboxOptions options,
         std::unique_ptr<Spool> spool = nullptr) {
    nc_ = MustConnect(url, "agent");
    absl::StatusOr<std::unique_ptr<RequestPump>> pump = RequestPump::Create(nc_.get());
    INFO(pump.status().ToString());
    REQUIRE(pump.ok());
    pump_ = *std::move(pump);
    if (spool == nullptr) spool = std::make_unique<WatchedSpool>(spool_state_);
    outbox_ = std::make_unique<Outbox>(pump_.get(), std::move(spool), options);
  }
  ~Client() {
    outbox_->Shutdown();
    pump_->Shutdown();
    outbox_.reset();
    pump_.reset();
  }
  Outbox& outbox() { return *outbox_; }
  const SpoolState& spool() const { return *spool_state_; }

  std::vector<std::string> EnqueueMany(int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      OutboxItem item = Item();
      ids.push_back(item.id);
      absl::Status st = outbox_->Enqueue(std::move(item));
      INFO(st.ToString());
      REQUIRE(st.ok());
    }
    return ids;
  }

 private:
  std::shared_ptr<SpoolState> spool_state_ = std::make_shared<SpoolState>();
  nats::ConnectionPtr nc_;
  std::unique_ptr<RequestPump> pump_;
  std::unique_ptr<Outbox> outbox_;
};

TEST_CASE("Outbox delivers 500 items and removes them", "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url(), Always(proto::OUTCOME_SUCCEEDED));
  Client client(server.url(), FastOptions());
  REQUIRE(client.outbox().Start().ok());

  const std::vector<std::string> ids = client.EnqueueMany(500);
  CHECK(client.spool().put_count() == 500);
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));
  CHECK(client.outbox().pending() == 0);
  CHECK(client.spool().size() == 0);
  CHECK(client.spool().remove_count() == 500);
  int missing = 0;
  for (const std::string& id : ids) missing += station.Seen(id) >= 1 ? 0 : 1;
  CHECK(missing == 0);
  CHECK(station.CountSeenAtLeast(1) == 500);
}

TEST_CASE("Outbox keeps and retries items the station has not stored", "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  struct Case {
    const char* name;
    Policy policy;
  };
  const Case c = GENERATE(
      Case{"unspecified", Always(proto::OUTCOME_UNSPECIFIED)},
      Case{"error", Always(proto::OUTCOME_ERROR)},
      Case{"failed", Always(proto::OUTCOME_FAILED)},
      Case{"garbage", [](const std::string&, int) { return std::string("not an ack"); }},
      Case{"wrong protocol version", [](const std::string& id, int) {
             proto::Ack ack = NewAck(id, "station", proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
             ack.set_protocol_version(kProtocolVersion + 1);
             return ack.SerializeAsString();
           }});
  INFO("station answers: " << c.name);

  Station station(server.url(), c.policy);
  Client client(server.url(), FastOptions());
  REQUIRE(client.outbox().Start().ok());
  const std::vector<std::string> ids = client.EnqueueMany(5);

  // Each item is sent again and again (backoff 20, 40, 80 ms ...), and stays.
  REQUIRE(WaitUntil([&] { return station.CountSeenAtLeast(3) == ids.size(); }));
  CHECK(client.outbox().pending() == ids.size());
  CHECK(client.spool().size() == ids.size());
  CHECK(client.spool().remove_count() == 0);

  // Once the station stores them, they leave.
  station.SetPolicy(Always(proto::OUTCOME_SUCCEEDED));
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(5)));
  CHECK(client.spool().size() == 0);
}

TEST_CASE("Outbox backs off between retries", "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url(), Always(proto::OUTCOME_ERROR));
  OutboxOptions options = FastOptions();
  options.initial_backoff = absl::Milliseconds(100);
  options.max_backoff = absl::Seconds(10);
  Client client(server.url(), options);
  REQUIRE(client.outbox().Start().ok());
  const std::vector<std::string> ids = client.EnqueueMany(1);
  // Attempts at about 0, 100, 300, 700 ms: the fourth comes after ~700 ms, and
  // without backoff there would be dozens by then.
  const absl::Time start = absl::Now();
  REQUIRE(WaitUntil([&] { return station.Seen(ids[0]) >= 4; }));
  const absl::Duration took = absl::Now() - start;
  INFO("four attempts took " << absl::FormatDuration(took));
  CHECK(took >= absl::Milliseconds(600));
  CHECK(station.Seen(ids[0]) <= 5);
  CHECK(client.outbox().pending() == 1);
}

TEST_CASE("Outbox retries after ack timeouts", "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  // The station receives the first attempt of each item but never answers it.
  Station station(server.url(), [](const std::string& id, int attempt) -> std::optional<std::string> {
    if (attempt == 1) return std::nullopt;
    return AckBytes(id, proto::OUTCOME_SUCCEEDED);
  });
  Client client(server.url(), FastOptions());
  REQUIRE(client.outbox().Start().ok());
  const std::vector<std::string> ids = client.EnqueueMany(20);
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));
  for (const std::string& id : ids) CHECK(station.Seen(id) >= 2);
  CHECK(client.spool().size() == 0);
}

TEST_CASE("Outbox holds items while the station is absent, then drains",
          "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  Client client(server.url(), FastOptions());
  REQUIRE(client.outbox().Start().ok());
  const std::vector<std::string> ids = client.EnqueueMany(50);

  // No responders: every attempt fails at once and is retried with backoff; nothing is
  // lost meanwhile.
  absl::SleepFor(absl::Milliseconds(400));
  CHECK(client.outbox().pending() == ids.size());
  CHECK(client.spool().size() == ids.size());

  Station station(server.url(), Always(proto::OUTCOME_SUCCEEDED));
  // max_backoff is 200 ms, so retries reach the station without a Kick.
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));
  for (const std::string& id : ids) CHECK(station.Seen(id) >= 1);
  CHECK(client.spool().size() == 0);
}

TEST_CASE("Outbox Kick sends waiting items at once", "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  OutboxOptions options = FastOptions();
  options.initial_backoff = absl::Seconds(30);
  options.max_backoff = absl::Seconds(30);
  Client client(server.url(), options);
  REQUIRE(client.outbox().Start().ok());
  const std::vector<std::string> ids = client.EnqueueMany(10);
  absl::SleepFor(absl::Milliseconds(300));  // first attempts: no responders, next in 30 s
  CHECK(client.outbox().pending() == ids.size());

  Station station(server.url(), Always(proto::OUTCOME_SUCCEEDED));
  client.outbox().Kick();
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(5)));
  for (const std::string& id : ids) CHECK(station.Seen(id) >= 1);
}

TEST_CASE("Outbox drops items the station rejects", "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url(), [](const std::string& id, int) {
    return RejectAck(id, "station", "not for me").SerializeAsString();
  });
  OutboxOptions options = FastOptions();
  options.ack_timeout = absl::Seconds(5);  // no timeout retries: each id is seen once
  Client client(server.url(), options);
  REQUIRE(client.outbox().Start().ok());
  const std::vector<std::string> ids = client.EnqueueMany(10);
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(5)));
  CHECK(client.spool().size() == 0);
  CHECK(client.spool().remove_count() == 10);
  for (const std::string& id : ids) CHECK(station.Seen(id) == 1);
  CHECK(station.total() == 10);
}

TEST_CASE("Outbox delivers everything with a small in-flight limit", "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url(), Always(proto::OUTCOME_SUCCEEDED));
  OutboxOptions options = FastOptions();
  options.max_in_flight = 2;
  Client client(server.url(), options);
  REQUIRE(client.outbox().Start().ok());
  const std::vector<std::string> ids = client.EnqueueMany(200);
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));
  for (const std::string& id : ids) CHECK(station.Seen(id) >= 1);
  CHECK(client.spool().size() == 0);
}

TEST_CASE("Outbox sends first attempts in enqueue order", "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  // Some first attempts go unanswered: their retries interleave with new items.
  Station station(server.url(), [](const std::string& id, int attempt) -> std::optional<std::string> {
    if (attempt == 1 && id.back() % 5 == 0) return std::nullopt;
    return AckBytes(id, proto::OUTCOME_SUCCEEDED);
  });
  const size_t window = GENERATE(size_t{1}, size_t{2}, size_t{4}, size_t{256});
  INFO("max_in_flight " << window);
  OutboxOptions options = FastOptions();
  options.max_in_flight = window;
  options.ack_timeout = absl::Milliseconds(30);
  Client client(server.url(), options);
  REQUIRE(client.outbox().Start().ok());
  // Paced so that replies free the window between Enqueue calls, while items that
  // found it full still wait for the sender: a new item must not overtake them.
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    std::vector<std::string> more = client.EnqueueMany(1);
    ids.push_back(more[0]);
    absl::SleepFor(absl::Microseconds(50));
  }
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(20)));
  // Every message goes through the one connection in publish order, so the station
  // sees first attempts in the order they were sent.
  CHECK(station.first_seen() == ids);
}

TEST_CASE("Outbox Enqueue with a put function stores through it", "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url(), Always(proto::OUTCOME_SUCCEEDED));
  Client client(server.url(), FastOptions());
  REQUIRE(client.outbox().Start().ok());
  int calls = 0;
  OutboxItem item = Item();
  const std::string id = item.id;
  REQUIRE(client.outbox()
              .Enqueue(std::move(item),
                       [&calls](Spool& spool, const OutboxItem& i) {
                         ++calls;
                         return spool.Put(i);
                       })
              .ok());
  CHECK(calls == 1);
  CHECK(client.spool().put_count() == 1);
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));
  CHECK(station.Seen(id) == 1);

  // A failed put: not accepted, nothing pending, nothing sent.
  OutboxItem refused = Item();
  const std::string refused_id = refused.id;
  absl::Status st = client.outbox().Enqueue(std::move(refused), [](Spool&, const OutboxItem&) {
    return absl::UnavailableError("disk on fire");
  });
  CHECK(absl::IsUnavailable(st));
  CHECK(client.outbox().pending() == 0);
  absl::SleepFor(absl::Milliseconds(100));
  CHECK(station.Seen(refused_id) == 0);
}

TEST_CASE("Outbox keeps sending and answering while a spool put is slow",
          "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  Client client(server.url(), FastOptions());
  REQUIRE(client.outbox().Start().ok());
  const std::vector<std::string> first = client.EnqueueMany(1);  // no station yet: retried
  absl::Notification entered;
  absl::Notification release;
  absl::Status slow_status;
  std::thread slow([&] {
    slow_status = client.outbox().Enqueue(Item(), [&](Spool& spool, const OutboxItem& i) {
      entered.Notify();
      // A disk that takes its time (bounded, so a regression fails instead of hanging).
      release.WaitForNotificationWithTimeout(absl::Seconds(5));
      return spool.Put(i);
    });
  });
  entered.WaitForNotification();
  // None of this waits for the put: the outbox's lock is not held across it.
  const absl::Time start = absl::Now();
  CHECK(client.outbox().pending() == 1);
  client.outbox().Kick();
  Station station(server.url(), Always(proto::OUTCOME_SUCCEEDED));
  CHECK(WaitUntil([&] { return station.Seen(first[0]) >= 1; }, absl::Seconds(3)));
  CHECK(absl::Now() - start < absl::Seconds(4));
  release.Notify();
  slow.join();
  CHECK(slow_status.ok());
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));
  CHECK(client.spool().size() == 0);
}

TEST_CASE("Outbox refuses items beyond max_items", "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  OutboxOptions options = FastOptions();
  options.max_items = 3;
  Client client(server.url(), options);
  REQUIRE(client.outbox().Start().ok());  // no station: nothing leaves
  client.EnqueueMany(3);
  absl::Status st = client.outbox().Enqueue(Item());
  INFO(st.ToString());
  CHECK(absl::IsResourceExhausted(st));
  CHECK(client.outbox().pending() == 3);
  CHECK(client.spool().put_count() == 3);  // the refused item never reached the spool

  // Room again once the station takes some.
  Station station(server.url(), Always(proto::OUTCOME_SUCCEEDED));
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));
  CHECK(client.outbox().Enqueue(Item()).ok());
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));

  client.outbox().Shutdown();
  CHECK(absl::IsFailedPrecondition(client.outbox().Enqueue(Item())));
}

TEST_CASE("Outbox delivers what the spool held at Start", "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url(), Always(proto::OUTCOME_SUCCEEDED));

  std::unique_ptr<Spool> spool = NewMemorySpool();
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    OutboxItem item = Item();
    ids.push_back(item.id);
    REQUIRE(spool->Put(item).ok());
  }
  Client client(server.url(), FastOptions(), std::move(spool));
  CHECK(client.outbox().pending() == 0);  // nothing loaded before Start
  REQUIRE(client.outbox().Start().ok());
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));
  for (const std::string& id : ids) CHECK(station.Seen(id) >= 1);

  // New items still flow after the spooled ones.
  const std::vector<std::string> more = client.EnqueueMany(5);
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));
  for (const std::string& id : more) CHECK(station.Seen(id) >= 1);
}

// An item of `bytes` whose data starts with its id (the fake station reads the id from
// the data: a padded item is answered as nothing it knows).
OutboxItem BigItem(size_t bytes, uint64_t weight) {
  OutboxItem item = Item();
  item.data.resize(bytes, '.');
  item.weight = weight;
  return item;
}

TEST_CASE("Outbox refits items too large to send, in the spool too, and counts what it leaves out",
          "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url(), Always(proto::OUTCOME_SUCCEEDED));
  constexpr size_t kLimit = 64;
  OutboxOptions options = FastOptions();
  options.max_item_bytes = [] { return kLimit; };
  std::vector<std::string> parts;  // every part made, in order
  absl::Mutex parts_mu;
  options.refit = [&](const OutboxItem& item, size_t limit) {
    CHECK(limit == kLimit);
    CHECK(item.data.size() > kLimit);
    Refitted out;
    for (int i = 0; i < 2; ++i) {
      OutboxItem part = Item();
      part.weight = 4;
      out.parts.push_back(part);
      absl::MutexLock lock(&parts_mu);
      parts.push_back(part.id);
    }
    out.dropped = item.weight - 8;
    return out;
  };
  auto state = std::make_shared<SpoolState>();
  auto spool = std::make_unique<WatchedSpool>(state);
  const OutboxItem fits = Item();
  const OutboxItem spooled = BigItem(1000, 10);  // spooled by an older program
  REQUIRE(spool->Put(fits).ok());
  REQUIRE(spool->Put(spooled).ok());
  Client client(server.url(), options, std::move(spool));
  REQUIRE(client.outbox().Start().ok());
  {
    absl::MutexLock lock(&state->mu);
    CHECK(state->items.count(spooled.id) == 0);  // replaced by its parts at once
  }
  CHECK(client.outbox().dropped() == 2);
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));
  CHECK(station.Seen(fits.id) >= 1);
  CHECK(state->size() == 0);

  // Found too large when sent: refitted the same way.
  REQUIRE(client.outbox().Enqueue(BigItem(500, 9)).ok());
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));
  CHECK(client.outbox().dropped() == 3);
  absl::MutexLock lock(&parts_mu);
  REQUIRE(parts.size() == 4);
  for (const std::string& id : parts) CHECK(station.Seen(id) >= 1);
  CHECK(station.total() == 5);  // never an attempt with an item that could not leave
}

TEST_CASE("Outbox without a refit drops items too large to send, counted, never retried",
          "[outbox][integration]") {
  nats::Library lib;
  NatsServer server;
  Station station(server.url(), Always(proto::OUTCOME_SUCCEEDED));
  OutboxOptions options = FastOptions();
  options.max_item_bytes = [] { return size_t{64}; };
  Client client(server.url(), options);
  REQUIRE(client.outbox().Start().ok());
  REQUIRE(client.outbox().Enqueue(BigItem(1000, 7)).ok());
  const std::vector<std::string> small = client.EnqueueMany(3);
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));
  CHECK(client.outbox().dropped() == 7);
  CHECK(station.total() == 3);
  for (const std::string& id : small) CHECK(station.Seen(id) == 1);
  CHECK(client.spool().size() == 0);
}

TEST_CASE("MemorySpool keeps items until removed, in id order", "[outbox]") {
  std::unique_ptr<Spool> spool = NewMemorySpool();
  OutboxItem a{"01AAAAAAAAAAAAAAAAAAAAAAAA", "s.a", "1"};
  OutboxItem b{"01BBBBBBBBBBBBBBBBBBBBBBBB", "s.b", "2"};
  OutboxItem c{"01CCCCCCCCCCCCCCCCCCCCCCCC", "s.c", "3"};
  REQUIRE(spool->Put(c).ok());
  REQUIRE(spool->Put(a).ok());
  REQUIRE(spool->Put(b).ok());
  REQUIRE(spool->Remove(b.id).ok());
  REQUIRE(spool->Remove("not-there").ok());
  absl::StatusOr<std::vector<OutboxItem>> all = spool->LoadAll();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].id == a.id);
  CHECK((*all)[0].subject == "s.a");
  CHECK((*all)[0].data == "1");
  CHECK((*all)[1].id == c.id);
}

TEST_CASE("Outbox sends what it spooled for a station since renamed to the station it has now",
          "[outbox][integration]") {
  // An agent whose station setting was wrong (a typo, later mended by `config set`)
  // spooled results for that name: nobody answers there, and they must not wait forever.
  nats::Library lib;
  NatsServer server;
  Station station(server.url(), Always(proto::OUTCOME_SUCCEEDED));
  std::unique_ptr<Spool> spool = NewMemorySpool();
  std::vector<std::string> ids;
  for (const char* subject : {"stationy.event.result.test", "stationy.event.result.test", kSubject}) {
    OutboxItem item = Item();
    item.subject = subject;
    ids.push_back(item.id);
    REQUIRE(spool->Put(item).ok());
  }
  OutboxOptions options = FastOptions();
  options.station = "station";
  Client client(server.url(), options, std::move(spool));
  REQUIRE(client.outbox().Start().ok());
  REQUIRE(client.outbox().WaitEmpty(absl::Seconds(10)));
  for (const std::string& id : ids) CHECK(station.Seen(id) >= 1);
}

}  // namespace
}  // namespace steward
