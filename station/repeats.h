// Repeats: operator requests that create something (submit, retry, launch) are done
// once per request envelope. An operator's client repeats a request whose answer was
// lost (the active station died after committing, an HA takeover: ctl/client.h) with
// the same envelope: the same id, the same signature. The first one records in the
// ledger, in the transaction that creates its commands, which request it made and its
// reply (ledger schema step 10, replicated like every ledger table); a repeat of the same
// envelope id by the same operator is answered from that record and creates nothing. A
// repeat arriving while the first is still being done (its client timed out, its
// answer is still coming) gets the first one's answer when it is sent.
//
// A repeat must ask for what the first one asked: the same id with another request (an
// HTTP client that used its Idempotency-Key again for another body; a client's bug) is
// refused, and nothing is done.
//
//   Repeats::Begun b = repeats.Begin(call, Repeats::Digest(request));
//   switch (b.what) {
//     case Repeats::kJoined: return;                    // answered with the first one
//     case Repeats::kOther: return Reject(call, b.why);  // the id was used for another request
//     case Repeats::kStored: return AnswerFrom(b.first, b.stored);
//     case Repeats::kNew: ...do it, answering b.first, with Repeats::Record(...) in its write
//   }
//
// Thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "station/core.h"
#include "station/ledger/store.h"
#include "station/rpc.h"

namespace steward::station {

class Repeats {
 public:
  explicit Repeats(Core& core) : core_(core) {}

  struct Begun {
    enum What { kNew, kStored, kJoined, kOther } what = kNew;
    // The call to answer (kNew, kStored): its answers also go to the repeats that arrive
    // before it is answered.
    Call first;
    // kStored: what was recorded: the request id and the reply's bytes.
    std::string request_id;
    std::string stored;
    // kOther: why the call is refused.
    std::string why;
  };
  // Digest is what a request asks for: SHA-256 of it serialized deterministically.
  static std::string Digest(const google::protobuf::Message& request);
  // Where Begin finds a repeat of a request that was done before.
  enum class Lookup {
    // Begin reads the ledger's record.
    kBefore,
    // Begin does not read the ledger: the request's Record write finds the record and
    // fails with IsRecorded, and its caller answers from Recorded. A caller that
    // refuses the request before that write asks Recorded first: the refusal of a
    // repeat whose first try was done would say that nothing was done. This spares each
    // submit a ledger read (a tenth of the station's CPU per durable command).
    kAtWrite,
  };
  // Begin looks `call` up; `digest` is its request's Digest. A ledger read that fails
  // is an error: nothing is done.
  absl::StatusOr<Begun> Begin(const Call& call, std::string digest, Lookup lookup = Lookup::kBefore)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Recorded reads the ledger's record of `first` (Begun::first of a kNew): kStored
  // with it, kOther when it asked for another request, kNew when there is none.
  absl::StatusOr<Begun> Recorded(const Call& first);
  // Whether a write failed because Record found the request recorded already.
  static bool IsRecorded(const absl::Status& st);

  // Record is the ledger write that says `call` (of `method`, asking for its
  // repeat_digest) made request `request_id` and was answered `reply` (a serialized
  // reply message): in the transaction that creates what it made, before its other
  // writes. When the ledger holds a record of `call` already, it writes nothing and
  // fails (IsRecorded), and so do the writes after it in the same operation. That
  // failure wrote nothing (ledger::Store::WroteNothing): run first, it leaves the rest
  // of its group to commit.
  static ledger::Store::Op Record(const Call& call, std::string request_id, std::string reply);
  // How long a request is known as done: a client repeats within seconds or minutes
  // (its retry budget, a takeover), not days.
  static constexpr absl::Duration kWindow = absl::Hours(24);
  // PruneBefore drops the records of requests older than `before_ms` (the dispatcher's
  // housekeeping, with the events').
  static ledger::Store::Op PruneBefore(int64_t before_ms);

 private:
  static std::string Key(const Call& call) { return call.op() + '\0' + call.id(); }
  void Deliver(const Call& call, const proto::Ack& ack);

  Core& core_;
  absl::Mutex mu_;
  // Requests being done, by Key: what they ask for, and the repeats that arrived meanwhile.
  struct Doing {
    std::string digest;
    std::vector<Call> joined;
  };
  std::map<std::string, Doing> doing_ ABSL_GUARDED_BY(mu_);
  static std::string Other(const Call& call);
};

}  // namespace steward::station
