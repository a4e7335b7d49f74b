// Message signing with ed25519 (libsodium): key pairs on disk, key ids, and signatures
// over whole envelopes. An envelope's signature covers its deterministic serialization
// with the `signature` field empty, so changing any other field (id, addressee,
// expiry, argv, payload, signer, ...) breaks it.
//
//   STEWARD_ASSIGN_OR_RETURN(signing::KeyPair station, signing::LoadKeyPair("keys/station.key"));
//   STEWARD_RETURN_IF_ERROR(signing::SignEnvelope(env, station));
//   ...
//   signing::TrustedKeys trusted;
//   STEWARD_RETURN_IF_ERROR(trusted.AddFile("keys/station.pub"));
//   absl::Status ok = signing::VerifyEnvelope(env, trusted);  // PermissionDenied + reason
//
// Key files: the secret key file holds "steward-ed25519-secret <base64 of 64 bytes>\n"
// and must not be readable by group or others (0600); the public key file holds
// "steward-ed25519 <base64 of 32 bytes> [comment]\n".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "proto/steward.pb.h"

namespace steward::signing {

struct KeyPair {
  std::string public_key;  // 32 raw bytes
  std::string secret_key;  // 64 raw bytes (libsodium layout)
};

// A short stable name for a public key: "ed25519:" + the first 16 hex digits of its
// SHA-256.
std::string KeyId(absl::string_view public_key);

// SHA-256 of `data`: 32 raw bytes (hex: absl::BytesToHexString).
std::string Sha256(absl::string_view data);
// SHA-256 of the first `length` bytes of the file at `path` (all of it by default),
// read in pieces; errors name the path and the errno text.
absl::StatusOr<std::string> Sha256File(const std::string& path, uint64_t length = UINT64_MAX);
// The same of what the open descriptor `fd` reads from its position on (`name` is for
// errors): for a file checked through its descriptor, never opened by name again.
absl::StatusOr<std::string> Sha256Fd(int fd, const std::string& name, uint64_t length = UINT64_MAX);

absl::StatusOr<KeyPair> Generate();

// Text forms (see the file comment). Decode* return InvalidArgument naming the problem.
std::string EncodePublicKey(absl::string_view public_key, absl::string_view comment = "");
absl::StatusOr<std::string> DecodePublicKey(absl::string_view text);

// WriteKeyPair writes <base>.key (0600, created exclusively: an existing file is never
// overwritten -> AlreadyExists) and <base>.pub.
absl::Status WriteKeyPair(const KeyPair& pair, const std::string& base, absl::string_view comment);
// LoadKeyPair reads a secret key file; FailedPrecondition when the file is readable by
// group or others ("chmod 600 <path>"), InvalidArgument when malformed.
absl::StatusOr<KeyPair> LoadKeyPair(const std::string& secret_path);
absl::StatusOr<std::string> LoadPublicKey(const std::string& public_path);

// CheckPrivateFile: the file exists, is a regular file, and neither group nor others
// may read or write it. For every secret the programs load (keys, passwords).
absl::Status CheckPrivateFile(const std::string& path);

// Envelope signatures.
absl::Status SignEnvelope(proto::Envelope& env, const KeyPair& key);
// ACK signatures: the same scheme under another domain (an ACK's signature never
// passes for an envelope's).
absl::Status SignAck(proto::Ack& ack, const KeyPair& key);

// A set of public keys, by key id. Thread-safe.
class TrustedKeys {
 public:
  void Add(absl::string_view public_key) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status AddFile(const std::string& public_path) ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<std::string> Find(absl::string_view key_id) const ABSL_LOCKS_EXCLUDED(mu_);
  bool empty() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> keys_ ABSL_GUARDED_BY(mu_);
};

// VerifyEnvelope: PermissionDenied with the reason — "unsigned", "signed by unknown key
// <id>", "bad signature (tampered or wrong key)".
absl::Status VerifyEnvelope(const proto::Envelope& env, const TrustedKeys& trusted);
// The same against one expected public key (a pinned node key).
absl::Status VerifyEnvelopeWith(const proto::Envelope& env, absl::string_view public_key);
// An ACK against its node's pinned key: PermissionDenied "unsigned acknowledgement",
// or as VerifyEnvelope.
absl::Status VerifyAckWith(const proto::Ack& ack, absl::string_view public_key);

}  // namespace steward::signing
