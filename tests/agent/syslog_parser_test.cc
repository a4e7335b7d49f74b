// Tests for syslog::Parse: the RFC 5424 (6.5) and RFC 3164 (5.4) examples, what real
// daemons and util-linux logger send, the real-world deviations (no PRI, no HOSTNAME,
// ISO timestamps), structured data escapes, malformed and garbage frames (raw with a
// reason), invalid UTF-8, truncation, year inference, severity names, and a fuzz run.
#include "agent/syslog/parser.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace steward::agent::syslog {
namespace {

int64_t UtcMicros(int y, int mo, int d, int h, int mi, int s) {
  return absl::ToUnixMicros(
      absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone()));
}

absl::Time UtcTime(int y, int mo, int d, int h, int mi, int s) {
  return absl::FromUnixMicros(UtcMicros(y, mo, d, h, mi, s));
}

// Received a few minutes after the daemons' "Jan  5 10:11:12".
const absl::Time kReceived = UtcTime(2024, 1, 5, 10, 20, 0);

proto::LogRecord P(absl::string_view frame, const ParseOptions& options = {}) {
  return Parse(frame, kReceived, options);
}

// The record survives a serialize/parse round trip unchanged.
void CheckRoundTrips(const proto::LogRecord& r) {
  std::string wire;
  REQUIRE(r.SerializeToString(&wire));
  proto::LogRecord back;
  REQUIRE(back.ParseFromString(wire));
  CHECK(back.SerializeAsString() == wire);
}

void CheckRaw(const proto::LogRecord& r, absl::string_view frame, absl::string_view problem) {
  CHECK(r.format() == "raw");
  CHECK(r.facility() == -1);
  CHECK(r.severity() == -1);
  CHECK(r.message() == frame);
  CHECK(r.parse_error());
  INFO("parse_problem: " << r.parse_problem());
  CHECK(absl::StrContains(r.parse_problem(), problem));
  CHECK(r.timestamp_unix_us() == 0);
  CHECK(r.hostname().empty());
  CHECK(r.sd_size() == 0);
}

TEST_CASE("RFC 5424 6.5 example 1: no structured data, BOM before MSG", "[syslog]") {
  const auto r = P("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
                   "\xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8");
  CHECK(r.format() == "rfc5424");
  CHECK(r.facility() == 4);
  CHECK(r.severity() == 2);
  CHECK(r.timestamp_unix_us() == UtcMicros(2003, 10, 11, 22, 14, 15) + 3000);
  CHECK(r.hostname() == "mymachine.example.com");
  CHECK(r.app_name() == "su");
  CHECK(r.procid().empty());
  CHECK(r.msgid() == "ID47");
  CHECK(r.structured_data().empty());
  CHECK(r.sd_size() == 0);
  CHECK(r.message() == "'su root' failed for lonvick on /dev/pts/8");
  CHECK(r.received_unix_us() == absl::ToUnixMicros(kReceived));
  CHECK_FALSE(r.parse_error());
  CHECK(r.parse_problem().empty());
  CHECK_FALSE(r.truncated());
  CHECK(r.source().empty());
  CHECK(r.domain().empty());
}

TEST_CASE("RFC 5424 6.5 example 2: negative offset, microseconds, no MSGID", "[syslog]") {
  const auto r = P("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - "
                   "%% It's time to make the do-nuts.");
  CHECK(r.format() == "rfc5424");
  CHECK(r.facility() == 20);
  CHECK(r.severity() == 5);
  CHECK(r.timestamp_unix_us() == UtcMicros(2003, 8, 24, 12, 14, 15) + 3);
  CHECK(r.hostname() == "192.0.2.1");
  CHECK(r.app_name() == "myproc");
  CHECK(r.procid() == "8710");
  CHECK(r.msgid().empty());
  CHECK(r.message() == "%% It's time to make the do-nuts.");
  CHECK_FALSE(r.parse_error());
}

