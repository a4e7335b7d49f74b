// The syslog flags read (agent/syslog/config.h) and the parser options they set: tail
// specs with domain and severity, zones for every input or one, and lines of plain
// text or without a PRI parsed as their input says.
#include "agent/syslog/config.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/time/civil_time.h"
#include "agent/syslog/parser.h"

namespace steward::agent::syslog {
namespace {

TEST_CASE("Tail specs: path, domain and severity", "[syslog]") {
  auto plain = ParseTail("/var/log/app.log");
  REQUIRE(plain.ok());
  CHECK(plain->path == "/var/log/app.log");
  CHECK(plain->domain.empty());
  CHECK(plain->severity == 5);
  auto domain = ParseTail("/var/log/app.log:myapp");
  REQUIRE(domain.ok());
  CHECK(domain->domain == "myapp");
  CHECK(domain->severity == 5);
  auto both = ParseTail("/var/log/app.log:myapp:warning");
  REQUIRE(both.ok());
  CHECK(both->path == "/var/log/app.log");
  CHECK(both->domain == "myapp");
  CHECK(both->severity == 4);
  auto no_domain = ParseTail("/var/log/app.log::err");
  REQUIRE(no_domain.ok());
  CHECK(no_domain->domain.empty());
  CHECK(no_domain->severity == 3);
  auto colons = ParseTail("/srv/a:b/app.log:myapp:info");
  REQUIRE(colons.ok());
  CHECK(colons->path == "/srv/a:b/app.log");
  CHECK(colons->severity == 6);
  CHECK(absl::IsInvalidArgument(ParseTail("").status()));
  CHECK(absl::IsInvalidArgument(ParseTail("/x.log:bad.domain").status()));
}

TEST_CASE("Zones: one for every input, or one input's own", "[syslog]") {
  auto none = ParseZones({});
  REQUIRE(none.ok());
  CHECK(none->For("udp:0.0.0.0:514") == absl::LocalTimeZone());
  auto zones = ParseZones({"Asia/Tokyo", "udp:0.0.0.0:514=America/New_York", "file:/var/log/x=UTC"});
  REQUIRE(zones.ok());
  CHECK(zones->For("tcp:0.0.0.0:514").name() == "Asia/Tokyo");
  CHECK(zones->For("udp:0.0.0.0:514").name() == "America/New_York");
  CHECK(zones->For("file:/var/log/x").name() == "UTC");
  CHECK(absl::IsInvalidArgument(ParseZones({"Mars/Olympus"}).status()));
  CHECK(absl::IsInvalidArgument(ParseZones({"0.0.0.0:514=UTC"}).status()));  // which kind of input?
  CHECK(ParseZones({"local"}).ok());
}

TEST_CASE("Lines are parsed as their input says: zone, severity, plain text", "[syslog]") {
  const absl::Time received = absl::FromCivil(absl::CivilSecond(2026, 3, 1, 12, 0, 0), absl::UTCTimeZone());
  ParseOptions options;
  absl::LoadTimeZone("America/New_York", &options.local_zone);
  const proto::LogRecord zoned = Parse("<13>Jan  5 10:11:12 host app: x", received, options);
  CHECK(absl::FromUnixMicros(zoned.timestamp_unix_us()) ==
        absl::FromCivil(absl::CivilSecond(2026, 1, 5, 15, 11, 12), absl::UTCTimeZone()));

  options.no_pri_severity = 3;
  const proto::LogRecord bsd = Parse("Jan  5 10:11:12 host app: x", received, options);  // as files hold them
  CHECK(bsd.severity() == 3);
  CHECK(bsd.format() == "rfc3164");
  const proto::LogRecord with_pri = Parse("<14>Jan  5 10:11:12 host app: x", received, options);
  CHECK(with_pri.severity() == 6);  // its own PRI wins

  const proto::LogRecord raw = Parse("worker 3 started", received, options);
  CHECK(raw.parse_error());
  CHECK(raw.severity() == -1);
  options.plain_text = true;
  for (const char* text : {"worker 3 started", "<html> is not a PRI"}) {
    const proto::LogRecord plain = Parse(text, received, options);
    INFO(text);
    CHECK_FALSE(plain.parse_error());
    CHECK(plain.format() == "text");
    CHECK(plain.severity() == 3);
    CHECK(plain.facility() == 1);
    CHECK(plain.message() == text);
    CHECK(plain.timestamp_unix_us() == 0);
  }
}

}  // namespace
}  // namespace steward::agent::syslog
