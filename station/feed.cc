#include "station/feed.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/time/clock.h"
#include "common/protocol.h"

namespace steward::station {

FeedEvent FeedEvent::Command(std::string node, std::string id, std::string request, proto::State state,
                             int32_t pending) {
  FeedEvent e;
  e.type = Type::kCommand;
  e.node = std::move(node);
  e.command = std::move(id);
  e.request = std::move(request);
  e.state = state;
  e.pending = pending;
  return e;
}

FeedEvent FeedEvent::Node(std::string node, bool online, std::string reason, bool maintenance) {
  FeedEvent e;
  e.type = Type::kNode;
  e.node = std::move(node);
  e.on = online;
  e.text = std::move(reason);
  e.maintenance = maintenance;
  return e;
}

const char* FeedEvent::TypeName() const {
  switch (type) {
    case Type::kCommand:
      return "command";
    case Type::kNode:
      return "node";
    case Type::kDispatch:
      return "dispatch";
    case Type::kMaintenance:
      return "maintenance";
    case Type::kOutput:
      return "output";
    case Type::kActive:
      return "active";
  }
  return "unknown";
}

const std::string& FeedEvent::Json() const {
  absl::call_once(json_->once, [this] {
  nlohmann::ordered_json j;
  j["id"] = id;
  j["type"] = TypeName();
  j["at_unix_ms"] = at_ms;
  switch (type) {
    case Type::kCommand:
      j["node"] = node;
      j["command"] = command;
      j["request_id"] = request;
      j["state"] = StateName(state);
      j["terminal"] = IsTerminal(state);
      j["pending"] = pending;
      break;
    case Type::kNode:
      j["node"] = node;
      j["status"] = on ? "online" : "offline";
      j["reason"] = text;
      j["maintenance"] = maintenance;
      break;
    case Type::kDispatch:
      j["paused"] = on;
      j["reason"] = text;
      j["by"] = by;
      break;
    case Type::kMaintenance:
      j["node"] = node;
      j["on"] = on;
      j["reason"] = text;
      j["by"] = by;
      break;
    case Type::kOutput:
      j["node"] = node;
      j["command"] = command;
      j["request_id"] = request;
      j["seq"] = seq;
      j["text"] = text;
      j["stderr"] = err;
      break;
    case Type::kActive:
      j["group"] = request;
      j["active"] = node;
      j["previous"] = command;
      j["reason"] = text;
      j["by"] = by;
      break;
  }
  // Remote text may be any bytes: replaced, never a reason for the stream to fail.
  json_->json = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  });
  return json_->json;
}

Feed::Feed(size_t capacity)
    : capacity_(std::max<size_t>(capacity, 1)),
      next_id_(static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()))) {}

void Feed::Publish(FeedEvent e) {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  e.id = next_id_++;
  if (e.at_ms == 0) e.at_ms = NowUnixMillis();
  if (ring_.size() >= capacity_) ring_.pop_front();
  ring_.push_back(std::make_shared<const FeedEvent>(std::move(e)));
  ++published_;
}

uint64_t Feed::Position() const {
  absl::MutexLock lock(&mu_);
  return next_id_ - 1;
}

Feed::Batch Feed::Wait(uint64_t after, absl::Duration timeout, size_t max) {
  absl::MutexLock lock(&mu_);
  Batch b;
  // Ids this ring cannot answer for: before this run, or events that left the ring.
  // (The run's first id - 1 is the position of a client that came before any event.)
  const uint64_t oldest_kept = ring_.empty() ? next_id_ : ring_.front()->id;
  if (after + 1 < oldest_kept || after >= next_id_) {
    b.reset = true;
    b.position = next_id_ - 1;
    return b;
  }
  auto ready = [this, after]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || next_id_ - 1 > after; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  b.closed = closed_;
  b.position = after;
  if (ring_.empty() || ring_.back()->id <= after) return b;
  // The ring's ids are consecutive: the first event after `after` is at a known index.
  if (ring_.front()->id > after + 1) {  // evicted while waiting
    b.reset = true;
    b.position = next_id_ - 1;
    return b;
  }
  size_t i = static_cast<size_t>(after + 1 - ring_.front()->id);
  for (; i < ring_.size() && b.events.size() < max; ++i) b.events.push_back(ring_[i]);
  b.position = b.events.back()->id;
  return b;
}

void Feed::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

uint64_t Feed::published() const {
  absl::MutexLock lock(&mu_);
  return published_;
}

}  // namespace steward::station