TEST_CASE("RFC 5424 6.5 example 3: structured data and a BOM message", "[syslog]") {
  const auto r = P("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
                   "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] "
                   "\xEF\xBB\xBF" "An application event log entry...");
  CHECK(r.format() == "rfc5424");
  CHECK(r.app_name() == "evntslog");
  CHECK(r.msgid() == "ID47");
  CHECK(r.structured_data() ==
        "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]");
  REQUIRE(r.sd_size() == 1);
  CHECK(r.sd(0).id() == "exampleSDID@32473");
  REQUIRE(r.sd(0).params_size() == 3);
  CHECK(r.sd(0).params(0).name() == "iut");
  CHECK(r.sd(0).params(0).value() == "3");
  CHECK(r.sd(0).params(1).name() == "eventSource");
  CHECK(r.sd(0).params(1).value() == "Application");
  CHECK(r.sd(0).params(2).name() == "eventID");
  CHECK(r.sd(0).params(2).value() == "1011");
  CHECK(r.message() == "An application event log entry...");
}

TEST_CASE("RFC 5424 6.5 example 4: structured data only, two elements", "[syslog]") {
  const std::string sd =
      "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]"
      "[examplePriority@32473 class=\"high\"]";
  const auto r = P("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 " + sd);
  CHECK(r.format() == "rfc5424");
  CHECK_FALSE(r.parse_error());
  CHECK(r.structured_data() == sd);
  REQUIRE(r.sd_size() == 2);
  CHECK(r.sd(0).params_size() == 3);
  CHECK(r.sd(1).id() == "examplePriority@32473");
  REQUIRE(r.sd(1).params_size() == 1);
  CHECK(r.sd(1).params(0).name() == "class");
  CHECK(r.sd(1).params(0).value() == "high");
  CHECK(r.message().empty());
}

TEST_CASE("util-linux logger --rfc5424", "[syslog]") {
  // As documented, with --id=123.
  auto r = P("<13>1 2024-01-05T10:11:12.345678+00:00 host nginx 123 - "
             "[timeQuality tzKnown=\"1\" isSynced=\"0\"] upstream timed out");
  CHECK(r.format() == "rfc5424");
  CHECK(r.facility() == 1);
  CHECK(r.severity() == 5);
  CHECK(r.timestamp_unix_us() == UtcMicros(2024, 1, 5, 10, 11, 12) + 345678);
  CHECK(r.hostname() == "host");
  CHECK(r.app_name() == "nginx");
  CHECK(r.procid() == "123");
  CHECK(r.msgid().empty());
  REQUIRE(r.sd_size() == 1);
  CHECK(r.sd(0).id() == "timeQuality");
  REQUIRE(r.sd(0).params_size() == 2);
  CHECK(r.sd(0).params(0).name() == "tzKnown");
  CHECK(r.sd(0).params(1).value() == "0");
  CHECK(r.message() == "upstream timed out");

  // What logger 2.38 actually printed (no --id; --sd-id added).
  r = P("<13>1 2026-11-22T03:38:10.085857+00:00 vm nginx - - [timeQuality tzKnown=\"1\" "
        "isSynced=\"0\"][zoo@123 tiger=\"hungry\"] x");
  CHECK(r.format() == "rfc5424");
  CHECK(r.procid().empty());
  REQUIRE(r.sd_size() == 2);
  CHECK(r.sd(1).id() == "zoo@123");
  CHECK(r.sd(1).params(0).value() == "hungry");
  CHECK(r.message() == "x");
}

