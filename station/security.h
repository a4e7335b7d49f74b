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
  // CheckHello checks a hello's signature: against the pinned key, or (not accepted yet)
  // against the key it announces, which becomes the node's pending key.
  static absl::Status CheckHello(const Core& core, NodeTable::Node& node, const proto::Envelope& ev,
                                 const proto::Hello& hello);

 private:
  void Accept(const Call& call, proto::AcceptRequest req);
  void Acl(const Call& call, proto::AclRequest req);
  void Audit(const Call& call, proto::AuditRequest req);
  // Queues, for each node in `nodes`, its effective rules on its row and a setacl
  // command carrying them (returned, to be submitted).
  std::vector<proto::CommandState> PushLocked(const std::set<std::string>& nodes, std::string* error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);

  Core& core_;
  Rpc& rpc_;
};

}  // namespace steward::station
