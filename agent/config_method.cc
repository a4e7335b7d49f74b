// config: the agent's configuration, shown or changed by an operator.
//   argv: show | set KEY=VALUE... | push (the new file in the payload)
// A change is validated exactly as a start would load it and refused with the reason
// when it is not valid (the running configuration stays); a valid one is written to
// the agent's configuration file and applied by a reload (see ConfigHost). The result
// of a change carries the new configuration's hash as its payload.
#include "absl/strings/str_cat.h"
#include "agent/config_host.h"
#include "agent/method.h"
#include "common/protocol.h"

namespace steward::agent {
namespace {

class ConfigMethod final : public Method {
 public:
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    const proto::Envelope& cmd = ctx.command;
    ConfigHost* host = ctx.agent != nullptr ? ctx.agent->config() : nullptr;
    if (host == nullptr) return RejectAck(cmd.id(), ctx.node, "this agent runs without a configuration");
    const std::string verb = cmd.argv().empty() ? "" : cmd.argv(0);
    const int64_t started = NowUnixMillis();
    if (verb == "show" && cmd.argv_size() == 1) {
      return TextResult(ctx, started, absl::StrCat("# file: ", host->File(), "\n# hash: ", host->Hash(), "\n", host->Toml()));
    }
    absl::StatusOr<ConfigHost::Change> change;
    if (verb == "set" && cmd.argv_size() > 1) {
      change = host->Set({cmd.argv().begin() + 1, cmd.argv().end()});
    } else if (verb == "push" && cmd.argv_size() == 1) {
      change = host->Push(cmd.payload());
    } else {
      return RejectAck(cmd.id(), ctx.node, "usage: config show | set KEY=VALUE... | push (file in the payload)");
    }
    if (!change.ok()) return TextResult(ctx, started, change.status());
    // The payload is the installed configuration's hash: the station keeps it to show
    // drift (a later hello with another hash).
    proto::Ack ack = TextResult(ctx, started, change->text);
    ack.set_payload(change->hash);
    return ack;
  }
};

}  // namespace

std::unique_ptr<Method> NewConfigMethod() { return std::make_unique<ConfigMethod>(); }

}  // namespace steward::agent
