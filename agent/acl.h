// Acl: which methods and commands this node accepts, as set by the station ("setacl",
// a signed command). Rules are "method" (any use of it) or "method:glob", where the
// glob (fnmatch, '*' also matches '/' and spaces) is matched against the command's
// argv joined by single spaces; a command run through the shell is matched as
// "/bin/sh -c <string>", so a rule for "systemctl *" never admits "sh -c '...; rm'".
// Until the first ACL arrives, and while it holds no rule, a node accepts every method;
// otherwise only what a rule allows ("setacl" itself is always accepted from the
// trusted station).
//
// Thread-safe. The rules persist in <data_dir>/acl.pb.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/method.h"
#include "proto/steward.pb.h"

namespace steward::agent {

class Acl {
 public:
  // Loads <dir>/acl.pb if present (`dir` empty: memory only).
  static absl::StatusOr<std::shared_ptr<Acl>> Open(const std::string& dir);

  // OK, or PermissionDenied("not allowed by the ACL of <node>: <what>").
  absl::Status Check(const proto::Envelope& command) const ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the rules (ignored when older than the current ones); persists them.
  absl::Status Set(const proto::AclDoc& doc) ABSL_LOCKS_EXCLUDED(set_mu_, mu_);
  std::vector<std::string> rules() const ABSL_LOCKS_EXCLUDED(mu_);
  bool configured() const ABSL_LOCKS_EXCLUDED(mu_);

  // Checks a rule's syntax (used by the station too): InvalidArgument naming the problem.
  static absl::Status ValidateRule(absl::string_view rule);

 private:
  explicit Acl(std::string path) : path_(std::move(path)) {}
  const std::string path_;
  absl::Mutex set_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // serializes Set, across the file write
  mutable absl::Mutex mu_;
  bool configured_ ABSL_GUARDED_BY(mu_) = false;
  proto::AclDoc doc_ ABSL_GUARDED_BY(mu_);
};

// The "setacl" method: applies the AclDoc in the payload.
std::unique_ptr<Method> NewSetAclMethod(std::shared_ptr<Acl> acl);

}  // namespace steward::agent
