// JSON renderings of steward records for `stewardctl --json`: one object per record,
// text fields (including command output) as JSON strings, invalid UTF-8 bytes escaped
// as \u00XX so nothing is lost or rejected.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "proto/steward.pb.h"

namespace steward::station {

std::string JsonString(absl::string_view text);
std::string NodeJson(const proto::NodeInfo& n);
std::string CommandJson(const proto::CommandState& c);

}  // namespace steward::station
