// Following a command's output as it is produced (issue 13 part 3): `stewardctl watch
// ID` and `send --follow`. The station relays the chunks agents stream
// (station/output_api.h) to an inbox of ours; we subscribe to it first, then ask for
// what the station holds (and to be followed), so nothing falls between the two:
// chunks are printed in the order of their numbers, each once; a gap is asked for
// again; when the command ends, whatever the live view lacks is printed from the
// result (the ledger's whole output), then why it did not simply exit.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "ctl/client.h"
#include "ctl/ctl.h"

namespace steward::ctl {

// Follows command `id` until it ends (or `wait` passed, when positive) and returns its
// exit status as a plain send would (ExitStatusOf; kExitUnknown if it did not end).
// With --json, only the final record is printed.
int Follow(Client& client, const Globals& g, const std::string& id, absl::Duration wait);

}  // namespace steward::ctl