TEST_CASE("RFC 5424 structured data escapes", "[syslog]") {
  const std::string sd =
      R"([id@1 q="say \"hi\"" b="C:\\dir" c="a\]b" n="keep \n" u="un]escaped" e=""])";
  const auto r = P("<14>1 - host app - - " + sd + " msg");
  REQUIRE(r.format() == "rfc5424");
  CHECK(r.structured_data() == sd);
  REQUIRE(r.sd_size() == 1);
  REQUIRE(r.sd(0).params_size() == 6);
  CHECK(r.sd(0).params(0).value() == "say \"hi\"");
  CHECK(r.sd(0).params(1).value() == "C:\\dir");
  CHECK(r.sd(0).params(2).value() == "a]b");
  CHECK(r.sd(0).params(3).value() == "keep \\n");  // other escapes stay as written
  CHECK(r.sd(0).params(4).value() == "un]escaped");
  CHECK(r.sd(0).params(5).value().empty());
  CHECK(r.message() == "msg");

  const auto three = P("<14>1 - - - - - [a x=\"1\"][b][c y=\"2\" z=\"3\"] m");
  REQUIRE(three.sd_size() == 3);
  CHECK(three.sd(1).id() == "b");
  CHECK(three.sd(1).params_size() == 0);
  CHECK(three.sd(2).params(1).name() == "z");
}

TEST_CASE("RFC 5424 nil values everywhere", "[syslog]") {
  auto r = P("<14>1 - - - - - -");
  CHECK(r.format() == "rfc5424");
  CHECK_FALSE(r.parse_error());
  CHECK(r.timestamp_unix_us() == 0);
  CHECK(r.hostname().empty());
  CHECK(r.app_name().empty());
  CHECK(r.procid().empty());
  CHECK(r.msgid().empty());
  CHECK(r.structured_data().empty());
  CHECK(r.message().empty());

  r = P("<14>1 - - - - - - -");  // MSG "-" is a message, not a nil
  CHECK(r.message() == "-");
  r = P("<14>1 - - - - - - ");
  CHECK(r.format() == "rfc5424");
  CHECK(r.message().empty());
}

TEST_CASE("RFC 5424 timestamps", "[syslog]") {
  auto ts = [](absl::string_view t) {
    const auto r = P(std::string("<14>1 ") + std::string(t) + " h a - - - m");
    return r.format() == "rfc5424" ? r.timestamp_unix_us() : -1;
  };
  const int64_t base = UtcMicros(2024, 1, 5, 10, 11, 12);
  CHECK(ts("2024-01-05T10:11:12Z") == base);
  CHECK(ts("2024-01-05T10:11:12.5Z") == base + 500000);
  CHECK(ts("2024-01-05T15:41:12+05:30") == base);
  CHECK(ts("2024-01-05T10:11:12.123456789Z") == base + 123456);  // nanoseconds cut
  CHECK(ts("2024-02-29T00:00:00Z") == UtcMicros(2024, 2, 29, 0, 0, 0));
  CHECK(ts("2024-01-05T10:11:12") == -1);  // no offset
  CHECK(ts("2024-13-05T10:11:12Z") == -1);
  CHECK(ts("2023-02-29T10:11:12Z") == -1);
  CHECK(ts("2024-01-05T24:11:12Z") == -1);
  CHECK(ts("2024-01-05T10:11:60Z") == -1);  // no leap seconds
  CHECK(ts("2024-01-05 10:11:12Z") == -1);
  CHECK(ts("2024-01-05T10:11:12.Z") == -1);
  CHECK(ts("2024-01-05T10:11:12+0530") == -1);
  CHECK(ts("Jan  5 10:11:12") == -1);
}

TEST_CASE("RFC 5424 malformed headers fall back to raw naming the field", "[syslog]") {
  const std::string frames[][2] = {
      {"<14>1 2024-01-05T10:11:12Z host app", "missing PROCID"},
      {"<14>1 2024-01-05T10:11:12Z host app 1 ID", "missing STRUCTURED-DATA"},
      {"<14>1 2024-01-05T10:11:12Z", "missing HOSTNAME"},
      {"<14>1 2024-01-05T10:11:12Z  app - - - m", "empty HOSTNAME"},
      {"<14>1 yesterday host app - - - m", "TIMESTAMP"},
      {"<14>2 - host app - - - m", "VERSION"},
      {"<14>1 - host app - - x m", "STRUCTURED-DATA"},
      {"<14>1 - host app - - -x", "STRUCTURED-DATA"},
      {"<14>1 - host app - - [id a=\"1\" m", "STRUCTURED-DATA"},
      {"<14>1 - host app - - [id a=1] m", "STRUCTURED-DATA"},
      {"<14>1 - host app - - [ a=\"1\"] m", "SD-ID"},
      {"<14>1 - host app - - [id a=\"1\"]m", "STRUCTURED-DATA"},
  };
  for (const auto& [frame, problem] : frames) {
    INFO(frame);
    CheckRaw(P(frame), frame, problem);
  }
}

