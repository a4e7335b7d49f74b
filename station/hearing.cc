#include "station/hearing.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace steward::station {

absl::StatusOr<Hearing> Hearing::Start(natsConnection* conn, const std::string& station) {
  std::string subject = nats::NewInbox(absl::StrCat("_STEWARD.hear.", station));
  STEWARD_ASSIGN_OR_RETURN(nats::SubscriptionPtr sub, nats::SubscribeSync(conn, subject, static_cast<int>(kMaxOut)));
  return Hearing(conn, std::move(sub), std::move(subject));
}

absl::Time Hearing::Heard() {
  int pending = 0;
  while (natsSubscription_GetPending(sub_.get(), &pending, nullptr) == NATS_OK && pending > 0) {
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub_.get(), absl::Milliseconds(1));
    if (!msg.ok()) break;  // a slow consumer's report: the next probes tell
    uint64_t seq = 0;
    if (!absl::SimpleAtoi(nats::Data(msg->get()), &seq)) continue;
    // The broker keeps their order: probes before this one that are still out are lost.
    while (!out_.empty() && out_.front().first < seq) out_.pop_front();
    if (!out_.empty() && out_.front().first == seq) {
      heard_ = std::max(heard_, out_.front().second);
      out_.pop_front();
    }
  }
  return heard_;
}

absl::Status Hearing::Probe(absl::Time now) {
  const uint64_t seq = next_++;
  STEWARD_RETURN_IF_ERROR(nats::Publish(conn_, subject_, absl::StrCat(seq)));
  out_.emplace_back(seq, now);
  if (out_.size() > kMaxOut) out_.pop_front();
  return absl::OkStatus();
}

}  // namespace steward::station
