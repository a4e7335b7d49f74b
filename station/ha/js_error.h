// JetStream errors as absl::Status, with the broker's own words when nats.c kept some
// ("wrong last sequence: 7", "max age needs to be >= 100ms"), for the lease and the
// journal.
#pragma once

#include <nats/nats.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/nats.h"

namespace steward::station::ha {

// `code`: the JetStream error code when the call gave one (0: none).
inline absl::Status JsError(natsStatus s, int code, absl::string_view what) {
  const char* last = nats_GetLastError(nullptr);
  absl::string_view detail = last == nullptr ? "" : last;
  // Without nats.c's place in its sources: "(jsm.c:1033): ".
  if (const size_t end = detail.find("): "); absl::StartsWith(detail, "(") && end != absl::string_view::npos) {
    detail.remove_prefix(end + 3);
  }
  std::string text = detail.empty() ? std::string(what) : absl::StrCat(what, " (", detail, ")");
  if (code != 0) absl::StrAppend(&text, " [JetStream error ", code, "]");
  return nats::ToStatus(s, text);
}

}  // namespace steward::station::ha
