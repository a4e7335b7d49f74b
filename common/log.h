// Minimal leveled logging to stderr, one line per call, safe from any thread.
// Debian's Abseil has no absl/log; this is all the daemons need.
#pragma once

#include <string_view>

#include <fmt/format.h>

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

// Messages below this level are dropped. Default kInfo; STEWARD_LOG_LEVEL=debug|info|warning|error.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Prefix each line with this program name (e.g. "agent ship1").
void SetLogTag(std::string_view tag);
void LogLine(LogLevel level, std::string_view text);

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (level < GetLogLevel()) return;
  LogLine(level, fmt::format(format, std::forward<Args>(args)...));
}

#define STEWARD_LOG_DEBUG(...) ::steward::Log(::steward::LogLevel::kDebug, __VA_ARGS__)
#define STEWARD_LOG_INFO(...) ::steward::Log(::steward::LogLevel::kInfo, __VA_ARGS__)
#define STEWARD_LOG_WARNING(...) ::steward::Log(::steward::LogLevel::kWarning, __VA_ARGS__)
#define STEWARD_LOG_ERROR(...) ::steward::Log(::steward::LogLevel::kError, __VA_ARGS__)

}  // namespace steward
