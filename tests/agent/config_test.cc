// agent/config: LoadConfig, what a reload calls, builds the agent's options from a
// command line, the environment and a file without side effects, and names the key
// and its source when a value is bad.
#include "agent/config.h"
#include "agent/config_host.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "tests/testing/nats_server.h"

namespace steward::agent {
namespace {

using testing::TempDir;

config::Environment Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string Write(const TempDir& dir, const std::string& text) {
  const std::string path = (dir.path() / "agent.toml").string();
  std::ofstream(path) << text;
  return path;
}

TEST_CASE("agent config: file, environment and flags make the options, nothing is created", "[config]") {
  TempDir dir;
  const std::string data = (dir.path() / "data").string();
  const std::string file = Write(dir, "node = \"ship1\"\nheartbeat = \"2s\"\ntail = [\"/var/log/app.log:app\"]\n"
                                      "[syslog]\ntcp = [\"127.0.0.1:0\"]\nmax_message = 1024\n");
  absl::StatusOr<Config> c =
      LoadConfig({"--config", file, "--data-dir", data}, Env({{"STEWARD_STATION", "central"}}));
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  CHECK(c->options.node == "ship1");
  CHECK(c->options.station == "central");
  CHECK(c->options.heartbeat == absl::Seconds(2));
  CHECK(c->options.security.max_ttl == absl::Hours(24 * 7));  // the replay window is keep_results
  CHECK(c->options.syslog.tcp == std::vector<std::string>{"127.0.0.1:0"});
  REQUIRE(c->options.syslog.tails.size() == 1);
  CHECK(c->options.syslog.tails[0].path == "/var/log/app.log");
  CHECK(c->options.syslog.tails[0].domain == "app");
  CHECK(c->options.syslog.tails[0].severity == 5);
  CHECK(c->options.syslog.max_message_bytes == 1024);
  CHECK(c->options.syslog.state_dir == data + "/tail");
  CHECK(c->effective.Find("station")->source.ToString() == "env STEWARD_STATION");
  CHECK_FALSE(std::filesystem::exists(data));  // no side effect: the store is main()'s
  CHECK(c->options.facts.file.empty());
  c = LoadConfig({"--config", file, "--data-dir", data}, Env({{"STEWARD_FACTS", "/etc/steward/facts"}}));
  REQUIRE(c.ok());
  CHECK(c->options.facts.file == "/etc/steward/facts");  // targeting's custom facts
}

TEST_CASE("agent config: a table key that is no option points at the option", "[config]") {
  TempDir dir;
  const std::string file = Write(dir, "node = \"ship1\"\n[syslog]\ntail = [\"/x\"]\n");
  CHECK(std::string(LoadConfig({"--config", file}, Env({})).status().message()) ==
        "steward-agent: " + file + ":3: unknown key \"syslog_tail\" (did you mean \"tail\"?)");
}

TEST_CASE("agent config: a bad value names its key and where it came from", "[config]") {
  TempDir dir;
  const std::string file = Write(dir, "node = \"ship1\"\nheartbeat = \"0s\"\n");
  CHECK(std::string(LoadConfig({"--config", file}, Env({})).status().message()) ==
        "heartbeat (file " + file + ":2): must be longer than 0s");
  CHECK(std::string(LoadConfig({"--config", file, "--trust", "/nonexistent.pub"}, Env({})).status().message())
            .rfind("heartbeat (file ", 0) == 0);
  const std::string ok = Write(dir, "node = \"ship1\"\n");
  const std::string why(LoadConfig({"--config", ok, "--trust", "/nonexistent.pub"}, Env({})).status().message());
  CHECK_THAT(why, Catch::StartsWith("trust (flag --trust): /nonexistent.pub: "));
  CHECK(std::string(LoadConfig({"--config", ok}, Env({{"STEWARD_NODE", "a.b"}})).status().message()) ==
        "steward-agent: $STEWARD_NODE: node: token \"a.b\" contains '.'");
}

}  // namespace
}  // namespace steward::agent

