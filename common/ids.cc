// ULID-layout id generator: monotonic within a millisecond, random bits from libsodium.
#include "common/ids.h"

#include <sodium.h>

#include <array>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace steward {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int DecodeChar(char c) {
  for (int i = 0; i < 32; ++i) {
    if (kAlphabet[i] == c) return i;
  }
  return -1;
}

struct Generator {
  absl::Mutex mu;
  int64_t last_ms ABSL_GUARDED_BY(mu) = -1;
  std::array<uint8_t, 10> random ABSL_GUARDED_BY(mu){};
};

Generator& TheGenerator() {
  static Generator* g = [] {
    if (sodium_init() < 0) abort();  // Broken invariant: no entropy source.
    return new Generator();
  }();
  return *g;
}

}  // namespace

std::string NewId() {
  Generator& g = TheGenerator();
  std::array<uint8_t, 16> bytes{};
  {
    absl::MutexLock lock(&g.mu);
    int64_t now = absl::ToUnixMillis(absl::Now());
    if (now <= g.last_ms) {
      now = g.last_ms;  // Same (or earlier) millisecond: count up the random part.
      for (int i = 9; i >= 0; --i) {
        if (++g.random[i] != 0) break;
      }
    } else {
      randombytes_buf(g.random.data(), g.random.size());
      g.random[0] &= 0x7f;  // Leave headroom so incrementing never wraps in practice.
    }
    g.last_ms = now;
    for (int i = 0; i < 6; ++i) bytes[i] = static_cast<uint8_t>(now >> (8 * (5 - i)));
    for (int i = 0; i < 10; ++i) bytes[6 + i] = g.random[i];
  }
  // 128 bits -> 26 base32 chars, most significant first; the first char carries
  // the top 3 bits. Character i takes bits [130 - 5(i+1), 130 - 5i) of the
  // value padded with two zero bits at the top.
  std::string out(26, '0');
  for (int i = 0; i < 26; ++i) {
    int value = 0;
    for (int k = 0; k < 5; ++k) {
      const int bit = 5 * i + k - 2;  // index from the most significant bit
      int b = 0;
      if (bit >= 0) b = (bytes[static_cast<size_t>(bit / 8)] >> (7 - bit % 8)) & 1;
      value = (value << 1) | b;
    }
    out[static_cast<size_t>(i)] = kAlphabet[value];
  }
  return out;
}

bool IsValidId(absl::string_view id) {
  if (id.size() != 26) return false;
  if (DecodeChar(id[0]) < 0 || DecodeChar(id[0]) > 7) return false;
  for (char c : id) {
    if (DecodeChar(c) < 0) return false;
  }
  return true;
}

int64_t IdUnixMillis(absl::string_view id) {
  int64_t ms = 0;
  // The first 10 chars carry 50 bits: the two zero padding bits, then the 48-bit time.
  for (int i = 0; i < 10; ++i) ms = (ms << 5) | DecodeChar(id[i]);
  return ms;
}

}  // namespace steward
