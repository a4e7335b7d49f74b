#include "station/http/debug_relay.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace steward::station::http {
namespace {

constexpr absl::Duration kTick = absl::Milliseconds(250);
// Deep enough for the agent's burst (400 lines, batched in a few messages) and its
// probes; past it nats.c drops, and the readers see a gap in nothing (lines are
// numbered here, on arrival): the agent's own "[steward] N lines dropped" is the
// only count a loss upstream of the station gets.
constexpr int kPendingMsgs = 10000;

}  // namespace

DebugRelay::DebugRelay(natsConnection* conn, Limits limits) : conn_(conn), limits_(limits) {
  housekeeper_ = std::thread([this] { Housekeeping(); });
}

DebugRelay::~DebugRelay() { Close(); }

std::string DebugRelay::NewId() {
  std::string id = nats::NewInbox("x");
  return id.substr(id.rfind('.') + 1);
}

absl::StatusOr<DebugRelay::Info> DebugRelay::Open(const std::string& id, const std::string& subject,
                                                  const std::string& node, const std::string& level,
                                                  absl::Duration span, const std::string& by_name,
                                                  const std::string& by) {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return absl::UnavailableError("the station is stopping");
    size_t open = 0;
    for (const auto& [sid, s] : streams_) open += !s.info.ended;
    if (open >= limits_.max_streams) {
      return absl::ResourceExhaustedError(
          absl::StrCat("too many debug streams open (", open, "); stop one, or try again later"));
    }
    if (streams_.count(id)) return absl::AlreadyExistsError(absl::StrCat("debug stream ", id, " exists"));
    Stream& s = streams_[id];
    s.info.id = id;
    s.info.node = node;
    s.info.level = level;
    s.info.by_name = by_name;
    s.info.by = by;
    s.info.subject = subject;
    s.info.started = absl::Now();
    s.info.until = s.info.started + span;
    s.unread_since = s.info.started;
  }
  // Subscribed (and the broker told) before the agent is asked: nothing it sends is lost.
  absl::StatusOr<nats::SubscriptionPtr> sub = nats::SubscribeAsync(conn_, subject + ".>", OnMsg, this, kPendingMsgs);
  absl::Status flushed = sub.ok() ? nats::Flush(conn_, absl::Seconds(5)) : sub.status();
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(id);
  if (!flushed.ok() || it == streams_.end() || it->second.info.ended) {
    if (it != streams_.end()) streams_.erase(it);
    if (!flushed.ok()) return absl::UnavailableError(absl::StrCat("cannot listen for the stream: ", flushed.message()));
    return absl::UnavailableError("the station is stopping");
  }
  it->second.sub = *std::move(sub);
  return it->second.info;
}

void DebugRelay::SetCommand(const std::string& id, const std::string& command) {
  absl::MutexLock lock(&mu_);
  if (auto it = streams_.find(id); it != streams_.end()) it->second.info.command = command;
}

bool DebugRelay::Stop(const std::string& id, const std::string& reason) {
  nats::SubscriptionPtr sub;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(id);
    if (it == streams_.end() || it->second.info.ended) return false;
    EndLocked(it->second, reason);
    sub = std::move(it->second.sub);
  }
  return true;  // `sub` unsubscribes here, unlocked (its callback may wait for mu_)
}

absl::StatusOr<DebugRelay::Info> DebugRelay::Get(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return absl::NotFoundError(absl::StrCat("unknown debug stream ", id));
  return it->second.info;
}

void DebugRelay::AddReader(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  ++it->second.info.readers;
  it->second.ever_read = true;
}

void DebugRelay::RemoveReader(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.info.readers == 0) return;
  if (--it->second.info.readers == 0) it->second.unread_since = absl::Now();
}

