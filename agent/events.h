// EventWriter: the events this node sends the station. Each is an envelope of kind
// event from this node to the station, signed with the node key when there is one,
// on the subject <station>.event.<method>.<domain>. Results, errorlogs, hellos and
// syslog batches are all made here.
//
//   EventWriter events("ship1", "station", node_key);
//   absl::StatusOr<OutboxItem> item = events.Make(kEventHello, "agent", hello.SerializeAsString());
//
// Thread-safe (immutable).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/outbox.h"
#include "common/signing.h"
#include "proto/steward.pb.h"

namespace steward::agent {

class EventWriter {
 public:
  // `inbox`: the request pump inbox (RequestPump::AddInbox) the station's answers to
  // these events come to; 0, the pump's own, for an agent.
  EventWriter(std::string node, std::string station, std::string instance_id,
              std::optional<signing::KeyPair> key, uint32_t inbox = 0);

  const std::string& node() const { return node_; }
  const std::string& instance_id() const { return instance_id_; }
  const std::string& station() const { return station_; }

  // A sealed event `method`.`domain` carrying `payload` (and the request id it answers,
  // if any), as an outbox item: envelope id, subject, bytes. InvalidArgument for a
  // domain that is not a subject token.
  absl::StatusOr<OutboxItem> Make(absl::string_view method, absl::string_view domain,
                                  std::string payload, const std::string& request_id = "") const;

  // Signs `env` with the node key, when there is one. A failure is logged and the
  // envelope goes unsigned (the station then refuses it where it requires signatures).
  void Seal(proto::Envelope& env) const;
  // SealAck names this installation in `ack` and signs it with the node key, when
  // there is one (a station with keys believes no unsigned ACK).
  void SealAck(proto::Ack& ack) const;
  // Names this installation in `ack` without signing it: for an ACK that goes in a
  // batch's answer whose one signature covers it (BatchAnswer).
  void NameAck(proto::Ack& ack) const { ack.set_instance_id(instance_id_); }

 private:
  const std::string node_;
  const std::string station_;
  const std::string instance_id_;
  const std::optional<signing::KeyPair> key_;
  const uint32_t inbox_;
};

}  // namespace steward::agent
