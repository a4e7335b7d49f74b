// CommandApi: what operators do with commands. submit (to nodes, a list, or every
// node heard from; optionally waiting for the results in the same round trip), wait
// (for all or any of a list of ids) and cancel (any command not finished: see
// CommandTable::Stop; audited).
//
// A submit is answered only once its commands are in the ledger; a cancel once the
// cancellations are.
#pragma once

#include "station/core.h"
#include "station/rpc.h"

namespace steward::station {

// What is wrong with a command's control policy as an operator asked for it (send, launch).
absl::Status CheckControl(const proto::ControlPolicy& p);

class CommandApi {
 public:
  CommandApi(Core& core, Rpc& rpc);

 private:
  void Submit(const Call& call, proto::SubmitRequest req);
  void Wait(const Call& call, proto::WaitRequest req);
  void Cancel(const Call& call, proto::CancelRequest req);
  void Retry(const Call& call, proto::RetryRequest req);

  Core& core_;
  Rpc& rpc_;
};

}  // namespace steward::station
