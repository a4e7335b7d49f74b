// CommandTable's approvals (issue 13 part 4), pure: a command awaiting approval is never
// sent; approve queues it, deny rejects it, the first decision wins, the submitter
// cannot decide, no decision expires it, cancel ends it, and a restart keeps it held.
// Plus the approval rules (AccessRules). No broker, no ledger, an explicit clock.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/protocol.h"
#include "station/access.h"
#include "station/commands.h"
#include "tests/station/command_fixtures.h"

namespace steward::station {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

proto::CommandState Held(const std::string& id, absl::Duration ttl = absl::Hours(1), bool exclusive = false) {
  proto::CommandState s = Queued(id);
  s.set_state(proto::STATE_AWAITING_APPROVAL);
  s.mutable_command()->set_operator_("alice");
  s.mutable_command()->set_method("exec");
  s.mutable_command()->add_argv("systemctl");
  s.mutable_command()->add_argv("restart");
  s.mutable_command()->add_argv("engine-control");
  s.set_created_unix_ms(absl::ToUnixMillis(kT0));
  s.mutable_control()->set_exclusive(exclusive);
  proto::ApprovalMarks& m = *s.mutable_marks()->mutable_approval();
  m.set_required(true);
  m.set_reason("--require-approval");
  m.set_submitter("alice");
  m.set_expires_unix_ms(absl::ToUnixMillis(kT0 + ttl));
  return s;
}

Gate SendAll(const proto::CommandState&) { return Gate::kSend; }

std::vector<std::string> Due(CommandTable& t, absl::Time now, Changes& ch) {
  std::vector<std::string> out;
  for (const Dispatch& d : t.TakeDue(now, SendAll, ch)) out.push_back(d.id);
  return out;
}

proto::State StateOf(const CommandTable& t, const std::string& id) { return t.Find(id)->state(); }

TEST_CASE("a command awaiting approval is never sent, and approval by another operator sends it",
          "[station][approvals]") {
  CommandTable t;
  Changes ch;
  t.Add(Held("a"), kT0);
  CHECK(Due(t, kT0, ch).empty());
  CHECK(Due(t, kT0 + absl::Minutes(30), ch).empty());
  CHECK(StateOf(t, "a") == proto::STATE_AWAITING_APPROVAL);
  REQUIRE(t.AwaitingApproval("").size() == 1);
  CHECK(t.AwaitingApproval("ship2").empty());

  // Four eyes: the submitter cannot decide it, whatever name it gives.
  absl::Status own = t.Decide("a", "alice-again", "alice", true, "", kT0 + absl::Minutes(31), ch);
  CHECK(absl::IsPermissionDenied(own));
  CHECK(StateOf(t, "a") == proto::STATE_AWAITING_APPROVAL);

  ch = {};
  REQUIRE(t.Decide("a", "bob", "bob", true, "ok for now", kT0 + absl::Minutes(31), ch).ok());
  CHECK(StateOf(t, "a") == proto::STATE_QUEUED);
  REQUIRE(ch.writes.size() == 1);
  CHECK(ch.writes[0].record.marks().approval().decided_by() == "bob");
  CHECK(ch.writes[0].record.marks().approval().approved());
  CHECK(t.AwaitingApproval("").empty());
  CHECK(Due(t, kT0 + absl::Minutes(31), ch) == std::vector<std::string>{"a"});

  // The first decision wins: a second one names it.
  absl::Status again = t.Decide("a", "carol", "carol", false, "no", kT0 + absl::Minutes(32), ch);
  REQUIRE(absl::IsFailedPrecondition(again));
  CHECK(again.message().find("already approved by bob") != absl::string_view::npos);
}

TEST_CASE("a denied command ends rejected with the reason and is never sent", "[station][approvals]") {
  CommandTable t;
  Changes ch;
  t.Add(Held("a"), kT0);
  REQUIRE(t.Decide("a", "bob", "bob", false, "not during docking", kT0 + absl::Minutes(1), ch).ok());
  CHECK(StateOf(t, "a") == proto::STATE_REJECTED);
  CHECK(t.Find("a")->result().error().find("denied by bob: not during docking") != std::string::npos);
  CHECK(Due(t, kT0 + absl::Hours(2), ch).empty());
  absl::Status late = t.Decide("a", "carol", "carol", true, "", kT0 + absl::Minutes(2), ch);
  CHECK(late.message().find("already denied by bob") != absl::string_view::npos);
}

TEST_CASE("no decision within the approval's time ends it expired, never sent", "[station][approvals]") {
  CommandTable t;
  Changes ch;
  t.Add(Held("a", absl::Minutes(10)), kT0);
  CHECK(t.NextDue() == kT0 + absl::Minutes(10));
  CHECK(Due(t, kT0 + absl::Minutes(9), ch).empty());
  CHECK(StateOf(t, "a") == proto::STATE_AWAITING_APPROVAL);
  CHECK(Due(t, kT0 + absl::Minutes(10), ch).empty());
  CHECK(StateOf(t, "a") == proto::STATE_EXPIRED);
  CHECK(t.Find("a")->result().error().find("not approved in time") != std::string::npos);
  CHECK(absl::IsFailedPrecondition(t.Decide("a", "bob", "bob", true, "", kT0 + absl::Minutes(11), ch)));
}

TEST_CASE("cancel ends a command awaiting approval, and its node is never told", "[station][approvals]") {
  CommandTable t;
  Changes ch;
  t.Add(Held("a"), kT0);
  absl::StatusOr<bool> asked = t.Stop("a", "carol", kT0 + absl::Minutes(1), ch);
  REQUIRE(asked.ok());
  CHECK_FALSE(*asked);
  CHECK(ch.kills.empty());
  CHECK(StateOf(t, "a") == proto::STATE_CANCELED);
}

TEST_CASE("after a restart a held command stays held and an exclusive one takes no slot",
          "[station][approvals]") {
  CommandTable t;
  Changes ch;
  t.Add(Held("a", absl::Hours(1), /*exclusive=*/true), kT0, /*fresh=*/false);
  CHECK(t.SlotHolder("ship1").empty());
  CHECK(Due(t, kT0, ch).empty());
  REQUIRE(t.Decide("a", "bob", "bob", true, "", kT0 + absl::Minutes(1), ch).ok());
  CHECK(Due(t, kT0 + absl::Minutes(1), ch) == std::vector<std::string>{"a"});
  CHECK(t.SlotHolder("ship1") == "a");
}

TEST_CASE("approval rules match per node and group, in the ACL's syntax", "[station][approvals]") {
  AccessRules rules;
  rules.DefineGroup("radar", {"ship1"});
  rules.SetPolicyRules(AccessRules::Policy::kApproval, "@radar", {"exec:systemctl restart *"});
  rules.SetPolicyRules(AccessRules::Policy::kApproval, "ship2", {"reboot"});
  proto::Envelope restart;
  restart.set_method("exec");
  restart.add_argv("systemctl");
  restart.add_argv("restart");
  restart.add_argv("engine-control");
  proto::Envelope status = restart;
  status.set_argv(1, "status");
  proto::Envelope reboot;
  reboot.set_method("reboot");
  CHECK(rules.PolicyRuleFor(AccessRules::Policy::kApproval, "ship1", restart) == "@radar exec:systemctl restart *");
  CHECK(rules.PolicyRuleFor(AccessRules::Policy::kApproval, "ship1", status).empty());
  CHECK(rules.PolicyRuleFor(AccessRules::Policy::kApproval, "ship1", reboot).empty());
  CHECK(rules.PolicyRuleFor(AccessRules::Policy::kApproval, "ship2", reboot) == "ship2 reboot");
  CHECK(rules.PolicyRuleFor(AccessRules::Policy::kApproval, "ship3", restart).empty());
  // Kept as a setting and read back.
  auto [key, value] = AccessRules::PolicySetting(AccessRules::Policy::kApproval, "@radar", {"exec:systemctl restart *"});
  AccessRules loaded;
  REQUIRE(loaded.Load({{key, value}, AccessRules::GroupSetting("radar", {"ship1"})}).ok());
  CHECK(loaded.PolicyRuleFor(AccessRules::Policy::kApproval, "ship1", restart) == "@radar exec:systemctl restart *");
  // Cleared.
  rules.SetPolicyRules(AccessRules::Policy::kApproval, "@radar", {});
  CHECK(rules.PolicyRuleFor(AccessRules::Policy::kApproval, "ship1", restart).empty());
  // Exclusive rules are apart from approval rules, and kept apart too.
  rules.SetPolicyRules(AccessRules::Policy::kExclusive, "@radar", {"exec:systemctl restart *"});
  CHECK(rules.PolicyRuleFor(AccessRules::Policy::kExclusive, "ship1", restart) == "@radar exec:systemctl restart *");
  CHECK(rules.PolicyRuleFor(AccessRules::Policy::kApproval, "ship1", restart).empty());
  auto [xkey, xvalue] = AccessRules::PolicySetting(AccessRules::Policy::kExclusive, "ship2", {"reboot"});
  CHECK(xkey == "exclusive:ship2");
  AccessRules both;
  REQUIRE(both.Load({{key, value}, {xkey, xvalue}, AccessRules::GroupSetting("radar", {"ship1"})}).ok());
  CHECK(both.PolicyRuleFor(AccessRules::Policy::kExclusive, "ship2", reboot) == "ship2 reboot");
  CHECK(both.PolicyRuleFor(AccessRules::Policy::kApproval, "ship2", reboot).empty());
  CHECK(both.PolicyRuleFor(AccessRules::Policy::kExclusive, "ship1", restart).empty());
}

}  // namespace
}  // namespace steward::station
