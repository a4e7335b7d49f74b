// Minimal leveled logging to stderr, one line per call, safe from any thread.
// Debian's Abseil has no absl/log; this is all the daemons need.
#pragma once

#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// Debian's absl::string_view is its own type (not std::string_view): teach fmt once.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename Ctx>
  auto format(absl::string_view s, Ctx& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};

namespace steward {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "debug" | "info" | "warning" | "error" -> the level; InvalidArgument naming them.
absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name);
// "DEBUG", "INFO", "WARN", "ERROR", as lines show it.
const char* LogLevelName(LogLevel level);

// Messages below this level are dropped. Default kInfo; STEWARD_LOG_LEVEL=debug|info|warning|error.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Prefix each line with this program name (e.g. "agent ship1").
void SetLogTag(std::string_view tag);
void LogLine(LogLevel level, std::string_view text);

// A second destination for log lines (the agent's debug streams, agent/debug_streams.h).
// It gets every line at or above its own level, whatever the stderr level, on the
// thread that logs, outside the logger's lock: it must be quick and must not log.
class LogTap {
 public:
  virtual ~LogTap() = default;
  virtual void OnLogLine(LogLevel level, std::string_view text) = 0;
};
// Adds `tap` taking lines at or above `level`, or changes its level; nullopt removes it
// (once that returns, the tap is not called any more).
void SetLogTap(LogTap* tap, std::optional<LogLevel> level);
// Whether a line at `level` goes anywhere (stderr or a tap): Log formats nothing else.
bool LogWanted(LogLevel level);

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (!LogWanted(level)) return;
  LogLine(level, fmt::format(format, std::forward<Args>(args)...));
}

#define STEWARD_LOG_DEBUG(...) ::steward::Log(::steward::LogLevel::kDebug, __VA_ARGS__)
#define STEWARD_LOG_INFO(...) ::steward::Log(::steward::LogLevel::kInfo, __VA_ARGS__)
#define STEWARD_LOG_WARNING(...) ::steward::Log(::steward::LogLevel::kWarning, __VA_ARGS__)
#define STEWARD_LOG_ERROR(...) ::steward::Log(::steward::LogLevel::kError, __VA_ARGS__)

}  // namespace steward
