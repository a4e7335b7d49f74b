// Approvals end to end (issue 13 part 4) with real parts: nats-server, station, agent and
// stewardctl run as different operators. A held command is never sent until another
// operator approves it; operators racing to approve get exactly one winner; a denial
// and an expiry end it without it ever running; a rule holds what matches it; a held
// command survives a station restart; every decision is audited.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "tests/testing/cluster.h"
#include "tests/testing/process.h"
#include "tests/testing/wait.h"

using steward::testing::BinPath;
using steward::testing::Cluster;
using steward::testing::RunProgram;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

namespace {

namespace fs = std::filesystem;
namespace proto = steward::proto;

// stewardctl as operator `who` (its name is $USER on a station without operator keys).
RunResult As(Cluster& c, const std::string& who, std::vector<std::string> args) {
  std::vector<std::string> argv = {BinPath("ctl/stewardctl"), "--nats", c.url()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, absl::Seconds(30), {{"USER", who}});
}

// "NODE ID" lines: the ids.
std::vector<std::string> Ids(const std::string& out) {
  std::vector<std::string> ids;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() >= 2) ids.push_back(f[1]);
  }
  return ids;
}

std::string StateOf(Cluster& c, const std::string& id) {
  RunResult r = As(c, "viewer", {"--json", "show", id});
  const size_t at = r.out.find("\"state\":\"");
  if (at == std::string::npos) return "";
  const size_t from = at + 9;
  return r.out.substr(from, r.out.find('"', from) - from);
}

}  // namespace

TEST_CASE("a held command runs only after another operator approves it, and the first of racing approvals wins",
          "[integration][approvals]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path marker = c.dir().path() / "ran";
  RunResult sent = As(c, "alice", {"send", "--require-approval", "ship1", "--shell", "--",
                                   absl::StrCat("echo engine restarted; touch ", marker.string())});
  INFO(sent.out << sent.err);
  REQUIRE(sent.exit_code == 0);
  CHECK_THAT(sent.err, Catch::Contains("awaiting approval"));
  const std::vector<std::string> ids = Ids(sent.out);
  REQUIRE(ids.size() == 1);
  const std::string id = ids[0];

  // Listed, and not sent: the node never sees it.
  RunResult list = As(c, "bob", {"approvals"});
  CHECK_THAT(list.out, Catch::Contains(id));
  CHECK_THAT(list.out, Catch::Contains("by alice"));
  CHECK_THAT(list.out, Catch::Contains("--require-approval"));
  absl::SleepFor(absl::Seconds(1));
  CHECK_FALSE(fs::exists(marker));
  CHECK(StateOf(c, id) == "awaiting_approval");

  // Four eyes: alice cannot approve her own.
  RunResult own = As(c, "alice", {"approve", id});
  CHECK(own.exit_code == 255);
  CHECK_THAT(own.err, Catch::Contains("four eyes"));
  CHECK(StateOf(c, id) == "awaiting_approval");

  // Three operators race: exactly one wins, the others are told who did.
  std::vector<std::future<RunResult>> racers;
  for (const char* who : {"bob", "carol", "dave"}) {
    racers.push_back(std::async(std::launch::async, [&c, &id, who] { return As(c, who, {"approve", id}); }));
  }
  int won = 0;
  int told = 0;
  for (auto& f : racers) {
    RunResult r = f.get();
    INFO(r.out << r.err);
    if (r.exit_code == 0) {
      ++won;
      CHECK_THAT(r.out, Catch::Contains("approved"));
    } else if (r.err.find("already approved by") != std::string::npos) {
      ++told;
    }
  }
  CHECK(won == 1);
  CHECK(told == 2);

  // Sent once approved: it runs, once.
  REQUIRE(WaitUntil([&] { return StateOf(c, id) == "succeeded"; }, absl::Seconds(20)));
  CHECK(fs::exists(marker));
  RunResult shown = As(c, "viewer", {"show", id});
  CHECK_THAT(shown.out, Catch::Contains("engine restarted"));
  CHECK_THAT(As(c, "viewer", {"approvals"}).out, Catch::Contains("nothing awaits approval"));

  // Audited: the approval, and the refused ones.
  RunResult audit = As(c, "viewer", {"audit"});
  CHECK_THAT(audit.out, Catch::Contains("approve"));
  CHECK_THAT(audit.out, Catch::Contains("four eyes"));
}