TEST_CASE("RFC 3164 5.4 examples", "[syslog]") {
  // Received in January 2024: October is last year's.
  auto r = P("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8");
  CHECK(r.format() == "rfc3164");
  CHECK(r.facility() == 4);
  CHECK(r.severity() == 2);
  CHECK(r.timestamp_unix_us() == UtcMicros(2023, 10, 11, 22, 14, 15));
  CHECK(r.hostname() == "mymachine");
  CHECK(r.app_name() == "su");
  CHECK(r.procid().empty());
  CHECK(r.message() == "'su root' failed for lonvick on /dev/pts/8");
  CHECK_FALSE(r.parse_error());

  r = P("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!");
  CHECK(r.format() == "rfc3164");
  CHECK(r.timestamp_unix_us() == UtcMicros(2023, 2, 5, 17, 32, 18));
  CHECK(r.hostname() == "10.0.0.99");
  CHECK(r.app_name().empty());  // a word and a space is content, not a TAG
  CHECK(r.message() == "Use the BFG!");

  // Not what the RFC describes either: "CST" takes the HOSTNAME place.
  r = P("<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the "
        "do-nuts.  %%  Ingredients: Mix=OK, Jelly=OK # Devices: Mixer=OK, "
        "Jelly_Injector=OK, Frier=OK # Transport: Conveyer1=OK, Conveyer2=OK # %%");
  CHECK(r.format() == "rfc3164");
  CHECK(r.facility() == 20);
  CHECK(r.hostname() == "CST");
  CHECK(absl::StartsWith(r.message(), "1987 mymachine myproc[10]: %% It's time"));

  // No valid TIMESTAMP: the whole is CONTENT (4.3.2).
  r = P("<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: "
        "That's All Folks!");
  CHECK(r.format() == "rfc3164");
  CHECK(r.facility() == 0);
  CHECK(r.severity() == 0);
  CHECK(r.timestamp_unix_us() == 0);
  CHECK(r.hostname().empty());
  CHECK(absl::StartsWith(r.message(), "1990 Oct 22 10:52:01 TZ-6"));
  CHECK_FALSE(r.parse_error());

  // The same relayed.
  r = P("<0>Oct 22 10:52:12 scapegoat 1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org "
        "10.1.2.3 sched[0]: That's All Folks!");
  CHECK(r.hostname() == "scapegoat");
  CHECK(r.app_name().empty());
  CHECK(absl::StartsWith(r.message(), "1990 Oct 22"));
}

