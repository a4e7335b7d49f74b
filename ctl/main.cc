// stewardctl: the operator's command line; see ctl/ctl.h.
#include "common/heap.h"
#include "ctl/ctl.h"

int main(int argc, char** argv) {
  steward::KeepLargeBuffersInHeap();  // copy chunks
  return steward::ctl::Main(argc, argv);
}
