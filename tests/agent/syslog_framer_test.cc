// Unit tests for agent/syslog/framer.h without sockets: newline and RFC 6587
// octet-counting frames, frames split across reads, the size cut, Finish and Reset.
#include "agent/syslog/framer.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace steward::agent::syslog {
namespace {

// Every frame of `chunks` fed in order, then the one Finish gives, if any.
std::vector<std::string> FrameAll(Framer& framer, const std::vector<std::string>& chunks) {
  std::vector<std::string> out;
  std::string frame;
  for (const std::string& chunk : chunks) {
    absl::string_view in = chunk;
    while (framer.Next(in, &frame)) out.push_back(frame);
    CHECK(in.empty());
  }
  if (framer.Finish(&frame)) out.push_back(frame);
  return out;
}

TEST_CASE("Framer splits lines and drops a trailing CR and empty lines", "[syslog]") {
  Framer framer(1024, /*octet_counting=*/false);
  CHECK(FrameAll(framer, {"a\r\n\nb\nc"}) == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("Framer reads octet counts, and digits without a count as a line", "[syslog]") {
  Framer framer(1024, /*octet_counting=*/true);
  CHECK(FrameAll(framer, {"5 a\nb c", "2 xy", "2024-01-01 x\n"}) ==
        std::vector<std::string>{"a\nb c", "xy", "2024-01-01 x"});
  Framer lines(1024, /*octet_counting=*/false);
  CHECK(FrameAll(lines, {"5 hello\n"}) == std::vector<std::string>{"5 hello"});
}

TEST_CASE("Framer joins frames split across reads, byte by byte", "[syslog]") {
  const std::string stream = "11 <13>1 hello<14>plain\n3 end";
  std::vector<std::string> bytes;
  for (const char c : stream) bytes.emplace_back(1, c);
  Framer framer(1024, /*octet_counting=*/true);
  CHECK(FrameAll(framer, bytes) == std::vector<std::string>{"<13>1 hello", "<14>plain", "end"});
}

TEST_CASE("Framer cuts long frames and skips their rest", "[syslog]") {
  Framer framer(4, /*octet_counting=*/true);
  CHECK(FrameAll(framer, {"abcdefgh\nij\n", "10 0123456789", "1 k"}) ==
        std::vector<std::string>{"abcd", "ij", "0123", "k"});
}

TEST_CASE("Framer AtBoundary and Reset", "[syslog]") {
  Framer framer(1024, /*octet_counting=*/false);
  std::string frame;
  absl::string_view in = "partial";
  CHECK_FALSE(framer.Next(in, &frame));
  CHECK_FALSE(framer.AtBoundary());
  framer.Reset();
  CHECK(framer.AtBoundary());
  CHECK_FALSE(framer.Finish(&frame));
}

}  // namespace
}  // namespace steward::agent::syslog
