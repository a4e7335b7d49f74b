// Security: the station's side of trust. Node keys (a node announces its key in its
// hellos; an operator accepts it, pinning it; from then on the node's events count only
// when they verify against that key), the access rules each node enforces (per node
// and per group, pushed to the nodes as signed setacl commands through the ledger), and
// the audit (who sent what).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "station/core.h"
#include "station/rpc.h"

namespace steward::station {

class Security {
 public:
  Security(Core& core, Rpc& rpc);

  // CheckEvent checks a node's event against its pinned key (OK without a station key:
  // development mode). A node not accepted yet gets Unavailable: it keeps the event and
  // offers it again until an operator accepts it.
  static absl::Status CheckEvent(const Core& core, const NodeTable::Node* node,
                                 const proto::Envelope& ev);
  // What a hello may do, in secure mode. Its signature must verify against the key it
  // announces (the sender holds that key), and then:
  //  - the node's pinned key: it is heard from (kHeard);
  //  - a node enrolled with a key (nodes/<name>/node.pub): that key is pinned at once
  //    (kHeard), any other key is refused (kRefused, counted and audited);
  //  - no key pinned yet: the announced key becomes the node's pending key and the node
  //    is "pending" (kPending: never online, never a target, nothing it signs counts)
  //    until an operator accepts it; a name the station did not enrol is pending too;
  //  - a key other than the pinned one: a pending key change (kPending; counted and
  //    audited; the pinned key stays, and the node stays as it was).
  // In development mode (no station key) every hello is heard.
  enum class HelloVerdict { kHeard, kPending, kRefused };
  struct HelloCheck {
    HelloVerdict verdict = HelloVerdict::kHeard;
    std::string why;  // for kPending and kRefused: what the node is told
    bool logged = false;  // said in the log already (rate-limited there)
  };
  // At most this many rows neither enrolled nor believed (pending or unknown) are made
  // by hellos: past it, a hello from another name the station did not enrol is refused
  // and makes no row, so a flood of forged hellos (one node's credentials, any names)
  // cannot fill the node table and the ledger.
  static constexpr size_t kMaxUnenrolledPending = 1000;
  // Whether a hello `ev` from a name with no row yet may make one (secure mode): it must
  // verify against the key it announces (else kRefused, and no row, no audit), and past
  // kMaxUnenrolledPending only an enrolled name may. Refusals are logged here, rate-limited.
  static HelloCheck CheckNewName(Core& core, const proto::Envelope& ev, const proto::Hello& hello)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core.model.mu);
  static HelloCheck CheckHello(Core& core, NodeTable::Node& node, const proto::Envelope& ev,
                               const proto::Hello& hello) ABSL_EXCLUSIVE_LOCKS_REQUIRED(core.model.mu);
  // Whether the station enrolled `node` (issued its credentials), and the node key
  // made at enrolment ("" when none).
  static bool Enrolled(const Core& core, const std::string& node);
  static std::string EnrolledKey(const Core& core, const std::string& node);

 private:
  void Accept(const Call& call, proto::AcceptRequest req);
  void Acl(const Call& call, proto::AclRequest req);
  void Audit(const Call& call, proto::AuditRequest req);
  // An operator makes a member its group's active one (AclRequest.move_active).
  void MoveActive(const Call& call, proto::AclRequest req);
  // Queues, for each node in `nodes`, its effective rules on its row and a setacl
  // command carrying them (returned, to be submitted).
  std::vector<proto::CommandState> PushLocked(const std::set<std::string>& nodes, std::string* error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);

  Core& core_;
  Rpc& rpc_;
};

}  // namespace steward::station
