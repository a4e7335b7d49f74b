// DebugStreams against a real nats-server: the rate limit and what it says when it
// drops, levels per session, the operator's probes, the end message.
#include <catch2/catch.hpp>

#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "agent/debug_streams.h"
#include "common/log.h"
#include "common/nats.h"
#include "tests/testing/nats_server.h"

using steward::LogLevel;
using steward::agent::DebugLimits;
using steward::agent::DebugStreams;
using steward::testing::NatsServer;
namespace nats = steward::nats;

namespace {

nats::ConnectionPtr Connect(const NatsServer& server, const char* name) {
  auto nc = nats::Connect({.url = server.url(), .name = name, .keep_trying = false});
  REQUIRE(nc.ok());
  return *std::move(nc);
}

// Everything that arrives on `sub` until `subject_end`'s message or `timeout`; probes
// are answered like stewardctl does.
std::string Collect(natsConnection* nc, natsSubscription* sub, absl::Duration timeout, std::string* end) {
  std::string lines;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto msg = nats::NextMsg(sub, absl::Milliseconds(100));
    if (!msg.ok()) continue;
    const std::string subject = nats::Subject(msg->get());
    if (absl::EndsWith(subject, ".line")) lines += std::string(nats::Data(msg->get()));
    if (absl::EndsWith(subject, ".ping")) (void)nats::Publish(nc, nats::Reply(msg->get()), "");
    if (absl::EndsWith(subject, ".end")) {
      *end = std::string(nats::Data(msg->get()));
      break;
    }
  }
  return lines;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a debug stream is rate-limited and says how many lines it dropped", "[agent][debug]") {
  NatsServer server;
  nats::ConnectionPtr agent = Connect(server, "agent");
  nats::ConnectionPtr op = Connect(server, "operator");
  DebugStreams streams(agent.get(), "ship1", DebugLimits{.lines_per_second = 10, .burst = 5});
  const std::string subject = "_DEBUG.alice.ship1.t1";
  auto sub = nats::SubscribeSync(op.get(), subject + ".>", 10000);
  REQUIRE(sub.ok());
  REQUIRE(nats::Flush(op.get(), absl::Seconds(2)).ok());
  auto started = streams.Start(LogLevel::kDebug, absl::Seconds(2), subject, "alice");
  REQUIRE(started.ok());
  CHECK_THAT(*started, Catch::Contains("at most 10 lines/s"));
  // The agent's stderr level stays where it was (info): these go to the stream only.
  REQUIRE(steward::GetLogLevel() >= LogLevel::kInfo);
  for (int i = 0; i < 50; ++i) STEWARD_LOG_DEBUG("burst line {}", i);
  std::string end;
  const std::string lines = Collect(op.get(), sub->get(), absl::Seconds(10), &end);
  INFO(lines);
  // The burst of 5 (the stream's own first line, "debug stream for alice: ...", is one
  // of them), then 10 a second; the 50 are logged at once, so the rest is dropped.
  CHECK_THAT(lines, Catch::Contains("INFO debug stream for alice: streaming DEBUG lines"));
  CHECK(Count(lines, "DEBUG burst line ") >= 4);
  CHECK(Count(lines, "DEBUG burst line ") <= 7);
  CHECK(Count(lines, "[steward] ") >= 1);
  CHECK_THAT(lines, Catch::Contains("lines dropped by the rate limit (10 lines/s, bursts of 5)"));
  CHECK(end == "its time is up");
  CHECK(streams.sessions() == 0);
}

TEST_CASE("each debug stream has its own level, and a bad subject is refused", "[agent][debug]") {
  NatsServer server;
  nats::ConnectionPtr agent = Connect(server, "agent");
  nats::ConnectionPtr op = Connect(server, "operator");
  DebugStreams streams(agent.get(), "ship1");
  auto low = nats::SubscribeSync(op.get(), "_DEBUG.a.ship1.low.>", 10000);
  auto high = nats::SubscribeSync(op.get(), "_DEBUG.a.ship1.high.>", 10000);
  REQUIRE(low.ok());
  REQUIRE(high.ok());
  REQUIRE(nats::Flush(op.get(), absl::Seconds(2)).ok());
  REQUIRE(streams.Start(LogLevel::kDebug, absl::Seconds(1), "_DEBUG.a.ship1.low", "a").ok());
  REQUIRE(streams.Start(LogLevel::kWarning, absl::Seconds(1), "_DEBUG.a.ship1.high", "a").ok());
  STEWARD_LOG_DEBUG("quiet detail");
  STEWARD_LOG_WARNING("loud trouble");
  std::string end_low, end_high;
  const std::string got_low = Collect(op.get(), low->get(), absl::Seconds(10), &end_low);
  const std::string got_high = Collect(op.get(), high->get(), absl::Seconds(10), &end_high);
  CHECK_THAT(got_low, Catch::Contains("DEBUG quiet detail"));
  CHECK_THAT(got_low, Catch::Contains("WARN loud trouble"));
  CHECK_THAT(got_high, !Catch::Contains("quiet detail"));
  CHECK_THAT(got_high, Catch::Contains("WARN loud trouble"));

  CHECK(absl::IsInvalidArgument(streams.Start(LogLevel::kDebug, absl::Seconds(1), "_DEBUG.a.ship2.x", "a").status()));
  CHECK(absl::IsInvalidArgument(streams.Start(LogLevel::kDebug, absl::Seconds(1), "ship1.event.x.y", "a").status()));
  CHECK(absl::IsInvalidArgument(streams.Start(LogLevel::kDebug, absl::Hours(25), "_DEBUG.a.ship1.z", "a").status()));
  CHECK(absl::IsInvalidArgument(streams.Start(LogLevel::kDebug, absl::ZeroDuration(), "_DEBUG.a.ship1.z", "a").status()));
}

TEST_CASE("a debug stream nobody reads ends at its first probe", "[agent][debug]") {
  NatsServer server;
  nats::ConnectionPtr agent = Connect(server, "agent");
  DebugStreams streams(agent.get(), "ship1", DebugLimits{.probe_every = absl::Milliseconds(200)});
  REQUIRE(streams.Start(LogLevel::kDebug, absl::Minutes(5), "_DEBUG.a.ship1.gone", "a").ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (streams.sessions() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  CHECK(streams.sessions() == 0);
}
