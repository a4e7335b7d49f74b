// common/config: flags over environment over file over defaults, keys from the option
// table, and every bad input refused with its file and line.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "common/cli.h"
#include "common/config.h"
#include "common/nats.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/users.h"

namespace steward::config {
namespace {

using testing::TempDir;

// An option table with one option of each kind the programs use.
struct Values {
  std::string node;
  std::string url = "nats://127.0.0.1:4222";
  absl::Duration heartbeat = absl::Seconds(5);
  std::vector<std::string> syslog_udp;
  int64_t max_message = 65536;
  bool verbose = false;
};

struct Program {
  Values v;
  CLI::App app{"test program", "testprog"};
  std::map<std::string, std::string> env;
  std::unique_ptr<Layered> layered;

  explicit Program(const std::string& default_file) {
    cli::Setup(app);
    app.add_option("--node", v.node, "name")->required();
    app.add_option("--nats", v.url, "url")->envname("STEWARD_NATS_URL")->capture_default_str();
    cli::AddDuration(app, "--heartbeat", &v.heartbeat, "interval");
    cli::AddList(app, "--syslog-udp", &v.syslog_udp, "listeners");
    app.add_option("--syslog-max-message", v.max_message, "bytes")->capture_default_str()->check(CLI::Range(256, 1 << 20));
    app.add_flag("--verbose", v.verbose, "more");
    layered = std::make_unique<Layered>(app, default_file, [this](const std::string& name) -> std::optional<std::string> {
      auto it = env.find(name);
      if (it == env.end()) return std::nullopt;
      return it->second;
    });
  }
  absl::Status Load(std::vector<std::string> args = {}) { return layered->Load(args); }
  const Entry& Get(const std::string& key) const {
    const Entry* e = layered->effective().Find(key);
    REQUIRE(e != nullptr);
    return *e;
  }
};

std::string Write(const TempDir& dir, const std::string& name, const std::string& text, mode_t mode = 0644) {
  const std::string path = (dir.path() / name).string();
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
  return path;
}

TEST_CASE("config: flag over environment over file over default", "[config]") {
  TempDir dir;
  const std::string file = Write(dir, "t.toml",
                                 "node = \"ship1\"\n"
                                 "heartbeat = \"7s\"\n"
                                 "[syslog]\n"
                                 "udp = [\"127.0.0.1:5514\", \"127.0.0.1:5515\"]\n"
                                 "max_message = 1024\n");
  Program p(file);
  p.env["STEWARD_HEARTBEAT"] = "9s";
  REQUIRE(p.Load({"--syslog-udp", "127.0.0.1:6000", "--verbose"}).ok());
  CHECK(p.v.node == "ship1");
  CHECK(p.Get("node").source.ToString() == "file " + file + ":1");
  CHECK(p.v.heartbeat == absl::Seconds(9));
  CHECK(p.Get("heartbeat").source.ToString() == "env STEWARD_HEARTBEAT");
  CHECK(p.v.syslog_udp == std::vector<std::string>{"127.0.0.1:6000"});
  CHECK(p.Get("syslog_udp").source.ToString() == "flag --syslog-udp");
  CHECK(p.v.max_message == 1024);  // [syslog] max_message is syslog_max_message
  CHECK(p.Get("syslog_max_message").source.ToString() == "file " + file + ":5");
  CHECK(p.v.verbose);
  CHECK(p.v.url == "nats://127.0.0.1:4222");
  CHECK(p.Get("nats").source.ToString() == "default");
  CHECK(p.Get("nats").values == std::vector<std::string>{"nats://127.0.0.1:4222"});
  CHECK(p.layered->effective().file == file);

  const std::string toml = p.layered->effective().ToToml();
  CHECK_THAT(toml, Catch::Contains("node = \"ship1\""));
  CHECK_THAT(toml, Catch::Contains("# file " + file + ":1"));
  CHECK_THAT(toml, Catch::Contains("heartbeat = \"9s\""));
  CHECK_THAT(toml, Catch::Contains("syslog_udp = [\"127.0.0.1:6000\"]"));
  CHECK_THAT(toml, Catch::Contains("syslog_max_message = 1024"));
  CHECK_THAT(toml, Catch::Contains("verbose = true"));
}

TEST_CASE("config: the printed configuration reads back as the same values", "[config]") {
  TempDir dir;
  Program first(Write(dir, "a.toml", "node = \"ship1\"\nsyslog_udp = [\"127.0.0.1:1\"]\nheartbeat = \"1m30s\"\n"));
  REQUIRE(first.Load({"--syslog-max-message", "300"}).ok());
  Program second(Write(dir, "b.toml", first.layered->effective().ToToml()));
  const absl::Status st = second.Load();
  INFO(st.ToString());
  REQUIRE(st.ok());
  CHECK(second.v.node == "ship1");
  CHECK(second.v.syslog_udp == first.v.syslog_udp);
  CHECK(second.v.heartbeat == absl::Seconds(90));
  CHECK(second.v.max_message == 300);
}

TEST_CASE("config: a missing default file is fine, a missing named one is an error", "[config]") {
  TempDir dir;
  Program p((dir.path() / "absent.toml").string());
  REQUIRE(p.Load({"--node", "ship1"}).ok());
  CHECK(p.layered->effective().file.empty());

  Program named((dir.path() / "absent.toml").string());
  const absl::Status st = named.Load({"--node", "ship1", "--config", (dir.path() / "other.toml").string()});
  CHECK_THAT(std::string(st.message()),
             Catch::Contains("configuration file " + (dir.path() / "other.toml").string() + ": No such file"));

  Program by_env((dir.path() / "absent.toml").string());
  by_env.env["STEWARD_CONFIG"] = (dir.path() / "env.toml").string();
  CHECK_THAT(std::string(by_env.Load({"--node", "ship1"}).message()), Catch::Contains("env.toml: No such file"));
}

TEST_CASE("config: a required option may come from the file, and its absence says where to set it", "[config]") {
  TempDir dir;
  Program p(Write(dir, "t.toml", "heartbeat = \"1s\"\n"));
  const absl::Status st = p.Load();
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(st.message()), Catch::Contains("--node is required (or set node in "));
  CHECK_THAT(std::string(st.message()), Catch::Contains("$STEWARD_NODE"));
}

TEST_CASE("config: an unknown key names its file and line and the near miss", "[config]") {
  TempDir dir;
  const std::string file = Write(dir, "t.toml", "node = \"ship1\"\n\nhartbeat = \"5s\"\n");
  Program p(file);
  const absl::Status st = p.Load();
  CHECK(std::string(st.message()) == "testprog: " + file + ":3: unknown key \"hartbeat\" (did you mean \"heartbeat\"?)");
}

TEST_CASE("config: a value of the wrong type names its file, line and the type expected", "[config]") {
  TempDir dir;
  struct Case {
    std::string line;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"heartbeat = 5", "heartbeat: expected a string (a duration such as \"10s\"), got an integer"},
      {"heartbeat = \"5 apples\"", "heartbeat: \"5 apples\" is not a duration (10s, 1m30s, 500ms)"},
      {"syslog_max_message = \"big\"", "syslog_max_message: expected an integer, got a string"},
      {"syslog_max_message = 3", "syslog_max_message: Value 3 not in range 256 to 1048576"},
      {"syslog_udp = 5514", "syslog_udp: expected an array of strings, got an integer"},
      {"syslog_udp = [\"a\", 1]", "syslog_udp: expected an array of strings, got an integer in it"},
      {"verbose = \"yes\"", "verbose: expected a boolean (true or false), got a string"},
      {"nats = [\"nats://a\"]", "nats: expected a string, got an array"},
  };
  for (const Case& c : cases) {
    const std::string file = Write(dir, "t.toml", "node = \"ship1\"\n" + c.line + "\n");
    Program p(file);
    const absl::Status st = p.Load();
    INFO(c.line);
    CHECK(std::string(st.message()) == "testprog: " + file + ":2: " + c.error);
  }
}