TEST_CASE("a denied or expired command never runs, and a held one survives a station restart",
          "[integration][approvals]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const fs::path marker = c.dir().path() / "ran";
  const std::vector<std::string> touch = {"--shell", "--", absl::StrCat("touch ", marker.string())};
  auto send = [&](std::vector<std::string> flags) {
    std::vector<std::string> args = {"send", "--require-approval"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back("ship1");
    args.insert(args.end(), touch.begin(), touch.end());
    RunResult r = As(c, "alice", args);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    return Ids(r.out).at(0);
  };

  // Denied: a reason is required, and the command ends rejected with it.
  const std::string denied = send({});
  RunResult no_reason = As(c, "bob", {"deny", denied});
  CHECK(no_reason.exit_code != 0);
  RunResult deny = As(c, "bob", {"deny", denied, "--reason", "not during docking"});
  INFO(deny.out << deny.err);
  CHECK(deny.exit_code == 0);
  CHECK(StateOf(c, denied) == "rejected");
  CHECK_THAT(As(c, "viewer", {"show", denied}).out, Catch::Contains("not during docking"));
  RunResult late = As(c, "carol", {"approve", denied});
  CHECK(late.exit_code == 255);
  CHECK_THAT(late.err, Catch::Contains("already denied by bob"));

  // Expired: nobody decided within --approval-ttl.
  const std::string expired = send({"--approval-ttl", "1s"});
  REQUIRE(WaitUntil([&] { return StateOf(c, expired) == "expired"; }, absl::Seconds(15)));
  CHECK_THAT(As(c, "viewer", {"show", expired}).out, Catch::Contains("not approved in time"));

  // Held across a station restart, then approved: it runs.
  const std::string held = send({});
  c.StopStation();
  c.StartStation();
  CHECK(StateOf(c, held) == "awaiting_approval");
  CHECK_FALSE(fs::exists(marker));
  RunResult ok = As(c, "bob", {"approve", held});
  INFO(ok.out << ok.err);
  CHECK(ok.exit_code == 0);
  REQUIRE(WaitUntil([&] { return StateOf(c, held) == "succeeded"; }, absl::Seconds(20)));
  CHECK(fs::exists(marker));
}

TEST_CASE("an approval rule holds the sends that match it and lets the others go", "[integration][approvals]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  RunResult set = As(c, "admin", {"approval-rules", "set", "ship1", "--require", "shellcommand:systemctl restart *"});
  INFO(set.out << set.err);
  REQUIRE(set.exit_code == 0);
  CHECK_THAT(set.out, Catch::Contains("ship1 needs approval for: shellcommand:systemctl restart *"));
  RunResult bad = As(c, "admin", {"approval-rules", "set", "ship1", "--require", "bad method:x"});
  CHECK(bad.exit_code != 0);
  CHECK_THAT(As(c, "admin", {"approval-rules", "show", "ship1"}).out, Catch::Contains("systemctl restart"));

  // Not matching: runs at once.
  RunResult plain = As(c, "alice", {"send", "ship1", "--", "echo", "hello"});
  CHECK(plain.exit_code == 0);
  CHECK_THAT(plain.out, Catch::Contains("hello"));

  // Matching: held, and said at once (not after the wait).
  const absl::Time start = absl::Now();
  RunResult held = As(c, "alice", {"--timeout", "20s", "send", "ship1", "--", "systemctl", "restart", "engine"});
  INFO(held.out << held.err);
  CHECK(held.exit_code == 255);
  CHECK_THAT(held.err, Catch::Contains("awaits approval (ship1 shellcommand:systemctl restart *)"));
  CHECK(absl::Now() - start < absl::Seconds(15));
  RunResult list = As(c, "bob", {"approvals", "--node", "ship1"});
  CHECK_THAT(list.out, Catch::Contains("systemctl restart engine"));

  // What an approver is shown includes the environment and working directory it sets:
  // either can change what runs (BASH_ENV, LD_PRELOAD, PATH), and the rule matched argv.
  RunResult env = As(c, "alice", {"--timeout", "20s", "send", "--env", "BASH_ENV=/tmp/evil.sh", "--cwd", "/tmp",
                                  "ship1", "--", "systemctl", "restart", "pumps"});
  INFO(env.out << env.err);
  CHECK_THAT(env.err, Catch::Contains("awaits approval"));
  list = As(c, "bob", {"approvals", "--node", "ship1"});
  CHECK_THAT(list.out, Catch::Contains("systemctl restart pumps [env: BASH_ENV=/tmp/evil.sh] [in: /tmp]"));
  std::string env_id;  // "ID NODE by ..." on its line
  for (absl::string_view line : absl::StrSplit(list.out, '\n')) {
    if (absl::StrContains(line, "pumps")) env_id = std::string(line.substr(0, line.find(' ')));
  }
  REQUIRE_FALSE(env_id.empty());
  RunResult denied = As(c, "bob", {"deny", env_id, "--reason", "who sets BASH_ENV?"});
  INFO(denied.out << denied.err);
  CHECK(denied.exit_code == 0);
  CHECK_THAT(As(c, "viewer", {"audit"}).out, Catch::Contains("[env: BASH_ENV=/tmp/evil.sh] [in: /tmp]"));

  // A fan-out says it on the node's line (ship2 has no rule, and no agent: no result).
  RunResult fan = As(c, "alice", {"send", "--wait", "2s", "ship1,ship2", "--", "systemctl", "restart", "radar"});
  INFO(fan.out << fan.err);
  CHECK(fan.exit_code == 255);
  CHECK_THAT(fan.out, Catch::Contains("ship1: [awaiting approval (ship1 shellcommand:systemctl restart *)"));
  CHECK_THAT(fan.out, Catch::Contains("ship2: [no result within 2s"));
}

TEST_CASE("a held command is not canceled by a cancel sent by target, nor ended by a result its node was never sent",
          "[integration][approvals][attack]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  RunResult sent = As(c, "alice", {"send", "--require-approval", "ship1", "--", "true"});
  REQUIRE(sent.exit_code == 0);
  const std::string id = Ids(sent.out).at(0);
  // "cancel" is the station's to send (every ACL lets it through, and a node records a
  // cancel of an id it never got as canceled): refused by target as by name.
  RunResult by_name = As(c, "mallory", {"send", "ship1", "--method", "cancel", "--", id});
  CHECK(by_name.exit_code != 0);
  CHECK_THAT(by_name.err, Catch::Contains("cancel is sent by the station"));
  RunResult by_glob = As(c, "mallory", {"send", "ship*", "--method", "cancel", "--", id});
  INFO(by_glob.out << by_glob.err);
  CHECK(by_glob.exit_code != 0);
  CHECK_THAT(by_glob.err, Catch::Contains("cancel is sent by the station"));
  CHECK(StateOf(c, id) == "awaiting_approval");
  // A node's result for it (as that node's cancel would send): refused, nothing changes.
  // (From the node's inbox, as its agent sends: the station answers only there.)
  absl::StatusOr<steward::nats::ConnectionPtr> nc =
      steward::nats::Connect({.url = c.url(), .inbox_prefix = "_INBOX_ship1"});
  REQUIRE(nc.ok());
  proto::Envelope ev = steward::NewEnvelope("ship1", "station", proto::KIND_EVENT, steward::kEventResult,
                                            "operatingsystem");
  proto::Ack result;
  result.set_protocol_version(1);
  result.set_envelope_id(id);
  result.set_node("ship1");
  result.set_stage(proto::STAGE_RESULT);
  result.set_outcome(proto::OUTCOME_CANCELED);
  result.set_error("recorded as canceled, it never runs");
  ev.set_payload(result.SerializeAsString());
  absl::StatusOr<steward::nats::MsgPtr> answer =
      steward::nats::Request(nc->get(), "station.event.result.operatingsystem", ev.SerializeAsString(),
                             absl::Seconds(10));
  REQUIRE(answer.ok());
  absl::StatusOr<proto::Ack> ack = steward::DecodeAck(steward::nats::Data(answer->get()));
  REQUIRE(ack.ok());
  CHECK(ack->outcome() == proto::OUTCOME_REJECTED);
  CHECK_THAT(ack->error(), Catch::Contains("was never sent to ship1"));
  CHECK(StateOf(c, id) == "awaiting_approval");
  // Approved, it runs.
  REQUIRE(As(c, "bob", {"approve", id}).exit_code == 0);
  REQUIRE(WaitUntil([&] { return StateOf(c, id) == "succeeded"; }, absl::Seconds(20)));
}