namespace steward::agent {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_CASE("agent config host: changes before one restart are undone together and once, a kept change or a hand edit is "
          "not undone",
          "[config]") {
  TempDir dir;
  const std::string original = "node = \"ship1\"\nheartbeat = \"2s\"\n";
  const std::string file = Write(dir, original);
  const std::vector<std::string> args{"--config", file, "--data-dir", (dir.path() / "data").string()};
  absl::StatusOr<Config> loaded = LoadConfig(args, Env({}));
  REQUIRE(loaded.ok());
  int reloads = 0;
  ConfigHost host(args, *loaded, Env({}), [&reloads] { ++reloads; });

  // A typo is refused with the key it may have meant, and changes nothing.
  absl::StatusOr<ConfigHost::Change> typo = host.Set({"hartbeat=3s"});
  REQUIRE_FALSE(typo.ok());
  CHECK(std::string(typo.status().message()) == "unknown key hartbeat (did you mean heartbeat?); nothing changed");
  CHECK(ReadAll(file) == original);
  CHECK(reloads == 0);

  // Two changes, then a start that fails: the file goes back to before the first.
  REQUIRE(host.Set({"heartbeat=3s"}).ok());
  REQUIRE(host.Set({"heartbeat=4s"}).ok());
  CHECK(reloads == 2);
  CHECK_THAT(ReadAll(file), Catch::Contains("4s"));
  absl::StatusOr<std::string> undone = host.UndoLastChange("test");
  REQUIRE(undone.ok());
  CHECK_THAT(*undone, Catch::Contains("back as it was"));
  CHECK(ReadAll(file) == original);
  CHECK_FALSE(host.UndoLastChange("test").ok());  // once
  CHECK(ReadAll(file) == original);

  // A change the agent started with is kept: a later failure undoes nothing.
  REQUIRE(host.Set({"heartbeat=5s"}).ok());
  host.KeepLastChange();
  CHECK_FALSE(host.UndoLastChange("test").ok());
  CHECK_THAT(ReadAll(file), Catch::Contains("5s"));

  // A hand edit since the change is left alone.
  const std::string kept = ReadAll(file);
  REQUIRE(host.Set({"heartbeat=6s"}).ok());
  std::ofstream(file) << "node = \"ship1\"\nheartbeat = \"7s\"\n";
  absl::StatusOr<std::string> left = host.UndoLastChange("test");
  CHECK_FALSE(left.ok());
  CHECK_THAT(std::string(left.status().message()), Catch::Contains("changed again since"));
  CHECK_THAT(ReadAll(file), Catch::Contains("7s"));
  CHECK(kept != ReadAll(file));
  // Whatever came of an undo, no record is left for the next start.
  CHECK_FALSE(std::filesystem::exists(file + ".undo"));
}

TEST_CASE("agent config host: a change that arrives while another is on trial is undone with it, and a change "
          "cannot lengthen its own trial",
          "[config]") {
  TempDir dir;
  const std::string original = "node = \"ship1\"\nconfig_probation = \"20s\"\n";
  const std::string file = Write(dir, original);
  const std::vector<std::string> args{"--config", file, "--data-dir", (dir.path() / "data").string()};
  absl::StatusOr<Config> loaded = LoadConfig(args, Env({}));
  REQUIRE(loaded.ok());
  ConfigHost host(args, *loaded, Env({}), [] {});
  REQUIRE(host.Set({"heartbeat=3s", "config_probation=8760h"}).ok());
  CHECK(host.BeginTrial() == absl::Seconds(20));  // the shorter: the one before the change
  const std::string first = ReadAll(file);
  CHECK(first != original);
  // The agent runs with the first change, and a second arrives before the station heard
  // it (a wrong station name still lets commands in): both are on trial.
  REQUIRE(host.Set({"heartbeat=4s"}).ok());
  host.KeepLastChange();  // a reload without a restart keeps nothing on trial
  CHECK(host.ChangeOnTrial());
  REQUIRE(host.UndoLastChange("test").ok());
  CHECK(ReadAll(file) == original);  // back to what the station last heard
  CHECK_FALSE(std::filesystem::exists(file + ".undo"));
  // A change applied without a restart is kept at once; one on trial is not.
  REQUIRE(host.Set({"heartbeat=5s"}).ok());
  CHECK(host.BeginTrial() > absl::ZeroDuration());
  host.KeepLastChange();
  CHECK(host.ChangeOnTrial());
  host.KeepTrial();
  CHECK_FALSE(host.ChangeOnTrial());
  CHECK_FALSE(std::filesystem::exists(file + ".undo"));
}

TEST_CASE("agent config host: a change neither kept nor undone before the process died is on trial at the next start",
          "[config]") {
  TempDir dir;
  const std::string original = "node = \"ship1\"\nheartbeat = \"2s\"\n";
  const std::string file = Write(dir, original);
  const std::vector<std::string> args{"--config", file, "--data-dir", (dir.path() / "data").string()};
  absl::StatusOr<Config> loaded = LoadConfig(args, Env({}));
  REQUIRE(loaded.ok());
  {
    ConfigHost first(args, *loaded, Env({}), [] {});
    CHECK(first.ResumeChange().empty());  // no record: nothing on trial
    CHECK_FALSE(first.ChangeOnTrial());
    REQUIRE(first.Set({"heartbeat=3s"}).ok());
    CHECK(first.ChangeOnTrial());
    CHECK(std::filesystem::exists(file + ".undo"));
    // ... and the process is killed here: neither kept nor undone.
  }
  const std::string changed = ReadAll(file);
  CHECK_THAT(changed, Catch::Contains("3s"));

  SECTION("the next process puts the file back when the change fails its trial") {
    ConfigHost next(args, *LoadConfig(args, Env({})), Env({}), [] {});
    CHECK_THAT(next.ResumeChange(), Catch::Contains("on trial again"));
    CHECK(next.ChangeOnTrial());
    CHECK(next.LastUndone().empty());
    absl::StatusOr<std::string> undone = next.UndoLastChange("did not reach the broker");
    REQUIRE(undone.ok());
    CHECK(ReadAll(file) == original);
    CHECK_FALSE(std::filesystem::exists(file + ".undo"));
    CHECK_THAT(next.LastUndone(), Catch::Contains("undone at "));
    CHECK_THAT(next.LastUndone(), Catch::Contains("did not reach the broker"));
    // A later change clears the note: it says only what became of the last change.
    REQUIRE(next.Set({"heartbeat=4s"}).ok());
    CHECK(next.LastUndone().empty());
  }
  SECTION("a change the next process keeps leaves no record") {
    ConfigHost next(args, *LoadConfig(args, Env({})), Env({}), [] {});
    REQUIRE_FALSE(next.ResumeChange().empty());
    next.KeepLastChange();
    CHECK_FALSE(std::filesystem::exists(file + ".undo"));
    CHECK(ReadAll(file) == changed);
    ConfigHost third(args, *LoadConfig(args, Env({})), Env({}), [] {});
    CHECK(third.ResumeChange().empty());
  }
  SECTION("a record the file no longer matches (a hand edit since) is dropped and undoes nothing") {
    std::ofstream(file) << "node = \"ship1\"\nheartbeat = \"9s\"\n";
    ConfigHost next(args, *LoadConfig(args, Env({})), Env({}), [] {});
    CHECK_THAT(next.ResumeChange(), Catch::Contains("changed since"));
    CHECK_FALSE(next.ChangeOnTrial());
    CHECK_FALSE(std::filesystem::exists(file + ".undo"));
    CHECK_THAT(ReadAll(file), Catch::Contains("9s"));
  }
  SECTION("an unreadable record is dropped") {
    std::ofstream(file + ".undo") << "{not json";
    ConfigHost next(args, *LoadConfig(args, Env({})), Env({}), [] {});
    CHECK_THAT(next.ResumeChange(), Catch::Contains("not an undo record"));
    CHECK_FALSE(next.ChangeOnTrial());
    CHECK(ReadAll(file) == changed);
  }
}

}  // namespace
}  // namespace steward::agent

