// Keeping a daemon's threads on chosen CPUs (--cpus): a list in the form `taskset -c`
// takes, "1", "0,2" or "2-3" (no strides, no spaces between items), applied to the
// process before it starts any thread, so that every thread it (and nats.c) starts later
// inherits it.
//
// Why a station wants it: a durable command passes between the station's own threads
// several times (broker reader, request thread, ledger writer, dispatcher, reply
// delivery). A hand-off to a thread that sleeps on another CPU costs an interrupt between
// CPUs, which a virtual machine pays with an exit to its hypervisor; on one CPU it is a
// plain switch. README's **One CPU for the station** has the figures.
//
//   absl::StatusOr<CpuList> cpus = CpuList::Parse("1");   // no side effect
//   if (cpus.ok()) STEWARD_RETURN_IF_ERROR(cpus->Apply());
#pragma once

#include <sched.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace steward {

class CpuList {
 public:
  // Parse reads "N", "N-M" and comma-separated lists of them (spaces allowed around
  // items). InvalidArgument for anything else, an empty list, a reversed range or a
  // CPU this process may not run on (sched_getaffinity), naming the ones it may. (The
  // station's empty --cpus is not parsed: it means every CPU, the default.)
  static absl::StatusOr<CpuList> Parse(absl::string_view text);

  // The CPUs, ascending, each once.
  const std::vector<int>& cpus() const { return cpus_; }
  // "1", "0,2-3": the list in taskset's compact form.
  std::string ToString() const;

  // Apply restricts the calling thread, and so every thread started after it, to these
  // CPUs. Call it before the first thread starts (other threads keep their CPUs).
  absl::Status Apply() const;

 private:
  std::vector<int> cpus_;
};

// The CPUs the calling thread may run on now, in CpuList::ToString's form (empty if
// they cannot be read).
std::string AllowedCpus();

}  // namespace steward
