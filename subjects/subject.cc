// The subject grammar <node>.<command|event>.<method>.<domain>: token validation,
// building, parsing, subscription patterns and sanitizing of outside names.
#include "subjects/subject.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace steward::subjects {
namespace {

constexpr absl::string_view kGrammar = "<node>.<command|event>.<method>.<domain>";
// How much of an over-long token (or subject) an error message shows.
constexpr size_t kShownTokenPrefix = 16;
constexpr size_t kShownSubjectLength = 128;

bool IsContinuationByte(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// Cuts `text` to at most `max` bytes, backing off (at most 3 bytes) so a UTF-8
// sequence is not split when the bytes before the cut form one.
absl::string_view CutAtCharBoundary(absl::string_view text, size_t max) {
  if (text.size() <= max) return text;
  if (!IsContinuationByte(text[max])) return text.substr(0, max);
  for (size_t back = 1; back <= 3 && back <= max; ++back) {
    const char c = text[max - back];
    if (!IsContinuationByte(c)) {
      // A lead byte starts the split sequence: cut before it. Anything else means
      // the input is not UTF-8; cut at the byte limit.
      return static_cast<unsigned char>(c) >= 0xC0 ? text.substr(0, max - back)
                                                    : text.substr(0, max);
    }
  }
  return text.substr(0, max);
}

// `text` between double quotes, with control characters, '"' and '\' escaped so the
// message stays on one line. Bytes >= 0x80 are kept (UTF-8 stays readable).
std::string Quote(absl::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default:
        if (b < 0x20 || b == 0x7f) {
          out += "\\x";
          out += kHex[b >> 4];
          out += kHex[b & 0xF];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

// Quote, but long text is shown as its first `max` bytes and "...": "abc...".
std::string QuoteShort(absl::string_view text, size_t max) {
  if (text.size() <= max) return Quote(text);
  std::string quoted = Quote(CutAtCharBoundary(text, max));
  quoted.insert(quoted.size() - 1, "...");  // inside the closing quote
  return quoted;
}

// Why byte `c` may not appear in a token, or nullopt if it may.
std::optional<std::string> ByteProblem(char c) {
  const auto b = static_cast<unsigned char>(c);
  switch (c) {
    case ' ': return "a space";
    case '\t': return "a tab";
    case '\n': return "a newline";
    case '\r': return "a carriage return";
    case '.': return "'.'";
    case '*': return "'*'";
    case '>': return "'>'";
    default: break;
  }
  if (b < 0x20 || b == 0x7f) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex = "0x";
    hex += kHex[b >> 4];
    hex += kHex[b & 0xF];
    return absl::StrCat("control character ", hex, b == 0x7f ? " (DEL)" : "");
  }
  return std::nullopt;
}

bool IsValidByte(char c) { return !ByteProblem(c).has_value(); }

// Checks `token`; on failure the message reads "<label> "<token>" <problem>", e.g.
// `node name "ship 1" contains a space` or `token 2 is empty`.
absl::Status CheckToken(absl::string_view label, absl::string_view token) {
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat(label, " is empty"));
  if (token.size() > kMaxTokenLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, " ", QuoteShort(token, kShownTokenPrefix), " is ",
                     token.size(), " bytes, the limit is ", kMaxTokenLength));
  }
  for (const char c : token) {
    if (std::optional<std::string> problem = ByteProblem(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, " ", Quote(token), " contains ", *problem));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckKind(Kind kind) {
  if (kind == Kind::kCommand || kind == Kind::kEvent) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("kind ", static_cast<int>(kind), " is not command or event"));
}

}  // namespace

absl::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kCommand: return "command";
    case Kind::kEvent: return "event";
  }
  return "invalid-kind";
}

absl::StatusOr<Kind> ParseKind(absl::string_view text) {
  if (text == "command") return Kind::kCommand;
  if (text == "event") return Kind::kEvent;
  return absl::InvalidArgumentError(
      absl::StrCat("kind ", QuoteShort(text, kShownTokenPrefix), " is not command or event"));
}

absl::Status ValidateToken(absl::string_view token) { return CheckToken("token", token); }

