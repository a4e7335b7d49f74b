// Tests for FitStates (station/station.h): replies carrying command states are made to
// fit one NATS message by capping outputs (small ones stay whole) and, where allowed,
// dropping trailing states.
#include <catch2/catch.hpp>
#include <string>

#include "station/reply_fit.h"

namespace steward::station {
namespace {

using States = google::protobuf::RepeatedPtrField<proto::CommandState>;

proto::CommandState WithOutput(const std::string& id, size_t out, size_t err) {
  proto::CommandState s;
  s.set_id(id);
  s.set_node("ship1");
  s.set_state(steward::proto::STATE_SUCCEEDED);
  s.mutable_command()->add_argv("cat");
  s.mutable_result()->set_stdout(std::string(out, 'o'));
  s.mutable_result()->set_stderr(std::string(err, 'e'));
  return s;
}

size_t Bytes(const States& states) {
  proto::CommandStates m;
  *m.mutable_commands() = states;
  return m.ByteSizeLong();
}

TEST_CASE("states that fit are left alone", "[station][fit]") {
  States states;
  *states.Add() = WithOutput("a", 1000, 10);
  *states.Add() = WithOutput("b", 2000, 0);
  const States before = states;
  CHECK_FALSE(FitStates(&states, 1 << 20, /*may_drop=*/true));
  REQUIRE(states.size() == 2);
  CHECK(states[0].result().stdout().size() == 1000);
  CHECK(states[1].result().stdout().size() == 2000);
  CHECK_FALSE(states[0].result().stdout_truncated());
}

TEST_CASE("large outputs share the room, small ones stay whole", "[station][fit]") {
  constexpr size_t kLimit = (size_t{1} << 20) - 1024;
  States states;
  *states.Add() = WithOutput("a", 700000, 0);
  *states.Add() = WithOutput("b", 500, 300);
  *states.Add() = WithOutput("c", 0, 900000);
  CHECK_FALSE(FitStates(&states, kLimit, /*may_drop=*/false));
  REQUIRE(states.size() == 3);
  CHECK(Bytes(states) <= kLimit);
  CHECK(states[1].result().stdout().size() == 500);  // small: whole
  CHECK(states[1].result().stderr().size() == 300);
  CHECK_FALSE(states[1].result().stdout_truncated());
  CHECK(states[0].result().stdout_truncated());
  CHECK(states[2].result().stderr_truncated());
  // The two large ones got the same cap, and together nearly all the room.
  CHECK(states[0].result().stdout().size() == states[2].result().stderr().size());
  CHECK(states[0].result().stdout().size() > kLimit / 2 - 2000);
}

TEST_CASE("states too large even without outputs lose their commands' arguments, not their results",
          "[station][fit]") {
  constexpr size_t kLimit = (size_t{1} << 20) - 1024;
  States states;
  for (const char* id : {"a", "b"}) {
    proto::CommandState s = WithOutput(id, 600000, 0);
    s.mutable_command()->clear_argv();
    for (int i = 0; i < 600; ++i) s.mutable_command()->add_argv(std::string(1000, 'w'));
    s.mutable_command()->set_method("echo");
    *states.Add() = std::move(s);
  }
  REQUIRE(Bytes(states) > 2 * kLimit);
  CHECK_FALSE(FitStates(&states, kLimit, /*may_drop=*/false));
  REQUIRE(states.size() == 2);
  CHECK(Bytes(states) <= kLimit);
  for (const proto::CommandState& s : states) {
    CHECK(s.command().argv().empty());
    CHECK(s.command().method() == "echo");
    CHECK(s.state() == proto::STATE_SUCCEEDED);
    CHECK(s.result().stdout_truncated());
    CHECK(s.result().stdout().size() > kLimit / 2 - 2000);  // the room went to the outputs
  }
  // Commands that fit keep their arguments.
  States small;
  *small.Add() = WithOutput("c", 900000, 0);
  FitStates(&small, kLimit, /*may_drop=*/false);
  CHECK(small[0].command().argv_size() == 1);
}

TEST_CASE("too many states: trailing ones dropped only when allowed", "[station][fit]") {
  constexpr size_t kLimit = 100000;
  States states;
  for (int i = 0; i < 2000; ++i) {
    proto::CommandState* s = states.Add();
    *s = WithOutput("id" + std::to_string(i), 10, 0);
    s->mutable_command()->add_argv(std::string(100, 'x'));  // 2000 rows: over 200 kB without output
  }
  States copy = states;
  CHECK_FALSE(FitStates(&copy, kLimit, /*may_drop=*/false));
  CHECK(copy.size() == 2000);  // outputs cut to nothing, still too large: left to the caller
  CHECK(FitStates(&states, kLimit, /*may_drop=*/true));
  CHECK(states.size() > 100);
  CHECK(states.size() < 2000);
  CHECK(Bytes(states) <= kLimit);
  CHECK(states[0].id() == "id0");  // the first ones kept (history is newest first)
  for (const proto::CommandState& st : states) {
    CHECK_FALSE(st.result().stdout_truncated());  // rows went, not the outputs of those kept
  }
}

TEST_CASE("thousands of small results over several replies lose no output", "[station][fit]") {
  // A fan-out's wait collects many tiny results: the rows that do not fit go to the
  // next reply whole; none of them has its output cut to make room.
  States states;
  for (int i = 0; i < 10000; ++i) *states.Add() = WithOutput("id" + std::to_string(i), 4, 0);
  const size_t limit = Bytes(states) - 100;
  CHECK(DropToFitWhole(&states, limit));
  CHECK(states.size() < 10000);
  CHECK(states.size() > 8000);  // FitStates's measure is conservative: a few bytes a row
  CHECK(Bytes(states) <= limit);
  for (const proto::CommandState& s : states) {
    CHECK(s.result().stdout() == "oooo");
    CHECK_FALSE(s.result().stdout_truncated());
  }
}

TEST_CASE("one result too large for a reply is kept and cut, not dropped", "[station][fit]") {
  States states;
  *states.Add() = WithOutput("a", 5000, 0);
  *states.Add() = WithOutput("b", 10, 0);
  CHECK(DropToFitWhole(&states, 1000));
  REQUIRE(states.size() == 1);
  CHECK(FitStates(&states, 1000, /*may_drop=*/false) == false);
  CHECK(states[0].result().stdout_truncated());
}

TEST_CASE("a list that does not fit leaves out large reply bodies before it drops rows", "[station][fit]") {
  // History after a pull: the chunks' bodies (896 KiB each) would push every older row out.
  States states;
  for (int i = 0; i < 3; ++i) {
    proto::CommandState& s = *states.Add() = WithOutput("chunk" + std::to_string(i), 10, 0);
    s.mutable_result()->set_payload(std::string(size_t{896} << 10, 'p'));
  }
  for (int i = 0; i < 50; ++i) {
    proto::CommandState& s = *states.Add() = WithOutput("older" + std::to_string(i), 100, 0);
    s.mutable_result()->set_payload("small body");
  }
  const size_t limit = (size_t{1} << 20) - 1024;
  CHECK_FALSE(FitStates(&states, limit, /*may_drop=*/true));
  CHECK(states.size() == 53);  // every row
  CHECK(Bytes(states) <= limit + 1024);
  CHECK(states[0].result().payload().empty());
  CHECK(states[0].result().stdout().size() == 10);
  CHECK(states[52].result().payload() == "small body");  // small bodies stay
  // One state (`show ID`, a pull's chunk) that fits keeps its body.
  States one;
  proto::CommandState& chunk = *one.Add() = WithOutput("chunk", 10, 0);
  chunk.mutable_result()->set_payload(std::string(size_t{896} << 10, 'p'));
  CHECK_FALSE(FitStates(&one, limit, /*may_drop=*/false));
  CHECK(one[0].result().payload().size() == size_t{896} << 10);
}

}  // namespace
}  // namespace steward::station
