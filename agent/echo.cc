// echo: a durable command that runs nothing on the unit. It takes the whole delivery
// path (station ledger, agent command log, spooled result, recorded ACK) and answers
// with its arguments, so an operator can prove that path to a unit without touching
// it, and the ledger benchmark can measure the path without a process spawn.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/method.h"
#include "common/protocol.h"

namespace steward::agent {
namespace {

class EchoMethod final : public Method {
 public:
  bool quick() const override { return true; }
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    proto::Ack ack =
        NewAck(ctx.command.id(), ctx.node, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
    const int64_t now = NowUnixMillis();
    ack.set_started_unix_ms(now);
    ack.set_exit_code(0);
    ack.set_stdout(absl::StrCat(absl::StrJoin(ctx.command.argv(), " "), "\n"));
    ack.set_finished_unix_ms(now);
    return ack;
  }
};

}  // namespace

std::unique_ptr<Method> NewEchoMethod() { return std::make_unique<EchoMethod>(); }

}  // namespace steward::agent
