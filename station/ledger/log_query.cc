// Log searches: the request compiled into filters, rows read along an index, pages.
#include "station/ledger/log_query.h"

#include <fnmatch.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "station/ledger/log_index.h"
#include "station/ledger/log_row.h"

namespace steward::station::ledger {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int kDefaultLimit = 100;
// What an entry adds to a reply besides itself (its tag and length), and room for the
// reply's cursors.
constexpr size_t kEntryOverhead = 8;
constexpr size_t kReplyOverhead = 128;
// Severities the partial index log_lines_warnings_ts holds: warning (4) and worse.
constexpr int kWarning = 4;
// The clock is looked at every this many rows.
constexpr int64_t kClockEvery = 256;

constexpr char kColumns[] = "seq, node, domain, host, app, severity, ts_us, received_us, flags, message, rest";

// Where a line is in a listing, which is newest first by (ts_us, seq).
struct Position {
  int64_t ts_us = kMax;
  int64_t seq = kMax;
  bool operator<(const Position& o) const { return ts_us != o.ts_us ? ts_us < o.ts_us : seq < o.seq; }
};

std::string PageCursor(const Position& p) { return absl::StrCat(p.ts_us, ":", p.seq); }

absl::StatusOr<Position> ParsePage(absl::string_view page) {
  const std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(page, absl::MaxSplits(':', 1));
  Position p;
  if (!absl::SimpleAtoi(parts.first, &p.ts_us) || !absl::SimpleAtoi(parts.second, &p.seq)) {
    return absl::InvalidArgumentError(absl::StrCat("bad logs page \"", page, "\""));
  }
  return p;
}

bool HasGlob(absl::string_view s) { return s.find_first_of("*?[") != absl::string_view::npos; }

// A name filter: empty matches everything; a glob as fnmatch(3) matches it.
bool NameMatches(const std::string& pattern, absl::string_view name) {
  if (pattern.empty()) return true;
  if (!HasGlob(pattern)) return pattern == name;
  return fnmatch(pattern.c_str(), std::string(name).c_str(), 0) == 0;
}

// Whether `text` holds `needle` (lower case already when `icase`), ignoring ASCII case
// when `icase`.
bool Contains(absl::string_view text, absl::string_view needle, bool icase) {
  if (!icase) return absl::StrContains(text, needle);
  const size_t n = needle.size();
  for (size_t i = 0; i + n <= text.size(); ++i) {
    size_t j = 0;
    while (j < n && absl::ascii_tolower(static_cast<unsigned char>(text[i + j])) == needle[j]) ++j;
    if (j == n) return true;
  }
  return false;
}

// The request, ready to test rows with.
struct Query {
  std::vector<std::string> nodes;  // names or globs; empty: every node
  std::string domain;              // name or glob, "" for any (so are app and host)
  std::string app;
  std::string host;
  int max_severity = -1;  // -1: all
  int64_t lo_us = kMin;   // [lo, hi) of the line's own time, or of its receive time
  int64_t hi_us = kMax;
  bool by_received = false;
  std::string grep;  // lower case when icase
  bool icase = false;
  Position below;  // a listing continues below this
  bool follow = false;
  int64_t after = 0;
  int limit = kDefaultLimit;

