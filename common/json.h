// JSON of steward's records (proto::CommandState, proto::NodeInfo, proto::LogEntry, any
// message of proto/steward.proto), one shape for every surface that prints them:
// `stewardctl --json` and the station's HTTP API.
//
//   fmt::print("{}\n", steward::json::ToJson(state).dump());
//   // {"id":"01J...","node":"ship1","state":"succeeded","command":{...},"result":{...},...}
//
// The rules:
// - Every field is present, under its proto field name; a message field that is not set
//   is null; repeated fields are arrays; 64-bit integers are JSON numbers.
// - Enums by name: a command's state as StateName ("timed_out"), a node's status as
//   NodeStatusName ("online"), an outcome as OutcomeName, a stage as StageName, any
//   other enum as its value name without the prefix, in lower case ("command").
// - Text is always valid UTF-8, and nothing is lost: a string or bytes field whose
//   value is valid UTF-8 (strictly: no overlongs, surrogates or code points above
//   U+10FFFF) is a JSON string under its name; one that is not is carried base64
//   encoded under "<name>_base64" instead (for a repeated field, every element). Keys
//   and signatures (bytes fields named "signature" or "*_key") are always
//   "<name>_base64".
#pragma once

#include <google/protobuf/message.h>

#include <nlohmann/json.hpp>

#include "absl/strings/string_view.h"

namespace steward::json {

// ToJson converts `message` by the rules above, fields in the order the .proto declares
// them.
nlohmann::ordered_json ToJson(const google::protobuf::Message& message);

// IsValidUtf8 says whether `text` is well-formed UTF-8 (no overlongs, surrogates or
// code points above U+10FFFF): what a JSON string may hold.
bool IsValidUtf8(absl::string_view text);

}  // namespace steward::json
