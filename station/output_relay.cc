#include "station/output_relay.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace steward::station {

void OutputRelay::DropOldest(Stream& s) {
  const size_t n = Size(s.chunks.front());
  s.bytes -= n;
  total_ -= n;
  s.chunks.pop_front();
  ++dropped_;
}

bool OutputRelay::Add(const proto::OutputChunk& chunk, absl::Time now, std::vector<std::string>* to) {
  absl::MutexLock lock(&mu_);
  Stream& s = streams_[chunk.command_id()];
  // Chunks come in order but may be handled out of it (two event threads): each goes
  // where its number says, once.
  auto at = std::lower_bound(s.chunks.begin(), s.chunks.end(), chunk.seq(),
                             [](const proto::OutputChunk& c, uint64_t seq) { return c.seq() < seq; });
  if (at != s.chunks.end() && at->seq() == chunk.seq()) return false;
  if (at == s.chunks.begin() && !s.chunks.empty() && s.bytes + Size(chunk) > limits_.command_bytes) {
    return false;  // older than what the full buffer holds: it would go first anyway
  }
  s.chunks.insert(at, chunk);
  s.bytes += Size(chunk);
  total_ += Size(chunk);
  while (s.bytes > limits_.command_bytes && s.chunks.size() > 1) DropOldest(s);
  while (total_ > limits_.total_bytes) {
    // Room for all: the biggest buffer gives up its oldest chunk.
    Stream* biggest = &s;
    for (auto& [id, other] : streams_) {
      if (other.bytes > biggest->bytes) biggest = &other;
    }
    if (biggest->chunks.size() <= 1 && biggest == &s) break;
    DropOldest(*biggest);
  }
  std::erase_if(s.followers, [now](const Follower& f) { return f.until <= now; });
  for (const Follower& f : s.followers) to->push_back(f.deliver);
  return true;
}

void OutputRelay::Ended(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  total_ -= it->second.bytes;
  streams_.erase(it);
}

absl::Status OutputRelay::Read(const std::string& id, uint64_t after, const std::string& deliver,
                               size_t max_bytes, absl::Time now, proto::OutputReply& out) {
  out.set_station_run(run_);
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) {
    if (deliver.empty()) return absl::OkStatus();
    it = streams_.emplace(id, Stream{}).first;
  }
  Stream& s = it->second;
  std::erase_if(s.followers, [now](const Follower& f) { return f.until <= now; });
  if (!deliver.empty()) {
    auto f = std::find_if(s.followers.begin(), s.followers.end(),
                          [&deliver](const Follower& x) { return x.deliver == deliver; });
    if (f != s.followers.end()) {
      f->until = now + limits_.lease;
    } else if (s.followers.size() >= limits_.followers) {
      return absl::ResourceExhaustedError(
          absl::StrCat("command ", id, " has ", s.followers.size(), " followers already; try again later"));
    } else {
      s.followers.push_back({deliver, now + limits_.lease});
    }
    out.set_lease_ms(absl::ToInt64Milliseconds(limits_.lease));
  }
  if (!s.chunks.empty()) {
    out.set_first_seq(s.chunks.front().seq());
    out.set_last_seq(s.chunks.back().seq());
  }
  size_t bytes = 0;
  for (const proto::OutputChunk& c : s.chunks) {
    if (c.seq() <= after) continue;
    if (out.chunks_size() > 0 && bytes + Size(c) > max_bytes) {
      out.set_more(true);
      break;
    }
    bytes += Size(c);
    *out.add_chunks() = c;
  }
  if (s.chunks.empty() && s.followers.empty()) streams_.erase(it);
  return absl::OkStatus();
}

size_t OutputRelay::held_bytes() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

uint64_t OutputRelay::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

}  // namespace steward::station
