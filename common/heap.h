// glibc's heap, tuned for programs that pass large messages along (the agent taking copy
// chunks, stewardctl copying a file, and the station when built without tcmalloc, see
// station/CMakeLists.txt): a copy chunk is 896 KiB,
// and each passes through several buffers. glibc gives an allocation that large its
// own mapping, and hands free space at the top of a heap back to the kernel past 2x
// that size, so such buffers came as fresh pages: page faults and zeroed pages, about a
// tenth of a copy's CPU in the station and stewardctl and half of it in the agent
// (profiled with copy_bench). With these thresholds they stay in the heap for reuse;
// the cost is up to 64 MiB of free heap kept per arena.
#pragma once

#include <malloc.h>

namespace steward {

inline void KeepLargeBuffersInHeap() {
  ::mallopt(M_MMAP_THRESHOLD, 8 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

}  // namespace steward
