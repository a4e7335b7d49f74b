// Propagation macros for absl::Status / absl::StatusOr. Abseil 20220623 (Debian 12)
// ships none, so we keep our own; they mirror Envoy's RETURN_IF_NOT_OK.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define STEWARD_CONCAT_INNER_(a, b) a##b
#define STEWARD_CONCAT_(a, b) STEWARD_CONCAT_INNER_(a, b)

// The status variable is named per use (__COUNTER__), so that a lambda holding one
// use can sit inside another use's expression without shadowing.
#define STEWARD_RETURN_IF_ERROR(expr) \
  STEWARD_RETURN_IF_ERROR_IMPL_(STEWARD_CONCAT_(steward_st_, __COUNTER__), expr)
#define STEWARD_RETURN_IF_ERROR_IMPL_(var, expr)      \
  do {                                                \
    if (::absl::Status var = (expr); !var.ok()) {     \
      return var;                                     \
    }                                                 \
  } while (false)
#define STEWARD_ASSIGN_OR_RETURN(lhs, rexpr) \
  STEWARD_ASSIGN_OR_RETURN_IMPL_(STEWARD_CONCAT_(steward_sor_, __LINE__), lhs, rexpr)
#define STEWARD_ASSIGN_OR_RETURN_IMPL_(var, lhs, rexpr) \
  auto var = (rexpr);                                   \
  if (!var.ok()) return std::move(var).status();        \
  lhs = std::move(var).value()
