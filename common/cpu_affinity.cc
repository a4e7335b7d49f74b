// CpuList: --cpus lists read and applied (see cpu_affinity.h). Masks are sized for the
// CPUs the host has configured, not cpu_set_t's 1,024, so a large host is read right.
#include "common/cpu_affinity.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace steward {
namespace {

// CPU numbers a list may name: far past any host's, small enough to walk a range.
constexpr int kMaxCpuNumber = (1 << 20) - 1;

// The compact form of ascending, distinct CPU numbers: runs of three or more as "a-b".
std::string Compact(const std::vector<int>& cpus) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (j == i) {
      parts.push_back(absl::StrCat(cpus[i]));
    } else if (j == i + 1) {
      parts.push_back(absl::StrCat(cpus[i], ",", cpus[j]));
    } else {
      parts.push_back(absl::StrCat(cpus[i], "-", cpus[j]));
    }
    i = j + 1;
  }
  return absl::StrJoin(parts, ",");
}

// A CPU mask for every CPU the host has configured (at least cpu_set_t's size).
struct Mask {
  struct Free {
    void operator()(cpu_set_t* p) const { CPU_FREE(p); }
  };
  Mask() {
    const long configured = sysconf(_SC_NPROCESSORS_CONF);
    count = std::max<int>(CPU_SETSIZE, configured > 0 ? static_cast<int>(configured) : 0);
    set.reset(CPU_ALLOC(count));
    size = CPU_ALLOC_SIZE(count);
    if (set != nullptr) CPU_ZERO_S(size, set.get());
  }
  std::unique_ptr<cpu_set_t, Free> set;
  int count = 0;
  size_t size = 0;
};

absl::StatusOr<std::vector<int>> Allowed() {
  Mask mask;
  if (mask.set == nullptr) return absl::ResourceExhaustedError("no memory for a CPU mask");
  if (sched_getaffinity(0, mask.size, mask.set.get()) != 0) {
    return absl::InternalError(absl::StrCat("read this process's CPUs: ", std::strerror(errno)));
  }
  std::vector<int> out;
  for (int c = 0; c < mask.count; ++c) {
    if (CPU_ISSET_S(c, mask.size, mask.set.get())) out.push_back(c);
  }
  return out;
}

absl::StatusOr<int> ParseCpu(absl::string_view text, absl::string_view item) {
  int n = -1;
  if (text.empty() || !absl::c_all_of(text, absl::ascii_isdigit) || !absl::SimpleAtoi(text, &n) || n > kMaxCpuNumber) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", item, "\" is not a CPU number or range (a list like 1, 0,2 or 2-3)"));
  }
  return n;
}

}  // namespace

absl::StatusOr<CpuList> CpuList::Parse(absl::string_view text) {
  std::vector<int> listed;
  for (absl::string_view raw : absl::StrSplit(text, ',')) {
    const absl::string_view item = absl::StripAsciiWhitespace(raw);
    const size_t dash = item.find('-');
    absl::StatusOr<int> first = ParseCpu(item.substr(0, dash), item);
    if (!first.ok()) return first.status();
    int last = *first;
    if (dash != absl::string_view::npos) {
      absl::StatusOr<int> end = ParseCpu(item.substr(dash + 1), item);
      if (!end.ok()) return end.status();
      if (*end < *first) return absl::InvalidArgumentError(absl::StrCat("\"", item, "\": the range is reversed"));
      last = *end;
    }
    for (int c = *first; c <= last; ++c) listed.push_back(c);
  }
  std::sort(listed.begin(), listed.end());
  listed.erase(std::unique(listed.begin(), listed.end()), listed.end());
  absl::StatusOr<std::vector<int>> allowed = Allowed();
  if (!allowed.ok()) return allowed.status();
  std::vector<int> missing;
  for (int c : listed) {
    if (!absl::c_binary_search(*allowed, c)) missing.push_back(c);
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("CPU ", Compact(missing), " ", missing.size() == 1 ? "is" : "are",
                                                   " not available to this process (it may run on ", Compact(*allowed),
                                                   ")"));
  }
  CpuList out;
  out.cpus_ = std::move(listed);
  return out;
}

std::string CpuList::ToString() const { return Compact(cpus_); }

absl::Status CpuList::Apply() const {
  Mask mask;
  if (mask.set == nullptr) return absl::ResourceExhaustedError("no memory for a CPU mask");
  for (int c : cpus_) {
    if (c >= mask.count) return absl::InvalidArgumentError(absl::StrCat("CPU ", c, " is past this host's"));
    CPU_SET_S(c, mask.size, mask.set.get());
  }
  if (sched_setaffinity(0, mask.size, mask.set.get()) != 0) {
    return absl::InternalError(absl::StrCat("keep to CPUs ", ToString(), ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::string AllowedCpus() {
  absl::StatusOr<std::vector<int>> allowed = Allowed();
  return allowed.ok() ? Compact(*allowed) : std::string();
}

}  // namespace steward
