// BatchAnswer: the ACKs of a batch's commands go back in one message, once the batch is
// routed and every slot answered or skipped; an ACK that would not fit is left out, and
// a slot dropped unanswered (work dropped at shutdown) sends nothing at all.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/events.h"
#include "agent/process.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/wait.h"

namespace steward::agent {
namespace {

using steward::testing::MustConnect;
using steward::testing::NatsServer;

// The one answer on `sub` within `wait`, as an AckBatch (nullopt: none came); the
// carrier's Ack itself in `carrier_ack` when not null.
std::optional<proto::AckBatch> Answer(natsSubscription* sub, const std::string& carrier,
                                      absl::Duration wait = absl::Seconds(2), proto::Ack* carrier_ack = nullptr) {
  absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub, wait);
  if (!msg.ok()) return std::nullopt;
  absl::StatusOr<proto::Ack> ack = DecodeAck(nats::Data(msg->get()));
  REQUIRE(ack.ok());
  if (carrier_ack != nullptr) *carrier_ack = *ack;
  CHECK(ack->envelope_id() == carrier);
  CHECK(ack->outcome() == proto::OUTCOME_SUCCEEDED);
  CHECK(ack->instance_id() == "inst1");
  proto::AckBatch batch;
  REQUIRE(batch.ParseFromString(ack->payload()));
  return batch;
}

proto::Ack Result(const std::string& id, size_t out_bytes = 0) {
  proto::Ack ack = NewAck(id, "ship1", proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
  ack.set_stdout(std::string(out_bytes, 'x'));
  return ack;
}

TEST_CASE("BatchAnswer sends the answers once every slot is done, and only then", "[agent][integration]") {
  nats::Library lib;
  NatsServer server;
  nats::ConnectionPtr nc = MustConnect(server.url(), "batch answer test");
  absl::StatusOr<nats::SubscriptionPtr> sub = nats::SubscribeSync(nc.get(), "_INBOX.batch.>", 64);
  REQUIRE(sub.ok());
  REQUIRE(nats::Flush(nc.get(), absl::Seconds(2)).ok());
  const EventWriter events("ship1", "station", "inst1", std::nullopt);

  SECTION("answered, skipped and answered twice") {
    auto answer = BatchAnswer::Create(nc.get(), events, "_INBOX.batch.1", "CARRIER1", 1 << 20);
    Reply a(answer->NewSlot()), b(answer->NewSlot()), c(answer->NewSlot());
    REQUIRE(ReplyAck(nc.get(), events, a, Result("A")).ok());
    answer->Routed();
    b.slot->Skip();  // queued behind another command: left out
    CHECK_FALSE(Answer(sub->get(), "CARRIER1", absl::Milliseconds(300)).has_value());  // c not yet
    REQUIRE(ReplyAck(nc.get(), events, c, Result("C")).ok());
    REQUIRE(ReplyAck(nc.get(), events, c, Result("C2")).ok());  // only the first counts
    std::optional<proto::AckBatch> got = Answer(sub->get(), "CARRIER1");
    REQUIRE(got.has_value());
    REQUIRE(got->acks_size() == 2);
    CHECK(got->acks(0).envelope_id() == "A");
    CHECK(got->acks(1).envelope_id() == "C");
    CHECK(got->acks(1).instance_id() == "inst1");  // sealed as an answer alone would be
    CHECK_FALSE(Answer(sub->get(), "CARRIER1", absl::Milliseconds(300)).has_value());  // once
  }
  SECTION("an ACK that would not fit the payload limit is left out") {
    auto answer = BatchAnswer::Create(nc.get(), events, "_INBOX.batch.2", "CARRIER2", 8 * 1024);
    Reply a(answer->NewSlot()), b(answer->NewSlot()), c(answer->NewSlot());
    REQUIRE(ReplyAck(nc.get(), events, a, Result("A", 3000)).ok());
    REQUIRE(ReplyAck(nc.get(), events, b, Result("B", 5000)).ok());  // 3000 + 5000 + carrier > 8 KiB
    REQUIRE(ReplyAck(nc.get(), events, c, Result("C", 100)).ok());
    answer->Routed();
    std::optional<proto::AckBatch> got = Answer(sub->get(), "CARRIER2");
    REQUIRE(got.has_value());
    REQUIRE(got->acks_size() == 2);
    CHECK(got->acks(0).envelope_id() == "A");
    CHECK(got->acks(1).envelope_id() == "C");
    CHECK(answer->left_out() == 1);
  }
  SECTION("a slot dropped unanswered sends nothing: the station's timeout sends them all again") {
    auto answer = BatchAnswer::Create(nc.get(), events, "_INBOX.batch.3", "CARRIER3", 1 << 20);
    Reply a(answer->NewSlot());
    {
      Reply dropped(answer->NewSlot());
    }
    REQUIRE(ReplyAck(nc.get(), events, a, Result("A")).ok());
    answer->Routed();
    CHECK_FALSE(Answer(sub->get(), "CARRIER3", absl::Milliseconds(500)).has_value());
  }
}

TEST_CASE(
    "A batch's answer asked to be signed once carries one signature over every ACK in it, and else each ACK carries "
    "its own",
    "[agent][integration][security]") {
  nats::Library lib;
  NatsServer server;
  nats::ConnectionPtr nc = MustConnect(server.url(), "batch answer signature test");
  absl::StatusOr<nats::SubscriptionPtr> sub = nats::SubscribeSync(nc.get(), "_INBOX.signed.>", 64);
  REQUIRE(sub.ok());
  REQUIRE(nats::Flush(nc.get(), absl::Seconds(2)).ok());
  absl::StatusOr<signing::KeyPair> key = signing::Generate();
  REQUIRE(key.ok());
  const EventWriter events("ship1", "station", "inst1", *key);

  for (const bool once : {true, false}) {
    INFO((once ? "signed once" : "each ACK signed (a station from before answer_signed_once)"));
    const std::string carrier_id = once ? "CARRIER_ONCE" : "CARRIER_EACH";
    auto answer =
        BatchAnswer::Create(nc.get(), events, absl::StrCat("_INBOX.signed.", carrier_id), carrier_id, 1 << 20, once);
    Reply a(answer->NewSlot()), b(answer->NewSlot());
    REQUIRE(ReplyAck(nc.get(), events, a, Result("A")).ok());
    REQUIRE(ReplyAck(nc.get(), events, b, Result("B")).ok());
    answer->Routed();
    proto::Ack carrier;
    std::optional<proto::AckBatch> got = Answer(sub->get(), carrier_id, absl::Seconds(2), &carrier);
    REQUIRE(got.has_value());
    REQUIRE(got->acks_size() == 2);
    for (const proto::Ack& ack : got->acks()) {
      CHECK(ack.instance_id() == "inst1");
      CHECK(ack.signature().empty() == once);
      if (!once) CHECK(signing::VerifyAckWith(ack, key->public_key).ok());
    }
    CHECK(carrier.signature().empty() == !once);
    if (once) {
      CHECK(signing::VerifyAckWith(carrier, key->public_key).ok());
      // The signature covers the ACKs in it: one changed there no longer verifies.
      proto::AckBatch changed = *got;
      changed.mutable_acks(1)->set_outcome(proto::OUTCOME_FAILED);
      proto::Ack forged = carrier;
      forged.set_payload(changed.SerializeAsString());
      CHECK_FALSE(signing::VerifyAckWith(forged, key->public_key).ok());
    }
  }
}

}  // namespace
}  // namespace steward::agent
