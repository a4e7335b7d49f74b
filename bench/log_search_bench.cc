// log_search_bench: the station's log store at fleet size. Builds a store of N syslog
// lines (10 M by default) straight through the station's store API (the AddLogs
// writes the intake makes for every agent batch, group-committed by the ledger's
// writer thread, full-text index on), and reports in one run:
//   a. ingest: lines/s stored with the index on (overall and over the last tenth),
//      next to raw SQLite (the same messages into a bare table) in the same run;
//   b. storage: bytes per line, and what each table and index takes;
//   c. searches in-process (QueryLogs, the function the station answers with): rare
//      and common texts, -i, node, glob, app, host, severity, time windows;
//   d. the same searches end to end: `stewardctl logs` against a steward-station on
//      that ledger (process start and NATS included).
// Goals (issue 16): --grep over 10 M lines under 200 ms; ingest >= 50,000 lines/s.
//
//   build/bench/log_search_bench [--lines N] [--keep] [--dir DIR]
// --dir reuses a store built before (skips ingest when it holds N lines or more).
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "common/mutex_mode.h"
#include "common/sqlite.h"
#include "common/status_macros.h"
#include "proto/steward.pb.h"
#include "station/ledger/log_query.h"
#include "station/ledger/log_store.h"
#include "station/ledger/store.h"
#include "tests/testing/process.h"

namespace {

using steward::bench::BenchDir;
using steward::bench::Children;
using steward::station::ledger::Store;

constexpr int64_t kDefaultLines = 10'000'000;
constexpr int kBatchLines = 500;     // an agent's batch
constexpr int kInFlight = 64;        // batches queued for the writer at most (agents sending at once)
constexpr int kNodes = 100;
constexpr int64_t kRawLines = 1'000'000;  // the raw SQLite baseline
constexpr int kRuns = 5;            // per search
constexpr int64_t kPruneEvery = 100'000;  // lines, at the cap
constexpr double kGrepGoalMs = 200;
constexpr double kIngestGoal = 50000;
// Planted texts: a rare phrase (one line in kRareEvery) and one unique request id.
constexpr int64_t kRareEvery = 100'003;
constexpr char kRare[] = "upstream timed out while reading response header";
constexpr char kUnique[] = "req=c0ffee42-feed-beef";

struct Args {
  int64_t lines = kDefaultLines;
  bool keep = false;
  std::string dir;
};

// ---------------------------------------------------------------------------------------
// Lines.

// Synthetic but plausible lines from kNodes nodes over the last 7 days, in time order:
// nginx access and error lines, sshd, kernel, cron and an application, mostly info,
// some errors, random ids and addresses (a large vocabulary, as real logs have).
class LineMaker {
 public:
  explicit LineMaker(int64_t total) : total_(total), start_us_(absl::ToUnixMicros(absl::Now() - absl::Hours(24 * 7))) {}

  steward::proto::LogRecord Make(int64_t i) {
    steward::proto::LogRecord r;
    const int node = static_cast<int>(rng_() % kNodes);
    const int64_t ts = start_us_ + i * (absl::ToInt64Microseconds(absl::Hours(24 * 7)) / std::max<int64_t>(total_, 1)) +
                       static_cast<int64_t>(rng_() % 1000);
    r.set_format("rfc3164");
    r.set_timestamp_unix_us(ts);
    r.set_received_unix_us(ts + 300);
    r.set_hostname(rng_() % 50 == 0 ? absl::StrCat("edge-", node % 10) : absl::StrCat("ship", node));
    r.set_source("udp:0.0.0.0:514");
    const int kind = static_cast<int>(rng_() % 100);
    std::string message;
    if (kind < 35) {
      r.set_app_name("nginx");
      r.set_facility(3);
      r.set_severity(6);
      message = absl::StrCat(Ip(), " - - \"GET /api/v1/items/", rng_() % 1000000, " HTTP/1.1\" ",
                             kStatus[rng_() % 6], " ", rng_() % 100000, " \"-\" \"curl/7.", 60 + rng_() % 30, ".0\"");
    } else if (kind < 50) {
      r.set_app_name("sshd");
      r.set_facility(4);
      r.set_severity(6);
      message = absl::StrCat("Accepted publickey for user", rng_() % 500, " from ", Ip(), " port ",
                             1024 + rng_() % 60000, " ssh2: ED25519 SHA256:", Hex(), Hex());
    } else if (kind < 60) {
      r.set_app_name("kernel");
      r.set_facility(0);
      r.set_severity(kind < 59 ? 6 : 4);
      message = absl::StrCat("eth", rng_() % 4, ": link ", rng_() % 2 ? "up" : "down", " at ", rng_() % 10000,
                             " Mbps, temperature sensor ", rng_() % 100, " C");
    } else if (kind < 65) {
      r.set_app_name("CRON");
      r.set_facility(9);
      r.set_severity(6);
      message = absl::StrCat("(root) CMD (/usr/local/bin/backup --job ", rng_() % 1000, ")");
    } else {
      r.set_app_name("app");
      r.set_facility(16);
      r.set_severity(kind < 97 ? 6 : kind < 99 ? 4 : 3);
      message = absl::StrCat(kWords[rng_() % kWordCount], " ", kWords[rng_() % kWordCount], " connection ",
                             kWords[rng_() % kWordCount], " ", rng_() % 1000000, " ", kWords[rng_() % kWordCount],
                             " req=", Hex(), " took ", rng_() % 5000, "ms");
    }
    if (i % kRareEvery == 7) {
      r.set_app_name("nginx");
      r.set_severity(3);
      message = absl::StrCat(kRare, " from upstream, client: ", Ip(), ", request: \"GET /api HTTP/1.1\"");
    }
    if (i == total_ / 2) message += absl::StrCat(" ", kUnique);
    r.set_procid(absl::StrCat(100 + rng_() % 30000));
    r.set_domain(r.app_name() == "CRON" ? "cron" : r.app_name());
    r.set_message(std::move(message));
    return r;
  }