std::string Subject::ToString() const {
  return absl::StrCat(node, ".", KindName(kind), ".", method, ".", domain);
}

absl::StatusOr<Subject> Make(absl::string_view node, Kind kind, absl::string_view method,
                             absl::string_view domain) {
  if (absl::Status s = CheckToken("node name", node); !s.ok()) return s;
  if (absl::Status s = CheckKind(kind); !s.ok()) return s;
  if (absl::Status s = CheckToken("method name", method); !s.ok()) return s;
  if (absl::Status s = CheckToken("domain name", domain); !s.ok()) return s;
  return Subject{std::string(node), kind, std::string(method), std::string(domain)};
}

absl::StatusOr<Subject> Parse(absl::string_view text) {
  const std::string shown = QuoteShort(text, kShownSubjectLength);
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject \"\" is empty, want ", kGrammar));
  }
  const std::vector<absl::string_view> tokens = absl::StrSplit(text, '.');
  if (tokens.size() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject ", shown, " has ", tokens.size(),
                     tokens.size() == 1 ? " token" : " tokens", ", want 4 (", kGrammar, ")"));
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (absl::Status s = CheckToken(absl::StrCat("token ", i + 1), tokens[i]); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid subject ", shown, ": ", s.message()));
    }
  }
  absl::StatusOr<Kind> kind = ParseKind(tokens[1]);
  if (!kind.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid subject ", shown, ": ", kind.status().message()));
  }
  return Subject{std::string(tokens[0]), *kind, std::string(tokens[2]),
                 std::string(tokens[3])};
}

absl::StatusOr<std::string> KindPattern(absl::string_view node, Kind kind) {
  if (absl::Status s = CheckToken("node name", node); !s.ok()) return s;
  if (absl::Status s = CheckKind(kind); !s.ok()) return s;
  return absl::StrCat(node, ".", KindName(kind), ".*.*");
}

absl::StatusOr<std::string> MethodPattern(absl::string_view node, Kind kind,
                                          absl::string_view method) {
  if (absl::Status s = CheckToken("node name", node); !s.ok()) return s;
  if (absl::Status s = CheckKind(kind); !s.ok()) return s;
  if (absl::Status s = CheckToken("method name", method); !s.ok()) return s;
  return absl::StrCat(node, ".", KindName(kind), ".", method, ".*");
}

absl::StatusOr<std::string> NodePattern(absl::string_view node) {
  if (absl::Status s = CheckToken("node name", node); !s.ok()) return s;
  return absl::StrCat(node, ".>");
}

absl::StatusOr<std::string> DebugStream(absl::string_view op, absl::string_view node, absl::string_view id) {
  if (absl::Status s = CheckToken("operator name", op); !s.ok()) return s;
  if (absl::Status s = CheckToken("node name", node); !s.ok()) return s;
  if (absl::Status s = CheckToken("stream id", id); !s.ok()) return s;
  return absl::StrCat(kDebugPrefix, ".", op, ".", node, ".", id);
}

absl::Status ValidateDebugStream(absl::string_view subject, absl::string_view node) {
  const std::vector<absl::string_view> t = absl::StrSplit(subject, '.');
  if (t.size() != 4 || t[0] != kDebugPrefix || t[2] != node) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a debug stream of ", node, " (", kDebugPrefix, ".OPERATOR.", node, ".ID): ", subject));
  }
  return DebugStream(t[1], t[2], t[3]).status();
}

absl::StatusOr<std::string> DebugPublishPattern(absl::string_view node) {
  if (absl::Status s = CheckToken("node name", node); !s.ok()) return s;
  return absl::StrCat(kDebugPrefix, ".*.", node, ".>");
}

absl::StatusOr<std::string> DebugSubscribePattern(absl::string_view op) {
  if (absl::Status s = CheckToken("operator name", op); !s.ok()) return s;
  return absl::StrCat(kDebugPrefix, ".", op, ".>");
}

std::string Sanitize(absl::string_view text) {
  if (text.empty()) return "_";
  std::string out(CutAtCharBoundary(text, kMaxTokenLength));
  for (char& c : out) {
    if (!IsValidByte(c)) c = '_';
  }
  return out;
}

}  // namespace steward::subjects