DebugRelay::Batch DebugRelay::Wait(const std::string& id, uint64_t after, absl::Duration timeout) {
  Batch b;
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = streams_.find(id);
    return closed_ || it == streams_.end() || it->second.info.ended || it->second.next_seq > after + 1;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  auto it = streams_.find(id);
  if (it == streams_.end()) {
    b.gone = true;
    return b;
  }
  const Stream& s = it->second;
  for (const Line& l : s.ring) {
    if (l.seq > after) b.lines.push_back(l);
  }
  const uint64_t first = b.lines.empty() ? s.next_seq : b.lines.front().seq;
  b.missed = first > after + 1 ? first - after - 1 : 0;
  b.ended = s.info.ended;
  b.reason = s.info.reason;
  return b;
}

void DebugRelay::Close() {
  std::vector<nats::SubscriptionPtr> subs;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    for (auto& [id, s] : streams_) {
      if (!s.info.ended) EndLocked(s, "the station is stopping");
      subs.push_back(std::move(s.sub));
    }
  }
  subs.clear();
  if (housekeeper_.joinable()) housekeeper_.join();
}

void DebugRelay::OnMsg(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
  static_cast<DebugRelay*>(self)->Handle(nats::MsgPtr(msg));
}

void DebugRelay::Handle(nats::MsgPtr msg) {
  // _DEBUG.<reader>.<node>.<id>.<line|ping|end>
  const std::string to = nats::Subject(msg.get());
  std::vector<absl::string_view> t = absl::StrSplit(to, '.');
  if (t.size() != 5) return;
  const std::string id(t[3]);
  const absl::string_view kind = t[4];
  const absl::string_view data = nats::Data(msg.get());
  std::string reply;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(id);
    if (it == streams_.end() || it->second.info.ended) return;
    Stream& s = it->second;
    if (kind == "line") {
      for (absl::string_view line : absl::StrSplit(data, '\n', absl::SkipEmpty())) {
        s.ring.push_back(Line{s.next_seq++, std::string(line)});
        s.ring_bytes += line.size();
        ++s.info.lines;
        while (s.ring.size() > limits_.ring_lines || s.ring_bytes > limits_.ring_bytes) {
          s.ring_bytes -= s.ring.front().text.size();
          s.ring.pop_front();
        }
      }
    } else if (kind == "ping") {
      if (AnswersLocked(s, absl::Now())) reply = nats::Reply(msg.get());
    } else if (kind == "end") {
      // Its subscription goes at the next housekeeping tick, not from inside its own
      // callback.
      EndLocked(s, std::string(data));
    }
  }
  // Outside the lock: an empty answer is the keepalive (the agent reads no content).
  if (!reply.empty()) (void)nats::Publish(conn_, reply, "");
}

void DebugRelay::EndLocked(Stream& s, const std::string& reason) {
  s.info.ended = true;
  s.info.reason = reason;
  s.ended_at = absl::Now();
  STEWARD_LOG_INFO("debug stream {} of {} for {} ended: {}", s.info.id, s.info.node, s.info.by, reason);
}

bool DebugRelay::AnswersLocked(const Stream& s, absl::Time now) const {
  if (s.info.readers > 0) return true;
  return now - s.unread_since < (s.ever_read ? limits_.grace : limits_.first_reader);
}

void DebugRelay::Housekeeping() {
  while (true) {
    std::vector<nats::SubscriptionPtr> subs;
    {
      absl::MutexLock lock(&mu_);
      auto closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&closed), kTick)) return;
      const absl::Time now = absl::Now();
      for (auto it = streams_.begin(); it != streams_.end();) {
        Stream& s = it->second;
        if (!s.info.ended && !AnswersLocked(s, now)) {
          EndLocked(s, s.ever_read ? "every reader went away" : "nobody came to read it");
        } else if (!s.info.ended && now > s.info.until + limits_.silence) {
          EndLocked(s, absl::StrCat("no word from ", s.info.node, " since its end time"));
        }
        if (s.info.ended) {
          if (s.sub) subs.push_back(std::move(s.sub));
          if (now - s.ended_at > limits_.keep_ended && s.info.readers == 0) {
            it = streams_.erase(it);
            continue;
          }
        }
        ++it;
      }
    }
    // Unsubscribed here, unlocked: the agent's next probe finds nobody and it stops.
  }
}

}  // namespace steward::station::http