  static std::string NodeName(int node) { return absl::StrCat("ship", node); }
  int NextNode() { return static_cast<int>(rng_() % kNodes); }

 private:
  static constexpr int kStatus[] = {200, 200, 200, 404, 500, 502};
  static constexpr const char* kWords[] = {
      "worker", "started", "stopped", "cache", "miss", "hit", "database", "query", "slow", "lock", "wait",
      "retry", "backoff", "session", "opened", "closed", "disk", "quota", "exceeded", "request", "failed",
      "succeeded", "timeout", "reset", "refused", "service", "unit", "sensor", "fan", "speed"};
  static constexpr size_t kWordCount = sizeof(kWords) / sizeof(kWords[0]);

  std::string Ip() {
    return absl::StrCat(rng_() % 223 + 1, ".", rng_() % 256, ".", rng_() % 256, ".", rng_() % 256);
  }
  std::string Hex() { return absl::StrCat(absl::Hex(rng_() & 0xffffffffffffULL, absl::kZeroPad12)); }

  const int64_t total_;
  const int64_t start_us_;
  std::mt19937_64 rng_{42};
};

// ---------------------------------------------------------------------------------------
// a. Ingest.

struct IngestResult {
  int64_t lines = 0;
  double seconds = 0;
  double writer_cpu_seconds = 0;  // the ledger's writer thread: what the store costs
  double last_tenth_rate = 0;
  double generate_seconds = 0;  // making the records, on this thread (not the writer's)
};

absl::StatusOr<int64_t> StoredLines(Store& store) {
  int64_t n = 0;
  STEWARD_RETURN_IF_ERROR(store.Read([&](steward::sqlite::Database& db) -> absl::Status {
    STEWARD_ASSIGN_OR_RETURN(auto st, db.Prepare("SELECT COUNT(*) FROM log_lines"));
    STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
    n = row ? st.ColumnInt(0) : 0;
    return absl::OkStatus();
  }));
  return n;
}

// Writes `total` lines in agent-sized batches through the store's writer, at most
// kInFlight batches queued (as many agents sending at once would keep it).
// With `keep` > 0, retention runs as it does in the station (every kPruneEvery lines
// here, every minute there): lines beyond the newest `keep` go, index entries too.
absl::StatusOr<IngestResult> Ingest(Store& store, int64_t total, int64_t first = 0, int64_t keep = 0) {
  LineMaker maker(first + total);
  absl::Mutex mu;
  int in_flight = 0;
  absl::Status failed;
  std::atomic<int64_t> committed{0};
  // CPU time of the writer thread, read where it runs: in the writes' completions.
  std::atomic<int64_t> writer_cpu_first_ns{-1};
  std::atomic<int64_t> writer_cpu_last_ns{0};
  IngestResult out;
  const absl::Time start = absl::Now();
  absl::Time tenth_start = start;
  int64_t tenth_from = 0;
  absl::Duration generating;
  int64_t next_report = 1'000'000;
  const int64_t prune_every = std::min(kPruneEvery, std::max<int64_t>(total / 10, 1000));
  int64_t next_prune = first + prune_every;
  for (int64_t i = first; i < first + total;) {
    if (keep > 0 && i >= next_prune) {
      steward::station::ledger::PruneLogs(store, 0, keep);
      next_prune += prune_every;
    }
    const absl::Time g0 = absl::Now();
    steward::proto::LogBatch batch;
    const int node = maker.NextNode();
    for (int k = 0; k < kBatchLines && i < first + total; ++k, ++i) *batch.add_records() = maker.Make(i);
    generating += absl::Now() - g0;
    {
      absl::MutexLock lock(&mu);
      auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return in_flight < kInFlight; };
      mu.Await(absl::Condition(&room));
      if (!failed.ok()) return failed;
      ++in_flight;
    }
    const int64_t lines = batch.records_size();
    store.Write(steward::station::ledger::AddLogs(LineMaker::NodeName(node), absl::StrCat("bench-", i), std::move(batch),
                                                  nullptr),
                [&, lines](absl::Status st) {
                  timespec ts{};
                  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
                  const int64_t ns = int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
                  int64_t unset = -1;
                  writer_cpu_first_ns.compare_exchange_strong(unset, ns);
                  writer_cpu_last_ns = ns;
                  committed += lines;
                  absl::MutexLock lock(&mu);
                  --in_flight;
                  if (!st.ok() && failed.ok()) failed = st;
                });
    if (i >= first + total - total / 10 && tenth_from == 0) {
      tenth_from = committed.load();
      tenth_start = absl::Now();
    }
    if (i - first >= next_report) {
      const double s = absl::ToDoubleSeconds(absl::Now() - start);
      fmt::print("  {:>10} lines in {:6.1f} s: {:.0f} lines/s\n", committed.load(), s,
                 static_cast<double>(committed.load()) / s);
      std::fflush(stdout);
      next_report += std::max<int64_t>(1'000'000, total / 10);
    }
  }
  absl::MutexLock lock(&mu);
  auto drained = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return in_flight == 0; };
  mu.Await(absl::Condition(&drained));
  if (!failed.ok()) return failed;
  const absl::Time end = absl::Now();
  out.lines = committed.load();
  out.seconds = absl::ToDoubleSeconds(end - start);
  out.last_tenth_rate = static_cast<double>(out.lines - tenth_from) / absl::ToDoubleSeconds(end - tenth_start);
  out.generate_seconds = absl::ToDoubleSeconds(generating);
  out.writer_cpu_seconds = static_cast<double>(writer_cpu_last_ns - writer_cpu_first_ns) / 1e9;
  return out;
}

