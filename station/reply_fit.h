// Every reply of the station fits one NATS message (the broker's max_payload). Replies
// carrying command states make room by cutting outputs (flagged truncated; the ledger
// keeps them whole) and, where the caller allows it, by dropping trailing rows.
#pragma once

#include <nats/nats.h>

#include <cstddef>

#include "proto/steward.pb.h"

namespace steward::station {

// Largest reply the station publishes on `nc` (its max payload, less room for the
// ACK fields around the body).
size_t ReplyLimit(natsConnection* nc);

// A list's reply bodies up to this size stay in it when it must be cut (FitStates).
inline constexpr size_t kListedPayload = 1024;

// Makes `states` fit `limit` bytes: caps stdout and stderr at the largest size that
// fits, flagging what it cut as truncated (small outputs stay whole), then, with
// `may_drop` (a list), leaves out reply bodies (Ack.payload) over kListedPayload and
// removes trailing states. States too large even without outputs first
// lose their commands' arguments, payloads and shell options. Returns whether it
// removed any state.
bool FitStates(google::protobuf::RepeatedPtrField<proto::CommandState>* states, size_t limit,
               bool may_drop);

// Removes trailing states until the rest fit `limit` whole by FitStates's measure (it
// then cuts nothing), keeping at least one. For answers the caller collects over
// several replies (a fan-out's waits): a row that does not fit comes whole in the
// next one instead of every row losing its output. Returns whether it removed any.
bool DropToFitWhole(google::protobuf::RepeatedPtrField<proto::CommandState>* states, size_t limit);

}  // namespace steward::station