  // The one node asked about, when exactly one is named without a glob.
  const std::string* OneNode() const { return nodes.size() == 1 && !HasGlob(nodes[0]) ? &nodes[0] : nullptr; }
};

absl::StatusOr<Query> Compile(const proto::LogsRequest& req, const LogQueryLimits& limits) {
  Query q;
  if (!req.node().empty()) q.nodes.push_back(req.node());
  for (const std::string& n : req.nodes()) {
    if (!n.empty()) q.nodes.push_back(n);
  }
  q.domain = req.domain();
  q.app = req.app();
  q.host = req.host();
  q.max_severity = req.max_severity() >= 7 ? -1 : req.max_severity();
  if (req.since_unix_ms() > 0) q.lo_us = req.since_unix_ms() * 1000;
  if (req.until_unix_ms() > 0) q.hi_us = req.until_unix_ms() * 1000;
  q.by_received = req.by_received();
  q.icase = req.ignore_case();
  q.grep = q.icase ? absl::AsciiStrToLower(req.grep()) : req.grep();
  q.limit = std::min(req.limit() > 0 ? req.limit() : kDefaultLimit, limits.max_lines);
  if (!req.after().empty()) {
    q.follow = true;
    if (!absl::SimpleAtoi(req.after(), &q.after)) return absl::InvalidArgumentError("bad logs cursor");
  }
  if (!req.page().empty()) {
    STEWARD_ASSIGN_OR_RETURN(q.below, ParsePage(req.page()));
  }
  return q;
}

// One row as read: views into the statement, valid until its next step.
struct Row {
  int64_t seq = 0;
  absl::string_view node;
  LogRowView cols;
  Position position() const { return Position{cols.ts_us, seq}; }
};

Row ReadRow(const sqlite::Statement& st) {
  Row r;
  r.seq = st.ColumnInt(0);
  r.node = st.ColumnView(1);
  r.cols.domain = st.ColumnView(2);
  r.cols.host = st.ColumnView(3);
  r.cols.app = st.ColumnView(4);
  r.cols.severity = st.ColumnInt(5);
  r.cols.ts_us = st.ColumnInt(6);
  r.cols.received_us = st.ColumnInt(7);
  r.cols.flags = st.ColumnInt(8);
  r.cols.message = st.ColumnView(9);
  r.cols.rest = st.ColumnView(10);
  return r;
}

bool Matches(const Query& q, const Row& r) {
  const int64_t t = q.by_received ? r.cols.received_us : r.cols.ts_us;
  if (t < q.lo_us || t >= q.hi_us) return false;
  if (!q.follow && !(r.position() < q.below)) return false;
  if (q.max_severity >= 0 && (r.cols.severity < 0 || r.cols.severity > q.max_severity)) return false;
  if (!NameMatches(q.domain, r.cols.domain) || !NameMatches(q.app, r.cols.app) ||
      !NameMatches(q.host, r.cols.host)) {
    return false;
  }
  if (!q.nodes.empty() &&
      std::none_of(q.nodes.begin(), q.nodes.end(), [&](const std::string& p) { return NameMatches(p, r.node); })) {
    return false;
  }
  return q.grep.empty() || Contains(r.cols.message, q.grep, q.icase);
}

// The entries of one reply, within its line and byte limits.
class Page {
 public:
  Page(size_t max_bytes, int max_lines)
      : room_(max_bytes > kReplyOverhead ? max_bytes - kReplyOverhead : 0), max_lines_(max_lines) {}

  bool full() const { return reply_.entries_size() >= max_lines_; }
  // Adds `row` unless the reply would outgrow its bytes; the first entry always goes
  // in, its message cut to fit (and marked truncated) when it alone is too large.
  absl::StatusOr<bool> Add(const Row& row) {
    proto::LogEntry e;
    e.set_node(std::string(row.node));
    STEWARD_ASSIGN_OR_RETURN(*e.mutable_record(), FromRow(row.cols));
    e.set_cursor(absl::StrCat(row.seq));
    size_t size = e.ByteSizeLong() + kEntryOverhead;
    if (used_ + size > room_) {
      if (reply_.entries_size() > 0) return false;
      std::string* message = e.mutable_record()->mutable_message();
      const size_t over = used_ + size - room_;
      message->resize(over < message->size() ? Utf8CutPoint(*message, message->size() - over) : 0);
      e.mutable_record()->set_truncated(true);
      size = e.ByteSizeLong() + kEntryOverhead;
    }
    used_ += size;
    *reply_.add_entries() = std::move(e);
    return true;
  }
  proto::LogsReply& reply() { return reply_; }