namespace steward::agent {
namespace {

TEST_CASE("agent config host: why the last change was undone is still said after the agent restarts, until the next "
          "change",
          "[config]") {
  TempDir dir;
  const std::string original = "node = \"ship1\"\nheartbeat = \"2s\"\n";
  const std::string file = Write(dir, original);
  const std::vector<std::string> args{"--config", file, "--data-dir", (dir.path() / "data").string()};
  std::string said;
  {
    ConfigHost first(args, *LoadConfig(args, Env({})), Env({}), [] {});
    REQUIRE(first.Set({"heartbeat=3s"}).ok());
    REQUIRE(first.UndoLastChange("did not reach the station with it").ok());
    said = first.LastUndone();
    CHECK_THAT(said, Catch::Contains("did not reach the station with it"));
    CHECK(ReadAll(file) == original);
    // ... and the agent restarts (systemd, a reload that restarts it, a crash).
  }
  ConfigHost next(args, *LoadConfig(args, Env({})), Env({}), [] {});
  CHECK(next.LastUndone().empty());  // not read before the start's ResumeChange
  CHECK(next.ResumeChange().empty());  // no change on trial
  CHECK(next.LastUndone() == said);
  CHECK_FALSE(next.ChangeOnTrial());
  // The next change made through the agent ends the note, in this process and the next.
  REQUIRE(next.Set({"heartbeat=4s"}).ok());
  CHECK(next.LastUndone().empty());
  CHECK_FALSE(std::filesystem::exists(file + ".undone"));
  ConfigHost third(args, *LoadConfig(args, Env({})), Env({}), [] {});
  (void)third.ResumeChange();
  CHECK(third.LastUndone().empty());
}

TEST_CASE("agent config host: a configuration file that is a symlink stays one: its target is changed and put back",
          "[config]") {
  TempDir dir;
  const std::string original = "node = \"ship1\"\nheartbeat = \"2s\"\n";
  const std::string target = Write(dir, original);
  const std::string link = (dir.path() / "link.toml").string();
  std::filesystem::create_symlink(target, link);
  const std::vector<std::string> args{"--config", link, "--data-dir", (dir.path() / "data").string()};
  absl::StatusOr<Config> loaded = LoadConfig(args, Env({}));
  REQUIRE(loaded.ok());
  ConfigHost host(args, *loaded, Env({}), [] {});
  absl::StatusOr<ConfigHost::Change> change = host.Set({"heartbeat=3s"});
  REQUIRE(change.ok());
  CHECK(std::filesystem::is_symlink(link));
  CHECK_THAT(ReadAll(target), Catch::Contains("3s"));
  CHECK(std::filesystem::exists(target + ".undo"));
  REQUIRE(host.UndoLastChange("test").ok());
  CHECK(std::filesystem::is_symlink(link));
  CHECK(ReadAll(target) == original);
}

}  // namespace
}  // namespace steward::agent
