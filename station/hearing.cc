#include "station/hearing.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace steward::station {

absl::StatusOr<Hearing> Hearing::Start(natsConnection* conn, const std::string& station,
                                       absl::Duration longest_deafness, const Backlog* events) {
  std::string subject = nats::NewInbox(absl::StrCat("_STEWARD.hear.", station));
  STEWARD_ASSIGN_OR_RETURN(nats::SubscriptionPtr sub, nats::SubscribeSync(conn, subject, static_cast<int>(kMaxOut)));
  return Hearing(conn, std::move(sub), std::move(subject), longest_deafness, events);
}

absl::Time Hearing::Heard(absl::Time now) {
  int pending = 0;
  while (natsSubscription_GetPending(sub_.get(), &pending, nullptr) == NATS_OK && pending > 0) {
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub_.get(), absl::Milliseconds(1));
    if (!msg.ok()) break;  // a slow consumer's report: the next probes tell
    uint64_t seq = 0;
    if (!absl::SimpleAtoi(nats::Data(msg->get()), &seq)) continue;
    // The broker keeps their order: probes before this one that are still out are lost.
    while (!out_.empty() && out_.front().first < seq) out_.pop_front();
    if (out_.empty() || out_.front().first != seq) continue;
    // Everything queued for the intake before this probe was queued for it is taken now.
    back_.emplace_back(out_.front().second, events_ != nullptr ? events_->taken() : 0);
    out_.pop_front();
    waiting_since_ = out_.empty() ? absl::InfiniteFuture() : out_.front().second;
  }
  const uint64_t served = events_ != nullptr ? events_->served() : 0;
  while (!back_.empty() && back_.front().second <= served) {
    heard_ = std::max(heard_, back_.front().first);
    back_.pop_front();
  }
  // The bound applies once a probe has not come back for that long (the link's fault, or
  // the broker's; an intake that far behind holds the time back, and says so itself).
  const absl::Time bound = now - longest_deafness_;
  capped_ = heard_ < bound && waiting_since_ < bound;
  return capped_ ? bound : heard_;
}

void Hearing::Restart() {
  out_.clear();
  back_.clear();
  waiting_since_ = absl::InfiniteFuture();
}

absl::Status Hearing::Probe(absl::Time now) {
  const uint64_t seq = next_++;
  STEWARD_RETURN_IF_ERROR(nats::Publish(conn_, subject_, absl::StrCat(seq)));
  out_.emplace_back(seq, now);
  if (out_.size() > kMaxOut) out_.pop_front();  // waiting_since_ stays
  waiting_since_ = std::min(waiting_since_, now);
  return absl::OkStatus();
}

}  // namespace steward::station
