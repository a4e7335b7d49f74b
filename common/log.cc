// Implementation of the stderr logger: level from STEWARD_LOG_LEVEL, UTC timestamps; on
// the systemd journal, sd-daemon priority prefixes ("<3>") instead of the time and level.
#include "common/log.h"

#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace steward {
namespace {

LogLevel LevelFromEnv() {
  const char* env = std::getenv("STEWARD_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kInfo;
  const std::string v(env);
  if (v == "debug") return LogLevel::kDebug;
  if (v == "warning") return LogLevel::kWarning;
  if (v == "error") return LogLevel::kError;
  return LogLevel::kInfo;
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

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

void SetLogTag(std::string_view tag) {
  absl::MutexLock lock(&g_mu);
  if (g_tag == nullptr) g_tag = new std::string();  // Leaked on purpose: usable until exit.
  g_tag->assign(tag);
}

void LogLine(LogLevel level, std::string_view text) {
  static constexpr const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
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
  fmt::print(stderr, "{} {} [{}] {}\n", now, kNames[static_cast<int>(level)],
             g_tag == nullptr ? "steward" : *g_tag, text);
  std::fflush(stderr);
}

}  // namespace steward
