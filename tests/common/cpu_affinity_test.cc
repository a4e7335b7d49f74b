// common/cpu_affinity.h: --cpus lists, refused clearly when wrong, and kept by the
// threads started after Apply.
#include "common/cpu_affinity.h"

#include <sched.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

namespace steward {
namespace {

std::vector<int> ThreadCpus() {
  // No Catch2 assertion here: other threads call it too.
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}

TEST_CASE("cpus: lists are read as taskset reads them", "[cpus]") {
  const std::vector<int> allowed = ThreadCpus();
  REQUIRE(!allowed.empty());
  const int first = allowed.front();
  absl::StatusOr<CpuList> one = CpuList::Parse(std::to_string(first));
  REQUIRE(one.ok());
  CHECK(one->cpus() == std::vector<int>{first});
  CHECK(one->ToString() == std::to_string(first));

  absl::StatusOr<CpuList> spaced = CpuList::Parse(" " + std::to_string(first) + "-" + std::to_string(first) + " ");
  REQUIRE(spaced.ok());
  CHECK(spaced->cpus() == std::vector<int>{first});

  // Every allowed CPU, given twice and out of order: each once, ascending.
  std::string all;
  for (auto it = allowed.rbegin(); it != allowed.rend(); ++it) all += std::to_string(*it) + ",";
  all += std::to_string(first);
  absl::StatusOr<CpuList> every = CpuList::Parse(all);
  REQUIRE(every.ok());
  CHECK(every->cpus() == allowed);
  CHECK(every->ToString() == AllowedCpus());
}

TEST_CASE("cpus: a wrong list is refused with what was wrong", "[cpus]") {
  for (const char* bad : {"", "x", "1-0", "-1", "0-", "0,,1", "1.5", "0x1", "99999"}) {
    INFO(bad);
    absl::StatusOr<CpuList> r = CpuList::Parse(bad);
    REQUIRE(!r.ok());
    CHECK(absl::IsInvalidArgument(r.status()));
  }
  CHECK(CpuList::Parse("1-0").status().message() == "\"1-0\": the range is reversed");
  CHECK(CpuList::Parse("x").status().message() == "\"x\" is not a CPU number or range (a list like 1, 0,2 or 2-3)");
  // A CPU this process may not run on (one past the last it may) names the ones it may.
  const int past = ThreadCpus().back() + 1;
  absl::StatusOr<CpuList> r = CpuList::Parse(std::to_string(past));
  REQUIRE(!r.ok());
  CHECK(r.status().message() ==
        "CPU " + std::to_string(past) + " is not available to this process (it may run on " + AllowedCpus() + ")");
}

TEST_CASE("cpus: Apply keeps the thread, and the threads it starts, on the list", "[cpus]") {
  const std::vector<int> before = ThreadCpus();
  if (before.size() < 2) {
    WARN("one CPU only: a thread kept on it would not show that Apply did anything");
    return;
  }
  const int last = before.back();
  std::vector<int> pinned;
  std::vector<int> child;
  std::string error;
  std::thread t([&] {
    absl::StatusOr<CpuList> list = CpuList::Parse(std::to_string(last));
    if (!list.ok() || !list->Apply().ok()) {
      error = "Apply failed";
      return;
    }
    pinned = ThreadCpus();
    std::thread inner([&] { child = ThreadCpus(); });
    inner.join();
  });
  t.join();
  REQUIRE(error.empty());
  CHECK(pinned == std::vector<int>{last});
  CHECK(child == std::vector<int>{last});
  CHECK(ThreadCpus() == before);  // the other threads keep theirs
}

}  // namespace
}  // namespace steward
