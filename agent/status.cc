// status: the agent's live status (processes, queues, outbox, syslog inputs, resources)
// as an AgentStatus in the result's payload, with a text form on stdout. A command like
// any other (signed, ACL-checked, recorded, never run twice), answered at once.
#include "agent/method.h"
#include "common/protocol.h"

namespace steward::agent {
namespace {

class StatusMethod final : public Method {
 public:
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    if (ctx.agent == nullptr) return RejectAck(ctx.command.id(), ctx.node, "status is not available here");
    proto::Ack ack = NewAck(ctx.command.id(), ctx.node, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
    ack.set_started_unix_ms(NowUnixMillis());
    ack.set_payload(ctx.agent->Status().SerializeAsString());
    ack.set_exit_code(0);
    ack.set_finished_unix_ms(NowUnixMillis());
    return ack;
  }
};

}  // namespace

std::unique_ptr<Method> NewStatusMethod() { return std::make_unique<StatusMethod>(); }

}  // namespace steward::agent
