// Intake: what nodes send the station, on <station>.event.<method>.<domain>: hellos
// (start-up and heartbeats), command results, error-kernel decisions (errorlog) and
// syslog batches. Each is answered "stored" only once the ledger holds it; anything
// else is answered with the reason (REJECTED: do not send it again; ERROR: not now,
// keep it and offer it again).
#pragma once

#include <functional>
#include <set>
#include <string>

#include "absl/strings/string_view.h"
#include "common/nats.h"
#include "station/core.h"

namespace steward::station {

class Intake {
 public:
  explicit Intake(Core& core) : core_(core) {}
  // A site station stores the events of its own nodes only (station/site.h): another
  // node's is answered "not now", so that it is offered again, to the central station.
  // Before Serve is first called.
  void ServeOnly(std::set<std::string> nodes, std::string site) {
    only_ = std::move(nodes);
    site_ = std::move(site);
  }
  // Whether events of `node` are served here.
  bool Serves(const std::string& node) const { return only_.empty() || only_.count(node) > 0; }

  // How an event is answered: to the node's inbox, or to whoever imports it.
  using Respond = std::function<void(const proto::Ack&)>;

  // Serve answers one message from <station>.event.*.*.
  void Serve(nats::MsgPtr msg);
  // Import takes an event a site station stored while it was in control (its envelope
  // bytes, verbatim, station/site.h) through the same path; `respond` gets what the
  // node would have been answered (once the ledger holds it).
  void Import(absl::string_view bytes, Respond respond);

 private:
  void Handle(const proto::Envelope& ev, const Respond& reply);
  void Hello(const proto::Envelope& ev, const Respond& reply);
  void ErrorLog(const proto::Envelope& ev, const Respond& reply);
  void Result(const proto::Envelope& ev, const Respond& reply);
  void NoteConfigPushed(const std::string& cid, const std::string& from, const proto::Ack& ack)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.model.mu);
  void Syslog(const proto::Envelope& ev, const Respond& reply);
  // Answers for event `id`.
  proto::Ack Stored(const std::string& id) const;
  proto::Ack Refused(const std::string& id, absl::string_view why) const;
  proto::Ack NotNow(const std::string& id, absl::string_view why) const;

  Core& core_;
  std::set<std::string> only_;  // empty: every node's
  std::string site_;
};

}  // namespace steward::station
