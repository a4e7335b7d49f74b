#include "station/security.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "common/time_text.h"
#include "station/ledger/surfaces.h"
#include "station/operations.h"
#include "station/reply_fit.h"
#include "subjects/subject.h"

namespace steward::station {

Security::Security(Core& core, Rpc& rpc) : core_(core), rpc_(rpc) {
  rpc.Handle<proto::AcceptRequest>(kStationAccept, [this](const Call& c, proto::AcceptRequest r) {
    Accept(c, std::move(r));
  });
  rpc.Handle<proto::AclRequest>(kStationAcl, [this](const Call& c, proto::AclRequest r) {
    Acl(c, std::move(r));
  });
  rpc.Handle<proto::AuditRequest>(kStationAudit, [this](const Call& c, proto::AuditRequest r) {
    Audit(c, std::move(r));
  });
}

absl::Status Security::CheckEvent(const Core& core, const NodeTable::Node* node,
                                  const proto::Envelope& ev) {
  if (!core.options().key.has_value()) return absl::OkStatus();
  if (node == nullptr || node->info.public_key().empty()) {
    return absl::UnavailableError(absl::StrCat("node ", ev.from_node(), " is not accepted yet (stewardctl accept ",
                                               ev.from_node(), ")"));
  }
  absl::Status st = signing::VerifyEnvelopeWith(ev, node->info.public_key());
  if (!st.ok() && !node->info.pending_key().empty() && ev.signer() == signing::KeyId(node->info.pending_key())) {
    // Signed by the key of a pending key change (a reinstalled unit): not believed now,
    // but kept by the node until an operator decides about that key.
    return absl::UnavailableError(absl::StrCat("the key of ", ev.from_node(), " changed to ", ev.signer(),
                                               ": not accepted yet"));
  }
  return st;
}

namespace {

// A decision the station took about a node's credentials, in the audit (operator
// "station"). Refusals repeat with every hello of the sender: recorded at the 1st, 2nd,
// 4th, 8th ... (the count says how many), so a flood of forged hellos cannot fill the
// ledger and none goes unseen.
void AuditNode(Core& core, const std::string& node, const std::string& action, const std::string& detail,
               uint64_t count = 1) {
  if ((count & (count - 1)) != 0) return;
  Call call;
  call.env.set_operator_("station");
  call.via = "nats";
  RecordAction(core, call, action, node, count > 1 ? absl::StrCat(detail, " (", count, " times)") : detail,
               "refused");
}

}  // namespace

bool Security::Enrolled(const Core& core, const std::string& node) {
  if (core.options().keys_dir.empty()) return false;
  std::error_code ec;
  return std::filesystem::is_directory(std::filesystem::path(core.options().keys_dir) / "nodes" / node, ec);
}

std::string Security::EnrolledKey(const Core& core, const std::string& node) {
  if (core.options().keys_dir.empty()) return "";
  const std::string path = (std::filesystem::path(core.options().keys_dir) / "nodes" / node / "node.pub").string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return "";
  absl::StatusOr<std::string> key = signing::LoadPublicKey(path);
  if (!key.ok()) {
    STEWARD_LOG_ERROR("enrolled key of {}: {}", node, key.status().ToString());
    return "";
  }
  return *key;
}

Security::HelloCheck Security::CheckNewName(Core& core, const proto::Envelope& ev, const proto::Hello& hello) {
  const std::string& name = ev.from_node();
  if (!core.options().key.has_value() || core.model.nodes.Find(name) != nullptr) return {};
  // Logged per reason: the first, then once per thousand.
  static std::atomic<uint64_t> unverified{0}, over_cap{0};
  const auto log = [&](std::atomic<uint64_t>& logged, const std::string& why) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    const uint64_t n = ++core.counters.refused_hellos;
    if (const uint64_t k = ++logged; k == 1 || k % 1000 == 0) {
      STEWARD_LOG_WARNING("hello from {} (a name with no row) refused: {} ({} refused hellos so far; this is "
                          "logged once per thousand)",
                          name, why, n);
    }
  };
  // A stranger's hello that does not verify against its own key leaves nothing behind.
  if (absl::Status st = signing::VerifyEnvelopeWith(ev, hello.public_key()); !st.ok()) {
    log(unverified, std::string(st.message()));
    return {HelloVerdict::kRefused, absl::StrCat("hello refused: ", st.message()), /*logged=*/true};
  }
  if (core.model.nodes.Unbelieved() < kMaxUnenrolledPending || Enrolled(core, name)) return {};
  log(over_cap, absl::StrCat(kMaxUnenrolledPending, " names the station did not enrol are pending or unknown already; a "
                   "flood of forged hellos? (stewardctl nodes --pending, forget)"));
  return {HelloVerdict::kRefused,
          absl::StrCat("hello refused: ", kMaxUnenrolledPending, " names the station did not enrol are pending "
                       "already; an operator enrols this one (stewardctl enroll ", name,
                       ") or forgets pending ones"),
          /*logged=*/true};
}

