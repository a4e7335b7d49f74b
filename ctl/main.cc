// stewardctl: the operator's command line; see ctl/ctl.h.
#include <malloc.h>

#include "common/heap.h"
#include "common/mutex_mode.h"
#include "ctl/ctl.h"

int main(int argc, char** argv) {
  steward::SkipLockOrderChecks();     // common/mutex_mode.h
  steward::KeepLargeBuffersInHeap();  // copy chunks
  // One heap for all threads: a copy's senders (ctl/copy.cc, 16 chunks in flight) each
  // hold a chunk's buffers only while they serialize and send it, then wait; in one heap
  // the next sender can reuse them, where with a heap per thread (glibc's default) each
  // of the 16 faults in its own. Measured with copy_bench: stewardctl's CPU per 100 MiB
  // 0.50 to 0.67 s -> 0.46 to 0.58 (three runs each; a profile still shows page faults
  // under its memsets, so not all of them were this).
  ::mallopt(M_ARENA_MAX, 1);
  return steward::ctl::Main(argc, argv);
}
