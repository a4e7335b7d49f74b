// Propagation macros for absl::Status / absl::StatusOr. Abseil 20220623 (Debian 12)
// ships none, so we keep our own; they mirror Envoy's RETURN_IF_NOT_OK.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define STEWARD_RETURN_IF_ERROR(expr)                                 \
  do {                                                                \
    if (::absl::Status steward_st_ = (expr); !steward_st_.ok()) {     \
      return steward_st_;                                             \
    }                                                                 \
  } while (false)

#define STEWARD_CONCAT_INNER_(a, b) a##b
#define STEWARD_CONCAT_(a, b) STEWARD_CONCAT_INNER_(a, b)
#define STEWARD_ASSIGN_OR_RETURN(lhs, rexpr) \
  STEWARD_ASSIGN_OR_RETURN_IMPL_(STEWARD_CONCAT_(steward_sor_, __LINE__), lhs, rexpr)
#define STEWARD_ASSIGN_OR_RETURN_IMPL_(var, lhs, rexpr) \
  auto var = (rexpr);                                   \
  if (!var.ok()) return std::move(var).status();        \
  lhs = std::move(var).value()
