// EventWriter: event envelopes for the station, sealed with the node key.
#include "agent/events.h"

#include <utility>

#include "common/log.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "subjects/subject.h"

namespace steward::agent {

EventWriter::EventWriter(std::string node, std::string station, std::string instance_id,
                         std::optional<signing::KeyPair> key)
    : node_(std::move(node)),
      station_(std::move(station)),
      instance_id_(std::move(instance_id)),
      key_(std::move(key)) {}

absl::StatusOr<OutboxItem> EventWriter::Make(absl::string_view method, absl::string_view domain,
                                             std::string payload,
                                             const std::string& request_id) const {
  STEWARD_ASSIGN_OR_RETURN(subjects::Subject subject,
                           subjects::Make(station_, subjects::Kind::kEvent, method, domain));
  proto::Envelope ev = NewEnvelope(node_, station_, proto::KIND_EVENT, method, domain);
  if (!request_id.empty()) ev.set_request_id(request_id);
  ev.set_payload(std::move(payload));
  Seal(ev);
  return OutboxItem{ev.id(), subject.ToString(), ev.SerializeAsString()};
}

void EventWriter::SealAck(proto::Ack& ack) const {
  ack.set_instance_id(instance_id_);
  if (!key_.has_value()) return;
  if (absl::Status st = signing::SignAck(ack, *key_); !st.ok()) {
    STEWARD_LOG_ERROR("signing the ACK of {}: {}", ack.envelope_id(), st.ToString());
  }
}

void EventWriter::Seal(proto::Envelope& env) const {
  if (!key_.has_value()) return;
  if (absl::Status st = signing::SignEnvelope(env, *key_); !st.ok()) {
    STEWARD_LOG_ERROR("signing {}: {}", env.id(), st.ToString());
  }
}

}  // namespace steward::agent
