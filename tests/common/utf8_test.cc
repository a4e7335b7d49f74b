// Unit tests for common/utf8.h: well-formed sequences (RFC 3629), sanitizing and cutting.
#include "common/utf8.h"

#include <catch2/catch.hpp>
#include <string>

namespace steward {
namespace {

TEST_CASE("Utf8SequenceLength accepts RFC 3629 sequences only", "[utf8]") {
  CHECK(Utf8SequenceLength("a", 0) == 1);
  CHECK(Utf8SequenceLength("\xC3\xA9", 0) == 2);          // é
  CHECK(Utf8SequenceLength("\xE2\x82\xAC", 0) == 3);      // €
  CHECK(Utf8SequenceLength("\xF0\x9F\x98\x80", 0) == 4);  // 😀
  CHECK(Utf8SequenceLength("\xC0\xAF", 0) == 0);          // overlong '/'
  CHECK(Utf8SequenceLength("\xE0\x80\xAF", 0) == 0);      // overlong
  CHECK(Utf8SequenceLength("\xED\xA0\x80", 0) == 0);      // surrogate U+D800
  CHECK(Utf8SequenceLength("\xF4\x90\x80\x80", 0) == 0);  // above U+10FFFF
  CHECK(Utf8SequenceLength("\xE2\x82", 0) == 0);          // cut short
  CHECK(Utf8SequenceLength("\x80", 0) == 0);              // a lone continuation byte
}

TEST_CASE("SanitizeUtf8 replaces each bad byte with U+FFFD", "[utf8]") {
  CHECK(SanitizeUtf8("caf\xC3\xA9") == "caf\xC3\xA9");
  CHECK(SanitizeUtf8("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
  CHECK(SanitizeUtf8("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("Utf8CutPoint never splits a character", "[utf8]") {
  const std::string euros = "\xE2\x82\xAC\xE2\x82\xAC";  // two 3-byte characters
  CHECK(Utf8CutPoint(euros, 4) == 3);
  CHECK(Utf8CutPoint(euros, 3) == 3);
  CHECK(Utf8CutPoint(euros, 2) == 0);
  CHECK(Utf8CutPoint("abcdef", 4) == 4);
  CHECK(Utf8CutPoint("\x80\x80\x80\x80\x80", 4) == 4);  // not UTF-8: the byte limit
}

}  // namespace
}  // namespace steward
