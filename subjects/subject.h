// The subject grammar, <node>.<command|event>.<method>.<domain>, and the only code
// that builds or parses subject strings. Every name that comes from outside (config,
// messages, CLI) passes ValidateToken before it becomes part of a subject, so a node
// name can never widen a subscription into a wildcard.
//
//   auto s = steward::subjects::Parse("ship2.command.shellcommand.operatingsystem");
//   if (!s.ok()) return s.status();  // the message names the bad token and the rule
//   s->method == "shellcommand";
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace steward::subjects {

enum class Kind { kCommand, kEvent };

// "command" or "event".
absl::string_view KindName(Kind kind);
// Parses "command" / "event"; InvalidArgument otherwise.
absl::StatusOr<Kind> ParseKind(absl::string_view text);

// Longest token accepted, in bytes.
inline constexpr size_t kMaxTokenLength = 64;

// ValidateToken accepts a non-empty token of at most kMaxTokenLength bytes made of
// printable characters other than space, '.', '*' and '>'. Control characters (tab,
// newline, DEL, ...) are refused too. The error message names the token and the rule
// it breaks.
absl::Status ValidateToken(absl::string_view token);

struct Subject {
  std::string node;
  Kind kind = Kind::kCommand;
  std::string method;
  std::string domain;

  // "<node>.<kind>.<method>.<domain>". Precondition: built by Make or Parse.
  std::string ToString() const;
  bool operator==(const Subject&) const = default;
};

// Make validates each token and returns the subject.
absl::StatusOr<Subject> Make(absl::string_view node, Kind kind, absl::string_view method,
                             absl::string_view domain);

// Parse splits on '.', requires exactly four tokens, a valid kind and valid tokens.
absl::StatusOr<Subject> Parse(absl::string_view text);

// Subscription patterns (the only place wildcards are written):
// "<node>.<kind>.*.*": every method and domain of one kind addressed to `node`.
absl::StatusOr<std::string> KindPattern(absl::string_view node, Kind kind);
// "<node>.<kind>.<method>.*"
absl::StatusOr<std::string> MethodPattern(absl::string_view node, Kind kind,
                                          absl::string_view method);
// "<node>.>": everything addressed to `node` (used by broker permissions).
absl::StatusOr<std::string> NodePattern(absl::string_view node);

// Debug streams (stewardctl debug): a node's own log lines go, best effort, to
// "_DEBUG.<operator>.<node>.<id>" and below it; the broker lets only that operator read
// it and only that node write it (DebugPublishPattern, DebugSubscribePattern).
inline constexpr char kDebugPrefix[] = "_DEBUG";
absl::StatusOr<std::string> DebugStream(absl::string_view op, absl::string_view node, absl::string_view id);
// OK when `subject` is a debug stream of `node` (what an agent checks before it streams).
absl::Status ValidateDebugStream(absl::string_view subject, absl::string_view node);
// "_DEBUG.*.<node>.>" (what a node may publish) and "_DEBUG.<operator>.>" (read).
absl::StatusOr<std::string> DebugPublishPattern(absl::string_view node);
absl::StatusOr<std::string> DebugSubscribePattern(absl::string_view op);

// Sanitize maps arbitrary text (a syslog tag, a hostname) to a valid token: invalid
// bytes become '_', the result is cut to kMaxTokenLength, and empty input gives "_".
std::string Sanitize(absl::string_view text);

}  // namespace steward::subjects