// The same messages into a bare table (rowid, message), in transactions of the same
// size, synchronous=FULL like the ledger: what SQLite itself costs.
absl::StatusOr<double> RawSqliteRate(const std::string& path, int64_t total) {
  STEWARD_ASSIGN_OR_RETURN(steward::sqlite::Database db, steward::sqlite::Database::Open(path, {}));
  STEWARD_RETURN_IF_ERROR(db.Exec("CREATE TABLE raw (seq INTEGER PRIMARY KEY, message BLOB NOT NULL)"));
  LineMaker maker(total);
  std::vector<std::string> messages;
  messages.reserve(static_cast<size_t>(total));
  for (int64_t i = 0; i < total; ++i) messages.push_back(maker.Make(i).message());
  const absl::Time start = absl::Now();
  for (int64_t i = 0; i < total;) {
    STEWARD_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
    for (int k = 0; k < kBatchLines * kInFlight && i < total; ++k, ++i) {
      STEWARD_ASSIGN_OR_RETURN(auto st, db.Prepare("INSERT INTO raw(message) VALUES (?1)"));
      STEWARD_RETURN_IF_ERROR(st.BindBlob(1, messages[static_cast<size_t>(i)]));
      STEWARD_RETURN_IF_ERROR(st.Step().status());
    }
    STEWARD_RETURN_IF_ERROR(db.Exec("COMMIT"));
  }
  return static_cast<double>(total) / absl::ToDoubleSeconds(absl::Now() - start);
}

// ---------------------------------------------------------------------------------------
// b. Storage.

int64_t FileBytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

