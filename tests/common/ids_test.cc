// Tests for common/ids.h: shape (26 Crockford base32 chars, first char <= '7'),
// validation, uniqueness across threads, monotonic order within one thread, and the
// creation time encoded in an id.
#include "common/ids.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace steward {
namespace {

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

TEST_CASE("NewId has 26 Crockford base32 characters and validates", "[ids]") {
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewId();
    INFO(id);
    REQUIRE(id.size() == 26);
    for (char c : id) REQUIRE(std::string(kCrockford).find(c) != std::string::npos);
    REQUIRE(id[0] <= '7');
    REQUIRE(IsValidId(id));
  }
}

TEST_CASE("IsValidId rejects wrong lengths", "[ids]") {
  const std::string id = NewId();
  CHECK_FALSE(IsValidId(""));
  CHECK_FALSE(IsValidId(id.substr(0, 25)));
  CHECK_FALSE(IsValidId(id + "0"));
  CHECK_FALSE(IsValidId(std::string(27, '0')));
  CHECK(IsValidId(std::string(26, '0')));
  CHECK(IsValidId("7" + std::string(25, 'Z')));
}

TEST_CASE("IsValidId rejects characters outside the alphabet", "[ids]") {
  const std::string id = NewId();
  // Excluded letters, lowercase (valid letters and excluded ones), punctuation.
  for (char bad : std::string("ILOU") + "abcxyz" + "ilou" + "-_ .*>\t") {
    for (size_t pos : {size_t{1}, size_t{12}, size_t{25}}) {
      std::string s = id;
      s[pos] = bad;
      INFO("char '" << bad << "' at " << pos << " in " << s);
      CHECK_FALSE(IsValidId(s));
    }
  }
  std::string with_nul = id;
  with_nul[5] = '\0';
  CHECK_FALSE(IsValidId(with_nul));
}

TEST_CASE("IsValidId rejects a first character above '7'", "[ids]") {
  const std::string id = NewId();
  for (char first : std::string("89ABCDEFGHJKMNPQRSTVWXYZ")) {
    std::string s = id;
    s[0] = first;
    INFO(s);
    CHECK_FALSE(IsValidId(s));
  }
  for (char first : std::string("01234567")) {
    std::string s = id;
    s[0] = first;
    INFO(s);
    CHECK(IsValidId(s));
  }
}

TEST_CASE("100k ids from 4 threads are all unique", "[ids]") {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25000;
  std::vector<std::vector<std::string>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&made, t] {
      made[static_cast<size_t>(t)].reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) made[static_cast<size_t>(t)].push_back(NewId());
    });
  }
  for (std::thread& th : threads) th.join();
  absl::flat_hash_set<std::string> all;
  for (const auto& v : made) {
    for (const std::string& id : v) {
      REQUIRE(IsValidId(id));
      all.insert(id);
    }
  }
  CHECK(all.size() == size_t{kThreads} * kPerThread);
}

TEST_CASE("ids made in one thread are strictly increasing", "[ids]") {
  std::string prev = NewId();
  for (int i = 0; i < 100000; ++i) {
    std::string next = NewId();
    if (!(prev < next)) {
      FAIL("not increasing: " << prev << " then " << next);
    }
    prev = std::move(next);
  }
}

TEST_CASE("ids made by several threads are increasing per thread", "[ids]") {
  constexpr int kThreads = 4;
  std::vector<int> violations(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&violations, t] {
      std::string prev = NewId();
      for (int i = 0; i < 20000; ++i) {
        std::string next = NewId();
        if (!(prev < next)) ++violations[static_cast<size_t>(t)];
        prev = std::move(next);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int v : violations) CHECK(v == 0);
}

// Decodes the first 10 characters as one base32 number: in the ULID layout that is the
// Unix millisecond timestamp (48 bits under two zero padding bits).
int64_t DecodeTimePrefix(const std::string& id) {
  int64_t v = 0;
  for (size_t i = 0; i < 10; ++i) {
    v = (v << 5) | static_cast<int64_t>(std::string(kCrockford).find(id[i]));
  }
  return v;
}

TEST_CASE("NewId encodes the creation time in its first 10 characters", "[ids]") {
  const int64_t before = absl::ToUnixMillis(absl::Now());
  const std::string id = NewId();
  const int64_t after = absl::ToUnixMillis(absl::Now());
  const int64_t ms = DecodeTimePrefix(id);
  INFO("id " << id << " carries " << ms << "; made between " << before << " and " << after);
  CHECK(ms >= before);
  CHECK(ms <= after);
}

TEST_CASE("IdUnixMillis returns the creation time", "[ids]") {
  const int64_t before = absl::ToUnixMillis(absl::Now());
  const std::string id = NewId();
  const int64_t after = absl::ToUnixMillis(absl::Now());
  const int64_t ms = IdUnixMillis(id);
  INFO("id " << id << " decodes to " << ms << "; made between " << before << " and " << after);
  CHECK(ms >= before - 5);
  CHECK(ms <= after + 5);
  CHECK(std::llabs(ms - absl::ToUnixMillis(absl::Now())) < 50);
}

TEST_CASE("IdUnixMillis decodes a known id", "[ids]") {
  // ULID layout: the first 10 characters are the 48-bit millisecond timestamp in
  // base32 (its top two bits are padding), so "0000000001" is 1 ms and "000000000Z" 31 ms.
  CHECK(IdUnixMillis("0000000001" + std::string(16, '0')) == 1);
  CHECK(IdUnixMillis("000000000Z" + std::string(16, 'Z')) == 31);
  CHECK(IdUnixMillis("0000000010" + std::string(16, '0')) == 32);
  // The largest timestamp: 2^48 - 1.
  CHECK(IdUnixMillis("7ZZZZZZZZZ" + std::string(16, '0')) == (int64_t{1} << 48) - 1);
}

TEST_CASE("IdUnixMillis orders like the ids", "[ids]") {
  const std::string a = NewId();
  const absl::Time deadline = absl::Now() + absl::Seconds(1);
  std::string b = NewId();
  // Wait (bounded) for the clock to move at least 3 ms so the timestamps differ.
  while (IdUnixMillis(b) < IdUnixMillis(a) + 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
    b = NewId();
  }
  CHECK(a < b);
  CHECK(IdUnixMillis(a) < IdUnixMillis(b));
}

}  // namespace
}  // namespace steward