TEST_CASE("RFC 3164 from real daemons", "[syslog]") {
  auto r = P("<38>Jan  5 10:11:12 host sshd[4242]: Accepted publickey for root from "
             "10.0.0.1 port 55555 ssh2");
  CHECK(r.format() == "rfc3164");
  CHECK(r.facility() == 4);
  CHECK(r.severity() == 6);
  CHECK(r.timestamp_unix_us() == UtcMicros(2024, 1, 5, 10, 11, 12));
  CHECK(r.hostname() == "host");
  CHECK(r.app_name() == "sshd");
  CHECK(r.procid() == "4242");
  CHECK(r.message() == "Accepted publickey for root from 10.0.0.1 port 55555 ssh2");

  r = P("<187>Jan  5 10:11:12 web nginx: 2024/01/05 10:11:12 [error] 12#12: *3 upstream "
        "timed out");
  CHECK(r.facility() == 23);
  CHECK(r.severity() == 3);
  CHECK(r.hostname() == "web");
  CHECK(r.app_name() == "nginx");
  CHECK(r.procid().empty());
  CHECK(r.message() == "2024/01/05 10:11:12 [error] 12#12: *3 upstream timed out");

  r = P("<4>Jan  5 10:11:12 host kernel: [ 1234.567890] usb 1-1: new high-speed USB device");
  CHECK(r.facility() == 0);
  CHECK(r.severity() == 4);
  CHECK(r.app_name() == "kernel");
  CHECK(r.message() == "[ 1234.567890] usb 1-1: new high-speed USB device");

  r = P("<30>Jan  5 10:11:12 host systemd[1]: Started Session 3 of user root.");
  CHECK(r.facility() == 3);
  CHECK(r.severity() == 6);
  CHECK(r.app_name() == "systemd");
  CHECK(r.procid() == "1");
  CHECK(r.message() == "Started Session 3 of user root.");

  // logger --rfc3164
  r = P("<13>Jan  5 10:11:12 host nginx: upstream timed out");
  CHECK(r.format() == "rfc3164");
  CHECK(r.hostname() == "host");
  CHECK(r.app_name() == "nginx");
  CHECK(r.message() == "upstream timed out");

  r = P("<86>Jan  5 01:02:03 host postfix/smtpd[77]: connect from unknown[10.0.0.2]");
  CHECK(r.timestamp_unix_us() == UtcMicros(2024, 1, 5, 1, 2, 3));
  CHECK(r.app_name() == "postfix/smtpd");
  CHECK(r.procid() == "77");
  CHECK(r.message() == "connect from unknown[10.0.0.2]");
}

TEST_CASE("RFC 3164 deviations: no PRI, no HOSTNAME, ISO timestamps, odd days", "[syslog]") {
  // rsyslog's traditional file format: RFC 3164 4.3.3's default PRI, user.notice.
  auto r = P("Oct 11 22:14:15 host sshd[123]: msg");
  CHECK(r.format() == "rfc3164");
  CHECK(r.facility() == 1);
  CHECK(r.severity() == 5);
  CHECK_FALSE(r.parse_error());
  CHECK(r.hostname() == "host");
  CHECK(r.app_name() == "sshd");
  CHECK(r.procid() == "123");
  CHECK(r.message() == "msg");

  r = P("Jan  5 10:11:12 host kernel: [ 1234.5678] eth0: link up");
  CHECK(r.app_name() == "kernel");
  CHECK(r.message() == "[ 1234.5678] eth0: link up");

  // No HOSTNAME (logger on some systems, syslog() through /dev/log).
  r = P("<13>Jan  5 10:11:12 user: hello world");
  CHECK(r.hostname().empty());
  CHECK(r.app_name() == "user");
  CHECK(r.message() == "hello world");
  r = P("<30>Jan  5 10:11:12 systemd[1]: Started Session 3 of user root.");
  CHECK(r.hostname().empty());
  CHECK(r.app_name() == "systemd");
  CHECK(r.procid() == "1");

  // rsyslog's high-precision formats, with and without PRI; no offset is local_zone.
  r = P("2024-01-05T11:11:12.345678+01:00 host sshd[1]: msg");
  CHECK(r.format() == "rfc3164");
  CHECK(r.timestamp_unix_us() == UtcMicros(2024, 1, 5, 10, 11, 12) + 345678);
  CHECK(r.hostname() == "host");
  CHECK(r.app_name() == "sshd");
  r = P("<13>2024-01-05T12:11:12 host app: m", {.local_zone = absl::FixedTimeZone(7200)});
  CHECK(r.format() == "rfc3164");
  CHECK(r.facility() == 1);
  CHECK(r.timestamp_unix_us() == UtcMicros(2024, 1, 5, 10, 11, 12));

  // Day with a zero, or a single digit and one space; fractions.
  CHECK(P("<13>Jan 05 10:11:12 h a: m").timestamp_unix_us() == UtcMicros(2024, 1, 5, 10, 11, 12));
  CHECK(P("<13>Jan 5 10:11:12 h a: m").timestamp_unix_us() == UtcMicros(2024, 1, 5, 10, 11, 12));
  CHECK(P("<13>Jan  5 10:11:12.250 h a: m").timestamp_unix_us() ==
        UtcMicros(2024, 1, 5, 10, 11, 12) + 250000);

  // A PRI and no timestamp: all content.
  r = P("<13>sshd[1]: no time");
  CHECK(r.format() == "rfc3164");
  CHECK(r.timestamp_unix_us() == 0);
  CHECK(r.app_name().empty());
  CHECK(r.message() == "sshd[1]: no time");

  // Only a timestamp.
  r = P("<13>Jan  5 10:11:12");
  CHECK(r.format() == "rfc3164");
  CHECK(r.hostname().empty());
  CHECK(r.message().empty());
}

