// The registry of built-in methods: one line per method.
#include "agent/method.h"
#include "common/protocol.h"

namespace steward::agent {

MethodRegistry BuiltinMethods() {
  MethodRegistry r;
  r.Register(kMethodPing, NewPingMethod);
  r.Register(kMethodShell, NewShellCommandMethod);
  r.Register(kMethodEcho, NewEchoMethod);
  r.Register(kMethodStatus, NewStatusMethod);
  r.Register(kMethodProcess, NewProcessMethod);
  r.Register(kMethodConfig, NewConfigMethod);
  r.Register(kMethodCopy, NewCopyMethod);
  r.Register(kMethodDebug, NewDebugMethod);
  r.Register(kMethodCancel, NewCancelMethod);
  return r;
}

}  // namespace steward::agent
