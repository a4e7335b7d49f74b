// libFuzzer target for the syslog parser. The first byte picks max_message_bytes
// (16..4096), the rest is the frame. Parse never fails; the record it returns must be
// within the documented ranges and survive a serialize / parse round trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/syslog/parser.h"
#include "fuzz/fuzz_check.h"
#include "proto/steward.pb.h"

namespace syslog = steward::agent::syslog;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  syslog::ParseOptions options;
  options.max_message_bytes = 16 + size_t{data[0]} * (4096 - 16) / 255;
  const absl::string_view frame(reinterpret_cast<const char*>(data + 1), size - 1);
  // A fixed receive time in early January exercises the RFC 3164 year rollback.
  const absl::Time received = absl::FromUnixSeconds(1704153600);  // 2024-01-02T00:00:00Z

  const steward::proto::LogRecord r = syslog::Parse(frame, received, options);
  FUZZ_CHECK(r.format() == "rfc5424" || r.format() == "rfc3164" || r.format() == "raw");
  FUZZ_CHECK(r.parse_error() == (r.format() == "raw"));
  FUZZ_CHECK(r.facility() >= -1 && r.facility() <= 23);
  FUZZ_CHECK(r.severity() >= -1 && r.severity() <= 7);

  const std::string bytes = r.SerializeAsString();
  steward::proto::LogRecord back;
  FUZZ_CHECK(back.ParseFromString(bytes));
  FUZZ_CHECK(back.SerializeAsString() == bytes);
  return 0;
}
