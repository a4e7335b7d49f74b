// RequestPump: async requests over a shared inbox with per-request deadlines.
#include "common/request_pump.h"

#include <charconv>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "proto/wire.pb.h"

namespace steward {

absl::StatusOr<std::unique_ptr<RequestPump>> RequestPump::Create(natsConnection* nc,
                                                                 absl::string_view inbox_prefix) {
  std::unique_ptr<RequestPump> pump(new RequestPump(nc));
  STEWARD_RETURN_IF_ERROR(pump->Subscribe(inbox_prefix).status());
  pump->timer_ = std::thread([p = pump.get()] { p->TimerLoop(); });
  return pump;
}

RequestPump::RequestPump(natsConnection* nc) : nc_(nc) {}

absl::StatusOr<uint32_t> RequestPump::Subscribe(absl::string_view inbox_prefix) {
  std::string prefix = nats::NewInbox(inbox_prefix) + ".";
  STEWARD_ASSIGN_OR_RETURN(nats::SubscriptionPtr sub,
                           nats::SubscribeAsync(nc_, prefix + "*", &RequestPump::OnMsg, this,
                                                /*max_pending_msgs=*/65536));
  STEWARD_RETURN_IF_ERROR(nats::ToStatus(
      natsSubscription_SetOnCompleteCB(sub.get(), &RequestPump::OnComplete, this),
      "SetOnCompleteCB"));
  absl::MutexLock lock(&mu_);
  if (stop_.HasBeenNotified()) return absl::FailedPreconditionError("request pump is shut down");
  prefixes_.push_back(std::move(prefix));
  subs_.push_back(std::move(sub));
  return static_cast<uint32_t>(prefixes_.size() - 1);
}

absl::StatusOr<uint32_t> RequestPump::AddInbox(absl::string_view inbox_prefix) {
  return Subscribe(inbox_prefix);
}

RequestPump::~RequestPump() { Shutdown(); }

absl::Status RequestPump::Send(const std::string& subject, absl::string_view data,
                               absl::Duration timeout, Callback cb, uint32_t inbox) {
  uint64_t token;
  std::string reply;
  {
    absl::MutexLock lock(&mu_);
    if (stop_.HasBeenNotified()) return absl::FailedPreconditionError("request pump is shut down");
    if (inbox >= prefixes_.size()) return absl::InvalidArgumentError(absl::StrCat("no inbox ", inbox));
    token = next_token_++;
    reply = absl::StrCat(prefixes_[inbox], token);
    const absl::Time deadline = absl::Now() + timeout;
    if (deadlines_.empty() || deadline < deadlines_.begin()->first) wake_timer_ = true;
    pending_.emplace(token, Pending{std::move(cb), inbox, deadlines_.emplace(deadline, token)});
  }
  absl::Status st = nats::Publish(nc_, subject, data, reply);
  if (!st.ok()) {
    absl::MutexLock lock(&mu_);
    // A reply cannot have come, but Shutdown may already have taken it.
    if (auto it = pending_.find(token); it != pending_.end()) {
      deadlines_.erase(it->second.deadline);
      pending_.erase(it);
    }
  }
  return st;
}

void RequestPump::OnMsg(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
  static_cast<RequestPump*>(closure)->HandleReply(nats::MsgPtr(raw));
}

void RequestPump::OnComplete(void* closure) {
  auto* pump = static_cast<RequestPump*>(closure);
  absl::MutexLock lock(&pump->mu_);
  ++pump->completed_;
}

namespace {

constexpr absl::string_view kBundleToken = "bundle";

// The token of reply subject "<prefix>.<nuid>.<token>", if it is a number.
std::optional<uint64_t> TokenOf(absl::string_view subject) {
  const size_t dot = subject.rfind('.');
  if (dot == absl::string_view::npos) return std::nullopt;
  uint64_t token = 0;
  auto [end, ec] = std::from_chars(subject.data() + dot + 1, subject.data() + subject.size(), token);
  if (ec != std::errc() || end != subject.data() + subject.size()) return std::nullopt;
  return token;
}

}  // namespace

std::string RequestPump::BundleSubject(absl::string_view reply) {
  // "<prefix>.<nuid>.<token>": a pump's (Subscribe), which a pump reads bundles beside.
  const size_t dot = reply.rfind('.');
  if (dot == absl::string_view::npos || dot == 0 || reply.rfind('.', dot - 1) == absl::string_view::npos ||
      !TokenOf(reply).has_value()) {
    return "";
  }
  return absl::StrCat(reply.substr(0, dot + 1), kBundleToken);
}

void RequestPump::HandleReply(nats::MsgPtr msg) {
  // "<prefix>.<nuid>.<token>": tokens are unique across the pump's inboxes.
  const absl::string_view subject = natsMsg_GetSubject(msg.get());
  if (absl::EndsWith(subject, kBundleToken) && subject.size() > kBundleToken.size() &&
      subject[subject.size() - kBundleToken.size() - 1] == '.') {
    return HandleBundle(subject, nats::Data(msg.get()));
  }
  const std::optional<uint64_t> token = TokenOf(subject);
  if (token.has_value()) Deliver(*token, std::move(msg));
}

void RequestPump::HandleBundle(absl::string_view subject, absl::string_view data) {
  proto::ReplyBundle bundle;
  if (!bundle.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    absl::MutexLock lock(&mu_);
    ++bundle_refused_;
    return;
  }
  // Only replies to requests sent on the inbox the bundle came to: a reply names its
  // own subject, and one under another inbox is not the sender's to answer here.
  const absl::string_view inbox = subject.substr(0, subject.size() - kBundleToken.size());
  std::optional<uint32_t> number;
  {
    absl::MutexLock lock(&mu_);
    for (uint32_t i = 0; i < prefixes_.size(); ++i) {
      if (prefixes_[i] == inbox) number = i;
    }
  }
  for (proto::BundledReply& r : *bundle.mutable_replies()) {
    const std::optional<uint64_t> token = absl::StartsWith(r.subject(), inbox) ? TokenOf(r.subject()) : std::nullopt;
    if (!number.has_value() || !token.has_value() || r.subject().find('.', inbox.size()) != std::string::npos) {
      absl::MutexLock lock(&mu_);
      ++bundle_refused_;
      continue;
    }
    natsMsg* raw = nullptr;
    if (natsMsg_Create(&raw, r.subject().c_str(), nullptr, r.data().data(), static_cast<int>(r.data().size())) !=
        NATS_OK) {
      abort();  // Out of memory only (the subject is one the broker delivered).
    }
    Deliver(*token, nats::MsgPtr(raw), number);
  }
}

void RequestPump::Deliver(uint64_t token, nats::MsgPtr msg, std::optional<uint32_t> inbox) {
  Callback cb;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(token);
    if (it == pending_.end()) return;  // Late reply after its timeout: dropped.
    if (inbox.has_value() && it->second.inbox != *inbox) {
      ++bundle_refused_;  // a request of another inbox: that one's answer comes there
      return;
    }
    cb = std::move(it->second.cb);
    deadlines_.erase(it->second.deadline);
    pending_.erase(it);
  }
  if (natsMsg_IsNoResponders(msg.get())) {
    cb(Result::kNoResponders, nullptr);
  } else {
    cb(Result::kReply, std::move(msg));
  }
}

