// debug: the agent's own log lines, live, to the operator who asks (stewardctl debug).
//   argv: LEVEL MILLISECONDS SUBJECT   (SUBJECT: this node's debug stream, see
//   subjects::DebugStream; the operator's client reads it)
// A command like any other (signed, ACL-checked, recorded, never run twice) that
// answers at once: the streaming itself runs in the agent's DebugStreams, best effort,
// until its time is up or the operator goes away.
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/debug_streams.h"
#include "agent/method.h"
#include "common/protocol.h"

namespace steward::agent {
namespace {

class DebugMethod final : public Method {
 public:
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    const proto::Envelope& cmd = ctx.command;
    DebugStreams* streams = ctx.agent != nullptr ? ctx.agent->debug() : nullptr;
    if (streams == nullptr) return RejectAck(cmd.id(), ctx.node, "debug streams are not available here");
    int64_t ms = 0;
    if (cmd.argv_size() != 3 || !absl::SimpleAtoi(cmd.argv(1), &ms)) {
      return RejectAck(cmd.id(), ctx.node, "usage: debug LEVEL MILLISECONDS SUBJECT");
    }
    absl::StatusOr<LogLevel> level = ParseLogLevel(cmd.argv(0));
    if (!level.ok()) return RejectAck(cmd.id(), ctx.node, std::string(level.status().message()));
    const int64_t started = NowUnixMillis();
    absl::StatusOr<std::string> out = streams->Start(*level, absl::Milliseconds(ms), cmd.argv(2), cmd.operator_());
    return TextResult(ctx, started, out);
  }
};

}  // namespace

std::unique_ptr<Method> NewDebugMethod() { return std::make_unique<DebugMethod>(); }

}  // namespace steward::agent
