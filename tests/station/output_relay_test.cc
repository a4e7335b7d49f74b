// OutputRelay: the station's buffer of running commands' output chunks and their
// followers (issue 13 part 3).
#include "station/output_relay.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/time/clock.h"

namespace steward::station {
namespace {

proto::OutputChunk Chunk(const std::string& id, uint64_t seq, const std::string& out) {
  proto::OutputChunk c;
  c.set_command_id(id);
  c.set_seq(seq);
  c.set_stdout(out);
  return c;
}

std::vector<uint64_t> Seqs(const proto::OutputReply& r) {
  std::vector<uint64_t> out;
  for (const proto::OutputChunk& c : r.chunks()) out.push_back(c.seq());
  return out;
}

TEST_CASE("the relay holds chunks by number, once, and hands out what came after one", "[station][stream]") {
  OutputRelay relay;
  const absl::Time now = absl::Now();
  std::vector<std::string> to;
  CHECK(relay.Add(Chunk("a", 1, "one\n"), now, &to));
  CHECK(relay.Add(Chunk("a", 3, "three\n"), now, &to));  // overtook 2
  CHECK(relay.Add(Chunk("a", 2, "two\n"), now, &to));
  CHECK_FALSE(relay.Add(Chunk("a", 2, "two\n"), now, &to));  // a duplicate
  CHECK(to.empty());                                           // nobody follows
  proto::OutputReply r;
  REQUIRE(relay.Read("a", 0, "", 1 << 20, now, r).ok());
  CHECK(Seqs(r) == std::vector<uint64_t>{1, 2, 3});
  CHECK(r.first_seq() == 1);
  CHECK(r.last_seq() == 3);
  CHECK_FALSE(r.more());
  r.Clear();
  REQUIRE(relay.Read("a", 1, "", 5, now, r).ok());  // room for one chunk of output
  CHECK(Seqs(r) == std::vector<uint64_t>{2});
  CHECK(r.more());
  relay.Ended("a");
  CHECK(relay.held_bytes() == 0);
  r.Clear();
  REQUIRE(relay.Read("a", 0, "", 1 << 20, now, r).ok());
  CHECK(r.chunks().empty());
}

TEST_CASE("followers get new chunks until their lease runs out, and asking again renews it", "[station][stream]") {
  OutputRelay relay(OutputRelay::Limits{.lease = absl::Seconds(10)});
  const absl::Time t0 = absl::Now();
  proto::OutputReply r;
  REQUIRE(relay.Read("a", 0, "_INBOX.x.o", 1 << 20, t0, r).ok());  // before any output
  CHECK(r.lease_ms() == 10000);
  std::vector<std::string> to;
  REQUIRE(relay.Add(Chunk("a", 1, "x"), t0 + absl::Seconds(5), &to));
  CHECK(to == std::vector<std::string>{"_INBOX.x.o"});
  REQUIRE(relay.Read("a", 1, "_INBOX.x.o", 1 << 20, t0 + absl::Seconds(8), r).ok());  // renewed
  to.clear();
  REQUIRE(relay.Add(Chunk("a", 2, "y"), t0 + absl::Seconds(15), &to));
  CHECK(to.size() == 1);  // once, however often it asked
  to.clear();
  REQUIRE(relay.Add(Chunk("a", 3, "z"), t0 + absl::Seconds(19), &to));
  CHECK(to.empty());  // the lease ran out at 18 s

  OutputRelay few(OutputRelay::Limits{.followers = 1});
  REQUIRE(few.Read("b", 0, "_INBOX.one", 1 << 20, t0, r).ok());
  CHECK(absl::IsResourceExhausted(few.Read("b", 0, "_INBOX.two", 1 << 20, t0, r)));
}

TEST_CASE("a full buffer drops its oldest chunks, and says where what it holds begins", "[station][stream]") {
  OutputRelay relay(OutputRelay::Limits{.command_bytes = 10, .total_bytes = 15});
  const absl::Time now = absl::Now();
  std::vector<std::string> to;
  for (uint64_t i = 1; i <= 5; ++i) REQUIRE(relay.Add(Chunk("a", i, "1234"), now, &to));
  proto::OutputReply r;
  REQUIRE(relay.Read("a", 0, "", 1 << 20, now, r).ok());
  CHECK(Seqs(r) == std::vector<uint64_t>{4, 5});  // 8 bytes of at most 10
  CHECK(r.first_seq() == 4);
  CHECK(relay.dropped() == 3);
  CHECK_FALSE(relay.Add(Chunk("a", 1, "1234"), now, &to));  // older than all it holds
  // Across commands: the biggest buffer gives way.
  REQUIRE(relay.Add(Chunk("a", 6, "12"), now, &to));      // a: 10 bytes
  REQUIRE(relay.Add(Chunk("b", 1, "123456"), now, &to));  // 16 > 15: a's oldest goes
  CHECK(relay.held_bytes() == 12);
  r.Clear();
  REQUIRE(relay.Read("a", 0, "", 1 << 20, now, r).ok());
  CHECK(Seqs(r) == std::vector<uint64_t>{5, 6});
  r.Clear();
  REQUIRE(relay.Read("b", 0, "", 1 << 20, now, r).ok());
  CHECK(Seqs(r) == std::vector<uint64_t>{1});
}

}  // namespace
}  // namespace steward::station
