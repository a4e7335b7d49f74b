// The agent's ACL: rules admit what they match; no rules at all (never set, or set to
// none, as a group defined for targeting pushes) admit everything, as the station says.
#include <catch2/catch.hpp>

#include "agent/acl.h"

namespace steward::agent {
namespace {

proto::Envelope Shell(std::vector<std::string> argv) {
  proto::Envelope e;
  e.set_method("shellcommand");
  e.set_to_node("ship1");
  for (std::string& a : argv) e.add_argv(std::move(a));
  return e;
}

TEST_CASE("an ACL admits what its rules match, and an empty one admits everything", "[agent][acl]") {
  auto acl = Acl::Open("");
  REQUIRE(acl.ok());
  CHECK((*acl)->Check(Shell({"rm", "-rf", "/tmp/x"})).ok());  // never set

  proto::AclDoc doc;
  doc.add_rules("shellcommand:systemctl status *");
  doc.set_version_unix_ms(1);
  REQUIRE((*acl)->Set(doc).ok());
  CHECK((*acl)->Check(Shell({"systemctl", "status", "nginx"})).ok());
  absl::Status denied = (*acl)->Check(Shell({"rm", "-rf", "/tmp/x"}));
  CHECK(absl::IsPermissionDenied(denied));
  // A shell command is matched as "/bin/sh -c ...": a rule's glob never admits more.
  proto::Envelope sh = Shell({"systemctl status x; rm -rf /"});
  sh.mutable_shell()->set_use_shell(true);
  CHECK_FALSE((*acl)->Check(sh).ok());

  proto::AclDoc none;
  none.set_version_unix_ms(2);
  REQUIRE((*acl)->Set(none).ok());
  CHECK((*acl)->configured());
  CHECK((*acl)->Check(Shell({"rm", "-rf", "/tmp/x"})).ok());
}

TEST_CASE("a glob rule allows no environment or working directory: only a rule for the whole method does",
          "[agent][acl]") {
  auto acl = Acl::Open("");
  REQUIRE(acl.ok());
  proto::AclDoc doc;
  doc.add_rules("shellcommand:/opt/radar.sh *");
  doc.set_version_unix_ms(1);
  REQUIRE((*acl)->Set(doc).ok());
  CHECK((*acl)->Check(Shell({"/opt/radar.sh", "status"})).ok());
  // BASH_ENV (or LD_PRELOAD, PATH) would run other code under the allowed program.
  proto::Envelope env = Shell({"/opt/radar.sh", "status"});
  env.mutable_shell()->add_env("BASH_ENV=/tmp/evil");
  absl::Status denied = (*acl)->Check(env);
  CHECK(absl::IsPermissionDenied(denied));
  CHECK_THAT(std::string(denied.message()), Catch::Contains("it sets environment variables") &&
                                                Catch::Contains("a rule for the whole method (\"shellcommand\")"));
  proto::Envelope dir = Shell({"/opt/radar.sh", "status"});
  dir.mutable_shell()->set_working_dir("/tmp");
  denied = (*acl)->Check(dir);
  CHECK(absl::IsPermissionDenied(denied));
  CHECK_THAT(std::string(denied.message()), Catch::Contains("a working directory"));
  // A rule for the whole method allows them.
  doc.add_rules("shellcommand");
  doc.set_version_unix_ms(2);
  REQUIRE((*acl)->Set(doc).ok());
  CHECK((*acl)->Check(env).ok());
  CHECK((*acl)->Check(dir).ok());
}

}  // namespace
}  // namespace steward::agent
