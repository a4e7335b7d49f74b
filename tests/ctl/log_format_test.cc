// Tests for ctl/log_format.h: the times `stewardctl logs --since/--until` take, and the
// short and verbose forms of a line (remote text escaped).
#include "ctl/log_format.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/time/civil_time.h"

namespace steward::ctl {
namespace {

absl::TimeZone Zone(const char* name) {
  absl::TimeZone tz;
  REQUIRE(absl::LoadTimeZone(name, &tz));
  return tz;
}

TEST_CASE("log times: durations ago, words, dates in the operator's zone, RFC 3339", "[ctl]") {
  const absl::TimeZone berlin = Zone("Europe/Berlin");
  const absl::Time now = absl::FromCivil(absl::CivilSecond(2026, 11, 30, 12, 30, 0), berlin);
  auto at = [&](const char* text) {
    auto t = ParseLogTime(text, now, berlin);
    INFO(text << ": " << t.status().ToString());
    REQUIRE(t.ok());
    return absl::ToCivilSecond(*t, berlin);
  };
  CHECK(at("10m") == absl::CivilSecond(2026, 11, 30, 12, 20, 0));
  CHECK(at("1h30m") == absl::CivilSecond(2026, 11, 30, 11, 0, 0));
  CHECK(at("now") == absl::CivilSecond(2026, 11, 30, 12, 30, 0));
  CHECK(at("today") == absl::CivilSecond(2026, 11, 30, 0, 0, 0));
  CHECK(at("yesterday") == absl::CivilSecond(2026, 11, 29, 0, 0, 0));
  CHECK(at("2026-11-30") == absl::CivilSecond(2026, 11, 30, 0, 0, 0));
  CHECK(at("2026-11-30 10:00") == absl::CivilSecond(2026, 11, 30, 10, 0, 0));
  CHECK(at("2026-11-30T10:00:05") == absl::CivilSecond(2026, 11, 30, 10, 0, 5));
  CHECK(at("2026-11-30 10:00:05.250") == absl::CivilSecond(2026, 11, 30, 10, 0, 5));
  CHECK(at("2026-11-30T10:00:00Z") == absl::CivilSecond(2026, 11, 30, 11, 0, 0));  // CET is UTC+1
  CHECK(at("2026-11-30T10:00:00+03:00") == absl::CivilSecond(2026, 11, 30, 8, 0, 0));
  CHECK(at("@0") == absl::CivilSecond(1970, 1, 1, 1, 0, 0));
  for (const char* bad : {"", "soon", "-5m", "2026-13-01", "10:00", "2026-11-30 25:00"}) {
    INFO(bad);
    CHECK(absl::IsInvalidArgument(ParseLogTime(bad, now, berlin).status()));
  }
}

proto::LogEntry Entry() {
  proto::LogEntry e;
  e.set_node("ship1");
  e.set_cursor("42");
  proto::LogRecord* r = e.mutable_record();
  r->set_format("rfc3164");
  r->set_facility(3);
  r->set_severity(4);
  r->set_timestamp_unix_us(absl::ToUnixMicros(absl::FromCivil(absl::CivilSecond(2026, 11, 30, 10, 0, 1), absl::UTCTimeZone())) + 123456);
  r->set_received_unix_us(r->timestamp_unix_us() + 1000);
  r->set_hostname("edge-7");
  r->set_app_name("nginx");
  r->set_procid("123");
  r->set_domain("web");
  r->set_source("udp:0.0.0.0:514");
  r->set_message("upstream timed out \x1b[2J");
  return e;
}

TEST_CASE("short log lines name the time, node, host, domain, app and severity", "[ctl]") {
  proto::LogEntry e = Entry();
  CHECK(ShortLogLine(e, absl::UTCTimeZone()) ==
        "2026-11-30 10:00:01.123 ship1 edge-7 web/nginx[123] warning: upstream timed out \\x1b[2J\n");
  CHECK(ShortLogLine(e, Zone("Europe/Berlin")).rfind("2026-11-30 11:00:01.123 ", 0) == 0);
  e.mutable_record()->set_domain("nginx");  // the domain is the app's: said once
  e.mutable_record()->clear_hostname();
  e.mutable_record()->clear_procid();
  e.mutable_record()->set_truncated(true);
  CHECK(ShortLogLine(e, absl::UTCTimeZone()) ==
        "2026-11-30 10:00:01.123 ship1 - nginx warning: upstream timed out \\x1b[2J [truncated]\n");
}

TEST_CASE("verbose log entries show every field", "[ctl]") {
  proto::LogEntry e = Entry();
  e.mutable_record()->set_timestamp_unix_us(0);
  const std::string v = VerboseLogEntry(e, absl::UTCTimeZone());
  for (const char* want : {"ship1 2026-11-30 10:00:01.124456 +00:00 (cursor 42)\n", "    timestamp: - (none",
                           "    received: 2026-11-30 10:00:01.124456 +00:00\n", "    host: edge-7\n",
                           "    app: nginx\n", "    procid: 123\n", "    msgid: -\n", "    domain: web\n",
                           "    facility: 3\n", "    severity: warning (4)\n", "    format: rfc3164\n",
                           "    source: udp:0.0.0.0:514\n", "    message: upstream timed out \\x1b[2J\n"}) {
    INFO(want);
    CHECK(v.find(want) != std::string::npos);
  }
}

}  // namespace
}  // namespace steward::ctl
