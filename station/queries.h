// Queries: what operators ask the station about, answered from memory and the ledger
// (read outside the model lock): nodes and one node's details with its recent
// commands, show (commands by id, or every command of a fan-out), history, and logs.
// Every answer fits one NATS message (reply_fit).
#pragma once

#include <string>
#include <vector>

#include "station/core.h"
#include "station/rpc.h"

namespace steward::station {

class Queries {
 public:
  Queries(Core& core, Rpc& rpc);

  // Overlay gives ledger rows the state memory holds (a "sent" or "running" the ledger
  // gets with a later write), so every answer agrees with `show`.
  static void Overlay(Core& core, std::vector<proto::CommandState>& rows);
  // The station's own health (its ledger's writes), as every node listing and `station
  // status` say it.
  static proto::StationStatus Health(const std::string& name, const ledger::Store& store);

 private:
  void Nodes(const Call& call, proto::NodesRequest req);
  void Show(const Call& call, proto::ShowRequest req);
  void History(const Call& call, proto::HistoryRequest req);
  void Logs(const Call& call, proto::LogsRequest req);

  Core& core_;
  Rpc& rpc_;
};

}  // namespace steward::station