 private:
  const size_t room_;
  const int max_lines_;
  size_t used_ = 0;
  proto::LogsReply reply_;
};

// Lines along an index, newest first, into `page`. Returns where the listing goes on
// (nullopt: nothing more matches).
absl::StatusOr<std::optional<Position>> Scan(sqlite::Database& db, const Query& q, Page& page,
                                             absl::Time deadline) {
  std::string sql = absl::StrCat("SELECT ", kColumns, " FROM log_lines ");
  const std::string* equal = nullptr;
  if (const std::string* node = q.OneNode(); node != nullptr) {
    equal = node;
    sql += "INDEXED BY log_lines_node_ts WHERE node = ?4 AND ";
  } else if (q.max_severity >= 0 && q.max_severity <= kWarning) {
    sql += "INDEXED BY log_lines_warnings_ts WHERE severity BETWEEN 0 AND 4 AND ";
  } else if (!q.app.empty() && !HasGlob(q.app)) {
    equal = &q.app;
    sql += "INDEXED BY log_lines_app_ts WHERE app = ?4 AND ";
  } else {
    sql += "INDEXED BY log_lines_ts WHERE ";
  }
  sql += "ts_us >= ?1 AND (ts_us, seq) < (?2, ?3) ORDER BY ts_us DESC, seq DESC";
  Position upper = q.below;
  int64_t lower = kMin;
  if (!q.by_received) {  // the time range bounds the index range
    lower = q.lo_us;
    upper = std::min(upper, Position{q.hi_us, kMin});
  }
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare(sql));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, lower));
  STEWARD_RETURN_IF_ERROR(st.Bind(2, upper.ts_us));
  STEWARD_RETURN_IF_ERROR(st.Bind(3, upper.seq));
  if (equal != nullptr) STEWARD_RETURN_IF_ERROR(st.Bind(4, *equal));
  Position last_added;
  int64_t rows = 0;
  while (true) {
    STEWARD_ASSIGN_OR_RETURN(bool has_row, st.Step());
    if (!has_row) return std::nullopt;
    const Row r = ReadRow(st);
    if (Matches(q, r)) {
      if (page.full()) return last_added;  // one more matches: it starts the next page
      STEWARD_ASSIGN_OR_RETURN(bool added, page.Add(r));
      if (!added) return last_added;
      last_added = r.position();
    }
    // Out of time: the next page goes on below the last row looked at.
    if (++rows % kClockEvery == 0 && absl::Now() > deadline) return r.position();
  }
}

// The lines whose message may hold the text (a superset: the index folds case and
// keeps no positions), newest stored first; nullopt when the index cannot help or
// finds more than `max` (a common text: the time index finds its matches sooner).
absl::StatusOr<std::optional<std::vector<int64_t>>> Candidates(sqlite::Database& db, const Query& q, size_t max) {
  const std::string match = TrigramQuery(q.grep);
  if (match.empty()) return std::nullopt;
  STEWARD_ASSIGN_OR_RETURN(const std::vector<IndexPart> parts, IndexParts(db));
  std::vector<int64_t> seqs;
  for (auto part = parts.rbegin(); part != parts.rend() && seqs.size() <= max; ++part) {
    STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                             db.Prepare(absl::StrCat("SELECT rowid FROM ", part->table(), " WHERE ", part->table(),
                                                     " MATCH ?1 ORDER BY rowid DESC LIMIT ?2")));
    STEWARD_RETURN_IF_ERROR(st.Bind(1, match));
    STEWARD_RETURN_IF_ERROR(st.Bind(2, static_cast<int64_t>(max + 1 - seqs.size())));
    while (true) {
      STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      seqs.push_back(st.ColumnInt(0));
    }
  }
  if (seqs.size() > max) return std::nullopt;
  return seqs;
}

