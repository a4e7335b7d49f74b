// The syslog parts of the agent's command line, read into what the inputs are made
// with: files to tail (PATH[:DOMAIN[:SEVERITY]]) and the zones RFC 3164 timestamps are
// read in (ZONE, or INPUT=ZONE for one input). Bad values are InvalidArgument, saying
// what was expected. Pure functions, thread-safe.
//
//   ParseTail("/var/log/app.log:myapp:warning") -> {path, "myapp", 4}
//   ParseZones({"Europe/Berlin", "udp:0.0.0.0:514=America/New_York"}, &zones)
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace steward::agent::syslog {

// A file to tail: its lines go to `domain` ("": each line's app-name); lines without a
// PRI of their own (plain text, or BSD lines as files hold them) get `severity`.
struct TailSpec {
  std::string path;
  std::string domain;
  int severity = 5;  // notice: RFC 3164's default
};

// "PATH", "PATH:DOMAIN", "PATH:DOMAIN:SEVERITY" or "PATH::SEVERITY". A PATH holding ':'
// is taken whole when what follows its last ':' is not a domain or severity.
absl::StatusOr<TailSpec> ParseTail(absl::string_view spec);

// Where RFC 3164 timestamps (no zone of their own) are read: `fallback` unless the
// input has a zone of its own. Inputs are named as configured: "udp:HOST:PORT",
// "tcp:HOST:PORT", "file:PATH".
struct Zones {
  absl::TimeZone fallback = absl::LocalTimeZone();
  std::map<std::string, absl::TimeZone> by_input;

  absl::TimeZone For(const std::string& input) const;
};

// Entries "ZONE" (every input: an IANA name such as Europe/Berlin, "UTC" or "local")
// and "INPUT=ZONE".
absl::StatusOr<Zones> ParseZones(const std::vector<std::string>& specs);

}  // namespace steward::agent::syslog
