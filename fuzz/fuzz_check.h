// FUZZ_CHECK(cond): an invariant of a fuzz target. On violation it names the condition
// and traps, so libFuzzer saves the input as a crash.
#pragma once

#include <cstdio>

#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      __builtin_trap();                                                               \
    }                                                                                 \
  } while (0)
