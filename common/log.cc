// Implementation of the stderr logger: level from STEWARD_LOG_LEVEL, UTC timestamps; on
// the systemd journal, sd-daemon priority prefixes ("<3>") instead of the time and level.
#include "common/log.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace steward {
namespace {

LogLevel LevelFromEnv() {
  const char* env = std::getenv("STEWARD_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kInfo;
  return ParseLogLevel(env).value_or(LogLevel::kInfo);
}

// Whether stderr is the journal: systemd sets $JOURNAL_STREAM to "DEVICE:INODE" of the
// stream it connected, which stays true only while stderr was not redirected since.
bool StderrIsJournal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (env == nullptr || ::fstat(2, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == static_cast<unsigned long long>(st.st_dev) && ino == static_cast<unsigned long long>(st.st_ino);
}

std::atomic<int> g_level{static_cast<int>(LevelFromEnv())};
absl::Mutex g_mu;
std::string* g_tag ABSL_GUARDED_BY(g_mu) = nullptr;

// The taps, and the lowest level any of them takes (kNoTap: none), read on every Log().
constexpr int kNoTap = 99;
std::atomic<int> g_tap_level{kNoTap};
absl::Mutex g_tap_mu;
// Leaked on purpose, like g_tag: a tap may be removed by a static destructor.
std::vector<std::pair<LogTap*, LogLevel>>* g_taps ABSL_GUARDED_BY(g_tap_mu) = nullptr;

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warning") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      fmt::format("unknown log level \"{}\" (debug, info, warning or error)", name));
}

const char* LogLevelName(LogLevel level) {
  static constexpr const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  return kNames[static_cast<int>(level)];
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

bool LogWanted(LogLevel level) {
  const int l = static_cast<int>(level);
  return l >= g_level.load(std::memory_order_relaxed) || l >= g_tap_level.load(std::memory_order_relaxed);
}

void SetLogTap(LogTap* tap, std::optional<LogLevel> level) {
  absl::MutexLock lock(&g_tap_mu);
  if (g_taps == nullptr) g_taps = new std::vector<std::pair<LogTap*, LogLevel>>();
  std::erase_if(*g_taps, [tap](const auto& t) { return t.first == tap; });
  if (level.has_value()) g_taps->emplace_back(tap, *level);
  int lowest = kNoTap;
  for (const auto& [t, l] : *g_taps) lowest = std::min(lowest, static_cast<int>(l));
  g_tap_level.store(lowest);
}

void SetLogTag(std::string_view tag) {
  absl::MutexLock lock(&g_mu);
  if (g_tag == nullptr) g_tag = new std::string();  // Leaked on purpose: usable until exit.
  g_tag->assign(tag);
}

void LogLine(LogLevel level, std::string_view text) {
  if (static_cast<int>(level) >= g_tap_level.load()) {
    absl::ReaderMutexLock lock(&g_tap_mu);
    for (const auto& [tap, l] : *g_taps) {
      if (level >= l) tap->OnLogLine(level, text);
    }
  }
  if (static_cast<int>(level) < g_level.load()) return;
  // syslog priorities: debug 7, info 6, warning 4, error 3.
  static constexpr int kPriorities[] = {7, 6, 4, 3};
  static const bool journal = StderrIsJournal();
  if (journal) {  // the journal stamps the time, and shows the priority
    absl::MutexLock lock(&g_mu);
    fmt::print(stderr, "<{}>[{}] {}\n", kPriorities[static_cast<int>(level)], g_tag == nullptr ? "steward" : *g_tag,
               text);
    std::fflush(stderr);
    return;
  }
  const std::string now = absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::UTCTimeZone());
  absl::MutexLock lock(&g_mu);
  fmt::print(stderr, "{} {} [{}] {}\n", now, LogLevelName(level),
             g_tag == nullptr ? "steward" : *g_tag, text);
  std::fflush(stderr);
}

}  // namespace steward
