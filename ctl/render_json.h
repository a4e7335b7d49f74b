// JSON output of stewardctl (--json): one object per line, in the shape of common/json.h
// (the station's HTTP API prints the same).
#pragma once

#include <google/protobuf/message.h>

namespace steward::ctl {

// PrintJson writes `record` as one line of JSON on stdout and flushes it.
void PrintJson(const google::protobuf::Message& record);

}  // namespace steward::ctl
