// Pause / resume and maintenance against real processes (they hold dispatch, survive a
// station restart, show in `stewardctl nodes`, and what waited goes out when they end),
// /metrics checked by promtool with values that moved, and the protocol's corners:
// cli requests misaddressed or already expired, an ACK the station cannot read.
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "tests/http/http_util.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::Http;
using steward::testing::Reply;
using steward::testing::RunResult;
using steward::testing::Sample;
using steward::testing::WaitUntil;

namespace steward {
namespace {

std::string IdOf(const RunResult& r) { return r.out.substr(r.out.find(' ') + 1, 26); }

std::string StateOf(Cluster& c, const std::string& id) {
  return Http(c.HttpPort(), "GET", "/api/v1/commands/" + id).json.value("state", "");
}

TEST_CASE("pause holds all dispatch across a restart and resume sends what waited", "[integration][http][ops]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  RunResult r = c.Ctl({"pause", "--reason", "change freeze"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("dispatch PAUSED") != std::string::npos);
  r = c.Ctl({"send", "--no-wait", "ship1", "--", "echo", "later"});
  REQUIRE(r.exit_code == 0);  // accepted and queued
  const std::string id = IdOf(r);
  absl::SleepFor(absl::Seconds(1));
  CHECK(StateOf(c, id) == "queued");
  r = c.Ctl({"nodes"});
  CHECK(r.out.rfind("dispatch PAUSED", 0) == 0);
  CHECK(r.out.find("change freeze") != std::string::npos);

  c.StopStation();
  c.StartStation();
  CHECK(c.Ctl({"nodes"}).out.rfind("dispatch PAUSED", 0) == 0);
  CHECK(Http(c.HttpPort(), "GET", "/api/v1/dispatch").json["paused"] == true);
  absl::SleepFor(absl::Seconds(1));
  CHECK(StateOf(c, id) == "queued");

  REQUIRE(c.Ctl({"resume"}).exit_code == 0);
  CHECK(WaitUntil([&] { return StateOf(c, id) == "succeeded"; }, absl::Seconds(10)));
  CHECK(c.Ctl({"nodes"}).out.find("PAUSED") == std::string::npos);
  Reply audit = Http(c.HttpPort(), "GET", "/api/v1/audit");
  std::string actions;
  for (const auto& a : audit.json["actions"]) actions += a["action"].get<std::string>() + " ";
  CHECK(actions == "resume pause ");
}

TEST_CASE("a node in maintenance gets no dispatch and raises no offline alarm", "[integration][http][ops]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  c.StartAgent("ship2");
  REQUIRE(c.Ctl({"maintenance", "on", "ship1", "--reason", "hull work"}).exit_code == 0);
  RunResult r = c.Ctl({"send", "--no-wait", "ship1", "--", "echo", "waits"});
  const std::string waits = IdOf(r);
  CHECK(c.Ctl({"send", "ship2", "--", "true"}).exit_code == 0);  // others are not held
  absl::SleepFor(absl::Seconds(1));
  CHECK(StateOf(c, waits) == "queued");
  r = c.Ctl({"nodes"});
  CHECK(r.out.find("on hull work") != std::string::npos);

  // Both go offline; only ship2's absence is an alarm.
  c.StopAgent("ship1");
  c.StopAgent("ship2");
  const int port = c.HttpPort();
  REQUIRE(WaitUntil([&] { return Http(port, "GET", "/api/v1/fleet").json["counts"]["offline"] == 2; },
                    absl::Seconds(15)));
  const std::string metrics = Http(port, "GET", "/metrics").body;
  CHECK(Sample(metrics, "steward_node_offline_alarm{node=\"ship1\"}") == 0);
  CHECK(Sample(metrics, "steward_node_offline_alarm{node=\"ship2\"}") == 1);
  CHECK(Sample(metrics, "steward_nodes_offline_alarms") == 1);
  CHECK(Http(port, "GET", "/api/v1/fleet").json["counts"]["alarms"] == 1);

  // Maintenance survives a restart; ending it sends what waited.
  c.StopStation();
  c.StartStation();
  c.StartAgent("ship1");
  absl::SleepFor(absl::Seconds(1));
  CHECK(StateOf(c, waits) == "queued");
  CHECK(c.Ctl({"node", "ship1"}).out.find("in maintenance since") != std::string::npos);
  REQUIRE(c.Ctl({"maintenance", "off", "ship1"}).exit_code == 0);
  CHECK(WaitUntil([&] { return StateOf(c, waits) == "succeeded"; }, absl::Seconds(10)));
  CHECK(c.Ctl({"maintenance", "on", "nosuch"}).exit_code == 255);
}

TEST_CASE("metrics pass promtool and move with the fleet", "[integration][http][metrics]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const int port = c.HttpPort();
  const std::string before = Http(port, "GET", "/metrics").body;
  for (int i = 0; i < 3; ++i) REQUIRE(c.Ctl({"send", "ship1", "--", "true"}).exit_code == 0);
  CHECK(c.Ctl({"send", "ship1", "--", "false"}).exit_code == 1);
  const std::string after = Http(port, "GET", "/metrics").body;

  // Prometheus's own parser (Debian's prometheus package).
  const std::string file = c.dir().str() + "/metrics.txt";
  std::ofstream(file) << after;
  RunResult check = steward::testing::RunProgram({"sh", "-c", "promtool check metrics < " + file});
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);

