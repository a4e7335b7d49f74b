#include "station/output_api.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/protocol.h"

namespace steward::station {
namespace {

// Room for the reply's ACK and envelope around the chunks.
constexpr size_t kReplyRoom = 16 * 1024;

// Why `deliver` is not where this caller may have chunks relayed ("" if it is): a
// subject without wildcards or blanks in the caller's own inbox space, the part of its
// reply subject before the first '.' ("_INBOX_<user>." or "_INBOX."). The station
// never publishes where a caller merely points it.
std::string BadDeliver(const std::string& deliver, const std::string& reply) {
  if (reply.empty()) return "deliver: only a NATS caller can be followed on an inbox";
  const size_t dot = reply.find('.');
  if (dot == std::string::npos || !absl::StartsWith(deliver, reply.substr(0, dot + 1))) {
    return absl::StrCat("deliver: ", deliver, " is not in the caller's inbox space ", reply.substr(0, dot), ".>");
  }
  if (deliver.size() > 256 || deliver.back() == '.' || absl::StrContains(deliver, "..") ||
      deliver.find_first_of(" \t\r\n*>") != std::string::npos) {
    return absl::StrCat("deliver: \"", deliver, "\" is not a subject");
  }
  return "";
}

}  // namespace

OutputApi::OutputApi(Core& core, Rpc& rpc) : core_(core), rpc_(rpc) {
  rpc.Handle<proto::OutputRequest>(kStationOutput, [this](const Call& c, proto::OutputRequest r) {
    Output(c, std::move(r));
  });
}

void OutputApi::Output(const Call& call, proto::OutputRequest req) {
  if (req.id().empty()) return rpc_.Reject(call, "output: which command (an id)");
  if (!req.deliver().empty()) {
    if (std::string why = BadDeliver(req.deliver(), call.reply); !why.empty()) return rpc_.Reject(call, why);
  }
  const size_t limit = core_.ReplyLimit();
  const size_t max_bytes = limit > 2 * kReplyRoom ? limit - kReplyRoom : limit / 2;
  proto::OutputReply out;
  out.set_station_run(core_.output.run());
  bool known = false;
  absl::Status st;
  {
    absl::MutexLock lock(&core_.model.mu);
    if (const proto::CommandState* s = core_.model.commands.Find(req.id()); s != nullptr) {
      known = true;
      out.set_node(s->node());
      out.set_state(s->state());
      // Ended: its output is the result's (wait/show); nothing to follow.
      if (!IsTerminal(s->state())) {
        st = core_.output.Read(req.id(), req.after_seq(), req.deliver(), max_bytes, absl::Now(), out);
      }
    }
  }
  if (!st.ok()) return rpc_.Fail(call, st);
  if (!known) {  // not in memory: ended long ago (the ledger has it) or unknown
    absl::StatusOr<std::vector<proto::CommandState>> states = core_.States({req.id()});
    if (!states.ok()) return rpc_.Fail(call, states.status());
    out.set_node(states->front().node());
    out.set_state(states->front().state());
  }
  rpc_.Ok(call, out);
}

void RelayOutput(Core& core, const proto::Envelope& ev) {
  proto::OutputChunk chunk;
  if (!chunk.ParseFromString(ev.payload()) || chunk.command_id().empty() || chunk.seq() == 0) {
    STEWARD_LOG_WARNING("malformed output event {} from {}: dropped", ev.id(), ev.from_node());
    return;
  }
  chunk.set_node(ev.from_node());
  std::vector<std::string> to;
  {
    absl::MutexLock lock(&core.model.mu);
    const proto::CommandState* s = core.model.commands.Find(chunk.command_id());
    // Another node's command, or one that ended (a chunk overtaken by its result):
    // nothing to relay, and nobody's output is written by someone else.
    if (s == nullptr || s->node() != ev.from_node() || IsTerminal(s->state())) return;
    if (!core.output.Add(chunk, absl::Now(), &to)) return;
    FeedEvent e;
    e.type = FeedEvent::Type::kOutput;
    e.node = chunk.node();
    e.command = chunk.command_id();
    e.request = s->request_id();
    e.seq = chunk.seq();
    e.text = chunk.stdout();
    e.err = chunk.stderr();
    core.feed.Publish(std::move(e));
  }
  if (to.empty()) return;
  const std::string data = chunk.SerializeAsString();
  for (const std::string& subject : to) core.Publish(subject, data);
}

}  // namespace steward::station
