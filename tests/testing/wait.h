// Small helpers every integration test wants: polling for a condition, and a NATS
// connection that fails the test (with the reason) when it cannot be made.
#pragma once

#include <catch2/catch.hpp>
#include <functional>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/nats.h"

namespace steward::testing {

// Polls `done` every `every` until it holds or `timeout` passed; whether it held.
inline bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(10),
                      absl::Duration every = absl::Milliseconds(2)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(every);
  }
  return true;
}

inline nats::ConnectionPtr MustConnect(const std::string& url, const std::string& name) {
  absl::StatusOr<nats::ConnectionPtr> nc = nats::Connect({.url = url, .name = name});
  INFO(nc.status().ToString());
  REQUIRE(nc.ok());
  return *std::move(nc);
}

}  // namespace steward::testing