TEST_CASE("RFC 3164 local zone and year inference", "[syslog]") {
  ParseOptions options;
  options.local_zone = absl::FixedTimeZone(2 * 3600);
  auto r = P("<13>Jan  5 12:11:12 host app: m", options);
  CHECK(r.timestamp_unix_us() == UtcMicros(2024, 1, 5, 10, 11, 12));

  const absl::Time new_year = UtcTime(2025, 1, 1, 0, 0, 10);
  r = Parse("<13>Dec 31 23:59:59 host app: m", new_year, {});
  CHECK(r.timestamp_unix_us() == UtcMicros(2024, 12, 31, 23, 59, 59));
  r = Parse("<13>Jan  1 00:00:05 host app: m", new_year, {});
  CHECK(r.timestamp_unix_us() == UtcMicros(2025, 1, 1, 0, 0, 5));
  // A clock a bit ahead is still this year.
  r = Parse("<13>Jan  1 12:00:00 host app: m", new_year, {});
  CHECK(r.timestamp_unix_us() == UtcMicros(2025, 1, 1, 12, 0, 0));
  // Feb 29 read in a common year is from the last leap year only if it is the previous one.
  r = Parse("<13>Feb 29 10:00:00 host app: m", UtcTime(2025, 3, 1, 0, 0, 0), {});
  CHECK(r.timestamp_unix_us() == UtcMicros(2024, 2, 29, 10, 0, 0));
}

TEST_CASE("Lines that are not syslog are raw", "[syslog]") {
  const std::string nginx =
      "2024/01/02 10:11:12 [error] 123#0: *1 upstream timed out (110: Connection timed out)";
  CheckRaw(P(nginx), nginx, "no PRI and no timestamp");
  CheckRaw(P("kernel: [ 1234.5678] usb 1-1: reset"), "kernel: [ 1234.5678] usb 1-1: reset",
           "no PRI");
  CheckRaw(P("systemd[1]: Started Session 3."), "systemd[1]: Started Session 3.", "no PRI");
  CheckRaw(P("Foo 11 22:14:15 host app: m"), "Foo 11 22:14:15 host app: m", "no PRI");
  CheckRaw(P("Oct 32 22:14:15 host app: m"), "Oct 32 22:14:15 host app: m", "no PRI");
  CheckRaw(P("Oct 11 22:14:15x host app: m"), "Oct 11 22:14:15x host app: m", "no PRI");
}

TEST_CASE("PRI range and syntax", "[syslog]") {
  auto r = P("<0>Jan  5 10:11:12 h a: m");
  CHECK(r.facility() == 0);
  CHECK(r.severity() == 0);
  r = P("<191>Jan  5 10:11:12 h a: m");
  CHECK(r.facility() == 23);
  CHECK(r.severity() == 7);
  CHECK_FALSE(r.parse_error());

  CheckRaw(P("<192>Jan  5 10:11:12 h a: m"), "<192>Jan  5 10:11:12 h a: m", "out of range");
  CheckRaw(P("<999>1 - - - - - -"), "<999>1 - - - - - -", "out of range");
  CheckRaw(P("<01>Jan  5 10:11:12 h a: m"), "<01>Jan  5 10:11:12 h a: m", "leading zero");
  CheckRaw(P("<00>m"), "<00>m", "leading zero");
  CheckRaw(P("<1234>m"), "<1234>m", "invalid PRI");
  CheckRaw(P("<-1>m"), "<-1>m", "invalid PRI");
  CheckRaw(P("<>m"), "<>m", "invalid PRI");
  CheckRaw(P("< 13>m"), "< 13>m", "invalid PRI");
}

