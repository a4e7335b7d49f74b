// stewardctl logs: the syslog lines nodes forwarded, queried from the station's log store
// and optionally followed.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "common/severity.h"
#include "ctl/ctl.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"

namespace steward::ctl {
namespace {

struct LogsOptions {
  std::string node;
  std::string domain;
  absl::Duration since;
  std::string severity;
  std::string grep;
  bool follow = false;
  int limit = 100;
};

void Print(const Globals& g, const proto::LogsReply& page) {
  for (const proto::LogEntry& e : page.entries()) {
    if (g.json) {
      PrintJson(e);
    } else {
      fmt::print("{}", LogLine(e));
    }
  }
  std::fflush(stdout);
}

int Logs(Client& client, const Globals& g, const LogsOptions& o) {
  proto::LogsRequest req;
  req.set_node(o.node);
  req.set_domain(o.domain);
  req.set_grep(o.grep);
  req.set_limit(o.limit > 0 ? o.limit : 100);
  req.set_max_severity(o.severity.empty() ? -1 : SeverityFromName(o.severity));
  if (o.since > absl::ZeroDuration()) req.set_since_unix_ms(absl::ToUnixMillis(absl::Now() - o.since));
  auto page = client.Logs(req, g.timeout);
  if (!page.ok()) return Fail(page.status());
  Print(g, *page);
  if (!o.follow) return 0;
  req.set_after(page->cursor());
  req.set_limit(1000);
  while (true) {
    auto next = client.Logs(req, g.timeout);
    if (!next.ok()) {
      fmt::print(stderr, "stewardctl: {} (retrying)\n", Escape(next.status().message()));
    } else {
      Print(g, *next);
      req.set_after(next->cursor());
      if (next->entries_size() >= req.limit()) continue;  // more waiting
    }
    absl::SleepFor(absl::Milliseconds(300));
  }
}

}  // namespace

Runner SetupLogs(CLI::App& cmd) {
  auto o = std::make_shared<LogsOptions>();
  cmd.add_option("--node", o->node, "Only this node's lines")->type_name("NAME");
  cmd.add_option("--domain", o->domain, "Only this domain (nginx, ...)");
  cli::AddDuration(cmd, "--since", &o->since, "Only lines received within this long");
  cmd.add_option("--severity", o->severity,
                 "Only lines this severe or worse (emerg alert crit err warning notice info debug)")
      ->type_name("LEVEL")
      ->check(CLI::Validator(
          [](std::string& name) -> std::string {
            if (SeverityFromName(name) >= 0) return "";
            return absl::StrCat("unknown severity \"", name,
                                "\" (emerg alert crit err warning notice info debug)");
          },
          ""));
  cmd.add_option("--grep", o->grep, "Only lines whose message contains this text")->type_name("TEXT");
  cmd.add_flag("--follow", o->follow, "Keep printing new lines as they arrive");
  cmd.add_option("--limit", o->limit, "At most this many lines")->capture_default_str();
  return [o](const Globals& g) { return WithClient(g, [&](Client& c) { return Logs(c, g, *o); }); };
}

}  // namespace steward::ctl