Security::HelloCheck Security::CheckHello(Core& core, NodeTable::Node& node, const proto::Envelope& ev,
                                          const proto::Hello& hello) {
  if (!core.options().key.has_value()) return {};
  const std::string& name = ev.from_node();
  const std::string& announced = hello.public_key();
  auto refuse = [&](std::string why) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    node.info.set_refused_hellos(node.info.refused_hellos() + 1);
    core.model.nodes.Changed(name);
    ++core.counters.refused_hellos;
    AuditNode(core, name, "hello refused", why, node.info.refused_hellos());
    return HelloCheck{HelloVerdict::kRefused, std::move(why)};
  };
  // The sender holds the key it announces.
  if (absl::Status st = signing::VerifyEnvelopeWith(ev, announced); !st.ok()) {
    return refuse(absl::StrCat("hello refused: ", st.message()));
  }
  const std::string& pinned = node.info.public_key();
  if (!pinned.empty() && announced == pinned) return {};
  // A node with no key yet: when it was last heard, though not believed (what `nodes
  // --pending` shows). A pinned node's is left alone: whoever announces another key
  // for it says nothing about the node itself.
  if (pinned.empty()) node.info.set_last_heard_unix_ms(NowUnixMillis());
  if (pinned.empty()) {
    node.info.set_enrolled(Enrolled(core, name));
    const std::string enrolled_key = EnrolledKey(core, name);
    if (!enrolled_key.empty()) {
      if (announced != enrolled_key) {
        STEWARD_LOG_WARNING("hello from {} refused: key {} is not the one enrolled for it ({})", name,
                            signing::KeyId(announced), signing::KeyId(enrolled_key));
        return refuse(absl::StrCat("hello refused: key ", signing::KeyId(announced),
                                   " is not the key enrolled for ", name));
      }
      node.info.set_public_key(announced);  // made at enrolment: no extra step
      node.info.clear_pending_key();
      core.model.nodes.Changed(name);
      core.store().Write(ledger::Store::PutNode(node.info));
      STEWARD_LOG_INFO("node {}: key {} pinned (made at enrolment)", name, signing::KeyId(announced));
      return {};
    }
  }
  if (node.info.pending_key() != announced) {
    node.info.set_pending_keys_seen(node.info.pending_keys_seen() + 1);
    node.info.set_pending_key(announced);
    if (pinned.empty()) {
      AuditNode(core, name, "key pending",
                absl::StrCat("announced key ", signing::KeyId(announced),
                             node.info.enrolled() ? "" : " (a name the station did not enrol)"));
      STEWARD_LOG_WARNING("node {} announced key {}{}: accept it with `stewardctl accept {}{}`", name,
                          signing::KeyId(announced), node.info.enrolled() ? "" : " (a name the station did not enrol)",
                          name, node.info.enrolled() ? "" : absl::StrCat(" --key ", signing::KeyId(announced)));
    } else {
      node.info.set_refused_hellos(node.info.refused_hellos() + 1);
      ++core.counters.refused_hellos;
      AuditNode(core, name, "key change pending",
                absl::StrCat("announced key ", signing::KeyId(announced), ", not its pinned key ",
                             signing::KeyId(pinned)));
      STEWARD_LOG_WARNING("node {} announced key {}, not its pinned key {}: a reinstalled unit or someone "
                          "else's credentials; nothing it signs counts until `stewardctl accept {} --key {}`",
                          name, signing::KeyId(announced), signing::KeyId(pinned), name, signing::KeyId(announced));
    }
  }
  if (pinned.empty() && node.info.status() != proto::NODE_PENDING) node.info.set_status(proto::NODE_PENDING);
  core.model.nodes.Changed(name);
  return {HelloVerdict::kPending,
          pinned.empty() ? absl::StrCat("node ", name, " is pending: its key ", signing::KeyId(announced),
                                        " is not accepted yet")
                         : absl::StrCat("key ", signing::KeyId(announced), " is not the pinned key of ", name,
                                        ": pending an operator's acceptance")};
}