TEST_CASE("Garbage never fails", "[syslog]") {
  CheckRaw(P(""), "", "empty");
  CheckRaw(P("\n"), "", "empty");
  CheckRaw(P("<"), "<", "invalid PRI");
  CheckRaw(P("<34"), "<34", "invalid PRI");
  const std::string binary("\x00\x01\xff\xfe<\x80>\x00", 8);
  const auto b = P(binary);
  CheckRaw(b, binary, "");
  CheckRoundTrips(b);

  auto r = P("<34>");
  CHECK(r.format() == "rfc3164");
  CHECK(r.facility() == 4);
  CHECK(r.message().empty());

  const std::string big(100 * 1024, 'x');
  r = P(big);
  CHECK(r.format() == "raw");
  CHECK(r.truncated());
  CHECK(r.message() == big.substr(0, 64 * 1024));
  CheckRoundTrips(r);
}

TEST_CASE("Trailing newline is stripped once", "[syslog]") {
  CHECK(P("<13>Jan  5 10:11:12 h a: m\n").message() == "m");
  CHECK(P("<13>Jan  5 10:11:12 h a: m\r\n").message() == "m");
  CHECK(P("<13>Jan  5 10:11:12 h a: m\n\n").message() == "m\n");
  CHECK(P("<13>1 - h a - - - m\r\n").message() == "m");
  CHECK(P("not syslog\n").message() == "not syslog");
}

