// ping: answers at once, so the station (and stewardctl) can measure the round trip.
#include "agent/method.h"
#include "common/protocol.h"

namespace steward::agent {
namespace {

class PingMethod final : public Method {
 public:
  bool immediate() const override { return true; }
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    proto::Ack ack =
        NewAck(ctx.command.id(), ctx.node, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
    const int64_t now = NowUnixMillis();
    ack.set_started_unix_ms(now);
    ack.set_finished_unix_ms(now);
    return ack;
  }
};

}  // namespace

std::unique_ptr<Method> NewPingMethod() { return std::make_unique<PingMethod>(); }

}  // namespace steward::agent