void Security::Accept(const Call& call, proto::AcceptRequest req) {
  proto::AclReply out;
  std::string refused;
  {
    absl::MutexLock lock(&core_.model.mu);
    NodeTable::Node* node = core_.model.nodes.Find(req.node());
    if (node == nullptr || node->info.pending_key().empty()) {
      refused = absl::StrCat("node ", req.node(), " has announced no key to accept");
    } else {
      proto::NodeInfo& info = node->info;
      const std::string announced = signing::KeyId(info.pending_key());
      const std::string pinned = info.public_key().empty() ? "" : signing::KeyId(info.public_key());
      if (!req.key().empty() && req.key() != announced) {
        refused = absl::StrCat("node ", req.node(), " announced key ", announced, ", not ", req.key(),
                               ": nothing was pinned");
      } else if (req.key().empty() && !pinned.empty()) {
        refused = absl::StrCat("node ", req.node(), " announced a new key ", announced, " (its pinned key is ",
                               pinned, "): if the unit was reinstalled, check the key its agent logs at start ",
                               "and accept it with --key ", announced);
      } else if (req.key().empty() && info.pending_keys_seen() > 1) {
        refused = absl::StrCat("node ", req.node(), " announced ", info.pending_keys_seen(),
                               " different keys (someone else's credentials?): check the key its agent logs ",
                               "at start and accept it with --key (the latest is ", announced, ")");
      } else if (req.key().empty() && !info.enrolled()) {
        refused = absl::StrCat("node ", req.node(), " was not enrolled by this station: check the key its agent ",
                               "logs at start and accept it with --key ", announced);
      } else {
        info.set_public_key(info.pending_key());
        info.clear_pending_key();
        info.set_pending_keys_seen(0);
        if (info.status() == proto::NODE_PENDING) {
          // Believed from its next hello on, which brings it online.
          info.set_status(proto::NODE_OFFLINE);
          info.set_since_unix_ms(NowUnixMillis());
        }
        core_.model.commands.Unpark(req.node(), absl::Now());  // its waiting commands go out now
        if (core_.model.commands.TakeSooner()) core_.model.wake = true;
        STEWARD_LOG_INFO("node {} accepted with key {}{} by {}", req.node(), announced,
                         pinned.empty() ? "" : absl::StrCat(" (replacing ", pinned, ")"), call.op());
        out.add_lines(absl::StrCat("accepted ", req.node(), " with key ", announced,
                                   pinned.empty() ? "" : absl::StrCat(", replacing ", pinned)));
        core_.store().Write(ledger::Store::PutNode(info));
        RecordAction(core_, call, "accept", req.node(),
                     absl::StrCat("key ", announced, pinned.empty() ? "" : absl::StrCat(" replacing ", pinned)));
      }
    }
  }
  if (!refused.empty()) {
    RecordAction(core_, call, "accept", req.node(), req.key().empty() ? "" : absl::StrCat("key ", req.key()),
                 refused);
    return rpc_.Reject(call, refused);
  }
  rpc_.OkWhenStored(call, out);
}