TEST_CASE("config: TOML syntax errors and keys set twice name their line", "[config]") {
  TempDir dir;
  const std::string broken = Write(dir, "broken.toml", "node = \"ship1\"\nheartbeat = \n");
  CHECK_THAT(std::string(Program(broken).Load().message()), Catch::StartsWith("testprog: " + broken + ":2:"));
  const std::string twice = Write(dir, "twice.toml", "node = \"a\"\nsyslog_udp = [\"x:1\"]\n[syslog]\nudp = [\"y:2\"]\n");
  CHECK(std::string(Program(twice).Load().message()) ==
        "testprog: " + twice + ":4: syslog_udp is set twice (also on line 2)");
}

TEST_CASE("config: a bad environment value names the variable", "[config]") {
  Program p("/nonexistent/t.toml");
  p.env["STEWARD_HEARTBEAT"] = "soon";
  CHECK(std::string(p.Load({"--node", "x"}).message()) ==
        "testprog: $STEWARD_HEARTBEAT: heartbeat: \"soon\" is not a duration (10s, 1m30s, 500ms)");
  Program q("/nonexistent/t.toml");
  q.env["STEWARD_NATS_URL"] = "nats://elsewhere:4222";  // an option's own CLI11 envname is kept
  REQUIRE(q.Load({"--node", "x"}).ok());
  CHECK(q.v.url == "nats://elsewhere:4222");
}

