// OutputApi: streamed output (issue 13 part 3). Intake hands it the "output" events of
// nodes (RelayOutput): a chunk of a command that runs on the node that sent it is kept
// in the relay (station/output_relay.h), relayed to the command's followers, and put
// on the event feed (the HTTP API's SSE "output" events). Operators call `output`
// (stewardctl watch, send --follow): the chunks held after a number, and with
// `deliver` (an inbox of their own) the later ones as they come, for a lease.
#pragma once

#include "station/core.h"
#include "station/rpc.h"

namespace steward::station {

class OutputApi {
 public:
  OutputApi(Core& core, Rpc& rpc);

 private:
  void Output(const Call& call, proto::OutputRequest req);

  Core& core_;
  Rpc& rpc_;
};

// An "output" event `ev` from a node, already checked (sender, signature): its chunk is
// kept and relayed when its command runs on that node and has not ended; dropped
// otherwise (a late chunk: the result carries its bytes).
void RelayOutput(Core& core, const proto::Envelope& ev);

}  // namespace steward::station