std::vector<proto::CommandState> Security::PushLocked(const std::set<std::string>& nodes, std::string* error) {
  std::vector<proto::CommandState> pushes;
  for (const std::string& name : nodes) {
    std::vector<std::string> rules = core_.model.access.Effective(name);
    NodeTable::Node& n = core_.model.nodes.Get(name);
    n.info.mutable_acl()->Assign(rules.begin(), rules.end());
    core_.store().Write(ledger::Store::PutNode(n.info));
    proto::AclDoc doc;
    doc.mutable_rules()->Assign(rules.begin(), rules.end());
    doc.set_version_unix_ms(NowUnixMillis());
    proto::Envelope tmpl;
    tmpl.set_method(kMethodSetAcl);
    tmpl.set_domain("security");
    tmpl.set_payload(doc.SerializeAsString());
    absl::StatusOr<proto::CommandState> c =
        core_.NewCommand(name, tmpl, NewId(), "station", core_.model.nodes.Instance(name));
    if (!c.ok()) {
      *error = std::string(c.status().message());
      return {};
    }
    pushes.push_back(*std::move(c));
  }
  return pushes;
}

void Security::Acl(const Call& call, proto::AclRequest req) {
  const bool group = absl::StartsWith(req.target(), "@");
  if (absl::Status st = subjects::ValidateToken(group ? req.target().substr(1) : req.target()); !st.ok()) {
    return rpc_.Reject(call, st.message());
  }
  for (const std::string& r : req.rules()) {
    if (absl::Status st = subjects::ValidateToken(r.substr(0, r.find(':'))); !st.ok()) {
      return rpc_.Reject(call, absl::StrCat("rule \"", r, "\": ", st.message()));
    }
  }
  for (const std::string& m : req.members()) {
    if (absl::Status st = subjects::ValidateToken(m); !st.ok()) return rpc_.Reject(call, st.message());
  }
  if (req.define_group() && group) return rpc_.Reject(call, "name the group without '@'");
  if (absl::Status st = ActiveMembers::ValidatePolicy(req.active_policy()); !st.ok()) {
    return rpc_.Reject(call, st.message());
  }
  if (!req.active_policy().empty() && !req.define_group()) return rpc_.Reject(call, "--active goes with group set");
  if (!req.move_active().empty()) return MoveActive(call, std::move(req));
  proto::AclReply out;
  std::vector<proto::CommandState> pushes;
  std::string error;
  {
    absl::MutexLock lock(&core_.model.mu);
    AccessRules& access = core_.model.access;
    std::set<std::string> affected;
    if (req.define_group()) {
      std::vector<std::string> members(req.members().begin(), req.members().end());
      auto [key, value] = AccessRules::GroupSetting(req.target(), members);
      core_.store().Write(ledger::Store::PutSetting(std::move(key), std::move(value)));
      affected = access.DefineGroup(req.target(), std::move(members));
      // The policy is part of the group's definition: set with it, or taken away.
      const int64_t now_ms = NowUnixMillis();
      std::optional<ActiveMembers::Change> c =
          core_.model.active.SetPolicy(req.target(), req.active_policy(), access.Members(req.target()),
                                       core_.OnlineLocked(), now_ms);
      if (!c.has_value() && !req.active_policy().empty()) {
        c = core_.model.active.Recompute(req.target(), access.Members(req.target()), core_.OnlineLocked(), now_ms);
      }
      if (c.has_value()) core_.ActiveChangedLocked(*c, call.op());
      RecordAction(core_, call, "group set", req.target(),
                   absl::StrCat(req.members().empty() ? "(no members)" : absl::StrJoin(req.members(), ","),
                                req.active_policy().empty() ? "" : absl::StrCat(" --active ", req.active_policy())));
    } else if (!req.show()) {
      std::vector<std::string> rules(req.rules().begin(), req.rules().end());
      RecordAction(core_, call, "acl set", req.target(),
                   rules.empty() ? "(none: accepts everything)" : absl::StrJoin(rules, " "));
      auto [key, value] = AccessRules::RulesSetting(req.target(), rules);
      core_.store().Write(ledger::Store::PutSetting(std::move(key), std::move(value)));
      affected = access.SetRules(req.target(), std::move(rules));
    }
    pushes = PushLocked(affected, &error);
    std::vector<std::string> nodes;
    if (group || req.define_group()) {
      const std::string g = group ? req.target().substr(1) : req.target();
      out.add_lines(absl::StrCat("group ", g, ": ", absl::StrJoin(access.Members(g), ", ")));
      out.add_lines(absl::StrCat("rules of @", g, ": ", absl::StrJoin(access.Rules("@" + g), " ")));
      if (const ActiveMembers::State* a = core_.model.active.Find(g)) {
        out.add_lines(absl::StrCat("active member of @", g, " (", a->policy,
                                   "): ", a->active.empty() ? "none yet (no member online)" : a->active, " since ",
                                   UtcTextMs(a->since_ms), ": ", a->reason));
      }
      nodes = access.Members(g);
    } else {
      nodes = {req.target()};
    }
    for (const std::string& n : nodes) {
      const std::vector<std::string> eff = access.Effective(n);
      out.add_lines(absl::StrCat(n, " accepts: ",
                                 eff.empty() && !access.HasOwnRules(n) ? "everything (no ACL set)"
                                                                       : absl::StrJoin(eff, " ")));
    }
  }
  if (!error.empty()) return rpc_.Error(call, error);
  if (pushes.empty()) {
    return rpc_.OkWhenStored(call, out);
  }
  for (const proto::CommandState& c : pushes) {
    out.add_lines(absl::StrCat("sending the ACL to ", c.node(), " as command ", c.id()));
  }
  core_.Submit(std::move(pushes), [this, call, out](absl::Status st) {
    if (!st.ok()) return rpc_.Error(call, absl::StrCat("ledger write failed: ", st.message()));
    rpc_.Ok(call, out);
  });
}

