// End-to-end: `stewardctl copy NODE:/PATH FILE` killed mid-way and run again resumes
// from the local part file when the node's file is still the same (size and SHA-256),
// and starts over when it changed (issue 14).
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/signing.h"
#include "tests/testing/cluster.h"
#include "tests/testing/process.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

namespace {

uintmax_t SizeOr0(const std::string& path) {
  std::error_code ec;
  const uintmax_t n = std::filesystem::file_size(path, ec);
  return ec ? 0 : n;
}

std::string Sha(const std::string& path) {
  auto h = steward::signing::Sha256File(path);
  return h.ok() ? *h : "";
}

// Starts a pull of `from` into `to` and kills stewardctl once the part file holds more
// than 4 MiB; returns how much it held.
uintmax_t PullAndKill(Cluster& c, const std::string& from, const std::string& to) {
  steward::testing::Process copy({steward::testing::BinPath("ctl/stewardctl"), "--nats", c.url(), "copy",
                                  "ship1:" + from, to});
  REQUIRE(WaitUntil([&] { return SizeOr0(to + ".steward-part") > (4u << 20); }, absl::Seconds(60)));
  copy.Signal(SIGKILL);
  REQUIRE(copy.Wait(absl::Seconds(10)).has_value());
  return SizeOr0(to + ".steward-part");
}

}  // namespace

TEST_CASE("a pull killed mid-way resumes from the local part file, or starts over when the source changed",
          "[integration][agentops][copy]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const std::string dir = c.dir().str();
  const std::string src = dir + "/src";
  {
    std::mt19937_64 rng(14);
    std::string data(40u << 20, '\0');
    for (size_t i = 0; i + 8 <= data.size(); i += 8) {
      const uint64_t v = rng();
      std::memcpy(&data[i], &v, 8);
    }
    std::ofstream(src, std::ios::binary) << data;
  }

  const std::string local = dir + "/local";
  const uintmax_t had = PullAndKill(c, src, local);
  REQUIRE(had < (40u << 20));
  RunResult r = c.Ctl({"copy", "ship1:" + src, local}, absl::Seconds(120));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains(absl::StrCat("resuming at ", had, " of ", 40u << 20, " bytes")));
  CHECK(Sha(local) == Sha(src));
  CHECK(!std::filesystem::exists(local + ".steward-part"));
  CHECK(!std::filesystem::exists(local + ".steward-part.source"));

  // The node's file changes between the runs: the part is not used.
  const std::string other = dir + "/other";
  REQUIRE(PullAndKill(c, src, other) > 0);
  std::ofstream(src, std::ios::binary | std::ios::app) << "appended on the node\n";
  r = c.Ctl({"copy", "ship1:" + src, other}, absl::Seconds(120));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, !Catch::Contains("resuming"));
  CHECK(Sha(other) == Sha(src));
}
