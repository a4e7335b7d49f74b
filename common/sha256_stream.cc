#include "common/sha256_stream.h"

#include <openssl/evp.h>
#include <openssl/sha.h>


namespace steward::signing {

void Sha256Stream::Free::operator()(evp_md_ctx_st* ctx) const { EVP_MD_CTX_free(ctx); }

Sha256Stream::Sha256Stream() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ != nullptr && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) ctx_.reset();
}

Sha256Stream::~Sha256Stream() = default;
Sha256Stream::Sha256Stream(Sha256Stream&&) noexcept = default;
Sha256Stream& Sha256Stream::operator=(Sha256Stream&&) noexcept = default;

void Sha256Stream::Update(absl::string_view bytes) {
  if (ctx_ != nullptr) EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size());
}

std::string Sha256Stream::Finish() {
  if (ctx_ == nullptr) return "";
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  if (EVP_DigestFinal_ex(ctx_.get(), reinterpret_cast<unsigned char*>(digest.data()), nullptr) != 1) digest.clear();
  if (EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) ctx_.reset();
  return digest;
}

}  // namespace steward::signing
