// stewardctl logs: the syslog lines nodes forwarded, searched in the station's log
// store (newest first, page by page: an answer of any size), or followed as they
// arrive (-f). Filters: nodes (names or globs), domain, app, host, severity, time (the
// line's own, or with --received when the agent received it) and text (--grep, -i).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "common/severity.h"
#include "ctl/ctl.h"
#include "ctl/log_format.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"

namespace steward::ctl {
namespace {

constexpr int kDefaultLines = 100;
constexpr int kDefaultFollowLines = 10;  // like tail -f
constexpr absl::Duration kFollowPoll = absl::Milliseconds(300);
constexpr int kAll = std::numeric_limits<int32_t>::max();  // the station caps a page

struct LogsOptions {
  std::vector<std::string> nodes;
  std::string domain;
  std::string app;
  std::string host;
  std::string since;
  std::string until;
  bool received = false;
  std::string severity;
  std::string grep;
  bool ignore_case = false;
  bool follow = false;
  int limit = -1;  // -1: the default (100, or 10 with --follow); 0: every line
  std::string output = "short";
  bool utc = false;
};

// Prints entries as `output` says.
class Printer {
 public:
  Printer(std::string output, absl::TimeZone zone) : output_(std::move(output)), zone_(zone) {}
  void Print(const proto::LogEntry& e) const {
    if (output_ == "json") {
      PrintJson(e);
      return;
    }
    fmt::print("{}", output_ == "verbose" ? VerboseLogEntry(e, zone_) : ShortLogLine(e, zone_));
  }

