// NodeApi: what operators do with nodes themselves. ping (a live round trip through
// the station to the node's agent) and forget (remove a node from the station's
// tables: a typo, a unit gone for good).
#pragma once

#include "station/core.h"
#include "station/rpc.h"

namespace steward::station {

class NodeApi {
 public:
  NodeApi(Core& core, Rpc& rpc);

 private:
  void Ping(const Call& call, proto::PingRequest req);
  void Forget(const Call& call, proto::ForgetRequest req);
  // Whether the station believes `node` online (its tables, not a probe).
  bool Online(const std::string& node);

  Core& core_;
  Rpc& rpc_;
};

}  // namespace steward::station
