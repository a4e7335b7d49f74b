// stewardctl: the operator's command line; see ctl/ctl.h.
#include <malloc.h>

#include "common/heap.h"
#include "ctl/ctl.h"

int main(int argc, char** argv) {
  steward::KeepLargeBuffersInHeap();  // copy chunks
  // One heap for all threads: a copy's senders (ctl/copy.cc, 16 chunks in flight) each
  // hold a chunk's buffers only while they serialize and send it, then wait; in one heap
  // the next sender reuses them. With a heap per thread (glibc's default) each sender's
  // buffers came as fresh pages, 16 times over (page faults: a tenth of its CPU).
  ::mallopt(M_ARENA_MAX, 1);
  return steward::ctl::Main(argc, argv);
}
