// Methods: what an agent can do, registered by name. Adding one is one file (a class
// implementing Method plus a factory function) and one line in builtin_methods.cc.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "agent/command_runner.h"
#include "agent/control.h"
#include "common/protocol.h"
#include "proto/steward.pb.h"

namespace steward::agent {

struct MethodLimits {
  absl::Duration default_timeout = absl::Minutes(10);
  absl::Duration max_timeout = absl::Hours(24);
  absl::Duration kill_grace = absl::Seconds(2);
  size_t max_output_bytes = size_t{1} << 20;  // per stream
};

// What the "cancel" method asks of the agent; CommandProcessor implements it.
class CommandControl {
 public:
  virtual ~CommandControl() = default;
  // Stops command `id` for operator `by`: kills it when it runs here, makes sure it
  // never runs when it has not come yet, and says which (or how it ended) in one line.
  virtual absl::StatusOr<std::string> CancelCommand(const std::string& id, const std::string& domain,
                                                    const std::string& by) = 0;
};

// What one execution sees. Borrowed for the duration of Execute.
struct ExecContext {
  const proto::Envelope& command;
  const std::string& node;
  // Notified when the command must stop: the agent shuts down, or an operator
  // cancelled it (a Method reports either as OUTCOME_CANCELED; the agent says which).
  const absl::Notification& cancel;
  CommandRunner& runner;
  const MethodLimits& limits;
  CommandControl* control = nullptr;  // for the cancel method
  // The agent's own operations (status, stop/start of handlers, configuration); null
  // where there is no agent around the method (the node simulator).
  AgentControl* agent = nullptr;
  // Where output goes as it is produced (streamed to followers); null: nowhere. A
  // method that runs a program hands it to the runner (CommandSpec::output).
  OutputSink* output = nullptr;
};

// A method implementation. Thread-compatible: each process (subject) owns its own
// instance and calls it from one thread. A quick method's command may be taken on the
// dispatcher's thread instead, when its process is idle, with an instance made for it.
class Method {
 public:
  virtual ~Method() = default;
  // Immediate methods answer in the request's reply with their result, are not recorded
  // in the command log and send no result event (ping).
  virtual bool immediate() const { return false; }
  // Quick methods run nothing that takes time (echo): the command is recorded with its
  // result and the result goes back in the request's reply, which implies its receipt:
  // one exchange instead of three (`received`, then a result event and "stored"). The
  // command log keeps it; a lost reply is answered from the record when the station
  // sends the command again, so it never runs twice. Only for methods that change
  // nothing on the unit: when the record cannot be written (a full disk) the result
  // goes the long way from memory, and a redelivery before it arrives would run again.
  // Execute must return at once: it may run on the agent's intake (dispatcher) thread.
  virtual bool quick() const { return false; }
  // Execute runs the command and returns its result ACK (stage RESULT, outcome set).
  // A command that fails is a result, not an error: an error status means the process
  // itself is broken and is reported to the error kernel.
  virtual absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) = 0;
};

// The result of a method that answers with one line of text (process, config): `out`
// -> succeeded, exit 0, the text on stdout; an error -> failed, exit 1, its message as
// the error (a refusal that changed nothing).
inline proto::Ack TextResult(const ExecContext& ctx, int64_t started_unix_ms, const absl::StatusOr<std::string>& out) {
  proto::Ack ack = NewAck(ctx.command.id(), ctx.node, proto::STAGE_RESULT,
                          out.ok() ? proto::OUTCOME_SUCCEEDED : proto::OUTCOME_FAILED);
  ack.set_started_unix_ms(started_unix_ms);
  if (out.ok()) {
    ack.set_exit_code(0);
    ack.set_stdout(out->empty() || out->back() == '\n' ? *out : *out + "\n");
  } else {
    ack.set_exit_code(1);
    ack.set_error(std::string(out.status().message()));
  }
  ack.set_finished_unix_ms(NowUnixMillis());
  return ack;
}

using MethodFactory = std::function<std::unique_ptr<Method>()>;

// Name -> factory. Not thread-safe to modify; read-only after set-up.
class MethodRegistry {
 public:
  void Register(std::string name, MethodFactory factory) { factories_[std::move(name)] = std::move(factory); }
  // nullptr when `name` is not registered.
  const MethodFactory* Find(const std::string& name) const {
    auto it = factories_.find(name);
    return it == factories_.end() ? nullptr : &it->second;
  }
  std::vector<std::string> Names() const {
    std::vector<std::string> out;
    for (const auto& [name, f] : factories_) out.push_back(name);
    return out;
  }

 private:
  std::map<std::string, MethodFactory> factories_;
};

// The methods every agent has (ping, shellcommand, echo, cancel, status, process, config, copy, debug).
MethodRegistry BuiltinMethods();

std::unique_ptr<Method> NewPingMethod();
// A ping's answer: succeeded, started and finished now.
proto::Ack PingAck(const std::string& id, const std::string& node);
std::unique_ptr<Method> NewShellCommandMethod();
std::unique_ptr<Method> NewEchoMethod();
std::unique_ptr<Method> NewCancelMethod();
std::unique_ptr<Method> NewStatusMethod();
std::unique_ptr<Method> NewProcessMethod();
std::unique_ptr<Method> NewConfigMethod();
std::unique_ptr<Method> NewCopyMethod();
std::unique_ptr<Method> NewDebugMethod();

}  // namespace steward::agent
