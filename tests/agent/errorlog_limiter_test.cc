// Tests for agent/errorlog_limiter.h: a flood of error-kernel decisions becomes a
// bounded number of errorlog events, and every decision is sent or counted in one.
#include "agent/errorlog_limiter.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace steward::agent {
namespace {

proto::ErrorLog Log(const std::string& process, const std::string& error) {
  proto::ErrorLog log;
  log.set_process(process);
  log.set_severity("error");
  log.set_error(error);
  log.set_decision("continue");
  return log;
}

// Each event stands for itself and for the decisions it says it suppressed.
uint64_t Accounted(const std::vector<proto::ErrorLog>& sent) {
  uint64_t n = 0;
  for (const auto& log : sent) n += 1 + log.suppressed();
  return n;
}

TEST_CASE("errorlog limiter: a burst goes out, a flood is counted and summarised per kind",
          "[errorlog][limiter]") {
  ErrorLogLimiter limiter(/*burst=*/3, absl::Minutes(1));
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  std::vector<proto::ErrorLog> sent;
  auto offer = [&](proto::ErrorLog log, absl::Time now) {
    for (auto& out : limiter.Offer(std::move(log), now)) sent.push_back(std::move(out));
  };

  for (int i = 0; i < 3; ++i) offer(Log("a.command.x.y", "bad envelope"), t0);
  REQUIRE(sent.size() == 3);
  for (int i = 0; i < 1000; ++i) offer(Log("a.command.x.y", "bad envelope"), t0 + absl::Seconds(1));
  for (int i = 0; i < 7; ++i) offer(Log("a.command.z.y", "unknown method"), t0 + absl::Seconds(2));
  CHECK(sent.size() == 3);                                  // nothing more in the window
  CHECK(limiter.Flush(t0 + absl::Seconds(59)).empty());     // the window has not turned

  for (auto& out : limiter.Flush(t0 + absl::Minutes(1))) sent.push_back(std::move(out));
  REQUIRE(sent.size() == 5);
  CHECK(sent[3].suppressed() + sent[4].suppressed() == 1005);
  for (size_t i = 3; i < 5; ++i) {
    CHECK(absl::StrContains(sent[i].error(), "more like it since"));
  }
  CHECK(Accounted(sent) == 1010);
  // The summaries count against the new window's burst: one more goes out, then counting.
  offer(Log("b", "x"), t0 + absl::Minutes(1));
  offer(Log("b", "x"), t0 + absl::Minutes(1));
  CHECK(sent.size() == 6);
  // Offer itself turns the window: the counted one comes out as a summary first.
  offer(Log("c", "y"), t0 + absl::Minutes(3));
  REQUIRE(sent.size() == 8);
  CHECK(sent[6].suppressed() == 0);  // one counted: it goes out as it was
  CHECK(sent[6].error() == "x");
  CHECK(sent[7].error() == "y");
  CHECK(Accounted(sent) == 1013);
}

TEST_CASE("errorlog limiter: errors that differ in their numbers are one kind, and kinds are bounded",
          "[errorlog][limiter]") {
  ErrorLogLimiter limiter(/*burst=*/3, absl::Minutes(1));
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  std::vector<proto::ErrorLog> sent;
  auto offer = [&](proto::ErrorLog log, absl::Time now) {
    for (auto& out : limiter.Offer(std::move(log), now)) sent.push_back(std::move(out));
  };
  for (int i = 0; i < 3; ++i) offer(Log("d", "warm-up"), t0);
  // A slow consumer reports how many were dropped so far: each text differs.
  for (int i = 1; i <= 500; ++i) {
    offer(Log("d", absl::StrCat("Slow Consumer, messages dropped (", i * 17, " messages dropped so far)")), t0);
  }
  // Garbage of many kinds (words, not numbers, differ).
  const std::string words = "abcdefghijklmnopqrstuvwxyz";
  for (char w : words) offer(Log("d", std::string("bad field ") + std::string(3, w)), t0);
  CHECK(sent.size() == 3);
  for (auto& out : limiter.Flush(t0 + absl::Minutes(1))) sent.push_back(std::move(out));
  // One summary of the slow consumer, two kinds of garbage, and one for the other kinds.
  REQUIRE(sent.size() == 3 + 4);
  int slow = 0, other = 0;
  for (size_t i = 3; i < sent.size(); ++i) {
    if (absl::StrContains(sent[i].error(), "Slow Consumer")) {
      ++slow;
      CHECK(absl::StrContains(sent[i].error(), "8500 messages dropped so far"));  // the last one's text
      CHECK(sent[i].suppressed() == 499);
    }
    if (absl::StrContains(sent[i].error(), "more errors of other kinds")) {
      ++other;
      CHECK(sent[i].suppressed() == 26 - 2 - 1);
    }
  }
  CHECK(slow == 1);
  CHECK(other == 1);
  CHECK(Accounted(sent) == 3 + 500 + 26);
}

TEST_CASE("errorlog limiter: a quiet node sends every decision as it is", "[errorlog][limiter]") {
  ErrorLogLimiter limiter(/*burst=*/20, absl::Minutes(1));
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  size_t sent = 0;
  for (int i = 0; i < 100; ++i) {
    auto out = limiter.Offer(Log("p", "e"), t0 + absl::Seconds(10 * i));
    for (const auto& log : out) CHECK(log.suppressed() == 0);
    sent += out.size();
  }
  CHECK(sent == 100);
}

}  // namespace
}  // namespace steward::agent
