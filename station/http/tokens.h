// Tokens: the operators' HTTP tokens. `stewardctl token create --name alice
// [--read-only] [--ttl 90d]` makes one (through the station's "token" cli method, so a
// station with operator keys takes it only from a signed operator); the secret is
// shown once and the station keeps only its SHA-256, in the ledger (http_tokens) and
// in memory for Check. `token list` lists them, `token revoke ID|NAME` removes them;
// every change is an operator action in the audit.
//
// A token acts for its operator: HTTP writes are recorded as "<name> (http token
// <id>)". A read-only token reads only.
//
// Thread-safe.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "station/core.h"
#include "station/rpc.h"

namespace steward::station::http {

// Tokens are "stw_" and 43 base64url characters (256 random bits).
inline constexpr char kTokenPrefix[] = "stw_";

class Tokens {
 public:
  Tokens(Core& core, Rpc& rpc);
  // Load reads the tokens from the ledger (at start).
  absl::Status Load() ABSL_LOCKS_EXCLUDED(mu_);
  // Check returns the token whose secret is `secret`: Unauthenticated when there is
  // none, or it expired.
  absl::StatusOr<proto::TokenInfo> Check(absl::string_view secret) const ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Handle(const Call& call, proto::TokenRequest req) ABSL_LOCKS_EXCLUDED(mu_);
  void Create(const Call& call, const proto::TokenRequest& req) ABSL_LOCKS_EXCLUDED(mu_);
  void Revoke(const Call& call, const proto::TokenRequest& req) ABSL_LOCKS_EXCLUDED(mu_);

  Core& core_;
  Rpc& rpc_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, proto::TokenInfo> by_hash_ ABSL_GUARDED_BY(mu_);
};

// The SHA-256 of `secret`, raw.
std::string TokenHash(absl::string_view secret);

}  // namespace steward::station::http
