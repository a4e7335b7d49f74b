// The ed25519 key pair the envelope fuzzer trusts and its seed generator signs with:
// derived from a constant seed, so the key id is the same in every run and signed
// seeds stay valid.
#pragma once

#include <sodium.h>

#include <cstdlib>
#include <string>

#include "common/signing.h"

namespace steward::fuzz {

inline const signing::KeyPair& FixedKeyPair() {
  static const signing::KeyPair pair = [] {
    if (sodium_init() < 0) std::abort();
    unsigned char seed[crypto_sign_SEEDBYTES];
    for (unsigned i = 0; i < sizeof(seed); ++i) seed[i] = static_cast<unsigned char>(0x5a ^ i);
    signing::KeyPair p;
    p.public_key.resize(crypto_sign_PUBLICKEYBYTES);
    p.secret_key.resize(crypto_sign_SECRETKEYBYTES);
    if (crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(p.public_key.data()),
                                 reinterpret_cast<unsigned char*>(p.secret_key.data()),
                                 seed) != 0) {
      std::abort();
    }
    return p;
  }();
  return pair;
}

}  // namespace steward::fuzz