// The candidates that match, newest first, into `page`. Returns where the listing goes
// on (nullopt: nothing more matches).
absl::StatusOr<std::optional<Position>> ListCandidates(sqlite::Database& db, const Query& q,
                                                       const std::vector<int64_t>& seqs, Page& page) {
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                           db.Prepare(absl::StrCat("SELECT ", kColumns, " FROM log_lines WHERE seq = ?1")));
  auto read = [&st](int64_t seq) -> absl::StatusOr<bool> {
    STEWARD_RETURN_IF_ERROR(st.Reset());
    STEWARD_RETURN_IF_ERROR(st.Bind(1, seq));
    return st.Step();
  };
  std::vector<Position> hits;
  for (const int64_t seq : seqs) {
    STEWARD_ASSIGN_OR_RETURN(bool row, read(seq));
    if (row && Matches(q, ReadRow(st))) hits.push_back(ReadRow(st).position());
  }
  std::sort(hits.begin(), hits.end(), [](const Position& a, const Position& b) { return b < a; });
  Position last_added;
  for (const Position& hit : hits) {
    if (page.full()) return last_added;
    STEWARD_ASSIGN_OR_RETURN(bool row, read(hit.seq));
    if (!row) continue;
    STEWARD_ASSIGN_OR_RETURN(bool added, page.Add(ReadRow(st)));
    if (!added) return last_added;
    last_added = hit;
  }
  return std::nullopt;
}

// What was stored after q.after, in that order, into `page`. Returns the cursor to go
// on from: every line up to it was looked at.
absl::StatusOr<int64_t> Follow(sqlite::Database& db, const Query& q, Page& page, absl::Time deadline) {
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st,
                           db.Prepare(absl::StrCat("SELECT ", kColumns, " FROM log_lines WHERE seq > ?1 ORDER BY seq")));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, q.after));
  int64_t done = q.after;
  int64_t rows = 0;
  while (!page.full()) {
    STEWARD_ASSIGN_OR_RETURN(bool has_row, st.Step());
    if (!has_row) break;
    const Row r = ReadRow(st);
    if (Matches(q, r)) {
      STEWARD_ASSIGN_OR_RETURN(bool added, page.Add(r));
      if (!added) break;
    }
    done = r.seq;
    if (++rows % kClockEvery == 0 && absl::Now() > deadline) break;
  }
  return done;
}

}  // namespace

absl::StatusOr<proto::LogsReply> QueryLogs(Store& store, const proto::LogsRequest& req,
                                           const LogQueryLimits& limits) {
  STEWARD_ASSIGN_OR_RETURN(const Query q, Compile(req, limits));
  const absl::Time deadline = absl::Now() + limits.max_time;
  Page page(limits.max_reply_bytes, q.limit);
  std::string cursor;
  std::optional<Position> next;
  STEWARD_RETURN_IF_ERROR(store.Read([&](sqlite::Database& db) -> absl::Status {
    // One snapshot: a listing and the follow cursor that comes with it agree.
    STEWARD_RETURN_IF_ERROR(db.Exec("BEGIN"));
    absl::Cleanup end = [&db] { (void)db.Exec("COMMIT"); };
    if (q.follow) {
      STEWARD_ASSIGN_OR_RETURN(const int64_t done, Follow(db, q, page, deadline));
      cursor = absl::StrCat(done);
      return absl::OkStatus();
    }
    if (req.page().empty()) {  // a follower starts after everything stored so far
      STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("SELECT COALESCE(MAX(seq), 0) FROM log_lines"));
      STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
      cursor = absl::StrCat(row ? st.ColumnInt(0) : 0);
    }
    STEWARD_ASSIGN_OR_RETURN(std::optional<std::vector<int64_t>> candidates,
                             Candidates(db, q, limits.max_candidates));
    if (candidates.has_value()) {
      STEWARD_ASSIGN_OR_RETURN(next, ListCandidates(db, q, *candidates, page));
    } else {
      STEWARD_ASSIGN_OR_RETURN(next, Scan(db, q, page, deadline));
    }
    return absl::OkStatus();
  }));
  proto::LogsReply out = std::move(page.reply());
  out.set_cursor(cursor);
  if (next.has_value()) out.set_next_page(PageCursor(*next));
  return out;
}

}  // namespace steward::station::ledger
