// Hand-written JSON for CLI output (protobuf's JSON would base64 the output bytes).
#include "station/json.h"

#include <fmt/format.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/protocol.h"

namespace steward::station {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid.
size_t Utf8Len(absl::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  }
  return n;
}

std::string Strings(const google::protobuf::RepeatedPtrField<std::string>& items) {
  std::string out = "[";
  for (int i = 0; i < items.size(); ++i) absl::StrAppend(&out, i ? "," : "", JsonString(items[i]));
  return out + "]";
}

}  // namespace

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    const size_t n = Utf8Len(text, i);
    if (n == 0) {
      absl::StrAppend(&out, fmt::format("\\u{:04x}", static_cast<unsigned char>(c)));
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(text.data() + i, n);
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      absl::StrAppend(&out, fmt::format("\\u{:04x}", static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
    i += n;
  }
  return out + "\"";
}

std::string NodeJson(const proto::NodeInfo& n) {
  return fmt::format(
      "{{\"node\":{},\"online\":{},\"since_unix_ms\":{},\"last_heard_unix_ms\":{},\"version\":{},"
      "\"hostname\":{},\"os\":{},\"methods\":{},\"heartbeat_ms\":{},\"load1\":{},"
      "\"last_command_id\":{},\"last_command_state\":{},\"pending\":{},\"errors\":{},"
      "\"last_log_unix_ms\":{},\"log_lines\":{},\"log_errors\":{},\"log_errors_per_min\":{},"
      "\"log_dropped\":{}}}",
      JsonString(n.name()), n.online() ? "true" : "false", n.since_unix_ms(), n.last_heard_unix_ms(),
      JsonString(n.version()), JsonString(n.hostname()), JsonString(n.os()), Strings(n.methods()),
      n.heartbeat_ms(), n.load1(), JsonString(n.last_command_id()), JsonString(n.last_command_state()),
      n.pending(), n.errors(), n.last_log_unix_ms(), n.log_lines(), n.log_errors(), n.log_errors_per_min(),
      n.log_dropped());
}

std::string CommandJson(const proto::CommandState& c) {
  const proto::Envelope& e = c.command();
  const proto::Ack& r = c.result();
  std::string result = "null";
  if (c.has_result()) {
    result = fmt::format(
        "{{\"outcome\":{},\"exit_code\":{},\"signal\":{},\"stdout\":{},\"stdout_truncated\":{},"
        "\"stderr\":{},\"stderr_truncated\":{},\"error\":{},\"started_unix_ms\":{},"
        "\"finished_unix_ms\":{}}}",
        JsonString(OutcomeName(r.outcome())), r.exit_code(), r.term_signal(), JsonString(r.stdout()),
        r.stdout_truncated() ? "true" : "false", JsonString(r.stderr()),
        r.stderr_truncated() ? "true" : "false", JsonString(r.error()), r.started_unix_ms(),
        r.finished_unix_ms());
  }
  return fmt::format(
      "{{\"id\":{},\"node\":{},\"request_id\":{},\"state\":{},\"method\":{},\"domain\":{},"
      "\"argv\":{},\"operator\":{},\"attempts\":{},\"created_unix_ms\":{},\"updated_unix_ms\":{},"
      "\"expires_unix_ms\":{},\"result\":{}}}",
      JsonString(c.id()), JsonString(c.node()), JsonString(c.request_id()), JsonString(StateName(c.state())),
      JsonString(e.method()), JsonString(e.domain()), Strings(e.argv()), JsonString(e.operator_()),
      c.attempts(), c.created_unix_ms(), c.updated_unix_ms(), e.expires_unix_ms(), result);
}

}  // namespace steward::station
