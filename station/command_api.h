// CommandApi: what operators do with commands. submit (to nodes, a list, or every
// node heard from; optionally waiting for the results in the same round trip), wait
// (for all or any of a list of ids) and cancel (any command not finished: see
// CommandTable::Stop; audited).
//
// A submit is answered only once its commands are in the ledger; a cancel once the
// cancellations are. A repeated submit or retry (the same request envelope, its answer
// lost) makes nothing and gets the first one's answer (station/repeats.h). A repeated
// cancel is harmless (a command canceled already is refused, nothing changes).
#pragma once

#include "station/core.h"
#include "station/repeats.h"
#include "station/rpc.h"

namespace steward::station {

// What is wrong with a command's control policy as an operator asked for it (send, launch).
absl::Status CheckControl(const proto::ControlPolicy& p);

class CommandApi {
 public:
  CommandApi(Core& core, Rpc& rpc);

 private:
  // Submit and Retry make commands once per request envelope (station/repeats.h): a
  // repeat is answered as the first one was (a submit's wait waits again) and makes none.
  void Submit(const Call& call, proto::SubmitRequest req);
  // FromRecord answers a submit that repeats one that was done (Repeats::Recorded) as
  // the first was answered, or refuses it when it asked for another request; false
  // when there is no record of it.
  bool FromRecord(const Call& call, int64_t wait_ms);
  // Answer answers a submit: at once, or once its commands ended or `wait_ms` passed.
  // `gathered`: the requester takes the answer in a ReplyBundle (Waiter::gathered).
  void Answer(const Call& call, const proto::SubmitReply& out, int64_t wait_ms, bool gathered = false);
  void Wait(const Call& call, proto::WaitRequest req);
  void Cancel(const Call& call, proto::CancelRequest req);
  void Retry(const Call& call, proto::RetryRequest req);

  Core& core_;
  Rpc& rpc_;
  Repeats repeats_;
};

}  // namespace steward::station
