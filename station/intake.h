// Intake: what nodes send the station, on <station>.event.<method>.<domain>: hellos
// (start-up and heartbeats), command results, error-kernel decisions (errorlog) and
// syslog batches. Each is answered "stored" only once the ledger holds it; anything
// else is answered with the reason (REJECTED: do not send it again; ERROR: not now,
// keep it and offer it again).
#pragma once

#include "common/nats.h"
#include "station/core.h"

namespace steward::station {

class Intake {
 public:
  explicit Intake(Core& core) : core_(core) {}

  // Serve answers one message from <station>.event.*.*.
  void Serve(nats::MsgPtr msg);

 private:
  void Hello(const proto::Envelope& ev, const std::string& reply);
  void ErrorLog(const proto::Envelope& ev, const std::string& reply);
  void Result(const proto::Envelope& ev, const std::string& reply);
  void NoteConfigPushed(const std::string& cid, const std::string& from, const proto::Ack& ack)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);
  void Syslog(const proto::Envelope& ev, const std::string& reply);
  // Answers for event `id`.
  proto::Ack Stored(const std::string& id) const;
  proto::Ack Refused(const std::string& id, absl::string_view why) const;
  proto::Ack NotNow(const std::string& id, absl::string_view why) const;

  Core& core_;
};

}  // namespace steward::station