TEST_CASE("Invalid UTF-8: bytes kept in message, string fields sanitized", "[syslog]") {
  const std::string bad_msg = "caf\xC3 \xFF\xFE ok \xED\xA0\x80 \xC0\xAF";
  auto r = P("<13>Jan  5 10:11:12 h\xFFost app: " + bad_msg);
  CHECK(r.format() == "rfc3164");
  CHECK(r.message() == bad_msg);
  CHECK(r.hostname() == "h\xEF\xBF\xBDost");
  CheckRoundTrips(r);

  r = P("<13>1 - h\xC3 \xFF\xFF\xC3\xA9 \xE2\x82 \xF0\x9F\x98 [i\xFF d=\"v\xFE\xE9\"] " + bad_msg);
  CHECK(r.format() == "rfc5424");
  CHECK(r.hostname() == "h\xEF\xBF\xBD");
  CHECK(r.app_name() == "\xEF\xBF\xBD\xEF\xBF\xBD\xC3\xA9");  // valid é kept
  CHECK(r.procid() == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(r.msgid() == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  REQUIRE(r.sd_size() == 1);
  CHECK(r.sd(0).id() == "i\xEF\xBF\xBD");
  CHECK(r.sd(0).params(0).value() == "v\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(r.message() == bad_msg);
  CheckRoundTrips(r);

  // Valid multi-byte text is untouched.
  r = P("<13>1 - höst äpp - - [x a=\"ü€😀\"] ü");
  CHECK(r.hostname() == "höst");
  CHECK(r.sd(0).params(0).value() == "ü€😀");

  // A raw frame's problem quotes bad bytes sanitized.
  r = P("<13>1 \xFF\xFF host app - - - m");
  CHECK(r.format() == "raw");
  CHECK(absl::StrContains(r.parse_problem(), "\xEF\xBF\xBD"));
  CheckRoundTrips(r);
}

TEST_CASE("Frames over the limit are cut and marked truncated", "[syslog]") {
  const std::string head = "<13>1 2024-01-05T10:11:12Z host app 1 - - ";
  const std::string frame = head + std::string(1000 - head.size(), 'm');
  ParseOptions options;
  options.max_message_bytes = 100;
  auto r = P(frame, options);
  CHECK(r.format() == "rfc5424");
  CHECK(r.truncated());
  CHECK(r.app_name() == "app");
  CHECK(r.message() == std::string(100 - head.size(), 'm'));

  options.max_message_bytes = frame.size();
  CHECK_FALSE(P(frame, options).truncated());
  CHECK_FALSE(P(frame + "\n", options).truncated());

  // Not inside a UTF-8 sequence: "é" is 2 bytes, "€" 3, "😀" 4.
  for (const std::string ch : {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80"}) {
    std::string text;
    while (text.size() < 200) text += ch;
    for (size_t limit = 90; limit < 100; ++limit) {
      options.max_message_bytes = limit;
      r = P(text, options);
      CHECK(r.truncated());
      CHECK(r.message().size() <= limit);
      CHECK(r.message().size() > limit - ch.size());
      CHECK(r.message().size() % ch.size() == 0);
    }
  }
  // Invalid bytes are cut at the limit.
  options.max_message_bytes = 10;
  r = P(std::string(20, '\x80'), options);
  CHECK(r.message().size() == 10);

  // The header itself cut: raw.
  options.max_message_bytes = 20;
  r = P(frame, options);
  CHECK(r.format() == "raw");
  CHECK(r.truncated());
  CHECK(r.message() == frame.substr(0, 20));
}

TEST_CASE("Severity names", "[syslog]") {
  CHECK(SeverityFromName("emerg") == 0);
  CHECK(SeverityFromName("emergency") == 0);
  CHECK(SeverityFromName("alert") == 1);
  CHECK(SeverityFromName("crit") == 2);
  CHECK(SeverityFromName("critical") == 2);
  CHECK(SeverityFromName("err") == 3);
  CHECK(SeverityFromName("error") == 3);
  CHECK(SeverityFromName("warning") == 4);
  CHECK(SeverityFromName("warn") == 4);
  CHECK(SeverityFromName("notice") == 5);
  CHECK(SeverityFromName("info") == 6);
  CHECK(SeverityFromName("debug") == 7);
  CHECK(SeverityFromName("WARNING") == 4);
  CHECK(SeverityFromName("") == -1);
  CHECK(SeverityFromName("verbose") == -1);
  for (int s = 0; s < 8; ++s) CHECK(SeverityFromName(SeverityName(s)) == s);
  CHECK(std::string(SeverityName(3)) == "err");
  CHECK(std::string(SeverityName(-1)) == "unknown");
  CHECK(std::string(SeverityName(8)) == "unknown");
}

TEST_CASE("Random frames never crash and always serialize", "[syslog]") {
  std::mt19937 rng(20240105);
  const std::string alphabet = "<>0123456789 []\"\\=-:.TZ+1J an\xC3\xA9\xFF";
  std::uniform_int_distribution<size_t> length(0, 300);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  std::uniform_int_distribution<int> coin(0, 3);
  const std::string prefixes[] = {"", "<13>", "<13>1 ", "<165>1 2003-10-11T22:14:15.003Z ",
                                  "<34>Oct 11 22:14:15 ", "<13>1 - h a - - [", "Jan  5 10:11:12 "};
  std::uniform_int_distribution<size_t> prefix(0, std::size(prefixes) - 1);
  ParseOptions options;
  options.max_message_bytes = 256;
  for (int i = 0; i < 20000; ++i) {
    std::string frame = prefixes[prefix(rng)];
    const size_t n = length(rng);
    while (frame.size() < n) {
      frame.push_back(coin(rng) == 0 ? static_cast<char>(byte(rng)) : alphabet[pick(rng)]);
    }
    const proto::LogRecord r = Parse(frame, kReceived, options);
    std::string wire;
    REQUIRE(r.SerializeToString(&wire));
    REQUIRE(r.message().size() <= options.max_message_bytes);
    REQUIRE(r.parse_error() == (r.format() == "raw"));
    REQUIRE(r.severity() <= 7);
    REQUIRE(r.facility() <= 23);
  }
}

}  // namespace
}  // namespace steward::agent::syslog
