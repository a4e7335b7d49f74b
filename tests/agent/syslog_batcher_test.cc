// Batches that fit one NATS message (agent/syslog/batcher.h): packing by bytes, a line
// too large cut and marked, events that never pass max_payload, and a spooled batch
// that did refitted into ones that do, every line kept in order.
#include "agent/syslog/batcher.h"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/protocol.h"
#include "common/signing.h"

namespace steward::agent::syslog {
namespace {

proto::LogRecord Line(const std::string& message) {
  proto::LogRecord r;
  r.set_format("rfc3164");
  r.set_severity(6);
  r.set_domain("app");
  r.set_message(message);
  return r;
}

// The messages of every batch in `items`, in order.
std::vector<std::string> Messages(const std::vector<OutboxItem>& items) {
  std::vector<std::string> out;
  for (const OutboxItem& item : items) {
    proto::Envelope ev;
    REQUIRE(ev.ParseFromString(item.data));
    proto::LogBatch batch;
    REQUIRE(batch.ParseFromString(ev.payload()));
    CHECK(item.weight == static_cast<uint64_t>(batch.records_size()));
    for (const proto::LogRecord& r : batch.records()) out.push_back(r.message());
  }
  return out;
}

TEST_CASE("FitRecord cuts the message at a character and marks it", "[syslog]") {
  proto::LogRecord r = Line(std::string(999, 'x') + "\xc3\xa9" + std::string(1000, 'y'));
  FitRecord(r, 5000);  // fits: untouched
  CHECK_FALSE(r.truncated());
  CHECK(r.message().size() == 2001);
  // Room for 1,000 bytes of message: the cut would fall inside the two-byte character.
  const size_t max = r.ByteSizeLong() - 1001 + 8;
  FitRecord(r, max);
  CHECK(r.truncated());
  CHECK(r.ByteSizeLong() <= max);
  CHECK(r.message() == std::string(999, 'x'));
}

TEST_CASE("BatchPacker cuts batches by bytes and keeps the order", "[syslog]") {
  BatchPacker packer(/*max_payload=*/64 * 1024);
  std::vector<std::string> want;
  for (int i = 0; i < 100; ++i) {
    want.push_back(absl::StrCat(i, ":", std::string(2000, 'p')));
    packer.Add(Line(want.back()));
  }
  const std::vector<proto::LogBatch> batches = packer.Take();
  CHECK(batches.size() >= 4);
  std::vector<std::string> got;
  for (const proto::LogBatch& b : batches) {
    CHECK(b.ByteSizeLong() <= BatchBudget(64 * 1024));
    for (const proto::LogRecord& r : b.records()) got.push_back(r.message());
  }
  CHECK(got == want);
  CHECK(packer.Take().empty());
}

TEST_CASE("BatchEvents never pass max_payload, and a line too large is cut", "[syslog]") {
  // Signed, and naming its installation, as a real agent's events are: the envelope's
  // reserve must hold both.
  absl::StatusOr<signing::KeyPair> key = signing::Generate();
  REQUIRE(key.ok());
  const EventWriter events("ship1", "station", "installation-1", *key);
  constexpr size_t kMax = 1 << 20;
  proto::LogBatch batch;
  std::vector<std::string> want;
  for (int i = 0; i < 20; ++i) {  // 20 lines of 60 KiB: 1.2 MB
    want.push_back(absl::StrCat("big ", i, " ", std::string(60 * 1024, 'b')));
    *batch.add_records() = Line(want.back());
  }
  *batch.add_records() = Line(std::string(3 << 20, 'h'));  // one line of 3 MiB
  batch.set_dropped(7);
  auto items = BatchEvents(events, "app", batch, kMax);
  REQUIRE(items.ok());
  REQUIRE(items->size() >= 3);
  for (const OutboxItem& item : *items) CHECK(item.data.size() <= kMax);
  std::vector<std::string> got = Messages(*items);
  REQUIRE(got.size() == 21);
  CHECK(std::vector<std::string>(got.begin(), got.end() - 1) == want);
  CHECK(got.back().size() < kMax);
  CHECK(got.back().size() > kMax - 2 * kEnvelopeReserve);
  proto::Envelope first;
  REQUIRE(first.ParseFromString(items->front().data));
  proto::LogBatch first_batch;
  REQUIRE(first_batch.ParseFromString(first.payload()));
  CHECK(first_batch.dropped() == 7);
  proto::Envelope last;
  REQUIRE(last.ParseFromString(items->back().data));
  proto::LogBatch last_batch;
  REQUIRE(last_batch.ParseFromString(last.payload()));
  CHECK(last_batch.records(last_batch.records_size() - 1).truncated());
  CHECK(last.domain() == "app");
  CHECK(last.method() == kEventSyslog);
}

TEST_CASE("A spooled batch too large to send is refitted into events that fit", "[syslog]") {
  const EventWriter events("ship1", "station", "installation-1", std::nullopt);
  proto::LogBatch batch;
  std::vector<std::string> want;
  for (int i = 0; i < 30; ++i) {
    want.push_back(absl::StrCat("spooled ", i, " ", std::string(60 * 1024, 's')));
    *batch.add_records() = Line(want.back());
  }
  auto big = events.Make(kEventSyslog, "app", batch.SerializeAsString());
  REQUIRE(big.ok());
  big->weight = 30;
  REQUIRE(big->data.size() > (1 << 20));
  const Refitted refitted = RefitBatchEvent(events, *big, 1 << 20);
  CHECK(refitted.dropped == 0);
  for (const OutboxItem& part : refitted.parts) {
    CHECK(part.data.size() <= (1 << 20));
    CHECK(part.subject == big->subject);
  }
  CHECK(Messages(refitted.parts) == want);

  // Not a syslog batch: dropped, counted by its weight.
  const Refitted garbage = RefitBatchEvent(events, OutboxItem{"id", "subject", "not an envelope", 9}, 1 << 20);
  CHECK(garbage.parts.empty());
  CHECK(garbage.dropped == 9);
}

}  // namespace
}  // namespace steward::agent::syslog
