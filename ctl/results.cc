// How stewardctl prints what became of sent commands: one node's output raw, as ssh
// does; a fan-out one line per node; the exit status a command maps to.
#include "ctl/results.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"  // fmt formats absl::string_view
#include "common/protocol.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"

namespace steward::ctl {

using proto::CommandState;

namespace {

// One line on stderr saying why a command did not simply exit.
std::string Why(const CommandState& s) {
  const proto::Ack& r = s.result();
  if (s.state() == proto::STATE_REJECTED) return fmt::format("rejected by {}: {}", s.node(), r.error());
  if (s.state() == proto::STATE_BUSY) return r.error();
  if ((s.state() == proto::STATE_CANCELED || s.state() == proto::STATE_PREEMPTED) && !r.error().empty()) {
    return fmt::format("command {} {}: {}", s.id(), StateName(s.state()), r.error());
  }
  if (s.state() == proto::STATE_EXPIRED && !r.error().empty()) {
    // "expired at ...: why", or the approval's "not approved in time: ..."
    return absl::StartsWith(r.error(), "expired") ? fmt::format("command {} {}", s.id(), r.error())
                                                  : fmt::format("command {} expired: {}", s.id(), r.error());
  }
  if (s.state() == proto::STATE_EXPIRED || s.state() == proto::STATE_CANCELED) {
    return fmt::format("command {} {} before {} acknowledged it", s.id(), StateName(s.state()), s.node());
  }
  if (r.outcome() == proto::OUTCOME_ERROR)
    return fmt::format("{} could not run the command: {}", s.node(), r.error());
  if (!r.error().empty()) return fmt::format("{}: {}", s.node(), r.error());
  return "";
}

void WriteAll(FILE* f, const std::string& data) {
  std::fwrite(data.data(), 1, data.size(), f);
  std::fflush(f);
}

// A fan-out prints exactly one line per targeted node on stdout (one JSON record with
// --json) as its command ends, then one for each node without a result when the wait
// is over, and a summary on stderr. However the station splits its answers (a wait is
// answered with the results that fit one message; the rest come with the next wait),
// every command is printed once: the ids still open are the ones asked for. Exit 0
// only when every node's command succeeded.
int FanOut(Client& client, const Globals& g, const proto::SubmitReply& submitted,
           absl::Duration wait, absl::Time deadline) {
  absl::flat_hash_map<std::string, std::string> open;  // command id -> node: no line yet
  for (const proto::CommandRef& ref : submitted.commands()) open.emplace(ref.id(), ref.node());
  const size_t total = open.size();
  size_t succeeded = 0;
  int rc = 0;
  auto print = [&](const CommandState& s, bool ended) {
    if (open.erase(s.id()) == 0) return;  // not ours, or printed already
    if (g.json) {
      PrintJson(s);
    } else if (s.state() == proto::STATE_AWAITING_APPROVAL) {
      fmt::print("{}: [awaiting approval ({}): stewardctl approve {}]\n", Escape(s.node()),
                 Escape(s.marks().approval().reason()), Escape(s.id()));
    } else {
      fmt::print("{}\n", ended ? FanOutLine(s)
                                : absl::StrCat(Escape(s.node()), ": [no result within ",
                                               absl::FormatDuration(wait), ": ", StateName(s.state()), "]"));
      std::fflush(stdout);
    }
    const int code = ended ? ExitStatusOf(s) : kExitUnknown;
    rc = std::max(rc, code);
    if (code == 0) ++succeeded;
  };
  auto open_ids = [&open] {
    std::vector<std::string> ids;
    ids.reserve(open.size());
    for (const auto& [id, node] : open) ids.push_back(id);
    return ids;
  };
  for (const CommandState& s : submitted.states()) {
    // Held for approval: said at once (it waits for a human, not for its node).
    if (IsTerminal(s.state()) || s.state() == proto::STATE_AWAITING_APPROVAL) print(s, IsTerminal(s.state()));
  }
  std::string trouble;  // why the station could not be asked
  while (!open.empty() && absl::Now() < deadline) {
    auto states = client.Wait(open_ids(), deadline - absl::Now(), /*any=*/true);
    if (!states.ok()) {
      trouble = std::string(states.status().message());
      break;
    }
    for (const CommandState& s : states->commands()) {
      if (IsTerminal(s.state())) print(s, true);
    }
  }
  // The wait is over: what each remaining command is doing (a show answer may hold
  // only some of them: ask again for the rest while it makes progress).
  while (!open.empty() && trouble.empty()) {
    const size_t before = open.size();
    auto late = client.Show(open_ids(), "", g.timeout);
    if (!late.ok()) {
      trouble = std::string(late.status().message());
      break;
    }
    for (const CommandState& s : late->commands()) print(s, IsTerminal(s.state()));
    if (open.size() == before) trouble = "the station did not say";
  }
  for (const auto& [id, node] : open) {
    if (g.json) {  // what is known: the command and its node
      CommandState unknown;
      unknown.set_id(id);
      unknown.set_node(node);
      PrintJson(unknown);
      continue;
    }
    fmt::print("{}: [no result within {}; state unknown: {}]\n", Escape(node),
               absl::FormatDuration(wait), Escape(trouble));
  }
  std::fflush(stdout);
  if (!open.empty()) rc = kExitUnknown;
  if (succeeded != total) {
    fmt::print(stderr,
               "stewardctl: {} of {} nodes succeeded; the others' lines say why (commands without a "
               "result stay queued and run when their nodes are heard from: stewardctl show {})\n",
               succeeded, total, Escape(submitted.request_id()));
  }
  return rc;
}

}  // namespace

// The exit status a finished command maps to, ssh style.
int ExitStatusOf(const CommandState& s) {
  const proto::Ack& r = s.result();
  if (!IsTerminal(s.state())) return kExitUnknown;
  if (s.state() == proto::STATE_BUSY) return kExitBusy;
  if (s.state() == proto::STATE_PREEMPTED) return kExitUnknown;
  if (s.state() == proto::STATE_REJECTED || s.state() == proto::STATE_EXPIRED ||
      s.state() == proto::STATE_CANCELED) {
    return kExitUnknown;
  }
  if (r.term_signal() != 0) return 128 + r.term_signal();
  if (r.outcome() == proto::OUTCOME_ERROR) return kExitUnknown;
  return r.exit_code() >= 0 ? r.exit_code() : kExitUnknown;
}

// Output of one node's command, raw, as ssh prints it.
void PrintResult(const CommandState& s, bool json, size_t stdout_from, size_t stderr_from) {
  if (json) return PrintJson(s);
  const proto::Ack& r = s.result();
  const std::string node = Escape(s.node());
  if (stdout_from < r.stdout().size()) WriteAll(stdout, r.stdout().substr(stdout_from));
  if (stderr_from < r.stderr().size()) WriteAll(stderr, r.stderr().substr(stderr_from));
  if (r.stdout_truncated()) fmt::print(stderr, "stewardctl: stdout of {} was truncated\n", node);
  if (r.stderr_truncated()) fmt::print(stderr, "stewardctl: stderr of {} was truncated\n", node);
  if (const std::string why = Why(s); !why.empty()) fmt::print(stderr, "stewardctl: {}\n", Escape(why));
}

// One line for one node's command in a fan-out: "NODE: OUTPUT", its stdout on one line
// (the final newline dropped, other control characters escaped), then its stderr
// after "[stderr]"; what did not simply succeed says so in brackets first:
// "NODE: [failed, exit 3] ...", "NODE: [rejected: why]".
std::string FanOutLine(const CommandState& s) {
  const proto::Ack& r = s.result();
  std::string line = absl::StrCat(Escape(s.node()), ":");
  if (ExitStatusOf(s) != 0) {
    absl::StrAppend(&line, " [", StateName(s.state()));
    if (r.term_signal() != 0) {
      absl::StrAppend(&line, ", signal ", r.term_signal());
    } else if (r.exit_code() != 0 && r.outcome() != proto::OUTCOME_ERROR) {
      absl::StrAppend(&line, ", exit ", r.exit_code());
    }
    if (!r.error().empty()) absl::StrAppend(&line, ": ", Escape(r.error()));
    line += "]";
  }
  auto add = [&line](absl::string_view label, absl::string_view text, bool truncated) {
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    if (!text.empty()) absl::StrAppend(&line, " ", label, Escape(text));
    if (truncated) absl::StrAppend(&line, " [", label.empty() ? "stdout " : "", "truncated]");
  };
  add("", r.stdout(), r.stdout_truncated());
  add("[stderr] ", r.stderr(), r.stderr_truncated());
  return line;
}

// A command held for approval: not run (yet), so exit kExitUnknown, saying how it goes on.
static int AwaitingApproval(const CommandState& s, bool json) {
  if (json) {
    PrintJson(s);
    return kExitUnknown;
  }
  return Fail(fmt::format("command {} to {} awaits approval ({}): another operator runs `stewardctl approve {}`; "
                          "it is sent then",
                          s.id(), s.node(), s.marks().approval().reason(), s.id()));
}

// Waits up to `wait` for the commands of `submitted` and prints them: a fan-out one line
// per node (FanOut), one node its output raw. The exit status: the highest of the
// commands'.
int Collect(Client& client, const Globals& g, const proto::SubmitReply& submitted, bool fanout,
            absl::Duration wait, absl::Time started) {
  const absl::Time deadline = started + wait;
  if (fanout) return FanOut(client, g, submitted, wait, deadline);
  if (submitted.commands_size() == 0) return Fail("the station sent no command");
  const std::string& id = submitted.commands(0).id();
  for (const CommandState& s : submitted.states()) {
    if (IsTerminal(s.state())) {
      PrintResult(s, g.json);
      return ExitStatusOf(s);
    }
    if (s.state() == proto::STATE_AWAITING_APPROVAL) return AwaitingApproval(s, g.json);
  }
  while (absl::Now() < deadline) {
    auto states = client.Wait({id}, deadline - absl::Now(), /*any=*/true);
    if (!states.ok()) return Fail(states.status());
    for (const CommandState& s : states->commands()) {
      PrintResult(s, g.json);
      return ExitStatusOf(s);
    }
  }
  auto late = client.Show({id}, "", g.timeout);
  if (!late.ok()) return Fail(late.status());
  if (late->commands_size() == 0) return Fail(fmt::format("command {} is not known to the station", id));
  const CommandState& s = late->commands(0);
  if (IsTerminal(s.state())) {  // ended just now
    PrintResult(s, g.json);
    return ExitStatusOf(s);
  }
  if (s.state() == proto::STATE_AWAITING_APPROVAL) return AwaitingApproval(s, g.json);
  if (s.state() == proto::STATE_RUNNING) {
    return Fail(fmt::format("command {} still running on {} after {} (stewardctl show {})", s.id(),
                            s.node(), absl::FormatDuration(wait), s.id()));
  }
  return Fail(fmt::format("node {} did not answer within {}; command {} stays {} (stewardctl show {})",
                          s.node(), absl::FormatDuration(wait), s.id(), StateName(s.state()), s.id()));
}

void PrintRefs(const Globals& g, const proto::SubmitReply& submitted) {
  for (const proto::CommandRef& ref : submitted.commands()) {
    if (g.json) {
      PrintJson(ref);
    } else {
      fmt::print("{} {}\n", Escape(ref.node()), Escape(ref.id()));
    }
  }
}

}  // namespace steward::ctl
