#include "station/http/tokens.h"

#include <sodium.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/protocol.h"
#include "station/ledger/surfaces.h"
#include "station/operations.h"
#include "subjects/subject.h"

namespace steward::station::http {

std::string TokenHash(absl::string_view secret) {
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
  return std::string(reinterpret_cast<const char*>(out), sizeof(out));
}

Tokens::Tokens(Core& core, Rpc& rpc) : core_(core), rpc_(rpc) {
  rpc.Handle<proto::TokenRequest>(kStationToken, [this](const Call& c, proto::TokenRequest r) {
    Handle(c, std::move(r));
  });
}

absl::Status Tokens::Load() {
  absl::StatusOr<std::vector<std::pair<std::string, proto::TokenInfo>>> rows = ledger::Tokens(core_.store());
  if (!rows.ok()) return rows.status();
  absl::MutexLock lock(&mu_);
  for (auto& [hash, info] : *rows) by_hash_[hash] = std::move(info);
  return absl::OkStatus();
}

absl::StatusOr<proto::TokenInfo> Tokens::Check(absl::string_view secret) const {
  const std::string hash = TokenHash(secret);
  absl::MutexLock lock(&mu_);
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return absl::UnauthenticatedError("unknown or revoked token");
  const proto::TokenInfo& t = it->second;
  if (t.expires_unix_ms() != 0 && NowUnixMillis() >= t.expires_unix_ms()) {
    return absl::UnauthenticatedError(absl::StrCat("token ", t.id(), " of ", t.name(), " expired"));
  }
  return t;
}

size_t Tokens::size() const {
  absl::MutexLock lock(&mu_);
  return by_hash_.size();
}

void Tokens::Handle(const Call& call, proto::TokenRequest req) {
  if (call.via != "cli") return rpc_.Reject(call, "tokens are managed with stewardctl only");
  switch (req.action()) {
    case proto::TokenRequest::CREATE:
      return Create(call, req);
    case proto::TokenRequest::REVOKE:
      return Revoke(call, req);
    case proto::TokenRequest::LIST: {
      proto::TokenReply out;
      {
        absl::MutexLock lock(&mu_);
        for (const auto& [hash, info] : by_hash_) *out.add_tokens() = info;
      }
      std::sort(out.mutable_tokens()->begin(), out.mutable_tokens()->end(),
                [](const proto::TokenInfo& a, const proto::TokenInfo& b) {
                  return std::make_pair(a.name(), a.created_unix_ms()) < std::make_pair(b.name(), b.created_unix_ms());
                });
      return rpc_.Ok(call, out);
    }
    default:
      return rpc_.Reject(call, "token: unknown action");
  }
}

void Tokens::Create(const Call& call, const proto::TokenRequest& req) {
  if (absl::Status st = subjects::ValidateToken(req.name()); !st.ok()) {
    return rpc_.Reject(call, absl::StrCat("token name: ", st.message()));
  }
  if (req.ttl_ms() < 0) return rpc_.Reject(call, "token ttl must not be negative");
  unsigned char raw[32];
  randombytes_buf(raw, sizeof(raw));
  std::string secret = kTokenPrefix;
  absl::StrAppend(&secret, absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(raw), sizeof(raw))));
  const std::string hash = TokenHash(secret);
  proto::TokenInfo info;
  info.set_id(absl::StrCat("t", absl::BytesToHexString(hash).substr(0, 10)));
  info.set_name(req.name());
  info.set_read_only(req.read_only());
  info.set_created_unix_ms(NowUnixMillis());
  if (req.ttl_ms() > 0) info.set_expires_unix_ms(info.created_unix_ms() + req.ttl_ms());
  info.set_created_by(call.op());
  core_.store().Write(ledger::PutToken(hash, info));
  RecordAction(core_, call, "token create", req.name(),
               absl::StrCat(info.id(), req.read_only() ? " read-only" : " read-write"));
  core_.AfterWrites([this, call, hash, info, secret](absl::Status st) {
    if (!st.ok()) return rpc_.Error(call, absl::StrCat("ledger write failed: ", st.message()));
    {
      absl::MutexLock lock(&mu_);
      by_hash_[hash] = info;
    }
    STEWARD_LOG_INFO("http token {} for {} created by {}", info.id(), info.name(), call.op());
    proto::TokenReply out;
    *out.add_tokens() = info;
    out.set_secret(secret);
    rpc_.Ok(call, out);
  });
}

void Tokens::Revoke(const Call& call, const proto::TokenRequest& req) {
  proto::TokenReply out;
  {
    // Gone from memory at once: a revoked token never works again, even before the
    // ledger has it (a failed write is answered as an error; the row stays, and the
    // token works again after a restart until it is revoked again).
    absl::MutexLock lock(&mu_);
    for (auto it = by_hash_.begin(); it != by_hash_.end();) {
      if (it->second.id() == req.name() || it->second.name() == req.name()) {
        *out.add_tokens() = it->second;
        core_.store().Write(ledger::DeleteToken(it->second.id()));
        by_hash_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  if (out.tokens_size() == 0) return rpc_.Reject(call, absl::StrCat("no token with id or name ", req.name()));
  RecordAction(core_, call, "token revoke", req.name(), absl::StrCat(out.tokens_size(), " token(s)"));
  core_.AfterWrites([this, call, out](absl::Status st) {
    if (!st.ok()) return rpc_.Error(call, absl::StrCat("ledger write failed: ", st.message()));
    rpc_.Ok(call, out);
  });
}

}  // namespace steward::station::http