TEST_CASE("config: a secret in a file that group or others may read is refused", "[config]") {
  TempDir dir;
  const std::string text = "node = \"ship1\"\nnats = \"nats://ship1:hunter2@broker:4222\"\n";
  const std::string open_file = Write(dir, "open.toml", text, 0640);
  CHECK(std::string(Program(open_file).Load().message()) ==
        "testprog: " + open_file + ":2: nats holds a secret, but group or others may read " + open_file +
            " (mode 0640): chmod 600 " + open_file + " (owned by the user the program runs as)");

  Program private_file(Write(dir, "private.toml", text, 0600));
  REQUIRE(private_file.Load().ok());
  CHECK(private_file.v.url == "nats://ship1:hunter2@broker:4222");
  const std::string printed = private_file.layered->effective().ToToml();
  CHECK_THAT(printed, Catch::Contains("nats = \"<secret>\""));
  CHECK_THAT(printed, !Catch::Contains("hunter2"));

  // Without a password the same key is no secret.
  REQUIRE(Program(Write(dir, "plain.toml", "node = \"a\"\nnats = \"nats://broker:4222\"\n", 0644)).Load().ok());
}

TEST_CASE("config: what is a secret", "[config]") {
  CHECK(IsSecret("http_token", "x"));
  CHECK(IsSecret("nats_password", ""));
  CHECK(IsSecret("nats", "tls://u:p@host:4222"));
  CHECK_FALSE(IsSecret("nats", "tls://u@host:4222"));
  CHECK_FALSE(IsSecret("nats", "nats://host:4222/a:b@c"));
  CHECK_FALSE(IsSecret("node_key", "/var/lib/steward/node.key"));
  CHECK(nats::RedactUrl("tls://u:p@host:4222") == "tls://u:REDACTED@host:4222");
  CHECK(nats::RedactUrl("nats://host:4222") == "nats://host:4222");
  CHECK(nats::RedactUrl("nats://a:1@h1,nats://tok@h2") == "nats://a:REDACTED@h1,nats://REDACTED@h2");
  CHECK(KeyOf("--syslog-udp") == "syslog_udp");
  CHECK(EnvOf("syslog_udp") == "STEWARD_SYSLOG_UDP");
}

TEST_CASE("config: a file that cannot be read is refused with the reason", "[config]") {
  TempDir dir;
  // A directory where the file should be.
  std::filesystem::create_directory(dir.path() / "dir.toml");
  CHECK_THAT(std::string(Program((dir.path() / "dir.toml").string()).Load().message()),
             Catch::Contains("dir.toml: not a regular file"));

  // Mode 000: refused to anyone but root, so the check runs as an ordinary user.
  ::chmod(dir.str().c_str(), 0755);
  const std::string file = Write(dir, "locked.toml", "node = \"ship1\"\n", 0);
  const absl::Status st = testing::AsOrdinaryUser([&file] { return Program(file).Load(); });
  CHECK(std::string(st.message()) == "testprog: configuration file " + file + ": cannot read it: Permission denied");
}

}  // namespace
}  // namespace steward::config
