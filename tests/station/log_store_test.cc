// The station's log store against real SQLite files: rows that give back every field,
// batches stored once, retention that takes the index entries with the lines, errors
// per minute from the ledger, a 0.1.0 ledger's line migrated and searchable, and every
// search filter checked against a brute-force answer over 200,000 lines, page by page.
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "station/ledger/log_index.h"
#include "station/ledger/log_query.h"
#include "station/ledger/log_row.h"
#include "station/ledger/log_store.h"
#include "station/ledger/store.h"
#include "tests/station/ledger_testing.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/wait.h"

namespace steward::station::ledger {
namespace {

using steward::testing::TempDir;

std::unique_ptr<Store> MustOpen(const std::string& dir) {
  auto store = Store::Open(dir);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return *std::move(store);
}

using testing::FailsPartWay;
using testing::HoldWriter;
using testing::WriteAndWait;

int64_t Count(Store& store, const std::string& sql) {
  absl::StatusOr<int64_t> n = testing::QueryInt(store, sql);
  REQUIRE(n.ok());
  return *n;
}

// FTS5's own check of every index part (and, with one part, of it against the lines).
absl::Status IndexIntact(Store& store) {
  return WriteAndWait(store, [](sqlite::Database& db) -> absl::Status {
    auto parts = IndexParts(db);
    if (!parts.ok()) return parts.status();
    for (const IndexPart& p : *parts) {
      absl::Status st = db.Exec(absl::StrCat("INSERT INTO ", p.table(), "(", p.table(), ", rank) VALUES ('integrity-check', ",
                                             parts->size() == 1 ? 1 : 0, ")"));
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  });
}

// Index entries (in every part) of lines that may hold `text`, whether the lines are
// there or not: none once their lines are gone.
int64_t IndexHits(Store& store, const std::string& text) {
  int64_t hits = 0;
  REQUIRE(store.Read([&](sqlite::Database& db) -> absl::Status {
                 auto parts = IndexParts(db);
                 if (!parts.ok()) return parts.status();
                 for (const IndexPart& p : *parts) {
                   auto st = db.Prepare(absl::StrCat("SELECT COUNT(*) FROM ", p.table(), " WHERE ", p.table(), " MATCH ?1"));
                   if (!st.ok()) return st.status();
                   (void)st->Bind(1, TrigramQuery(text));
                   auto row = st->Step();
                   if (!row.ok()) return row.status();
                   hits += st->ColumnInt(0);
                 }
                 return absl::OkStatus();
               }).ok());
  return hits;
}

int64_t Parts(Store& store) { return Count(store, "SELECT COUNT(*) FROM log_fts_parts"); }

// Every page of a listing (or of a follow), as the cursors of its entries.
std::vector<int64_t> AllPages(Store& store, proto::LogsRequest req, const LogQueryLimits& limits) {
  std::vector<int64_t> out;
  for (int pages = 0; pages < 100000; ++pages) {
    auto reply = QueryLogs(store, req, limits);
    INFO(reply.status().ToString());
    REQUIRE(reply.ok());
    for (const proto::LogEntry& e : reply->entries()) out.push_back(std::stoll(e.cursor()));
    if (reply->next_page().empty()) return out;
    req.set_page(reply->next_page());
  }
  FAIL("the listing does not end");
  return out;
}

proto::LogRecord Record(const std::string& message, int severity = 6) {
  proto::LogRecord r;
  r.set_format("rfc3164");
  r.set_facility(1);
  r.set_severity(severity);
  r.set_app_name("app");
  r.set_domain("app");
  r.set_hostname("host");
  r.set_received_unix_us(absl::ToUnixMicros(absl::Now()));
  r.set_timestamp_unix_us(r.received_unix_us() - 1000);
  r.set_message(message);
  return r;
}

proto::LogBatch Batch(const std::vector<std::string>& messages, int severity = 6) {
  proto::LogBatch b;
  for (const std::string& m : messages) *b.add_records() = Record(m, severity);
  return b;
}

proto::LogsRequest All() {
  proto::LogsRequest r;
  r.set_max_severity(-1);
  r.set_limit(1000);
  return r;
}

TEST_CASE("A log row gives back every field of its record", "[station][logs]") {
  proto::LogRecord full;
  full.set_format("rfc5424");
  full.set_facility(23);
  full.set_severity(2);
  full.set_timestamp_unix_us(1700000000123456);
  full.set_hostname("edge-7");
  full.set_app_name("nginx");
  full.set_procid("123");
  full.set_msgid("ID47");
  full.set_structured_data("[a b=\"c\"]");
  proto::SdElement* sd = full.add_sd();
  sd->set_id("a");
  proto::SdParam* param = sd->add_params();
  param->set_name("b");
  param->set_value("c");
  full.set_message(std::string("upstream \xff timed out", 20));
  full.set_received_unix_us(1700000000200000);
  full.set_source("udp:127.0.0.1:514");
  full.set_domain("web");
  full.set_parse_error(true);
  full.set_truncated(true);
  full.set_parse_problem("why");

  proto::LogRecord bare;  // no timestamp, unknown facility and severity
  bare.set_format("raw");
  bare.set_facility(-1);
  bare.set_severity(-1);
  bare.set_received_unix_us(5);
  bare.set_message("x");

  proto::LogRecord odd = full;  // a facility and format the flags cannot hold
  odd.set_facility(99);
  odd.set_format("something else");

  for (const proto::LogRecord& r : {full, bare, odd}) {
    const LogRow row = ToRow(r);
    CHECK(row.message == r.message());
    CHECK(row.ts_us == (r.timestamp_unix_us() != 0 ? r.timestamp_unix_us() : r.received_unix_us()));
    CHECK_FALSE(absl::StrContains(row.rest, r.message()));  // the message is stored once
    const LogRowView view{.domain = row.domain, .host = row.host, .app = row.app, .severity = row.severity,
                          .ts_us = row.ts_us, .received_us = row.received_us, .flags = row.flags,
                          .message = row.message, .rest = row.rest};
    auto back = FromRow(view);
    REQUIRE(back.ok());
    CHECK(back->SerializeAsString() == r.SerializeAsString());
  }
}

TEST_CASE("The index query finds every text of 4 bytes or more, in any case", "[station][logs]") {
  CHECK(TrigramQuery("abc").empty());  // too short for the index: searched without it
  CHECK(TrigramQuery(std::string("ab\0cd", 5)).empty());
  CHECK(TrigramQuery("ABCD") == "(\"abc\") OR (\"bcd\")");
  CHECK(TrigramQuery("a\"bcd") == "(\"a\"\"b\" AND \"bcd\") OR (\"\"\"bc\")");
  // At most max_terms per parity, spread over the text.
  const std::string q = TrigramQuery(std::string(200, 'x') + "0123456789abcdefghijklmnopqrstuvwxyz", 4);
  CHECK(std::count(q.begin(), q.end(), '"') == 2 * 2 * 4);
}

TEST_CASE("A batch is stored once", "[station][logs]") {
  TempDir dir;
  auto store = MustOpen(dir.str());
  auto first = std::make_shared<LogCounts>();
  REQUIRE(WriteAndWait(*store, AddLogs("ship1", "ev1", Batch({"a", "b", "c"}, 3), first)).ok());
  CHECK(first->fresh);
  CHECK(first->stored == 3);
  CHECK(first->errors == 3);
  auto again = std::make_shared<LogCounts>();
  REQUIRE(WriteAndWait(*store, AddLogs("ship1", "ev1", Batch({"a", "b", "c"}, 3), again)).ok());
  CHECK_FALSE(again->fresh);
  CHECK(again->stored == 0);
  // A batch that only reports drops is recorded (and so is a repeat of it: a no-op).
  auto empty = std::make_shared<LogCounts>();
  REQUIRE(WriteAndWait(*store, AddLogs("ship1", "ev2", proto::LogBatch(), empty)).ok());
  CHECK(empty->fresh);
  CHECK(Count(*store, "SELECT COUNT(*) FROM log_lines") == 3);
  CHECK(Count(*store, "SELECT COUNT(*) FROM log_batches") == 2);
  CHECK(IndexIntact(*store).ok());
}

TEST_CASE("A batch whose group is written again after another write failed part-way keeps every line",
          "[station][logs]") {
  TempDir dir;
  auto store = MustOpen(dir.str());
  // The writer is held until the batch and a write that fails part-way are queued: one
  // group, rolled back and written again without the failed write (Store::WriterLoop),
  // which runs the batch's write a second time.
  const auto release = HoldWriter(*store);
  auto counts = std::make_shared<LogCounts>();
  absl::Notification batch_done;
  absl::Status batch_status = absl::UnknownError("not done");
  store->Write(AddLogs("ship1", "ev1", Batch({"disk full on /var", "link up"}, 3), counts), [&](absl::Status st) {
    batch_status = st;
    batch_done.Notify();
  });
  absl::Notification failed_done;
  absl::Status failed_status;
  store->Write(FailsPartWay("half"), [&](absl::Status st) {
    failed_status = st;
    failed_done.Notify();
  });
  release->Notify();
  REQUIRE(batch_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  REQUIRE(failed_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  CHECK(absl::IsInternal(failed_status));
  INFO(batch_status.ToString());
  REQUIRE(batch_status.ok());
  CHECK(counts->fresh);
  CHECK(counts->stored == 2);
  CHECK(counts->errors == 2);
  CHECK(Count(*store, "SELECT COUNT(*) FROM log_lines") == 2);
  CHECK(Count(*store, "SELECT COUNT(*) FROM log_lines WHERE length(message) > 0 AND severity = 3") == 2);
  CHECK(Count(*store, "SELECT COUNT(*) FROM log_batches") == 1);
  CHECK(Count(*store, "SELECT COUNT(*) FROM settings WHERE key = 'half'") == 0);
  CHECK(IndexIntact(*store).ok());
}

TEST_CASE("Retention removes lines, and index parts with their last line, in steps, and seq goes on",
          "[station][logs]") {
  TempDir dir;
  auto store = MustOpen(dir.str());
  // 30 batches of 1,000 in index parts of 4,000 lines: "old-N" lines first, then "new-N".
  for (int b = 0; b < 30; ++b) {
    std::vector<std::string> messages;
    for (int i = 0; i < 1000; ++i) messages.push_back(absl::StrCat(b < 20 ? "old-line " : "new-line ", b * 1000 + i));
    store->Write(AddLogs("ship1", absl::StrCat("ev", b), Batch(messages), nullptr, /*part_lines=*/4000));
  }
  REQUIRE(WriteAndWait(*store, [](sqlite::Database&) { return absl::OkStatus(); }).ok());
  REQUIRE(Count(*store, "SELECT COUNT(*) FROM log_lines") == 30000);
  CHECK(Parts(*store) == 8);  // 7 of 4,000, the newest with 2,000
  CHECK(IndexHits(*store, "old-line") == 20000);
  proto::LogsRequest some_old = All();
  some_old.set_grep("old-line 1999");  // 1999, 19990..19999: over three parts
  CHECK(AllPages(*store, some_old, {}).size() == 11);

  // By count: the newest 9,500 stay. Whole parts go with their lines; the part the cut
  // falls into (20001..24000) keeps the entries of its removed lines until it goes.
  PruneLogs(*store, 0, 9500);
  REQUIRE(steward::testing::WaitUntil(
      [&] { return Count(*store, "SELECT COUNT(*) FROM log_lines") == 9500; }, absl::Seconds(30),
      absl::Milliseconds(20)));
  CHECK(Count(*store, "SELECT MIN(seq) FROM log_lines") == 20501);
  CHECK(Parts(*store) == 3);
  CHECK(IndexIntact(*store).ok());
  CHECK(IndexHits(*store, "old-line") == 0);  // the parts of lines 1..20000 are gone
  CHECK(IndexHits(*store, "new-line") == 10000);  // 20001..20500 still in their part
  proto::LogsRequest old_lines = All();
  old_lines.set_grep("old-line");
  CHECK(AllPages(*store, old_lines, {}).empty());
  proto::LogsRequest new_lines = All();
  new_lines.set_grep("new-line 2999");  // 29990..29999
  CHECK(AllPages(*store, new_lines, {}).size() == 10);
  // A removed line whose entry is still indexed is never found.
  proto::LogsRequest removed = All();
  removed.set_grep("new-line 2010");  // 20100..20109, removed, their entries kept
  CHECK(AllPages(*store, removed, {}).empty());
  proto::LogsRequest every_new = All();
  every_new.set_grep("new-line");
  CHECK(AllPages(*store, every_new, {}).size() == 9500);

  // By age: everything stored before now goes; the next line still gets a new seq.
  PruneLogs(*store, absl::ToUnixMillis(absl::Now()) + 1, 1'000'000);
  REQUIRE(steward::testing::WaitUntil([&] { return Count(*store, "SELECT COUNT(*) FROM log_lines") == 0; },
                                      absl::Seconds(30), absl::Milliseconds(20)));
  CHECK(Count(*store, "SELECT COUNT(*) FROM log_batches") == 0);
  CHECK(Parts(*store) == 0);
  REQUIRE(WriteAndWait(*store, AddLogs("ship1", "ev-after", Batch({"after"}), nullptr)).ok());
  CHECK(Count(*store, "SELECT MIN(seq) FROM log_lines") == 30001);
  CHECK(IndexIntact(*store).ok());
  proto::LogsRequest after = All();
  after.set_grep("after");
  CHECK(AllPages(*store, after, {}) == std::vector<int64_t>{30001});
}

TEST_CASE("Error lines per minute are read back from the ledger", "[station][logs]") {
  TempDir dir;
  auto store = MustOpen(dir.str());
  REQUIRE(WriteAndWait(*store, AddLogs("ship1", "e1", Batch({"a", "b"}, 3), nullptr)).ok());
  REQUIRE(WriteAndWait(*store, AddLogs("ship2", "e2", Batch({"c"}, 0), nullptr)).ok());
  REQUIRE(WriteAndWait(*store, AddLogs("ship2", "e3", Batch({"d"}, 6), nullptr)).ok());
  auto recent = RecentErrors(*store, absl::ToUnixMillis(absl::Now() - absl::Minutes(10)));
  REQUIRE(recent.ok());
  int64_t ship1 = 0;
  int64_t ship2 = 0;
  for (const ErrorMinute& e : *recent) (e.node == "ship1" ? ship1 : ship2) += e.errors;
  CHECK(ship1 == 2);
  CHECK(ship2 == 1);
  auto none = RecentErrors(*store, absl::ToUnixMillis(absl::Now() + absl::Minutes(10)));
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("A 0.1.0 ledger's syslog line survives the migration and is searchable",
          "[station][logs][upgrade]") {
  TempDir dir;
  std::filesystem::copy_file(std::string(STEWARD_SOURCE_DIR) + "/tests/fixtures/release-0.1.0/station.db",
                             dir.path() / "station.db");
  auto store = MustOpen(dir.str());
  CHECK(Count(*store, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'logs'") == 0);
  proto::LogsRequest req = All();
  req.set_grep("timed out");
  auto reply = QueryLogs(*store, req, {});
  REQUIRE(reply.ok());
  REQUIRE(reply->entries_size() == 1);
  const proto::LogEntry& e = reply->entries(0);
  CHECK(e.node() == "ship1");
  CHECK(e.record().message() == "upstream timed out");
  CHECK(e.record().domain() == "nginx");
  CHECK(e.record().app_name() == "nginx");
  CHECK(e.record().severity() == 5);
  CHECK(e.record().received_unix_us() == 1796018323355002);
  req.set_node("ship1");
  req.set_app("nginx");
  req.set_ignore_case(true);
  req.set_grep("UPSTREAM");
  CHECK(AllPages(*store, req, {}).size() == 1);
  CHECK(IndexIntact(*store).ok());
  // Its batch is known: a repeat of it is a no-op.
  auto counts = std::make_shared<LogCounts>();
  REQUIRE(WriteAndWait(*store, AddLogs("ship1", "01M8NGHFZZ6A5EH2BE08RHNVQG", Batch({"x"}), counts)).ok());
  CHECK_FALSE(counts->fresh);
}

TEST_CASE("A line too large for the reply is cut to fit and marked", "[station][logs]") {
  TempDir dir;
  auto store = MustOpen(dir.str());
  REQUIRE(WriteAndWait(*store, AddLogs("ship1", "big", Batch({std::string(50000, 'x'), "small"}), nullptr)).ok());
  auto reply = QueryLogs(*store, All(), LogQueryLimits{.max_reply_bytes = 20000});
  REQUIRE(reply.ok());
  REQUIRE(reply->entries_size() == 1);  // the newest first; the big one does not fit next to it
  CHECK(reply->entries(0).record().message() == "small");
  proto::LogsRequest next = All();
  next.set_page(reply->next_page());
  auto page2 = QueryLogs(*store, next, LogQueryLimits{.max_reply_bytes = 20000});
  REQUIRE(page2.ok());
  REQUIRE(page2->entries_size() == 1);
  CHECK(page2->entries(0).record().truncated());
  CHECK(page2->ByteSizeLong() <= 20000);
  CHECK(page2->entries(0).record().message().size() > 10000);
  CHECK(page2->next_page().empty());
}

TEST_CASE("Bad cursors are refused", "[station][logs]") {
  TempDir dir;
  auto store = MustOpen(dir.str());
  proto::LogsRequest bad_page = All();
  bad_page.set_page("nonsense");
  CHECK(absl::IsInvalidArgument(QueryLogs(*store, bad_page, {}).status()));
  proto::LogsRequest bad_after = All();
  bad_after.set_after("x");
  CHECK(absl::IsInvalidArgument(QueryLogs(*store, bad_after, {}).status()));
}

// ---------------------------------------------------------------------------------
// Every filter over a store of 200,000 lines, against a brute-force answer.

struct Line {
  int64_t seq;
  std::string node, host, app, domain;
  int severity;
  int64_t ts_us, received_us;
  std::string message;
};

constexpr int64_t kBase = 1'700'000'000'000'000;

Line MakeLine(int64_t i) {
  Line l;
  l.seq = i + 1;
  l.node = absl::StrCat("ship", ((i / 500) * 7) % 40);  // one node per batch of 500
  l.host = i % 25 == 0 ? absl::StrCat("edge-", i % 3) : l.node;
  static const char* kApps[] = {"nginx", "sshd", "kernel", "app", "CRON"};
  l.app = kApps[(i * 13) % 5];
  l.domain = absl::AsciiStrToLower(l.app);
  l.severity = i % 97 == 0 ? 3 : i % 31 == 0 ? 4 : i % 11 == 0 ? -1 : i % 5 == 0 ? 5 : 6;
  l.received_us = kBase + i * 1000 + 500;
  // Some lines have no timestamp of their own; some arrive late, with an old one.
  l.ts_us = i % 17 == 0 ? l.received_us : i % 50 == 0 ? kBase + (i - 40000) * 1000 : kBase + i * 1000;
  l.message = absl::StrCat("line ", i, i % 3 == 0 ? " connection reset by peer" : " request done",
                           i % 1000 == 5 ? " Upstream Timed Out" : "", i % 101 == 0 ? " bad\xff\xfe bytes" : "",
                           i % 7 == 0 ? " gr\xc3\xbc\xc3\x9f" : "");
  return l;
}

proto::LogRecord ToRecord(const Line& l) {
  proto::LogRecord r;
  r.set_format("rfc3164");
  r.set_severity(l.severity);
  r.set_hostname(l.host);
  r.set_app_name(l.app);
  r.set_domain(l.domain);
  r.set_received_unix_us(l.received_us);
  if (l.ts_us != l.received_us) r.set_timestamp_unix_us(l.ts_us);
  r.set_message(l.message);
  return r;
}

bool Glob(const std::string& pattern, const std::string& name) {
  return pattern.empty() || fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

bool IcaseContains(std::string text, std::string needle) {
  return absl::StrContains(absl::AsciiStrToLower(text), absl::AsciiStrToLower(needle));
}

// What QueryLogs must answer, newest first.
std::vector<int64_t> Expected(const std::vector<Line>& lines, const proto::LogsRequest& r) {
  std::vector<const Line*> hits;
  for (const Line& l : lines) {
    std::vector<std::string> nodes(r.nodes().begin(), r.nodes().end());
    if (!r.node().empty()) nodes.push_back(r.node());
    if (!nodes.empty() && std::none_of(nodes.begin(), nodes.end(), [&](const auto& p) { return Glob(p, l.node); })) {
      continue;
    }
    if (!Glob(r.domain(), l.domain) || !Glob(r.app(), l.app) || !Glob(r.host(), l.host)) continue;
    if (r.max_severity() >= 0 && r.max_severity() < 7 && (l.severity < 0 || l.severity > r.max_severity())) continue;
    const int64_t t = r.by_received() ? l.received_us : l.ts_us;
    if (r.since_unix_ms() > 0 && t < r.since_unix_ms() * 1000) continue;
    if (r.until_unix_ms() > 0 && t >= r.until_unix_ms() * 1000) continue;
    if (!r.grep().empty() && !(r.ignore_case() ? IcaseContains(l.message, r.grep())
                                               : absl::StrContains(l.message, r.grep()))) {
      continue;
    }
    hits.push_back(&l);
  }
  std::sort(hits.begin(), hits.end(), [](const Line* a, const Line* b) {
    return a->ts_us != b->ts_us ? a->ts_us > b->ts_us : a->seq > b->seq;
  });
  std::vector<int64_t> out;
  for (const Line* l : hits) out.push_back(l->seq);
  return out;
}

TEST_CASE("Every search filter over 200,000 lines answers as a full scan would, page by page",
          "[station][logs]") {
  constexpr int64_t kLines = 200'000;
  TempDir dir;
  auto store = MustOpen(dir.str());
  std::vector<Line> lines;
  for (int64_t i = 0; i < kLines; ++i) lines.push_back(MakeLine(i));
  for (int64_t b = 0; b < kLines / 500; ++b) {
    proto::LogBatch batch;
    for (int64_t i = b * 500; i < (b + 1) * 500; ++i) *batch.add_records() = ToRecord(lines[static_cast<size_t>(i)]);
    // Index parts of 30,000 lines: searches go through several.
    store->Write(AddLogs(lines[static_cast<size_t>(b * 500)].node, absl::StrCat("ev", b), std::move(batch), nullptr,
                         /*part_lines=*/30000));
  }
  REQUIRE(WriteAndWait(*store, [](sqlite::Database&) { return absl::OkStatus(); }).ok());
  REQUIRE(Count(*store, "SELECT COUNT(*) FROM log_lines") == kLines);
  REQUIRE(Parts(*store) == 7);

  struct Case {
    const char* name;
    std::function<void(proto::LogsRequest&)> fill;
  };
  constexpr int64_t mid_ms = (kBase + 100'000 * 1000) / 1000;
  const std::vector<Case> cases = {
      {"grep, case as given", [](proto::LogsRequest& r) { r.set_grep("Timed Out"); }},
      {"grep -i", [](proto::LogsRequest& r) {
         r.set_grep("upstream TIMED out");
         r.set_ignore_case(true);
       }},
      {"grep, other case", [](proto::LogsRequest& r) { r.set_grep("timed out"); }},
      {"grep, common text", [](proto::LogsRequest& r) { r.set_grep("connection reset"); }},
      {"grep, 3 bytes", [](proto::LogsRequest& r) { r.set_grep("99 "); }},
      {"grep, bytes that are not UTF-8", [](proto::LogsRequest& r) { r.set_grep("d\xff\xfe b"); }},
      {"grep, UTF-8", [](proto::LogsRequest& r) { r.set_grep("gr\xc3\xbc\xc3\x9f"); }},
      {"grep, nowhere", [](proto::LogsRequest& r) { r.set_grep("no such text"); }},
      {"one node", [](proto::LogsRequest& r) { r.set_node("ship7"); }},
      {"node globs", [](proto::LogsRequest& r) {
         r.set_node("ship1*");
         r.add_nodes("ship3");
       }},
      {"app and warnings", [](proto::LogsRequest& r) {
         r.set_app("nginx");
         r.set_max_severity(4);
       }},
      {"errors", [](proto::LogsRequest& r) { r.set_max_severity(3); }},
      {"notice and worse", [](proto::LogsRequest& r) { r.set_max_severity(5); }},
      {"host glob and domain", [](proto::LogsRequest& r) {
         r.set_host("edge-*");
         r.set_domain("nginx");
       }},
      {"time window", [](proto::LogsRequest& r) {
         r.set_since_unix_ms(mid_ms - 20000);
         r.set_until_unix_ms(mid_ms + 20000);
       }},
      {"receive time window", [](proto::LogsRequest& r) {
         r.set_since_unix_ms(mid_ms - 20000);
         r.set_until_unix_ms(mid_ms + 20000);
         r.set_by_received(true);
       }},
      {"everything at once", [](proto::LogsRequest& r) {
         r.set_node("ship2*");
         r.set_grep("CONNECTION");
         r.set_ignore_case(true);
         r.set_max_severity(6);
         r.set_since_unix_ms(mid_ms - 60000);
       }},
  };
  for (const Case& c : cases) {
    proto::LogsRequest req = All();
    c.fill(req);
    const std::vector<int64_t> want = Expected(lines, req);
    INFO(c.name << ": " << want.size() << " lines");
    CHECK(AllPages(*store, req, {}) == want);
  }
  // Every line, through pages cut by bytes and by a tiny time budget.
  proto::LogsRequest all = All();
  CHECK(AllPages(*store, all, LogQueryLimits{.max_reply_bytes = 64 * 1024}) == Expected(lines, all));
  proto::LogsRequest sparse = All();  // a common text: along the time index, in short pages
  sparse.set_host("edge-0");
  sparse.set_grep("conn");
  CHECK(AllPages(*store, sparse, LogQueryLimits{.max_time = absl::Milliseconds(2)}) == Expected(lines, sparse));

  // Follow: what is stored after the listing, matching lines only, in the order stored.
  proto::LogsRequest errors = All();
  errors.set_max_severity(3);
  auto first = QueryLogs(*store, errors, {});
  REQUIRE(first.ok());
  CHECK(first->cursor() == absl::StrCat(kLines));
  proto::LogBatch more;
  for (int i = 0; i < 10; ++i) *more.add_records() = Record(absl::StrCat("later ", i), i % 2 == 0 ? 3 : 6);
  REQUIRE(WriteAndWait(*store, AddLogs("ship9", "later", std::move(more), nullptr)).ok());
  proto::LogsRequest follow = errors;
  follow.set_after(first->cursor());
  auto next = QueryLogs(*store, follow, {});
  REQUIRE(next.ok());
  std::vector<std::string> got;
  for (const proto::LogEntry& e : next->entries()) got.push_back(e.record().message());
  CHECK(got == std::vector<std::string>{"later 0", "later 2", "later 4", "later 6", "later 8"});
  CHECK(next->cursor() == absl::StrCat(kLines + 10));
  follow.set_after(next->cursor());
  auto none = QueryLogs(*store, follow, {});
  REQUIRE(none.ok());
  CHECK(none->entries_size() == 0);
  CHECK(none->cursor() == follow.after());
}

}  // namespace
}  // namespace steward::station::ledger
