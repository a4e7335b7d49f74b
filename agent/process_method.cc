// process: an operator stops or starts one of the agent's command handlers.
//   argv: stop METHOD/DOMAIN [--cancel-running] | start METHOD/DOMAIN
// A stopped handler has no thread; commands for it are rejected "stopped by operator"
// until it is started, across agent restarts (see Dispatcher::StopHandler).
#include "agent/method.h"
#include "common/protocol.h"

namespace steward::agent {
namespace {

class ProcessMethod final : public Method {
 public:
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    const proto::Envelope& cmd = ctx.command;
    if (ctx.agent == nullptr) return RejectAck(cmd.id(), ctx.node, "process control is not available here");
    const auto& argv = cmd.argv();
    const bool cancel = argv.size() == 3 && argv[2] == "--cancel-running";
    const bool stop = argv.size() >= 2 && argv[0] == "stop" && (argv.size() == 2 || cancel);
    const bool start = argv.size() == 2 && argv[0] == "start";
    if (!stop && !start) {
      return RejectAck(cmd.id(), ctx.node, "usage: process stop METHOD/DOMAIN [--cancel-running] | start METHOD/DOMAIN");
    }
    const int64_t started = NowUnixMillis();
    // Refused (a running command, a bad name, the state file not written): nothing
    // changed, and the operator reads why.
    return TextResult(ctx, started,
                      stop ? ctx.agent->StopHandler(argv[1], cancel) : ctx.agent->StartHandler(argv[1]));
  }
};

}  // namespace

std::unique_ptr<Method> NewProcessMethod() { return std::make_unique<ProcessMethod>(); }

}  // namespace steward::agent
