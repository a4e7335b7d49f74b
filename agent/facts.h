// Facts: what a node reports about itself in every hello, for targeting (os == "debian",
// fact.fleet == "north"): the ID and VERSION_ID of os-release, uname's machine and
// release, and custom facts from a file of key=value lines that an installer or an
// operator writes on the unit:
//
//   # /etc/steward/facts
//   fleet = north
//   radar=furuno-2117
//
// Blank lines and lines starting with # are skipped; keys follow targets::ValidateKey,
// values targets::ValidateValue (a line that does not is reported and skipped). The
// file is read again for every hello, so a change shows at the station within a
// heartbeat, without a restart.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "proto/steward.pb.h"

namespace steward::agent {

struct FactsOptions {
  std::string os_release = "/etc/os-release";  // falls back to /usr/lib/os-release
  std::string file;                            // custom facts; "" for none
};

// ReadFacts gathers the facts now. `problems` gets one line per thing that could not be
// read (a missing facts file, a bad line); the facts read are returned regardless.
proto::Facts ReadFacts(const FactsOptions& options, std::vector<std::string>* problems);

// ParseFactLines reads key=value lines into `facts` (custom); `where` names the source
// in problems ("facts.conf line 3: ...").
void ParseFactLines(absl::string_view text, absl::string_view where, proto::Facts& facts,
                    std::vector<std::string>* problems);

}  // namespace steward::agent