  CHECK(Sample(before, "steward_commands_finished_total{state=\"succeeded\",method=\"shellcommand\"}") == -1);
  CHECK(Sample(after, "steward_commands_finished_total{state=\"succeeded\",method=\"shellcommand\"}") == 3);
  CHECK(Sample(after, "steward_commands_finished_total{state=\"failed\",method=\"shellcommand\"}") == 1);
  CHECK(Sample(after, "steward_result_latency_seconds_count") == 4);
  CHECK(Sample(after, "steward_dispatch_latency_seconds_count") == 4);
  CHECK(Sample(after, "steward_receipt_latency_seconds_count") >= 4);
  CHECK(Sample(after, "steward_ledger_commit_seconds_count") > Sample(before, "steward_ledger_commit_seconds_count"));
  CHECK(Sample(after, "steward_ledger_checkpoints_total{by=\"writer\"}") == 0);  // a small ledger never outgrows its WAL
  CHECK(Sample(after, "steward_nodes{status=\"online\"}") == 1);
  CHECK(Sample(after, "steward_node_online{node=\"ship1\"}") == 1);
  CHECK(Sample(after, "steward_agent_resident_memory_bytes{node=\"ship1\"}") > 1e6);
  CHECK(Sample(after, "steward_agent_open_fds{node=\"ship1\"}") > 3);
  CHECK(Sample(after, "steward_agent_data_disk_free_bytes{node=\"ship1\"}") > 0);
  CHECK(Sample(after, "steward_http_requests_total{method=\"GET\",route=\"metrics\",code=\"200\"}") >= 1);
  // The agent's next hello counts the process its commands started.
  CHECK(WaitUntil([&] {
    return Sample(Http(port, "GET", "/metrics").body, "steward_agent_processes{node=\"ship1\"}") >= 1;
  }, absl::Seconds(5)));
}

TEST_CASE("cli requests misaddressed or already expired are rejected", "[integration][http][protocol]") {
  Cluster c;
  c.StartStation();
  nats::ConnectionPtr nc = steward::testing::MustConnect(c.url(), "test");
  auto ask = [&](proto::Envelope env, const std::string& subject) {
    absl::StatusOr<nats::MsgPtr> m = nats::Request(nc.get(), subject, env.SerializeAsString(), absl::Seconds(5));
    REQUIRE(m.ok());
    absl::StatusOr<proto::Ack> ack = DecodeAck(nats::Data(m->get()));
    REQUIRE(ack.ok());
    return *ack;
  };
  const std::string subject = "station.command.nodes.cli";
  proto::Envelope good = NewEnvelope("test", "station", proto::KIND_COMMAND, kStationNodes, kCliDomain);
  good.set_payload(proto::NodesRequest().SerializeAsString());
  CHECK(ask(good, subject).outcome() == proto::OUTCOME_SUCCEEDED);
  proto::Envelope other = good;
  other.set_to_node("ship1");
  proto::Ack a = ask(other, subject);
  CHECK(a.outcome() == proto::OUTCOME_REJECTED);
  CHECK(a.error().find("not to this station") != std::string::npos);
  proto::Envelope event = good;
  event.set_kind(proto::KIND_EVENT);
  CHECK(ask(event, subject).outcome() == proto::OUTCOME_REJECTED);
  proto::Envelope domain = good;
  domain.set_domain("operatingsystem");
  CHECK(ask(domain, subject).outcome() == proto::OUTCOME_REJECTED);
  CHECK(ask(good, "station.command.nodes.other").outcome() == proto::OUTCOME_REJECTED);

  proto::SubmitRequest submit;
  submit.add_nodes("ship1");
  submit.mutable_command()->set_method(kMethodShell);
  submit.mutable_command()->set_domain("operatingsystem");
  submit.mutable_command()->add_argv("true");
  submit.mutable_command()->set_expires_unix_ms(NowUnixMillis() - 1000);
  proto::Envelope expired = NewEnvelope("test", "station", proto::KIND_COMMAND, kStationSubmit, kCliDomain);
  expired.set_payload(submit.SerializeAsString());
  a = ask(expired, "station.command.submit.cli");
  CHECK(a.outcome() == proto::OUTCOME_REJECTED);
  CHECK(a.error().find("already expired") != std::string::npos);
  CHECK(Http(c.HttpPort(), "GET", "/api/v1/commands").json["commands"].empty());
}

TEST_CASE("an ACK the station cannot read ends the command lost, logged and counted", "[integration][http][protocol]") {
  Cluster c;
  c.StartStation();
  // A node whose agent speaks no protocol version: it answers every command with an
  // ACK that has none.
  nats::ConnectionPtr nc = steward::testing::MustConnect(c.url(), "old-agent");
  absl::StatusOr<nats::SubscriptionPtr> sub = nats::SubscribeSync(nc.get(), "old1.command.>", 100);
  REQUIRE(sub.ok());
  RunResult r = c.Ctl({"send", "--no-wait", "old1", "--", "true"});
  REQUIRE(r.exit_code == 0);
  const std::string id = IdOf(r);
  absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub->get(), absl::Seconds(10));
  REQUIRE(msg.ok());
  proto::Ack ack;
  ack.set_envelope_id(id);
  ack.set_stage(proto::STAGE_RECEIVED);
  REQUIRE(nats::Publish(nc.get(), nats::Reply(msg->get()), ack.SerializeAsString()).ok());
  REQUIRE(WaitUntil([&] { return StateOf(c, id) == "lost"; }, absl::Seconds(10)));
  Reply shown = Http(c.HttpPort(), "GET", "/api/v1/commands/" + id);
  CHECK(shown.json["result"]["error"].get<std::string>().find("cannot read") != std::string::npos);
  CHECK(c.station().Stderr().find("answered with an ACK this station cannot read") != std::string::npos);
  CHECK(Sample(Http(c.HttpPort(), "GET", "/metrics").body, "steward_bad_acks_total") == 1);
  RunResult show = c.Ctl({"show", id});
  CHECK(show.out.find("lost") != std::string::npos);
}

}  // namespace
}  // namespace steward
