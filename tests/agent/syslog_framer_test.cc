// Unit tests for agent/syslog/framer.h without sockets: newline and RFC 6587
// octet-counting frames, the framing decided once per stream, frames split across
// reads, the size cut and its truncated mark, Finish and Reset.
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
  Framer framer(1024, Framing::kLines);
  CHECK(FrameAll(framer, {"a\r\n\nb\nc"}) == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("Framer reads octet counts, and digits without a count as a line", "[syslog]") {
  Framer framer(1024, Framing::kDetect);
  CHECK(FrameAll(framer, {"5 a\nb c", "2 xy", "2024-01-01 x\n"}) ==
        std::vector<std::string>{"a\nb c", "xy", "2024-01-01 x"});
  Framer lines(1024, Framing::kLines);
  CHECK(FrameAll(lines, {"5 hello\n"}) == std::vector<std::string>{"5 hello"});
}

TEST_CASE("Framer decides the framing at the first frame, once", "[syslog]") {
  // Newline framed: a later line that starts with digits and a space is text.
  Framer lines(1024, Framing::kDetect);
  CHECK(FrameAll(lines, {"<13>a\n300 apples\n", "<13>b\n12 c\n"}) ==
        std::vector<std::string>{"<13>a", "300 apples", "<13>b", "12 c"});
  // Octet counted (empty lines before the first frame do not decide): newlines are data.
  Framer counted(1024, Framing::kDetect);
  CHECK(FrameAll(counted, {"\n9 <13>a\n300", "5 <13>b"}) == std::vector<std::string>{"<13>a\n300", "<13>b"});
  // Reset starts a new stream, undecided again.
  counted.Reset();
  CHECK(FrameAll(counted, {"<13>c\n3 xyz\n"}) == std::vector<std::string>{"<13>c", "3 xyz"});
}

TEST_CASE("Framer joins frames split across reads, byte by byte", "[syslog]") {
  const std::string stream = "11 <13>1 hello<14>plain\n3 end";
  std::vector<std::string> bytes;
  for (const char c : stream) bytes.emplace_back(1, c);
  Framer framer(1024, Framing::kDetect);
  CHECK(FrameAll(framer, bytes) == std::vector<std::string>{"<13>1 hello", "<14>plain", "end"});
}

TEST_CASE("Framer cuts long frames, skips their rest and marks them truncated", "[syslog]") {
  Framer lines(4, Framing::kLines);
  CHECK(FrameAll(lines, {"abcdefgh\nij\n"}) == std::vector<std::string>{"abcd", "ij"});
  Framer counted(4, Framing::kDetect);
  CHECK(FrameAll(counted, {"10 0123456789", "1 k"}) == std::vector<std::string>{"0123", "k"});
  // truncated() describes the frame last returned.
  Framer framer(4, Framing::kLines);
  absl::string_view in = "abcd\nabcde\nab";
  std::string frame;
  REQUIRE(framer.Next(in, &frame));
  CHECK_FALSE(framer.truncated());  // exactly the limit
  REQUIRE(framer.Next(in, &frame));
  CHECK(frame == "abcd");
  CHECK(framer.truncated());
  CHECK_FALSE(framer.Next(in, &frame));
  REQUIRE(framer.Finish(&frame));
  CHECK(frame == "ab");
  CHECK_FALSE(framer.truncated());
}

TEST_CASE("Framer AtBoundary and Reset", "[syslog]") {
  Framer framer(1024, Framing::kLines);
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