 private:
  const std::string output_;
  const absl::TimeZone zone_;
};

// The request the options make; InvalidArgument for a time that does not parse.
absl::StatusOr<proto::LogsRequest> Request(const LogsOptions& o, const absl::TimeZone& zone) {
  proto::LogsRequest req;
  for (const std::string& n : o.nodes) req.add_nodes(n);
  req.set_domain(o.domain);
  req.set_app(o.app);
  req.set_host(o.host);
  req.set_grep(o.grep);
  req.set_ignore_case(o.ignore_case);
  req.set_by_received(o.received);
  req.set_max_severity(o.severity.empty() ? -1 : SeverityFromName(o.severity));
  const absl::Time now = absl::Now();
  if (!o.since.empty()) {
    absl::StatusOr<absl::Time> since = ParseLogTime(o.since, now, zone);
    if (!since.ok()) return absl::InvalidArgumentError(absl::StrCat("--since: ", since.status().message()));
    req.set_since_unix_ms(absl::ToUnixMillis(*since));
  }
  if (!o.until.empty()) {
    absl::StatusOr<absl::Time> until = ParseLogTime(o.until, now, zone);
    if (!until.ok()) return absl::InvalidArgumentError(absl::StrCat("--until: ", until.status().message()));
    req.set_until_unix_ms(absl::ToUnixMillis(*until));
  }
  if (!o.since.empty() && !o.until.empty() && req.until_unix_ms() <= req.since_unix_ms()) {
    // (10m means ten minutes ago: --since 10m --until 20m is a window that ends before it begins.)
    return absl::InvalidArgumentError(absl::StrCat("--until ", o.until, " is not after --since ", o.since,
                                                   ": no line can match (the older time goes with --since)"));
  }
  return req;
}

// Newest first, page after page, until `limit` lines (0: all) are printed. Returns the
// follow cursor of the first page, or an exit status.
absl::StatusOr<std::string> List(Client& client, const Globals& g, proto::LogsRequest req, int limit,
                                 const std::function<void(const proto::LogsReply&)>& print) {
  std::string cursor;
  int printed = 0;
  while (true) {
    req.set_limit(limit > 0 ? limit - printed : kAll);
    absl::StatusOr<proto::LogsReply> page = client.Logs(req, g.timeout);
    if (!page.ok()) return page.status();
    if (req.page().empty()) cursor = page->cursor();
    print(*page);
    printed += page->entries_size();
    if (page->next_page().empty() || (limit > 0 && printed >= limit)) return cursor;
    req.set_page(page->next_page());
  }
}

// `req`: what Request made of `o` (the runner checked it before connecting).
int Logs(Client& client, const Globals& g, const LogsOptions& o, proto::LogsRequest req) {
  const absl::TimeZone zone = o.utc ? absl::UTCTimeZone() : absl::LocalTimeZone();
  const Printer printer(g.json ? "json" : o.output, zone);
  const int limit = o.limit >= 0 ? o.limit : o.follow ? kDefaultFollowLines : kDefaultLines;
  if (!o.follow) {
    absl::StatusOr<std::string> done = List(client, g, req, limit, [&](const proto::LogsReply& page) {
      for (const proto::LogEntry& e : page.entries()) printer.Print(e);
      std::fflush(stdout);
    });
    return done.ok() ? 0 : Fail(done.status());
  }
  // Follow: the last lines in the order they happened, then new ones as they arrive.
  std::vector<proto::LogEntry> last;
  absl::StatusOr<std::string> cursor = List(client, g, req, limit, [&](const proto::LogsReply& page) {
    last.insert(last.end(), page.entries().begin(), page.entries().end());
  });
  if (!cursor.ok()) return Fail(cursor.status());
  std::for_each(last.rbegin(), last.rend(), [&](const proto::LogEntry& e) { printer.Print(e); });
  std::fflush(stdout);
  req.clear_page();
  req.set_after(*cursor);
  req.set_limit(kAll);
  while (true) {
    absl::StatusOr<proto::LogsReply> next = client.Logs(req, g.timeout);
    if (!next.ok()) {
      fmt::print(stderr, "stewardctl: {} (retrying)\n", Escape(next.status().message()));
    } else {
      for (const proto::LogEntry& e : next->entries()) printer.Print(e);
      std::fflush(stdout);
      const bool moved = next->cursor() != req.after();
      req.set_after(next->cursor());
      if (moved && next->entries_size() > 0) continue;  // more may be waiting
    }
    absl::SleepFor(kFollowPoll);
  }
}

// A --since/--until value: empty when it is a time, else why not.
std::string CheckTime(std::string& text) {
  absl::StatusOr<absl::Time> t = ParseLogTime(text, absl::Now(), absl::UTCTimeZone());
  return t.ok() ? "" : std::string(t.status().message());
}

}  // namespace

Runner SetupLogs(CLI::App& cmd) {
  auto o = std::make_shared<LogsOptions>();
  cli::AddList(cmd, "--node", &o->nodes, "Only these nodes' lines: names or globs (ship*, ship[1-3])")
      ->type_name("NAME|GLOB,...");
  cmd.add_option("--domain", o->domain, "Only this domain (nginx, ...; a glob too)");
  cmd.add_option("--app", o->app, "Only this app-name (the RFC 3164 tag; a glob too)");
  cmd.add_option("--host", o->host, "Only lines whose HOSTNAME is this (a glob too)");
  const CLI::Validator is_time(CheckTime, "");
  cmd.add_option("--since", o->since, "Only lines at or after this time (10m = 10 minutes ago, today, "
                                      "'2026-11-30 10:00', 2026-11-30T10:00:00Z, @UNIX_SECONDS)")
      ->type_name("TIME")
      ->check(is_time);
  cmd.add_option("--until", o->until, "Only lines before this time (same forms as --since)")
      ->type_name("TIME")
      ->check(is_time);
  cmd.add_flag("--received", o->received,
               "--since/--until mean when the agent received the line, not the line's own timestamp");
  cmd.add_option("--severity", o->severity,
                 "Only lines this severe or worse (emerg alert crit err warning notice info debug)")
      ->type_name("LEVEL")
      ->check(CLI::Validator(
          [](std::string& name) -> std::string {
            if (SeverityFromName(name) >= 0) return "";
            return absl::StrCat("unknown severity \"", name, "\" (emerg alert crit err warning notice info debug)");
          },
          ""));
  cmd.add_option("--grep", o->grep, "Only lines whose message contains this text")
      ->type_name("TEXT")
      ->check(cli::Text());
  cmd.add_flag("-i,--ignore-case", o->ignore_case, "--grep ignores case (ASCII letters)");
  cmd.add_flag("-f,--follow", o->follow, "Print the last lines (10 unless -n), then new ones as they arrive");
  cmd.add_option("-n,--limit", o->limit, "At most this many lines, newest first (default 100; 0: all)")
      ->type_name("N")
      ->check(CLI::Range(0, std::numeric_limits<int>::max()));
  cmd.add_option("-o,--output", o->output, "short (default), verbose (every field) or json (one object per line)")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"short", "verbose", "json"}));
  cmd.add_flag("--utc", o->utc, "Read and print times in UTC instead of the local zone");
  return [o, &cmd](const Globals& g) {
    // A time that does not parse, or a window that ends before it begins, is a usage
    // error, found before the station is asked.
    absl::StatusOr<proto::LogsRequest> req = Request(*o, o->utc ? absl::UTCTimeZone() : absl::LocalTimeZone());
    if (!req.ok()) return cli::UsageError(cmd, req.status().message());
    if (o->follow && !o->until.empty()) {
      // Following waits for lines yet to come: with an end it would wait forever.
      return cli::UsageError(cmd, "--follow prints new lines as they come: it takes no --until");
    }
    return WithClient(g, [&](Client& c) { return Logs(c, g, *o, *req); });
  };
}

}  // namespace steward::ctl
