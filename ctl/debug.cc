// stewardctl debug NODE --level debug --for 5m: the agent's own log, live.
//
// The request is the node's `debug` method, through the station like every agent
// operation (signed, ACL-checked, audited); it names a stream subject that only this
// operator may read (subjects::DebugStream, and the broker's permissions). The lines
// come straight from the agent on that subject, best effort; this client answers the
// agent's probes on it, so the agent stops when this client goes away (killed, Ctrl-C,
// a broken link) within its probe interval, and stops by itself after --for.
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "ctl/agentops.h"
#include "ctl/ctl.h"
#include "subjects/subject.h"

namespace steward::ctl {
namespace {

// Without a line, a probe or the end for this long, the agent is gone (it probes every
// 2 s while it streams).
constexpr absl::Duration kSilence = absl::Seconds(15);

volatile std::sig_atomic_t g_interrupted = 0;
void OnInterrupt(int) { g_interrupted = 1; }

int Stream(Client& client, const Globals& g, const std::string& node, const std::string& level, absl::Duration span) {
  const std::string& user = client.options().nats.user;
  std::string id = nats::NewInbox("x");
  id = id.substr(id.rfind('.') + 1);
  absl::StatusOr<std::string> subject = subjects::DebugStream(user.empty() ? "_" : user, node, id);
  if (!subject.ok()) return Fail(subject.status());
  // Deep enough for a rate-limited stream; past it nats.c drops, which is said below.
  absl::StatusOr<nats::SubscriptionPtr> sub = nats::SubscribeSync(client.connection(), *subject + ".>", 100000);
  if (!sub.ok()) return Fail(sub.status());
  if (absl::Status s = nats::Flush(client.connection(), g.timeout); !s.ok()) return Fail(s);

  auto started = RunOnNode(client, g, node, kMethodDebug,
                           {level, absl::StrCat(absl::ToInt64Milliseconds(span)), *subject});
  if (!started.ok()) return Fail(started.status());
  if (const std::string why = Failure(*started); !why.empty()) return Fail(why);
  fmt::print(stderr, "stewardctl: {}: {} (Ctrl-C to stop)\n", node,
             absl::StripTrailingAsciiWhitespace(started->result().stdout()));

  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {};
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  const absl::Time give_up = absl::Now() + span + kSilence;
  absl::Time heard = absl::Now();
  int exit_code = 0;
  while (true) {
    if (g_interrupted) {
      fmt::print(stderr, "stewardctl: stopped; {} ends the stream at its next probe\n", node);
      break;
    }
    if (absl::Now() - heard > kSilence || absl::Now() > give_up) {
      exit_code = Fail(fmt::format("no word from {} for {}: the agent stopped or the link broke", node,
                                   absl::FormatDuration(absl::Now() - heard)));
      break;
    }
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub->get(), absl::Milliseconds(200));
    if (!msg.ok()) {
      if (absl::IsDeadlineExceeded(msg.status())) continue;
      // A slow consumer: nats.c dropped lines this client did not read in time.
      fmt::print(stderr, "stewardctl: {}\n", msg.status().message());
      continue;
    }
    heard = absl::Now();
    const std::string to = nats::Subject(msg->get());
    const absl::string_view data = nats::Data(msg->get());
    if (absl::EndsWith(to, ".line")) {
      std::fwrite(data.data(), 1, data.size(), stdout);
      std::fflush(stdout);
    } else if (absl::EndsWith(to, ".ping")) {
      if (const std::string reply = nats::Reply(msg->get()); !reply.empty()) {
        (void)nats::Publish(client.connection(), reply, "");
      }
    } else if (absl::EndsWith(to, ".end")) {
      fmt::print(stderr, "stewardctl: {}: the debug stream ended: {}\n", node, data);
      break;
    }
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  return exit_code;
}

}  // namespace

Runner SetupDebug(CLI::App& cmd) {
  struct Options {
    std::string node;
    std::string level = "debug";
    absl::Duration span = absl::Minutes(5);
  };
  auto o = std::make_shared<Options>();
  cmd.add_option("NODE", o->node, "The node")->required();
  cmd.add_option("--level", o->level, "Lines at this level and above: debug, info, warning, error")
      ->default_str("debug")
      ->check(CLI::Validator(
          [](std::string& l) -> std::string {
            absl::StatusOr<LogLevel> v = ParseLogLevel(l);
            return v.ok() ? "" : std::string(v.status().message());
          },
          "LEVEL"));
  cli::AddDuration(cmd, "--for", &o->span, "Stream for this long (the agent stops by itself then)")
      ->default_str("5m");
  return [o, &cmd](const Globals& g) {
    if (o->span <= absl::ZeroDuration()) return cli::UsageError(cmd, "--for must be more than 0s");
    return WithClient(g, [&](Client& client) { return Stream(client, g, o->node, o->level, o->span); });
  };
}

}  // namespace steward::ctl