void Security::MoveActive(const Call& call, proto::AclRequest req) {
  const std::string g = absl::StartsWith(req.target(), "@") ? req.target().substr(1) : req.target();
  proto::AclReply out;
  {
    absl::MutexLock lock(&core_.model.mu);
    absl::StatusOr<ActiveMembers::Change> c =
        core_.model.active.Move(g, req.move_active(), core_.model.access.Members(g), call.op(), NowUnixMillis());
    if (!c.ok()) {
      RecordAction(core_, call, "active", "@" + g, req.move_active(), std::string(c.status().message()));
      return rpc_.Reject(call, c.status().message());
    }
    core_.ActiveChangedLocked(*c, call.op());
    out.add_lines(absl::StrCat("active member of @", g, ": ", c->to, c->from.empty() || c->from == c->to
                                                                        ? ""
                                                                        : absl::StrCat(" (was ", c->from, ")")));
  }
  rpc_.OkWhenStored(call, out);
}

void Security::Audit(const Call& call, proto::AuditRequest req) {
  const int limit = std::clamp(req.limit() > 0 ? req.limit() : 50, 1, 10000);
  absl::StatusOr<std::vector<proto::CommandState>> rows =
      core_.store().History(req.node(), proto::STATE_UNSPECIFIED, 100000);
  if (!rows.ok()) return rpc_.Error(call, rows.status().message());
  proto::CommandStates out;
  for (proto::CommandState& c : *rows) {
    if (!req.operator_().empty() && c.command().operator_().find(req.operator_()) == std::string::npos) continue;
    *out.add_commands() = std::move(c);
    if (out.commands_size() >= limit) break;
  }
  absl::StatusOr<std::vector<proto::OperatorAction>> actions =
      ledger::Actions(core_.store(), 0, req.operator_(), req.node(), limit);
  if (!actions.ok()) return rpc_.Error(call, actions.status().message());
  // Actions take at most half of the reply's room, the commands the rest.
  const size_t room = core_.ReplyLimit() / 2;
  size_t used = 0;
  bool cut = false;
  for (proto::OperatorAction& a : *actions) {
    used += a.ByteSizeLong() + 8;  // with the field's tag and length
    if (used > room) {
      cut = true;
      break;
    }
    *out.add_actions() = std::move(a);
  }
  const bool cut_commands = FitStates(out.mutable_commands(), core_.ReplyLimit() - std::min(used, room), true);
  out.set_incomplete(cut || cut_commands);
  rpc_.Ok(call, out);
}

}  // namespace steward::station
