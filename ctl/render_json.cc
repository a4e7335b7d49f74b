// stewardctl's JSON lines; see render_json.h.
#include "ctl/render_json.h"

#include <cstdio>

#include <fmt/format.h>

#include "common/json.h"

namespace steward::ctl {

void PrintJson(const google::protobuf::Message& record) {
  fmt::print("{}\n", json::ToJson(record).dump());
  std::fflush(stdout);
}

}  // namespace steward::ctl
