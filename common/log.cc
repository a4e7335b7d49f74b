// Implementation of the stderr logger: level from STEWARD_LOG_LEVEL, UTC timestamps.
#include "common/log.h"

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
  const std::string now = absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::UTCTimeZone());
  absl::MutexLock lock(&g_mu);
  fmt::print(stderr, "{} {} [{}] {}\n", now, kNames[static_cast<int>(level)],
             g_tag == nullptr ? "steward" : *g_tag, text);
  std::fflush(stderr);
}

}  // namespace steward
