// Tests for ctl/render_text.h: remote text escaped for a terminal, tables that stay aligned.
#include "ctl/render_text.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/protocol.h"

namespace steward::ctl {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

TEST_CASE("remote text cannot drive the terminal", "[ctl]") {
  CHECK(Escape("plain text, tabs\tand newlines\n") == "plain text, tabs\\x09and newlines\\x0a");
  CHECK(Escape("\x1b[2J\x1b]0;title\x07") == "\\x1b[2J\\x1b]0;title\\x07");
  CHECK(Escape("del\x7f nul") == "del\\x7f nul");
  CHECK(Escape(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(Escape("\xC2\x9B"
               "31m") == "\\xc2\\x9b31m");  // C1 CSI as UTF-8
  CHECK(Escape("gr\xC3\xBC\xC3\x9F \xF0\x9F\x98\x80") == "gr\xC3\xBC\xC3\x9F \xF0\x9F\x98\x80");  // kept
  // Not UTF-8: every high byte shows as hex (a raw 0x9b is CSI on 8-bit terminals).
  CHECK(Escape("caf\xE9 \x9B") == "caf\\xe9 \\x9b");
  CHECK(Escape("\xC0\xAF") == "\\xc0\\xaf");
}

TEST_CASE("table columns are as wide as their widest cell", "[ctl]") {
  Table t({"NODE", "STATUS", "N"});
  t.AlignRight(2);
  t.AddRow({"ship1", "online", "3"});
  t.AddRow({"a-very-long-node-name-from-a-fleet", "offline", "12"});
  t.AddRow({"gr\xC3\xBC\xC3\x9F", "unknown", "0"});
  const std::vector<std::string> lines = Lines(t.Render());
  REQUIRE(lines.size() == 4);
  const size_t status = lines[0].find("STATUS");
  CHECK(lines[1].find("online") == status);
  CHECK(lines[2].find("offline") == status);
  CHECK(lines[3].find("unknown") == status + 2);  // two 2-byte characters, one column each
  CHECK(lines[0].substr(lines[0].size() - 2) == " N");
  CHECK(lines[1].substr(lines[1].size() - 3) == "  3");
  CHECK(lines[2].substr(lines[2].size() - 3) == " 12");
}

TEST_CASE("the node table shows each node's status, falling back to online when unspecified", "[ctl]") {
  proto::NodesReply nodes;
  auto add = [&](const std::string& name, proto::NodeStatus status, bool online) {
    proto::NodeInfo* n = nodes.add_nodes();
    n->set_name(name);
    n->set_status(status);
    n->set_online(online);
  };
  add("ship1", proto::NODE_STATUS_UNSPECIFIED, true);
  add("ship2", proto::NODE_STATUS_UNSPECIFIED, false);
  add("shpi3-typo-of-a-name-longer-than-the-old-sixteen-columns", proto::NODE_UNKNOWN, false);
  add("ship4", proto::NODE_PENDING, false);
  add("ship5\x1b[1m", proto::NODE_ONLINE, true);
  const std::vector<std::string> lines = Lines(NodeTable(nodes));
  REQUIRE(lines.size() == 6);
  const size_t status = lines[0].find("STATUS");
  CHECK(lines[1].find("online") == status);
  CHECK(lines[2].find("offline") == status);
  CHECK(lines[3].find("unknown") == status);
  CHECK(lines[4].find("pending") == status);
  CHECK(lines[5].rfind("ship5\\x1b[1m", 0) == 0);
  CHECK(lines[5].find("online") == status);
}

TEST_CASE("the command table gives an exit status only to a process that ended", "[ctl]") {
  google::protobuf::RepeatedPtrField<proto::CommandState> commands;
  auto add = [&](const std::string& id, proto::State state, proto::Outcome outcome, int exit_code, int signal,
                 const std::string& error, const char* method = kMethodShell) {
    proto::CommandState* s = commands.Add();
    s->set_id(id);
    s->set_node("ship1");
    s->set_state(state);
    s->mutable_command()->set_method(method);
    proto::Ack* r = s->mutable_result();
    r->set_stage(proto::STAGE_RESULT);
    r->set_outcome(outcome);
    r->set_exit_code(exit_code);
    r->set_term_signal(signal);
    r->set_error(error);
  };
  add("ok", proto::STATE_SUCCEEDED, proto::OUTCOME_SUCCEEDED, 0, 0, "");
  add("exit3", proto::STATE_FAILED, proto::OUTCOME_FAILED, 3, 0, "");
  add("killed", proto::STATE_FAILED, proto::OUTCOME_TIMED_OUT, -1, 9, "timed out after 1s");
  add("nostart", proto::STATE_FAILED, proto::OUTCOME_ERROR, 0, 0, "cannot run \"nosuchprog\"");
  add("lost", proto::STATE_LOST, proto::OUTCOME_ERROR, 0, 0, "node ship1 was reinstalled");
  add("echo", proto::STATE_SUCCEEDED, proto::OUTCOME_SUCCEEDED, 0, 0, "", kMethodEcho);  // runs no program
  const std::vector<std::string> lines = Lines(CommandTable(commands));
  REQUIRE(lines.size() == 6);
  CHECK_THAT(lines[0], Catch::Contains("succeeded (exit 0)"));
  CHECK_THAT(lines[1], Catch::Contains("failed (exit 3)"));
  CHECK_THAT(lines[2], Catch::Contains("failed (signal 9)"));
  CHECK_THAT(lines[3], Catch::Contains("failed  "));
  CHECK_THAT(lines[3], !Catch::Contains("exit"));
  CHECK_THAT(lines[4], !Catch::Contains("exit"));
  CHECK_THAT(lines[5], Catch::Contains("succeeded"));
  CHECK_THAT(lines[5], !Catch::Contains("exit"));
}

TEST_CASE("the node table says first when the station is degraded", "[ctl]") {
  proto::NodesReply nodes;
  nodes.add_nodes()->set_name("ship1");
  nodes.mutable_station()->set_name("station");
  std::vector<std::string> lines = Lines(NodeTable(nodes));
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].rfind("NODE", 0) == 0);
  nodes.mutable_station()->set_degraded(true);
  nodes.mutable_station()->set_reason("exec \"COMMIT\": database or disk is full");
  nodes.mutable_station()->set_failed_writes(7);
  nodes.mutable_station()->set_degraded_since_unix_ms(absl::ToUnixMillis(absl::Now() - absl::Minutes(3)));
  lines = Lines(NodeTable(nodes));
  REQUIRE(lines.size() == 3);
  CHECK_THAT(lines[0], Catch::StartsWith("station station DEGRADED since 3m"));
  CHECK_THAT(lines[0], Catch::Contains("database or disk is full; 7 failed since it started"));
  CHECK(lines[1].rfind("NODE", 0) == 0);
}

TEST_CASE("a command's output is shown raw and its other fields escaped", "[ctl]") {
  proto::CommandState s;
  s.set_id("01J0000000000000000000000A");
  s.set_node("ship1");
  s.set_state(proto::STATE_FAILED);
  s.mutable_command()->add_argv("printf");
  s.mutable_command()->add_argv("\x1b[31m");
  s.mutable_result()->set_stdout("\x1b[31mred\n");
  s.mutable_result()->set_error("bad\nthing");
  const std::string text = CommandDetails(s);
  CHECK(text.find("  argv: printf \\x1b[31m\n") != std::string::npos);
  CHECK(text.find("  error: bad\\x0athing\n") != std::string::npos);
  CHECK(text.find("  stdout:\n\x1b[31mred\n") != std::string::npos);
}

TEST_CASE("show gives an exit code and a signal only to a program that started", "[ctl]") {
  proto::CommandState s;
  s.set_id("01J0000000000000000000000B");
  s.set_node("ship1");
  s.mutable_command()->set_method(kMethodShell);
  s.mutable_command()->add_argv("true");
  // Canceled before it was delivered: it never ran, so it has no exit code 0.
  s.set_state(proto::STATE_CANCELED);
  s.mutable_result()->set_outcome(proto::OUTCOME_CANCELED);
  s.mutable_result()->set_error("canceled before delivery");
  std::string text = CommandDetails(s);
  CHECK(text.find("exit code") == std::string::npos);
  CHECK(text.find("signal") == std::string::npos);
  CHECK(text.find("  outcome: canceled\n") != std::string::npos);
  // No outcome recorded: no "outcome: unspecified" line either.
  s.mutable_result()->set_outcome(proto::OUTCOME_UNSPECIFIED);
  CHECK(CommandDetails(s).find("outcome") == std::string::npos);
  // It ran and exited 0.
  s.set_state(proto::STATE_SUCCEEDED);
  s.mutable_result()->set_outcome(proto::OUTCOME_SUCCEEDED);
  s.mutable_result()->set_started_unix_ms(1000);
  s.mutable_result()->set_finished_unix_ms(1005);
  text = CommandDetails(s);
  CHECK(text.find("  exit code: 0\n  signal: 0\n") != std::string::npos);
  CHECK(text.find("  ran: 5 ms\n") != std::string::npos);
}

}  // namespace
}  // namespace steward::ctl

TEST_CASE("a node's configuration is 'as pushed' only once a hello after the push carries the pushed hash", "[ctl]") {
  steward::proto::NodeInfo n;
  n.set_name("ship1");
  n.set_config_pushed_hash("sha256:new");
  n.set_config_pushed_unix_ms(1000);
  n.mutable_agent_stats()->set_config_hash("sha256:old");
  n.mutable_agent_stats()->set_at_unix_ms(900);  // the last hello came before the push
  std::string out = steward::ctl::NodeDetails(n);
  CHECK_THAT(out, Catch::Contains("configuration: sha256:old (before the push of sha256:new"));
  CHECK_THAT(out, Catch::Contains("not heard from since)"));
  CHECK_THAT(out, !Catch::Contains("as pushed"));
  n.mutable_agent_stats()->set_config_hash("sha256:new");
  n.mutable_agent_stats()->set_at_unix_ms(1100);
  out = steward::ctl::NodeDetails(n);
  CHECK_THAT(out, Catch::Contains("configuration: sha256:new (as pushed "));
}
