// LogRecord <-> log_lines row.
#include "station/ledger/log_row.h"

#include <array>
#include <utility>

namespace steward::station::ledger {
namespace {

// flags: bits 0-4 facility + 1 (0: unknown; kFacilityInRest: in `rest`), bits 5-7 the
// format (0: in `rest`), then one bit each.
constexpr int64_t kFacilityMask = 0x1f;
constexpr int64_t kFacilityInRest = 0x1f;
constexpr int kFormatShift = 5;
constexpr int64_t kFormatMask = 0x7;
constexpr int64_t kParseError = 1 << 8;
constexpr int64_t kTruncated = 1 << 9;
constexpr int64_t kHasTimestamp = 1 << 10;
// Format codes 1.. by index + 1.
constexpr std::array<absl::string_view, 4> kFormats = {"rfc5424", "rfc3164", "raw", "text"};

int64_t FormatCode(absl::string_view format) {
  for (size_t i = 0; i < kFormats.size(); ++i) {
    if (kFormats[i] == format) return static_cast<int64_t>(i + 1);
  }
  return 0;
}

}  // namespace

LogRow ToRow(proto::LogRecord record) {
  LogRow row;
  row.severity = record.severity();
  row.ts_us = record.timestamp_unix_us() != 0 ? record.timestamp_unix_us() : record.received_unix_us();
  row.received_us = record.received_unix_us();
  row.domain = std::move(*record.mutable_domain());
  row.host = std::move(*record.mutable_hostname());
  row.app = std::move(*record.mutable_app_name());
  row.message = std::move(*record.mutable_message());
  const bool parse_error = record.parse_error();
  const bool truncated = record.truncated();
  const bool has_timestamp = record.timestamp_unix_us() != 0;
  // What is left is the rest, once the fields in columns are cleared (a field added to
  // LogRecord later lands here by itself).
  proto::LogRecord& rest = record;
  for (auto clear : {&proto::LogRecord::clear_domain, &proto::LogRecord::clear_hostname,
                     &proto::LogRecord::clear_app_name, &proto::LogRecord::clear_severity,
                     &proto::LogRecord::clear_timestamp_unix_us, &proto::LogRecord::clear_received_unix_us,
                     &proto::LogRecord::clear_message, &proto::LogRecord::clear_parse_error,
                     &proto::LogRecord::clear_truncated}) {
    (rest.*clear)();
  }
  int64_t flags = 0;
  if (record.facility() >= -1 && record.facility() < kFacilityInRest - 1) {
    flags |= record.facility() + 1;
    rest.clear_facility();
  } else {
    flags |= kFacilityInRest;
  }
  if (const int64_t code = FormatCode(record.format()); code != 0) {
    flags |= code << kFormatShift;
    rest.clear_format();
  }
  if (parse_error) flags |= kParseError;
  if (truncated) flags |= kTruncated;
  if (has_timestamp) flags |= kHasTimestamp;
  row.flags = flags;
  row.rest = rest.SerializeAsString();
  return row;
}

absl::StatusOr<proto::LogRecord> FromRow(const LogRowView& row) {
  proto::LogRecord r;
  if (!r.ParseFromArray(row.rest.data(), static_cast<int>(row.rest.size()))) {
    return absl::DataLossError("corrupt log record");
  }
  r.set_domain(std::string(row.domain));
  r.set_hostname(std::string(row.host));
  r.set_app_name(std::string(row.app));
  r.set_severity(static_cast<int32_t>(row.severity));
  if ((row.flags & kHasTimestamp) != 0) r.set_timestamp_unix_us(row.ts_us);
  r.set_received_unix_us(row.received_us);
  r.set_message(std::string(row.message));
  if ((row.flags & kFacilityMask) != kFacilityInRest) {
    r.set_facility(static_cast<int32_t>((row.flags & kFacilityMask) - 1));
  }
  if (const int64_t code = (row.flags >> kFormatShift) & kFormatMask; code != 0 && code <= 4) {
    r.set_format(std::string(kFormats[static_cast<size_t>(code - 1)]));
  }
  r.set_parse_error((row.flags & kParseError) != 0);
  r.set_truncated((row.flags & kTruncated) != 0);
  return r;
}

}  // namespace steward::station::ledger
