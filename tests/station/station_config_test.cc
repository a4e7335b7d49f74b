// station/config: LoadConfig builds the station's options from a command line, the
// environment and a file without side effects, and names the key and its source when a
// value is bad.
#include "station/config.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "common/cpu_affinity.h"
#include "tests/testing/nats_server.h"

namespace steward::station {
namespace {

config::Environment Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST_CASE("station config: the ack timeout comes from a flag or the file and is bounded", "[config]") {
  testing::TempDir dir;
  const std::string data = (dir.path() / "data").string();
  absl::StatusOr<Config> c = LoadConfig({"--data-dir", data}, Env({}));
  REQUIRE(c.ok());
  CHECK(c->options.ack_timeout == absl::Seconds(2));
  c = LoadConfig({"--data-dir", data, "--ack-timeout", "5s"}, Env({}));
  REQUIRE(c.ok());
  CHECK(c->options.ack_timeout == absl::Seconds(5));

  const std::string file = (dir.path() / "station.toml").string();
  std::ofstream(file) << "ack_timeout = \"50ms\"\n";
  c = LoadConfig({"--config", file, "--data-dir", data}, Env({}));
  REQUIRE_FALSE(c.ok());
  CHECK(std::string(c.status().message()) == "ack_timeout (file " + file + ":1): must be from 100ms to 10m");
  CHECK(std::string(LoadConfig({"--data-dir", data, "--ack-timeout", "1h"}, Env({})).status().message()) ==
        "ack_timeout (flag --ack-timeout): must be from 100ms to 10m");
  CHECK_FALSE(LoadConfig({"--data-dir", data, "--ack-timeout", "soon"}, Env({})).ok());
}

TEST_CASE("station config: --cpus is read from a flag, the environment or the file, and checked", "[config][cpus]") {
  testing::TempDir dir;
  const std::string data = (dir.path() / "data").string();
  absl::StatusOr<Config> c = LoadConfig({"--data-dir", data}, Env({}));
  REQUIRE(c.ok());
  CHECK_FALSE(c->options.cpus.has_value());                                            // default: every CPU
  const std::string cpu = AllowedCpus().substr(0, AllowedCpus().find_first_of(",-"));  // the first one
  c = LoadConfig({"--data-dir", data, "--cpus", cpu}, Env({}));
  REQUIRE(c.ok());
  REQUIRE(c->options.cpus.has_value());
  CHECK(c->options.cpus->ToString() == cpu);
  c = LoadConfig({"--data-dir", data}, Env({{"STEWARD_CPUS", cpu}}));
  REQUIRE(c.ok());
  REQUIRE(c->options.cpus.has_value());
  CHECK(c->options.cpus->ToString() == cpu);

  const std::string file = (dir.path() / "station.toml").string();
  std::ofstream(file) << "cpus = \"3-1\"\n";
  c = LoadConfig({"--config", file, "--data-dir", data}, Env({}));
  REQUIRE_FALSE(c.ok());
  CHECK(std::string(c.status().message()) == "cpus (file " + file + ":1): \"3-1\": the range is reversed");
}

}  // namespace
}  // namespace steward::station
