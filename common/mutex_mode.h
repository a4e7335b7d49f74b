// Debian's Abseil is built without NDEBUG, so its absl::Mutex runs the check that debug
// builds run: on every Lock it records which locks the thread already holds in one
// graph that all threads share (behind a global lock), and on an order cycle it aborts
// the process. Measured here (a loop of Lock/Unlock, 2 cores): one lock 46 ns against
// 14 without the check; a nested pair 93 against 26 ns; and with two threads each
// taking a nested pair of its own locks, 681 against 38 ns a pair, since both meet at
// that global lock. The programs (station, agent, stewardctl, every benchmark) turn the
// check off at start, as a release build of Abseil would, and a daemon is not aborted
// by it; tests that run our code in their own process keep it, so a lock-order cycle
// there still fails them (tests that start the programs run them without it).
#pragma once

#include "absl/synchronization/mutex.h"

namespace steward {

// Called first thing in main(), before any thread starts.
inline void SkipLockOrderChecks() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

}  // namespace steward
