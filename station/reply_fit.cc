#include "station/reply_fit.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/nats.h"

namespace steward::station {
namespace {

// Bytes a repeated message field element takes besides the message: tag and length.
constexpr size_t kElementOverhead = 6;

size_t StatesBytes(const google::protobuf::RepeatedPtrField<proto::CommandState>& states) {
  size_t total = 0;
  for (const proto::CommandState& s : states) total += s.ByteSizeLong() + kElementOverhead;
  return total;
}

}  // namespace

bool DropToFitWhole(google::protobuf::RepeatedPtrField<proto::CommandState>* states, size_t limit) {
  size_t total = StatesBytes(*states);
  bool dropped = false;
  while (states->size() > 1 && total > limit) {
    total -= states->Get(states->size() - 1).ByteSizeLong() + kElementOverhead;
    states->RemoveLast();
    dropped = true;
  }
  return dropped;
}

size_t ReplyLimit(natsConnection* nc) {
  // Room for the reply's ACK fields around the states.
  return static_cast<size_t>(nats::MaxPayload(nc)) - 1024;
}

bool FitStates(google::protobuf::RepeatedPtrField<proto::CommandState>* states, size_t limit,
               bool may_drop) {
  size_t total = StatesBytes(*states);
  if (total <= limit) return false;
  bool dropped = false;
  if (may_drop) {
    // A list (history, audit) that does not fit leaves out reply bodies over
    // kListedPayload (a copy chunk's bytes, up to 896 KiB each; the ledger keeps them:
    // `show ID`): else a few chunks would push every older row out of the answer.
    for (proto::CommandState& s : *states) {
      if (s.result().payload().size() > kListedPayload) s.mutable_result()->clear_payload();
    }
    total = StatesBytes(*states);
    if (total <= limit) return false;
    // Rows that do not fit even without their outputs go first, so that the rows kept
    // keep what output they can (a long history, a large fan-out's show).
    size_t fixed = 0;  // the rows without outputs, with slack for what capping adds
    for (const proto::CommandState& s : *states) {
      fixed += s.ByteSizeLong() + kElementOverhead + 8 - s.result().stdout().size() -
               s.result().stderr().size();
    }
    while (states->size() > 1 && fixed > limit / 2) {
      const proto::CommandState& last = states->Get(states->size() - 1);
      fixed -= last.ByteSizeLong() + kElementOverhead + 8 - last.result().stdout().size() -
               last.result().stderr().size();
      states->RemoveLast();
      dropped = true;
    }
    total = StatesBytes(*states);
    if (total <= limit) return dropped;
  }
  // Cap every output at the largest size that fits: small outputs stay whole, the
  // large ones share what is left.
  std::vector<size_t> sizes;
  size_t outputs = 0;
  for (const proto::CommandState& s : *states) {
    for (const std::string* out : {&s.result().stdout(), &s.result().stderr()}) {
      sizes.push_back(out->size());
      outputs += out->size();
    }
  }
  // Room for what capping adds: a truncated flag (2 bytes) per output, and slack for
  // length prefixes.
  size_t rest = total - outputs + 4 * sizes.size();
  if (rest >= limit) {
    // Without their outputs the states still do not fit: several large commands (a
    // fan-out of a long script) whose answer carries each. Their arguments and payloads
    // are left out (the ledger keeps them: `show ID`), their ids, states and results stay.
    for (proto::CommandState& s : *states) {
      proto::Envelope* c = s.mutable_command();
      c->clear_argv();
      c->clear_payload();
      c->clear_shell();
    }
    total = StatesBytes(*states);
    rest = total - outputs + 4 * sizes.size();
  }
  size_t cap = 0;
  if (rest < limit) {
    std::sort(sizes.begin(), sizes.end());
    size_t budget = limit - rest;
    cap = sizes.empty() ? 0 : sizes.back();
    for (size_t i = 0; i < sizes.size(); ++i) {
      const size_t left = sizes.size() - i;
      if (sizes[i] * left > budget) {
        cap = budget / left;
        break;
      }
      budget -= sizes[i];
    }
  }
  for (proto::CommandState& s : *states) {
    proto::Ack* r = s.mutable_result();
    if (r->stdout().size() > cap) {
      r->mutable_stdout()->resize(cap);
      r->set_stdout_truncated(true);
    }
    if (r->stderr().size() > cap) {
      r->mutable_stderr()->resize(cap);
      r->set_stderr_truncated(true);
    }
  }
  total = StatesBytes(*states);
  while (may_drop && total > limit && !states->empty()) {
    total -= states->Get(states->size() - 1).ByteSizeLong() + kElementOverhead;
    states->RemoveLast();
    dropped = true;
  }
  return dropped;
}

}  // namespace steward::station
