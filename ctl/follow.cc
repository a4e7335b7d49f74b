#include "ctl/follow.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"  // fmt formats absl::string_view
#include "common/nats.h"
#include "common/protocol.h"
#include "ctl/render_text.h"
#include "ctl/results.h"

namespace steward::ctl {
namespace {

// A gap (a chunk came before its predecessor) waits this long to be filled by the
// live stream (chunks of one command may be relayed out of order) before the station
// is asked for the missing ones.
constexpr absl::Duration kGapGrace = absl::Milliseconds(300);
// How long one wait request asks the station to hold it; it is asked again after.
constexpr absl::Duration kWaitSlice = absl::Seconds(30);
// How often the follow is asked for again (its lease is a minute): a station that
// restarted meanwhile (and forgot its followers) relays to us again within this, and
// the command's end is seen within it even if the wait request was lost with it.
constexpr absl::Duration kRenew = absl::Seconds(2);
// After a failed request (the station restarting), the next try.
constexpr absl::Duration kRetry = absl::Seconds(1);
constexpr absl::Duration kPoll = absl::Milliseconds(100);
// What the inbox subscription buffers; past it nats.c drops chunks (a gap, asked for again).
constexpr int kPendingMsgs = 4096;

// A station that did not answer now may later (restarting, busy).
bool Transient(const absl::Status& st) { return absl::IsUnavailable(st) || absl::IsDeadlineExceeded(st); }

class Follower {
 public:
  Follower(Client& client, const Globals& g, std::string id)
      : client_(client), g_(g), id_(std::move(id)), inbox_(client.NewInbox()) {}

  int Run(absl::Duration wait) {
    const absl::Time deadline = wait > absl::ZeroDuration() ? absl::Now() + wait : absl::InfiniteFuture();
    // Live first, then the backlog: a chunk relayed meanwhile comes twice (dropped by
    // its number), never not at all.
    absl::StatusOr<nats::SubscriptionPtr> sub = nats::SubscribeSync(client_.conn(), inbox_ + ".>", kPendingMsgs);
    if (!sub.ok()) return Fail(sub.status());
    absl::StatusOr<proto::OutputReply> first = Ask();
    if (!first.ok()) return Fail(first.status());
    if (IsTerminal(first->state())) return Ended();
    absl::Time renew_at = absl::Now() + kRenew;
    absl::Time wait_due = absl::InfinitePast();  // no wait request out yet
    while (true) {
      const absl::Time now = absl::Now();
      if (now >= deadline) break;
      if (now >= wait_due) {
        // The result is awaited by the station: its answer comes to our inbox too.
        const absl::Duration slice = std::min(kWaitSlice, deadline - now);
        proto::WaitRequest req;
        req.add_ids(id_);
        req.set_wait_ms(std::max<int64_t>(absl::ToInt64Milliseconds(slice), 1));
        req.set_any(true);
        wait_due = now + slice + absl::Seconds(5);  // unanswered by then: ask again
        if (absl::Status st = client_.Post(kStationWait, req.SerializeAsString(), inbox_ + ".w"); !st.ok()) {
          if (!Transient(st)) return Fail(st);
          wait_due = now + kRetry;
        }
      }
      if (now >= renew_at || (gap_since_ != absl::InfiniteFuture() && now - gap_since_ >= kGapGrace)) {
        const int64_t run = run_;
        absl::StatusOr<proto::OutputReply> again = Ask();
        if (again.ok() && IsTerminal(again->state())) return Ended();
        if (again.ok() && run != run_) wait_due = absl::InfinitePast();  // a new station: wait there
        if (!again.ok() && !Transient(again.status())) return Fail(again.status());
        // A station away (restarting) is asked again soon; the gap it leaves, if any,
        // is filled from its buffer or, failing that, from the result.
        renew_at = absl::Now() + (again.ok() ? kRenew : kRetry);
        if (!again.ok() && !early_.empty()) gap_since_ = absl::Now() + kRetry;  // not before the retry
      }
      absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub->get(), std::min(kPoll, deadline - now));
      if (!msg.ok()) {
        // A slow consumer lost chunks: the gap they leave is asked for again.
        if (absl::IsDeadlineExceeded(msg.status()) || absl::StrContains(msg.status().message(), "Slow Consumer")) {
          continue;
        }
        return Fail(msg.status());
      }
      const std::string subject = nats::Subject(msg->get());
      if (subject == inbox_ + ".o") {
        proto::OutputChunk chunk;
        if (chunk.ParseFromArray(natsMsg_GetData(msg->get()), natsMsg_GetDataLength(msg->get())) &&
            chunk.command_id() == id_) {
          Take(chunk);
        }
      } else if (subject == inbox_ + ".w") {
        absl::StatusOr<std::string> body = Client::AckPayload(nats::Data(msg->get()));
        proto::CommandStates states;
        if (!body.ok() && Transient(body.status())) {  // not now: ask again soon
          wait_due = absl::Now() + kRetry;
          continue;
        }
        if (!body.ok()) return Fail(body.status());
        if (!states.ParseFromString(*body)) return Fail("malformed wait reply from the station");
        for (const proto::CommandState& s : states.commands()) {
          if (s.id() == id_ && IsTerminal(s.state())) return Finish(s);
        }
        wait_due = absl::InfinitePast();  // the wait ran out: ask again
      }
    }
    return Fail(fmt::format("command {} still {} on {} after {} (stewardctl watch {})", id_,
                            StateName(state_), node_, absl::FormatDuration(wait), id_));
  }

