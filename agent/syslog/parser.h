// Syslog parsing: RFC 5424 and RFC 3164 (BSD) messages into LogRecords. Parsing never
// fails: a frame that is neither is kept whole as format "raw" with parse_error set and
// the reason in parse_problem (or, for inputs of plain text, as format "text"), never
// dropped. Oversized messages are cut to the limit
// and marked truncated; invalid UTF-8 is kept as bytes. Pure functions, thread-safe.
//
//   proto::LogRecord r = syslog::Parse("<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - 'su root' failed",
//                                      absl::Now(), {});
//   r.severity() == 2; r.facility() == 4; r.app_name() == "su";
#pragma once

#include <cstddef>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/severity.h"
#include "proto/steward.pb.h"

namespace steward::agent::syslog {

struct ParseOptions {
  size_t max_message_bytes = 64 * 1024;  // the whole frame is cut to this first
  // RFC 3164 timestamps have no year and no zone: the year is taken from `received`
  // (the previous year when that would put the message more than a day in the
  // future, for December lines read in January), the zone is this one.
  absl::TimeZone local_zone = absl::UTCTimeZone();
  // The severity of a line without a PRI (RFC 3164 4.3.3's default PRI is user.notice).
  int no_pri_severity = 5;
  // A line that is neither RFC 5424 nor RFC 3164 is plain text (format "text", facility
  // user, no_pri_severity), not a parse error: an application's own log file.
  bool plain_text = false;
};

// Parse one frame (one message, without its trailing newline / framing).
// `received` fills received_unix_us. source and domain are left empty.
proto::LogRecord Parse(absl::string_view frame, absl::Time received, const ParseOptions& options);

// Severity names (one table for the parser and stewardctl: common/severity.h).
using ::steward::SeverityFromName;
using ::steward::SeverityName;

}  // namespace steward::agent::syslog