void RequestPump::TimerLoop() {
  while (!stop_.HasBeenNotified()) {
    std::vector<Callback> expired;
    {
      absl::MutexLock lock(&mu_);
      // Sleep until the earliest deadline, an earlier one arriving, or shutdown. With
      // nothing pending the thread sleeps until the next Send.
      const absl::Time next = deadlines_.empty() ? absl::InfiniteFuture() : deadlines_.begin()->first;
      mu_.AwaitWithDeadline(absl::Condition(&wake_timer_), next);
      wake_timer_ = false;
      const absl::Time now = absl::Now();
      while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
        auto it = pending_.find(deadlines_.begin()->second);
        expired.push_back(std::move(it->second.cb));
        pending_.erase(it);
        deadlines_.erase(deadlines_.begin());
      }
    }
    for (Callback& cb : expired) cb(Result::kTimeout, nullptr);
  }
}

size_t RequestPump::in_flight() const {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}

uint64_t RequestPump::bundle_refused() const {
  absl::MutexLock lock(&mu_);
  return bundle_refused_;
}

void RequestPump::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_.HasBeenNotified()) return;
    stop_.Notify();
    wake_timer_ = true;
  }
  if (timer_.joinable()) timer_.join();
  std::vector<natsSubscription*> subs;  // no inbox is added after stop_: final
  {
    absl::MutexLock lock(&mu_);
    for (const nats::SubscriptionPtr& sub : subs_) subs.push_back(sub.get());
  }
  size_t unsubscribed = 0;
  for (natsSubscription* sub : subs) {
    if (natsSubscription_Unsubscribe(sub) == NATS_OK) ++unsubscribed;
  }
  absl::flat_hash_map<uint64_t, Pending> left;
  {
    absl::MutexLock lock(&mu_);
    // The handler may run once more after Unsubscribe; wait until nats.c is done with us.
    auto done = [this, unsubscribed]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return completed_ >= unsubscribed;
    };
    mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(2));
    left.swap(pending_);
    deadlines_.clear();
  }
  for (auto& [token, p] : left) p.cb(Result::kShutdown, nullptr);
}

}  // namespace steward
