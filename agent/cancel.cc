// cancel: sent by the station (stewardctl cancel, a preemption) with argv = {command
// id}. Immediate: it must act while the command's own process is busy running it, and
// doing it twice is harmless (a redelivery asks again). The work is the processor's
// (CommandControl): kill the command's process group, or record that it never runs.
#include "absl/strings/str_cat.h"
#include "agent/method.h"
#include "common/protocol.h"

namespace steward::agent {
namespace {

class CancelMethod final : public Method {
 public:
  bool immediate() const override { return true; }
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    const proto::Envelope& cmd = ctx.command;
    if (cmd.argv_size() != 1 || cmd.argv(0).empty()) {
      return RejectAck(cmd.id(), ctx.node, "cancel takes exactly one command id");
    }
    if (ctx.control == nullptr) return RejectAck(cmd.id(), ctx.node, "this agent cannot cancel commands");
    proto::Ack ack = NewAck(cmd.id(), ctx.node, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
    ack.set_started_unix_ms(NowUnixMillis());
    absl::StatusOr<std::string> what = ctx.control->CancelCommand(cmd.argv(0), cmd.domain(), cmd.operator_());
    if (what.ok()) {
      ack.set_stdout(absl::StrCat(*what, "\n"));
    } else {
      ack.set_outcome(proto::OUTCOME_ERROR);
      ack.set_error(std::string(what.status().message()));
    }
    ack.set_finished_unix_ms(NowUnixMillis());
    return ack;
  }
};

}  // namespace

std::unique_ptr<Method> NewCancelMethod() { return std::make_unique<CancelMethod>(); }

}  // namespace steward::agent
