// Helpers shared by the three mains: flag spelling, the default NATS URL, signals.
#pragma once

#include <csignal>
#include <string>
#include <vector>

namespace steward {

// NormalizeFlags rewrites "--foo-bar[=x]" to "--foo_bar[=x]" (absl flag names cannot
// hold '-') for every argument before a lone "--", which is kept with all after it.
std::vector<char*> NormalizeFlags(int argc, char** argv, std::vector<std::string>& storage);

// $STEWARD_NATS_URL, or nats://127.0.0.1:4222.
std::string DefaultNatsUrl();

// Blocks SIGINT and SIGTERM in the calling thread (call first in main, before any
// thread exists, so every thread inherits the mask) and returns the set.
sigset_t BlockTerminationSignals();

}  // namespace steward
