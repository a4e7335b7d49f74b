// stewardctl station status: the station's instances (README: High availability).
#include <memory>
#include <string>

#include <fmt/format.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ctl/ctl.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"
#include "proto/ha.pb.h"

namespace steward::ctl {
namespace {

// Site control (README: Site control), as the central station sees it: sites in control
// of their nodes, and what it refused a site.
void PrintSites(const proto::StationStatusReply& st, absl::Time now) {
  if (st.site_claims_size() > 0) {
    Table t({"SITE", "IN CONTROL OF", "SINCE", "HEARD"});
    for (const proto::SiteClaim& c : st.site_claims()) {
      t.AddRow({Escape(c.site()), Escape(absl::StrJoin(c.nodes(), ",")), Ago(c.since_unix_ms(), now),
                Ago(c.claimed_unix_ms(), now)});
    }
    fmt::print("sites in control (their nodes' commands wait for the hand-back):\n{}", t.Render());
  }
  for (const proto::SiteRefusal& r : st.site_refusals()) {
    fmt::print("site {} REFUSED {}: {}\n", Escape(r.site()), Ago(r.at_unix_ms(), now), Escape(r.error()));
  }
}

int Status(const Globals& g) {
  return WithClient(g, [&](Client& client) {
    absl::StatusOr<proto::StationStatusReply> st = client.StationStatus(g.timeout);
    if (!st.ok()) return Fail(st.status());
    if (g.json) {
      PrintJson(*st);
      return 0;
    }
    const absl::Time now = absl::FromUnixMillis(st->now_unix_ms());
    // Said first, as in every node listing: it explains what waits.
    if (st->health().degraded()) fmt::print("{}\n", StationLine(st->health()));
    if (!st->ha()) {
      if (st->has_site()) {
        const proto::SiteStationState& site = st->site();
        fmt::print("station {}: the site station of site {} ({}), {} since {}, {} journal entries not handed back\n",
                   Escape(st->station()), Escape(site.site()), Escape(absl::StrJoin(site.nodes(), ",")),
                   Escape(site.state()), Ago(site.since_unix_ms(), now), site.journal_pending());
      } else {
        fmt::print("station {}: a single instance without high availability (steward-station --ha is off)\n",
                   Escape(st->station()));
      }
      PrintSites(*st, now);
      return 0;
    }
    fmt::print("station {}: high availability, journal at entry {}", Escape(st->station()), st->journal());
    if (st->journal_first() > 1) fmt::print(" (kept from entry {})", st->journal_first());
    fmt::print("\n");
    Table t({"INSTANCE", "ROLE", "SINCE", "TERM", "APPLIED", "LAG", "LAST HEARD"});
    for (const proto::StationInstance& i : st->instances()) {
      const bool active = i.role() == "active";
      t.AddRow({Escape(i.instance()), Escape(i.role()), Ago(i.since_unix_ms(), now),
                active ? absl::StrCat(i.term()) : "-", absl::StrCat(i.applied()),
                i.role() == "standby" ? absl::StrCat(i.lag()) : "-",
                i.answering() ? "now (it answered)" : Ago(i.updated_unix_ms(), now)});
    }
    t.AlignRight(3);
    t.AlignRight(4);
    t.AlignRight(5);
    fmt::print("{}", t.Render());
    if (!st->roster_error().empty()) {
      fmt::print("the other instances are unknown for now: the roster could not be read ({}); ask again\n",
                 Escape(st->roster_error()));
    }
    PrintSites(*st, now);
    return 0;
  });
}

}  // namespace

Runner SetupStation(CLI::App& cmd) {
  cmd.add_subcommand("status",
                     "Which instance is active, since when, its lease term, and each standby with its lag "
                     "(journal entries not applied yet) and when it was last heard");
  cmd.require_subcommand(1);
  return [](const Globals& g) { return Status(g); };
}

}  // namespace steward::ctl
