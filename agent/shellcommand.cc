// shellcommand: runs the envelope's argv (or, when asked, one string through /bin/sh -c)
// with the command runner, and turns the outcome into a result ACK.
#include <signal.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "agent/method.h"
#include "common/status_macros.h"
#include "common/protocol.h"

namespace steward::agent {
namespace {

class ShellCommandMethod final : public Method {
 public:
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    const proto::Envelope& cmd = ctx.command;
    absl::StatusOr<CommandSpec> spec = BuildSpec(ctx);
    if (!spec.ok()) return RejectAck(cmd.id(), ctx.node, spec.status().message());
    proto::Ack ack = NewAck(cmd.id(), ctx.node, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
    ack.set_started_unix_ms(NowUnixMillis());
    absl::StatusOr<CommandResult> r = ctx.runner.Run(*spec, &ctx.cancel);
    if (!r.ok()) {
      ack.set_outcome(proto::OUTCOME_ERROR);
      ack.set_error(std::string(r.status().message()));
      ack.set_finished_unix_ms(NowUnixMillis());
      return ack;
    }
    ack.set_started_unix_ms(absl::ToUnixMillis(r->started));
    ack.set_finished_unix_ms(absl::ToUnixMillis(r->finished));
    ack.set_stdout(std::move(r->stdout_data));
    ack.set_stdout_truncated(r->stdout_truncated);
    ack.set_stderr(std::move(r->stderr_data));
    ack.set_stderr_truncated(r->stderr_truncated);
    ack.set_exit_code(r->exited ? r->exit_code : -1);
    ack.set_term_signal(r->term_signal);
    if (r->timed_out) {
      ack.set_outcome(proto::OUTCOME_TIMED_OUT);
      ack.set_error(absl::StrCat("timed out after ", absl::FormatDuration(spec->timeout)));
    } else if (r->canceled) {
      ack.set_outcome(proto::OUTCOME_CANCELED);  // the processor says by whom
      ack.set_error("canceled");
    } else if (!r->exited || r->exit_code != 0) {
      ack.set_outcome(proto::OUTCOME_FAILED);
    }
    return ack;
  }

 private:
  static absl::StatusOr<CommandSpec> BuildSpec(const ExecContext& ctx) {
    const proto::Envelope& cmd = ctx.command;
    CommandSpec spec;
    STEWARD_RETURN_IF_ERROR(ValidateShellCommand(cmd));
    if (cmd.shell().use_shell()) {
      spec.argv = {"/bin/sh", "-c", cmd.argv(0)};
    } else {
      spec.argv.assign(cmd.argv().begin(), cmd.argv().end());
    }
    spec.working_dir = cmd.shell().working_dir();
    spec.output = ctx.output;
    // The operator's --env, then who runs it, for scripts that log or branch on it, and
    // by which the agent finds the command's processes (agent/leftovers.h): the
    // operator may not set those two.
    spec.env.assign(cmd.shell().env().begin(), cmd.shell().env().end());
    spec.env.push_back(absl::StrCat(kEnvNode, "=", ctx.node));
    spec.env.push_back(absl::StrCat(kEnvCommandId, "=", cmd.id()));
    const MethodLimits& lim = ctx.limits;
    spec.timeout = cmd.timeout_ms() > 0 ? absl::Milliseconds(cmd.timeout_ms()) : lim.default_timeout;
    spec.timeout = std::min(spec.timeout, lim.max_timeout);
    spec.kill_grace =
        cmd.shell().kill_grace_ms() > 0 ? absl::Milliseconds(cmd.shell().kill_grace_ms()) : lim.kill_grace;
    spec.kill_grace = std::min(spec.kill_grace, absl::Seconds(60));
    spec.max_output_bytes = cmd.shell().max_output_bytes() > 0
                                ? std::min<size_t>(cmd.shell().max_output_bytes(), lim.max_output_bytes)
                                : lim.max_output_bytes;
    return spec;
  }
};

}  // namespace

std::unique_ptr<Method> NewShellCommandMethod() { return std::make_unique<ShellCommandMethod>(); }

}  // namespace steward::agent