// What each table and index takes (dbstat), largest first; empty when SQLite was built
// without dbstat.
std::vector<std::pair<std::string, int64_t>> SpaceByObject(const std::string& path) {
  std::vector<std::pair<std::string, int64_t>> out;
  auto db = steward::sqlite::Database::Open(path, {.read_only = true});
  if (!db.ok()) return out;
  auto st = db->Prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC");
  if (!st.ok()) return out;
  while (true) {
    auto row = st->Step();
    if (!row.ok() || !*row) break;
    out.emplace_back(st->ColumnText(0), st->ColumnInt(1));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// c, d. Searches.

struct Search {
  const char* name;
  steward::proto::LogsRequest request;
  std::vector<std::string> ctl_args;  // the same as stewardctl logs options
};

std::vector<Search> Searches() {
  std::vector<Search> out;
  auto add = [&](const char* name, std::vector<std::string> ctl, auto fill) {
    Search s{name, {}, std::move(ctl)};
    s.request.set_limit(100);
    s.request.set_max_severity(-1);  // all (0 is emerg only)
    fill(s.request);
    out.push_back(std::move(s));
  };
  using Req = steward::proto::LogsRequest;
  const std::string day_ago = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now() - absl::Hours(24), absl::UTCTimeZone());
  const std::string day_ago_plus = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now() - absl::Hours(23), absl::UTCTimeZone());
  const int64_t day_ago_ms = absl::ToUnixMillis(absl::Now() - absl::Hours(24));
  add("newest 100 lines", {}, [](Req&) {});
  add("--grep rare phrase (1 line in 100,003)", {"--grep", kRare}, [](Req& r) { r.set_grep(kRare); });
  add("--grep a unique request id", {"--grep", kUnique}, [](Req& r) { r.set_grep(kUnique); });
  add("--grep common word (20% of lines)", {"--grep", "connection"}, [](Req& r) { r.set_grep("connection"); });
  add("--grep -i rare phrase, upper case", {"--grep", "UPSTREAM TIMED OUT", "-i"}, [](Req& r) {
    r.set_grep("UPSTREAM TIMED OUT");
    r.set_ignore_case(true);
  });
  add("--grep text in no line", {"--grep", "no such text anywhere"}, [](Req& r) { r.set_grep("no such text anywhere"); });
  add("--grep 2 characters (no index)", {"--grep", "zq"}, [](Req& r) { r.set_grep("zq"); });
  add("--node ship7", {"--node", "ship7"}, [](Req& r) { r.set_node("ship7"); });
  add("--node 'ship1*' --severity err", {"--node", "ship1*", "--severity", "err"}, [](Req& r) {
    r.set_node("ship1*");
    r.set_max_severity(3);
  });
  add("--app nginx --severity err", {"--app", "nginx", "--severity", "err"}, [](Req& r) {
    r.set_app("nginx");
    r.set_max_severity(3);
  });
  add("--host edge-3 (2% of lines)", {"--host", "edge-3"}, [](Req& r) { r.set_host("edge-3"); });
  add("--since/--until one hour a day ago", {"--since", day_ago, "--until", day_ago_plus}, [&](Req& r) {
    r.set_since_unix_ms(day_ago_ms);
    r.set_until_unix_ms(day_ago_ms + 3'600'000);
  });
  add("--node ship7 --grep rare phrase --since 7d", {"--node", "ship7", "--grep", kRare, "--since", "168h"},
      [](Req& r) {
        r.set_node("ship7");
        r.set_grep(kRare);
        r.set_since_unix_ms(absl::ToUnixMillis(absl::Now() - absl::Hours(168)));
      });
  return out;
}

struct Timing {
  double min_ms = 0;
  double median_ms = 0;
  double max_ms = 0;
  int lines = 0;
  bool more = false;
};

Timing Summarize(std::vector<double> ms, int lines, bool more) {
  std::sort(ms.begin(), ms.end());
  return Timing{ms.front(), ms[ms.size() / 2], ms.back(), lines, more};
}

absl::Status InProcess(Store& store, const std::vector<Search>& searches) {
  fmt::print("\nc. searches in-process (QueryLogs, first page of 100, {} runs: min / median / max)\n", kRuns);
  for (const Search& s : searches) {
    std::vector<double> ms;
    int lines = 0;
    bool more = false;
    for (int run = 0; run < kRuns; ++run) {
      const absl::Time t0 = absl::Now();
      auto reply = steward::station::ledger::QueryLogs(store, s.request, {});
      if (!reply.ok()) return reply.status();
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
      lines = reply->entries_size();
      more = !reply->next_page().empty();
    }
    const Timing t = Summarize(std::move(ms), lines, more);
    fmt::print("  {:<46} {:7.1f} / {:7.1f} / {:7.1f} ms  {:>3} lines{}\n", s.name, t.min_ms, t.median_ms, t.max_ms,
               t.lines, t.more ? ", more" : "");
  }
  return absl::OkStatus();
}

