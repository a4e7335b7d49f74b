// Streamed output end to end (issue 13 part 3) with real parts: nats-server, station,
// agent and stewardctl. `send --follow` prints output while the command still runs,
// every line once and in order; `watch` joins a running command mid-way (the station's
// backlog, then live) with no gap and no duplicate; `watch` of a finished command
// prints its whole output and status; a followed command that is cancelled ends with
// its partial output once and the cancel's exit status.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/protocol.h"
#include "ctl/client.h"
#include "tests/testing/cluster.h"
#include "tests/testing/wait.h"

namespace steward::testing {
namespace {

namespace fs = std::filesystem;

// "1\n2\n...\nN\n" from `from` to `to`, as seq prints it.
std::string Lines(int from, int to) {
  std::string out;
  for (int i = from; i <= to; ++i) absl::StrAppend(&out, i, "\n");
  return out;
}

// A shell line that waits (at most 30 s) for `mark` to exist.
std::string AwaitFile(const fs::path& mark) {
  return absl::StrCat("n=0; while [ ! -e ", mark.string(), " ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done");
}

void Touch(const fs::path& p) { std::ofstream(p) << "go\n"; }

// stewardctl running in the background (Cluster::Ctl waits for it to end).
Process Ctl(Cluster& c, std::vector<std::string> args) {
  std::vector<std::string> argv = {BinPath("ctl/stewardctl"), "--nats", c.url()};
  if (c.secure()) argv.insert(argv.end(), {"--keys", c.keys()});
  argv.insert(argv.end(), args.begin(), args.end());
  return Process(argv);
}

proto::CommandState Show(Cluster& c, const std::string& id) {
  auto client = ctl::Client::Connect({.nats = {.url = c.url()}});
  if (!client.ok()) return {};
  auto s = (*client)->Show({id}, "", absl::Seconds(5));
  if (!s.ok() || s->commands_size() == 0) return {};
  return s->commands(0);
}

// The id of the newest command of `node`.
std::string Newest(Cluster& c, const std::string& node) {
  auto client = ctl::Client::Connect({.nats = {.url = c.url()}});
  if (!client.ok()) return "";
  proto::HistoryRequest h;
  h.set_node(node);
  h.set_limit(1);
  auto hist = (*client)->History(h, absl::Seconds(5));
  if (!hist.ok() || hist->commands_size() == 0) return "";
  return hist->commands(0).id();
}

std::string SendNoWait(Cluster& c, const std::string& script) {
  RunResult r = c.Ctl({"send", "--no-wait", "ship1", "--shell", "--", script});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return r.out.substr(r.out.find(' ') + 1, 26);
}

TEST_CASE("send --follow of a command printing 10000 lines shows them live, all of them, in order, once",
          "[integration][stream]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path mark = c.dir().path() / "go";
  // Half the lines, then it waits: what the follower has by then came live.
  const std::string script =
      absl::StrCat("seq 1 5000; ", AwaitFile(mark), "; seq 5001 9999; echo 10000; echo done >&2; exit 4");
  Process follow = Ctl(c, {"send", "--follow", "ship1", "--shell", "--", script});
  REQUIRE(follow.WaitForOutput("\n5000\n", absl::Seconds(20)));
  CHECK(follow.running());
  CHECK(follow.Stdout() == Lines(1, 5000));
  Touch(mark);
  std::optional<RunResult> r = follow.Wait(absl::Seconds(30));
  REQUIRE(r.has_value());
  INFO(r->err);
  CHECK(r->exit_code == 4);  // the remote exit status, as a plain send
  CHECK(r->out == Lines(1, 10000));
  CHECK(r->err == "done\n");
}

TEST_CASE("watch joins a running command mid-way: what came before, then live, no gap, no duplicate",
          "[integration][stream]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path one = c.dir().path() / "one", two = c.dir().path() / "two";
  const std::string id = SendNoWait(c, absl::StrCat("seq 1 3000; ", AwaitFile(one), "; seq 3001 6000; ",
                                                    AwaitFile(two), "; seq 6001 9000"));
  // Joins once the first part was printed (it is in the station's buffer by then).
  REQUIRE(WaitUntil([&] { return Show(c, id).state() == proto::STATE_RUNNING; }, absl::Seconds(20)));
  Process early = Ctl(c, {"watch", id});
  REQUIRE(early.WaitForOutput("\n3000\n", absl::Seconds(20)));
  Touch(one);
  REQUIRE(early.WaitForOutput("\n6000\n", absl::Seconds(20)));
  CHECK(early.Stdout() == Lines(1, 6000));
  // A second watcher joins later: the backlog holds all of it.
  Process late = Ctl(c, {"watch", id});
  REQUIRE(late.WaitForOutput("\n6000\n", absl::Seconds(20)));
  CHECK(late.Stdout() == Lines(1, 6000));
  CHECK(late.running());
  Touch(two);
  for (Process* p : {&early, &late}) {
    std::optional<RunResult> r = p->Wait(absl::Seconds(30));
    REQUIRE(r.has_value());
    INFO(r->err);
    CHECK(r->exit_code == 0);
    CHECK(r->out == Lines(1, 9000));
    CHECK(r->err.empty());
  }
}

TEST_CASE("watch of a finished command prints its whole output and exits with its status",
          "[integration][stream]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  RunResult sent = c.Ctl({"send", "ship1", "--shell", "--", "seq 1 100; echo oops >&2; exit 3"});
  REQUIRE(sent.exit_code == 3);
  const std::string id = Newest(c, "ship1");
  REQUIRE(!id.empty());
  RunResult r = c.Ctl({"watch", id});
  INFO(r.err);
  CHECK(r.exit_code == 3);
  CHECK(r.out == Lines(1, 100));
  CHECK(r.err == "oops\n");
  // An unknown id is an error, not a hang.
  r = c.Ctl({"watch", "01NOSUCHCOMMAND0000000000"}, absl::Seconds(15));
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("unknown command"));
}

TEST_CASE("send --follow of a command that gets cancelled prints its output once and exits 255",
          "[integration][stream]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  Process follow = Ctl(c, {"send", "--follow", "ship1", "--shell", "--", "echo started; exec sleep 60"});
  REQUIRE(follow.WaitForOutput("started", absl::Seconds(20)));
  const std::string id = Newest(c, "ship1");
  REQUIRE(!id.empty());
  RunResult cancel = c.Ctl({"cancel", id});
  INFO(cancel.out << cancel.err);
  CHECK(cancel.exit_code == 0);
  std::optional<RunResult> r = follow.Wait(absl::Seconds(20));
  REQUIRE(r.has_value());
  INFO(r->err);
  CHECK(r->exit_code == 255);
  CHECK(r->out == "started\n");
  CHECK_THAT(r->err, Catch::Contains("canceled by"));
}

TEST_CASE("watch goes on across a station restart: every line once, in order", "[integration][stream]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path one = c.dir().path() / "one", two = c.dir().path() / "two";
  const std::string id = SendNoWait(c, absl::StrCat("seq 1 1000; ", AwaitFile(one), "; seq 1001 2000; ",
                                                    AwaitFile(two), "; seq 2001 3000"));
  Process watch = Ctl(c, {"watch", id});
  REQUIRE(watch.WaitForOutput("\n1000\n", absl::Seconds(20)));
  c.StopStation();
  c.StartStation();  // forgets its followers and buffers: the watcher asks again
  Touch(one);
  REQUIRE(watch.WaitForOutput("\n2000\n", absl::Seconds(20)));
  CHECK(watch.running());
  Touch(two);
  std::optional<RunResult> r = watch.Wait(absl::Seconds(30));
  REQUIRE(r.has_value());
  INFO(r->err);
  CHECK(r->exit_code == 0);
  CHECK(r->out == Lines(1, 3000));
}

TEST_CASE("send --follow works under broker permissions: signed requests, chunks to the operator's inbox",
          "[integration][stream][security]") {
  Cluster c(Cluster::Secure{.nodes = {"ship1"}});
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path mark = c.dir().path() / "go";
  Process follow = Ctl(c, {"send", "--follow", "ship1", "--shell", "--", absl::StrCat("seq 1 200; ", AwaitFile(mark), "; echo end")});
  REQUIRE(follow.WaitForOutput("\n200\n", absl::Seconds(20)));  // live: the command waits for the mark
  Touch(mark);
  std::optional<RunResult> r = follow.Wait(absl::Seconds(30));
  REQUIRE(r.has_value());
  INFO(r->err);
  CHECK(r->exit_code == 0);
  CHECK(r->out == Lines(1, 200) + "end\n");
}

}  // namespace
}  // namespace steward::testing
