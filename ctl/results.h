// How stewardctl prints what became of sent commands (send, retry, sends by target,
// rollouts): one node's output raw, as ssh prints it; a fan-out exactly one line per
// node; and the exit status each command maps to.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "ctl/client.h"
#include "ctl/ctl.h"
#include "proto/steward.pb.h"

namespace steward::ctl {

// An exclusive command found its node busy (EX_TEMPFAIL: try again later).
inline constexpr int kExitBusy = 75;

// The exit status a finished command maps to, ssh style: its exit code, 128 + a signal,
// kExitBusy, or kExitUnknown (not run, or its fate not known).
int ExitStatusOf(const proto::CommandState& s);
// Output of one node's command, raw (stdout to stdout, stderr to stderr), from byte
// `stdout_from` / `stderr_from` on (what a follower has not printed yet), then why it
// did not simply exit; one JSON record with `json`.
void PrintResult(const proto::CommandState& s, bool json, size_t stdout_from = 0, size_t stderr_from = 0);
// One line for one node's command in a fan-out: "NODE: OUTPUT" (escaped, on one line),
// "NODE: [failed, exit 3] ...", "NODE: [rejected: why]".
std::string FanOutLine(const proto::CommandState& s);
// Waits until `wait` after `started` for the commands of `submitted` and prints them: a
// fan-out one line per node, however the station splits its answers, one node its
// output raw. `started`: when the wait began (a send-and-wait's station waited part of
// it already). Returns the highest exit status of the commands.
int Collect(Client& client, const Globals& g, const proto::SubmitReply& submitted, bool fanout,
            absl::Duration wait, absl::Time started = absl::Now());
// "NODE ID" per command (a JSON CommandRef each with --json): what --no-wait prints.
void PrintRefs(const Globals& g, const proto::SubmitReply& submitted);

}  // namespace steward::ctl