 private:
  // Asks the station for the chunks after the last one printed (and to go on relaying
  // them to us), and prints what it holds. A gap the station cannot fill ends the
  // live view (Degrade).
  absl::StatusOr<proto::OutputReply> Ask() {
    proto::OutputReply reply;
    uint64_t before;
    do {
      before = next_;
      proto::OutputRequest req;
      req.set_id(id_);
      req.set_after_seq(next_ - 1);
      req.set_deliver(inbox_ + ".o");
      absl::StatusOr<proto::OutputReply> r = client_.Output(req, g_.timeout);
      if (!r.ok()) return r.status();
      reply = *std::move(r);
      node_ = reply.node();
      state_ = reply.state();
      run_ = reply.station_run();
      for (const proto::OutputChunk& c : reply.chunks()) Take(c);
      // A reply that moved nothing on (a hole before its chunks) is not asked again.
    } while (reply.more() && !degraded_ && early_.empty() && next_ > before);
    if (IsTerminal(reply.state())) return reply;  // the result completes it
    // A hole older than the grace that the station cannot fill either: not held (its
    // buffer overflowed, a station restart) or lost on the way. A younger one may be a
    // chunk still on its way: the next look decides.
    if (!early_.empty() && absl::Now() - gap_since_ >= kGapGrace) {
      Degrade(fmt::format("chunks {} to {} are not held by the station (its buffer overflowed, or they were lost)",
                          next_, early_.begin()->first - 1));
    }
    return reply;
  }

  // A chunk, in whatever order it came: printed in the order of the numbers, once.
  void Take(const proto::OutputChunk& c) {
    if (degraded_ || c.seq() < next_) return;
    if (c.seq() > next_) {
      early_.emplace(c.seq(), c);
      if (gap_since_ == absl::InfiniteFuture()) gap_since_ = absl::Now();
      return;
    }
    Print(c);
    ++next_;
    while (!degraded_ && !early_.empty() && early_.begin()->first <= next_) {
      if (early_.begin()->first == next_) {
        Print(early_.begin()->second);
        ++next_;
      }
      early_.erase(early_.begin());
    }
    gap_since_ = early_.empty() ? absl::InfiniteFuture() : absl::Now();
  }

  void Print(const proto::OutputChunk& c) {
    if (g_.json) return;  // the final record only
    const struct {
      uint64_t offset;
      const std::string& data;
      FILE* to;
    } streams[2] = {{c.stdout_offset(), c.stdout(), stdout}, {c.stderr_offset(), c.stderr(), stderr}};
    for (int i = 0; i < 2; ++i) {
      const auto& s = streams[i];
      if (s.data.empty()) continue;
      if (s.offset > printed_[i]) {
        return Degrade(fmt::format("bytes {} to {} of its {} are missing", printed_[i], s.offset - 1,
                                   i == 0 ? "stdout" : "stderr"));
      }
      const uint64_t skip = printed_[i] - s.offset;  // printed already
      if (skip >= s.data.size()) continue;
      std::fwrite(s.data.data() + skip, 1, s.data.size() - skip, s.to);
      std::fflush(s.to);
      printed_[i] += s.data.size() - skip;
    }
  }

  // The live view has a hole: say so, print nothing more live, and complete from the
  // result when the command ends.
  void Degrade(const std::string& why) {
    if (degraded_) return;
    degraded_ = true;
    early_.clear();
    gap_since_ = absl::InfiniteFuture();
    if (!g_.json) {
      fmt::print(stderr, "stewardctl: live output of {} is incomplete: {}; the rest is printed from the result when it ends\n",
                 id_, Escape(why));
      std::fflush(stderr);
    }
  }

  // Ended before or while we asked: its whole record, from the station.
  int Ended() {
    absl::StatusOr<proto::CommandStates> states = client_.Show({id_}, "", g_.timeout);
    if (!states.ok()) return Fail(states.status());
    if (states->commands_size() == 0) return Fail(fmt::format("command {} is not known to the station", id_));
    return Finish(states->commands(0));
  }

  // What the live view did not print of the result's output, then the status line.
  int Finish(const proto::CommandState& s) {
    PrintResult(s, g_.json, printed_[0], printed_[1]);
    return ExitStatusOf(s);
  }

  Client& client_;
  const Globals& g_;
  const std::string id_;
  const std::string inbox_;
  std::string node_;
  proto::State state_ = proto::STATE_UNSPECIFIED;
  int64_t run_ = 0;  // the station run that answered last (OutputReply.station_run)
  uint64_t next_ = 1;                            // the chunk to print next
  uint64_t printed_[2] = {0, 0};                 // bytes of stdout, stderr printed
  std::map<uint64_t, proto::OutputChunk> early_;  // came before their turn
  absl::Time gap_since_ = absl::InfiniteFuture();  // since when early_ waits
  bool degraded_ = false;
};

}  // namespace

int Follow(Client& client, const Globals& g, const std::string& id, absl::Duration wait) {
  return Follower(client, g, id).Run(wait);
}

}  // namespace steward::ctl
