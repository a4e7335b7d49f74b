// End-to-end: `stewardctl copy FILE NODE:/PATH` keeps a window of chunks in flight
// (ctl/copy.cc). Killed with SIGKILL while they are, and run again, it resumes where the
// node's part file has every byte from 0 (the chunks still in flight run all the same:
// each is a command in the station's ledger) instead of starting over, and the file
// arrives whole (issue 14).
#include <signal.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/signing.h"
#include "tests/testing/cluster.h"
#include "tests/testing/files.h"
#include "tests/testing/process.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

namespace {

std::string Sha(const std::string& path) {
  auto h = steward::signing::Sha256File(path);
  return h.ok() ? *h : "";
}

// How many `copy put` commands the station has for offset 0 of `path`.
int FirstChunks(Cluster& c, const std::string& path) {
  RunResult r = c.Ctl({"--json", "history", "--node", "ship1", "--limit", "1000"});
  REQUIRE(r.exit_code == 0);
  const std::regex first("\"put\",\\s*\"" + path + "\",\\s*\"0\",");
  return static_cast<int>(std::distance(std::sregex_iterator(r.out.begin(), r.out.end(), first),
                                        std::sregex_iterator()));
}

}  // namespace

TEST_CASE("a copy to a node whose stewardctl is killed with chunks in flight resumes at the node's part, hash matching",
          "[integration][agentops][copy]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const std::string dir = c.dir().str();
  const std::string src = dir + "/src";
  constexpr size_t kBytes = size_t{48} << 20;
  {
    std::mt19937_64 rng(5);
    std::string data(kBytes, '\0');
    for (size_t i = 0; i + 8 <= data.size(); i += 8) {
      const uint64_t v = rng();
      std::memcpy(&data[i], &v, 8);
    }
    std::ofstream(src, std::ios::binary) << data;
  }
  std::filesystem::create_directories(dir + "/node");
  const std::string dst = dir + "/node/dst";

  steward::testing::Process copy(
      {steward::testing::BinPath("ctl/stewardctl"), "--nats", c.url(), "copy", src, "ship1:" + dst});
  REQUIRE(WaitUntil([&] { return steward::testing::CopyPartHas(dir + "/node") > (8u << 20); }, absl::Seconds(60)));
  copy.Signal(SIGKILL);
  REQUIRE(copy.Wait(absl::Seconds(10)).has_value());
  CHECK(steward::testing::CopyPartHas(dir + "/node") < kBytes);
  CHECK_FALSE(std::filesystem::exists(dst));

  RunResult r = c.Ctl({"copy", src, "ship1:" + dst}, absl::Seconds(120));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(Sha(dst) == Sha(src));
  // Resumed: the first chunk went once, in the first run.
  CHECK(FirstChunks(c, dst) == 1);
  // No part file or its .have left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/node")) files += e.is_regular_file() ? 1 : 0;
  CHECK(files == 1);
}
