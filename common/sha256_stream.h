// Sha256Stream: SHA-256 of bytes given a piece at a time (OpenSSL's EVP), for a digest
// of something that arrives in parts (a file copied chunk by chunk) or is read in parts.
//
//   Sha256Stream h;
//   h.Update(part1);
//   h.Update(part2);
//   std::string digest = h.Finish();  // 32 raw bytes; the stream starts over
#pragma once

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

struct evp_md_ctx_st;

namespace steward::signing {

class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(Sha256Stream&&) noexcept;
  Sha256Stream& operator=(Sha256Stream&&) noexcept;

  void Update(absl::string_view bytes);
  // The digest of everything given since the start (or the last Finish); empty when
  // OpenSSL could not make one (it could not allocate), which matches no digest.
  std::string Finish();

 private:
  struct Free {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, Free> ctx_;
};

}  // namespace steward::signing