absl::Status EndToEnd(Children& children, BenchDir& dir, const std::string& data_dir,
                      const std::vector<Search>& searches) {
  STEWARD_ASSIGN_OR_RETURN(const std::string url, steward::bench::StartBroker(children, dir));
  STEWARD_RETURN_IF_ERROR(children.Spawn(
      "station", {steward::testing::BinPath("station/steward-station"), "--nats", url, "--data-dir", data_dir},
      dir.File("station.log"), absl::Seconds(30)));
  const std::string ctl = steward::testing::BinPath("ctl/stewardctl");
  STEWARD_RETURN_IF_ERROR(steward::bench::WaitUntil("the station", children, [&]() -> absl::Status {
    auto r = steward::testing::RunProgram({ctl, "--nats", url, "nodes", "--timeout", "1s"}, absl::Seconds(5));
    return r.exit_code == 0 ? absl::OkStatus() : absl::UnavailableError(r.err);
  }, absl::Seconds(60)));
  // What starting stewardctl and connecting costs, apart from the search.
  std::vector<double> base;
  for (int run = 0; run < kRuns; ++run) {
    const absl::Time t0 = absl::Now();
    steward::testing::RunProgram({ctl, "--nats", url, "nodes"}, absl::Seconds(30));
    base.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
  }
  const Timing b = Summarize(base, 0, false);
  fmt::print("\nd. the same through `stewardctl logs` (process start, NATS, station; {} runs: min / median / max)\n",
             kRuns);
  fmt::print("  {:<46} {:7.1f} / {:7.1f} / {:7.1f} ms\n", "(stewardctl nodes, for comparison)", b.min_ms, b.median_ms,
             b.max_ms);
  for (const Search& s : searches) {
    std::vector<std::string> argv = {ctl, "--nats", url, "logs", "-n", "100"};
    argv.insert(argv.end(), s.ctl_args.begin(), s.ctl_args.end());
    std::vector<double> ms;
    int lines = 0;
    for (int run = 0; run < kRuns; ++run) {
      const absl::Time t0 = absl::Now();
      auto r = steward::testing::RunProgram(argv, absl::Seconds(120));
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
      if (r.exit_code != 0) return absl::InternalError(absl::StrCat(s.name, ": stewardctl failed: ", r.err));
      lines = static_cast<int>(std::count(r.out.begin(), r.out.end(), '\n'));
    }
    const Timing t = Summarize(std::move(ms), lines, false);
    fmt::print("  {:<46} {:7.1f} / {:7.1f} / {:7.1f} ms  {:>3} lines\n", s.name, t.min_ms, t.median_ms, t.max_ms,
               t.lines);
  }
  children.Stop("station");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------

absl::Status Run(const Args& args, Children& children, BenchDir& dir) {
  const std::string data_dir = args.dir.empty() ? dir.File("station") : args.dir;
  const std::string db_path = data_dir + "/station.db";
  fmt::print("log_search_bench: {} lines, batches of {}, {} nodes; {} CPUs; ledger {}\n", args.lines, kBatchLines,
             kNodes, std::thread::hardware_concurrency(), db_path);
  std::vector<Search> searches = Searches();
  {
    STEWARD_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(data_dir));
    STEWARD_ASSIGN_OR_RETURN(int64_t have, StoredLines(*store));
    if (have >= args.lines) {
      fmt::print("\na. ingest: skipped, the ledger holds {} lines already\n", have);
    } else {
      fmt::print("\na. ingest through the store API (AddLogs, group commit, synchronous=FULL, index on)\n");
      STEWARD_ASSIGN_OR_RETURN(IngestResult in, Ingest(*store, args.lines - have));
      const double rate = static_cast<double>(in.lines) / in.seconds;
      STEWARD_ASSIGN_OR_RETURN(double raw, RawSqliteRate(dir.File("raw.db"), std::min(kRawLines, args.lines)));
      fmt::print("  stored {} lines in {:.1f} s: {:.0f} lines/s overall, {:.0f} lines/s over the last tenth "
                 "(goal {:.0f}: {}); making the lines took {:.1f} s of that, on another thread\n",
                 in.lines, in.seconds, rate, in.last_tenth_rate, kIngestGoal,
                 std::min(rate, in.last_tenth_rate) >= kIngestGoal ? "met" : "MISSED", in.generate_seconds);
      fmt::print("  the ledger's writer thread ran {:.1f} s of CPU for them: {:.0f} lines per CPU-second (what one "
                 "free core sustains; the machine is shared)\n",
                 in.writer_cpu_seconds, static_cast<double>(in.lines) / in.writer_cpu_seconds);
      fmt::print("  raw SQLite, the messages alone into a bare table: {:.0f} lines/s; the store is {:.0f}% of that\n",
                 raw, 100.0 * rate / raw);
      // At the cap: every line stored makes retention remove one, index entries too.
      const int64_t more = std::max<int64_t>(args.lines / 10, 10'000);
      fmt::print("  at the cap: {} more lines while retention keeps the newest {}\n", more, args.lines);
      STEWARD_ASSIGN_OR_RETURN(IngestResult cap, Ingest(*store, more, args.lines, args.lines));
      fmt::print("  stored {} lines in {:.1f} s: {:.0f} lines/s (goal {:.0f}: {}); writer {:.1f} s of CPU: {:.0f} lines "
                 "per CPU-second\n",
                 cap.lines, cap.seconds, static_cast<double>(cap.lines) / cap.seconds, kIngestGoal,
                 static_cast<double>(cap.lines) / cap.seconds >= kIngestGoal ? "met" : "MISSED",
                 cap.writer_cpu_seconds, static_cast<double>(cap.lines) / cap.writer_cpu_seconds);
    }
    STEWARD_RETURN_IF_ERROR(InProcess(*store, searches));
    store->Shutdown();
  }
  const int64_t bytes = FileBytes(db_path) + FileBytes(db_path + "-wal");
  STEWARD_ASSIGN_OR_RETURN(std::unique_ptr<Store> reopened, Store::Open(data_dir));
  STEWARD_ASSIGN_OR_RETURN(const int64_t lines, StoredLines(*reopened));
  reopened.reset();
  fmt::print("\nb. storage: {:.0f} MB for {} lines = {:.0f} bytes per line (the whole ledger file)\n",
             static_cast<double>(bytes) / 1e6, lines, static_cast<double>(bytes) / static_cast<double>(lines));
  for (const auto& [name, size] : SpaceByObject(db_path)) {
    if (size * 200 < bytes) continue;  // under 0.5%
    fmt::print("  {:<28} {:8.0f} MB  {:5.0f} bytes per line\n", name, static_cast<double>(size) / 1e6,
               static_cast<double>(size) / static_cast<double>(lines));
  }
  STEWARD_RETURN_IF_ERROR(EndToEnd(children, dir, data_dir, searches));
  fmt::print("\ngoal: --grep answers in under {:.0f} ms (see c and d)\n", kGrepGoalMs);
  return absl::OkStatus();
}

int Usage(const char* error) {
  if (error != nullptr) fmt::print(stderr, "log_search_bench: {}\n", error);
  fmt::print(stderr,
             "usage: log_search_bench [--lines N] [--keep] [--dir DIR] [--seconds S]\n"
             "  --lines    lines in the store (default 10000000)\n"
             "  --keep     keep the bench directory (and the ledger) afterwards\n"
             "  --dir      use (or build) the ledger in DIR: a second run skips the ingest\n"
             "  --seconds  accepted for scripts/bench, not used\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  steward::SkipLockOrderChecks();  // as stewardctl, station and agent do (common/mutex_mode.h)
  steward::bench::SetProgramName("log_search_bench");
  steward::bench::InstallFatalSignalHandlers(3 * 3600);
  steward::nats::Library lib;
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string value;
    if (arg == "--help" || arg == "-h") return Usage(nullptr);
    if (arg == "--keep") {
      args.keep = true;
    } else if (steward::bench::FlagValue(argc, argv, &i, "lines", &value)) {
      if (!absl::SimpleAtoi(value, &args.lines) || args.lines < 1000 || args.lines > 1'000'000'000) {
        return Usage("--lines wants a number in [1000, 1e9]");
      }
    } else if (steward::bench::FlagValue(argc, argv, &i, "dir", &value)) {
      args.dir = value;
    } else if (steward::bench::FlagValue(argc, argv, &i, "seconds", &value)) {
      // scripts/bench passes the same arguments to every benchmark.
    } else {
      return Usage(absl::StrCat("unknown argument ", arg).c_str());
    }
  }
  return steward::bench::RunInBenchDir("log_search_bench", [&](Children& children, BenchDir& dir) {
    if (args.keep) dir.Keep();
    return Run(args, children, dir);
  });
}
