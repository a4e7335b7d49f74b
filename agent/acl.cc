// Acl: rule matching, persistence, and the setacl method.
#include "agent/acl.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/atomic_write.h"
#include "common/command_rule.h"
#include "common/protocol.h"
#include "common/status_macros.h"

namespace steward::agent {

absl::Status Acl::ValidateRule(absl::string_view rule) { return ValidateCommandRule(rule); }

absl::StatusOr<std::shared_ptr<Acl>> Acl::Open(const std::string& dir) {
  std::shared_ptr<Acl> acl(new Acl(dir.empty() ? "" : dir + "/acl.pb"));
  if (acl->path_.empty() || !std::filesystem::exists(acl->path_)) return acl;
  std::ifstream in(acl->path_, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  absl::MutexLock lock(&acl->mu_);
  if (!acl->doc_.ParseFromString(buf.str())) {
    return absl::DataLossError(absl::StrCat("corrupt ACL file ", acl->path_));
  }
  acl->configured_ = true;
  return acl;
}

absl::Status Acl::Check(const proto::Envelope& command) const {
  // The station's own: the rules themselves, and stopping what it sent (runs nothing).
  if (command.method() == kMethodSetAcl || command.method() == kMethodCancel) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  // No rules at all accepts everything, as the station says of such a node (a group
  // defined for targeting pushes its members an empty rule set).
  if (!configured_ || doc_.rules().empty()) return absl::OkStatus();
  bool glob_matched = false;  // a glob rule matched, but may not allow what else it sets
  for (const std::string& rule : doc_.rules()) {
    if (CommandRuleAllows(rule, command)) return absl::OkStatus();
    glob_matched = glob_matched || CommandRuleMatches(rule, command);
  }
  std::string what = command.method();
  if (command.argv_size() > 0) absl::StrAppend(&what, " \"", CommandRuleText(command).substr(0, 200), "\"");
  const std::string why = glob_matched ? GlobRulesCannotAllow(command) : "";
  return absl::PermissionDeniedError(
      absl::StrCat("not allowed by the ACL of ", command.to_node(), ": ", what, why.empty() ? "" : " (", why,
                   why.empty() ? "" : ")"));
}

absl::Status Acl::Set(const proto::AclDoc& doc) {
  for (const std::string& rule : doc.rules()) STEWARD_RETURN_IF_ERROR(ValidateRule(rule));
  // One Set at a time, so the version check, the file and the rules agree; Check only
  // takes mu_, which is never held while the file is written.
  absl::MutexLock set_lock(&set_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (configured_ && doc.version_unix_ms() < doc_.version_unix_ms()) return absl::OkStatus();
  }
  if (!path_.empty()) STEWARD_RETURN_IF_ERROR(WriteFileAtomically(path_, doc.SerializeAsString()));
  absl::MutexLock lock(&mu_);
  doc_ = doc;
  configured_ = true;
  return absl::OkStatus();
}

std::vector<std::string> Acl::rules() const {
  absl::MutexLock lock(&mu_);
  return {doc_.rules().begin(), doc_.rules().end()};
}

bool Acl::configured() const {
  absl::MutexLock lock(&mu_);
  return configured_;
}

namespace {

class SetAclMethod final : public Method {
 public:
  explicit SetAclMethod(std::shared_ptr<Acl> acl) : acl_(std::move(acl)) {}
  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    proto::AclDoc doc;
    if (!doc.ParseFromString(ctx.command.payload())) {
      return RejectAck(ctx.command.id(), ctx.node, "malformed ACL document");
    }
    if (absl::Status st = acl_->Set(doc); !st.ok()) {
      return RejectAck(ctx.command.id(), ctx.node, st.message());
    }
    proto::Ack ack = NewAck(ctx.command.id(), ctx.node, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
    ack.set_stdout(absl::StrCat("ACL: ", absl::StrJoin(doc.rules(), ", "), "\n"));
    ack.set_finished_unix_ms(NowUnixMillis());
    return ack;
  }

 private:
  std::shared_ptr<Acl> acl_;
};

}  // namespace

std::unique_ptr<Method> NewSetAclMethod(std::shared_ptr<Acl> acl) {
  return std::make_unique<SetAclMethod>(std::move(acl));
}

}  // namespace steward::agent
