// ping: answers at once, so the station (and stewardctl) can measure the round trip.
// The dispatcher answers it itself (PingAck); the method serves a direct call.
#include "agent/method.h"
#include "common/protocol.h"

namespace steward::agent {
namespace {

class PingMethod final : public Method {
 public:
  bool immediate() const override { return true; }
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    return PingAck(ctx.command.id(), ctx.node);
  }
};

}  // namespace

proto::Ack PingAck(const std::string& id, const std::string& node) {
  proto::Ack ack = NewAck(id, node, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
  const int64_t now = NowUnixMillis();
  ack.set_started_unix_ms(now);
  ack.set_finished_unix_ms(now);
  return ack;
}

std::unique_ptr<Method> NewPingMethod() { return std::make_unique<PingMethod>(); }

}  // namespace steward::agent
