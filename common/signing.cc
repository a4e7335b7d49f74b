// ed25519 signing with libsodium: key ids, key files (text forms, 0600 secret files),
// and envelope signatures over a domain-separated deterministic serialization.
#include "common/signing.h"
#include "common/sha256_stream.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_write.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace steward::signing {
namespace {

constexpr char kPublicPrefix[] = "steward-ed25519";
constexpr char kSecretPrefix[] = "steward-ed25519-secret";
// Prepended (with its terminating NUL) to every signed envelope so that a signature
// over an envelope can never be replayed as a signature over anything else.
constexpr char kEnvelopeDomain[] = "steward-envelope-v1";
constexpr char kAckDomain[] = "steward-ack-v1";
// Key files are one short line; anything bigger is not one of ours.
constexpr size_t kMaxKeyFileBytes = 4096;

bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;  // thread-safe static initialization
  return ready;
}

absl::Status EnsureSodium() {
  if (!SodiumReady()) return absl::InternalError("libsodium failed to initialize");
  return absl::OkStatus();
}

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Wipes a string that held secret material, then empties it.
void Wipe(std::string& s) {
  if (!s.empty()) sodium_memzero(s.data(), s.size());
  s.clear();
}

std::string ToBase64(absl::string_view bin) {
  std::string out(sodium_base64_ENCODED_LEN(bin.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), Bytes(bin), bin.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// Decodes strict base64 (no whitespace, no trailing garbage) that must yield exactly
// `want` bytes. `what` names the thing in errors.
absl::StatusOr<std::string> FromBase64(absl::string_view b64, size_t want, absl::string_view what) {
  std::string bin(b64.size() + 1, '\0');  // always at least the decoded length
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(bin.data()), bin.size(), b64.data(),
                        b64.size(), /*ignore=*/nullptr, &len, /*b64_end=*/nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    Wipe(bin);
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid base64"));
  }
  bin.resize(len);
  if (len != want) {
    Wipe(bin);
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", len, " bytes, want ", want));
  }
  return bin;
}

bool IsValidPublicKey(absl::string_view pk) {
  return pk.size() == crypto_sign_PUBLICKEYBYTES && crypto_core_ed25519_is_valid_point(Bytes(pk)) == 1;
}

// Splits "<prefix> <token>[ rest]" (surrounding whitespace already stripped).
void SplitFirst(absl::string_view line, absl::string_view& first, absl::string_view& rest) {
  size_t sp = 0;
  while (sp < line.size() && !absl::ascii_isspace(static_cast<unsigned char>(line[sp]))) ++sp;
  first = line.substr(0, sp);
  rest = absl::StripLeadingAsciiWhitespace(line.substr(sp));
}

// Parses the text of a secret key file: "steward-ed25519-secret <base64 of 64 bytes>".
absl::StatusOr<std::string> ParseSecretKey(absl::string_view text, const std::string& path) {
  absl::string_view prefix, rest, b64, extra;
  SplitFirst(absl::StripAsciiWhitespace(text), prefix, rest);
  SplitFirst(rest, b64, extra);
  if (prefix != kSecretPrefix || b64.empty() || !extra.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a secret key file (want \"",
                                                   kSecretPrefix, " <base64>\")"));
  }
  absl::StatusOr<std::string> secret = FromBase64(b64, crypto_sign_SECRETKEYBYTES, "secret key");
  if (!secret.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", secret.status().message()));
  }
  return secret;
}

absl::Status CheckPrivateStat(const struct stat& st, const std::string& path) {
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is readable or writable by others (mode ",
                     fmt::format("{:04o}", st.st_mode & 07777), "): chmod 600 ", path));
  }
  return absl::OkStatus();
}

// Reads a whole (small) file from an open descriptor.
absl::StatusOr<std::string> ReadAll(int fd, const std::string& path) {
  std::string out;
  char buf[1024];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      sodium_memzero(buf, sizeof(buf));
      Wipe(out);
      return absl::ErrnoToStatus(err, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > kMaxKeyFileBytes) {
      sodium_memzero(buf, sizeof(buf));
      Wipe(out);
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is larger than ", kMaxKeyFileBytes, " bytes: not a key file"));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  sodium_memzero(buf, sizeof(buf));
  return out;
}

using Fd = ::steward::UniqueFd;

// Creates the key file `path` with exactly `mode` (see WriteFileAtomically): never over
// an existing file, never half written.
absl::Status CreateKeyFile(const std::string& path, absl::string_view data, mode_t mode) {
  absl::Status st = WriteFileAtomically(path, data, {.mode = mode, .if_exists = IfExists::kFail});
  if (absl::IsAlreadyExists(st)) {
    return absl::AlreadyExistsError(
        absl::StrCat(path, " already exists; refusing to overwrite a key file"));
  }
  return st;
}

// The bytes a signature covers: the message kind's domain, a NUL, and the message
// serialized deterministically with `signature` empty. The domain keeps a signature
// made for one kind of message (an ACK) from passing as another's (a command).
template <typename Message>
absl::StatusOr<std::string> SigningMessage(const Message& m, absl::string_view domain) {
  Message copy = m;
  copy.clear_signature();
  std::string msg(domain.data(), domain.size());
  msg.push_back('\0');
  bool ok = false;
  {
    google::protobuf::io::StringOutputStream sos(&msg);  // appends
    google::protobuf::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    ok = copy.SerializeToCodedStream(&cos) && !cos.HadError();
  }
  if (!ok) return absl::InternalError("cannot serialize the message for signing");
  return msg;
}

template <typename Message>
absl::Status Sign(Message& m, absl::string_view domain, const KeyPair& key) {
  STEWARD_RETURN_IF_ERROR(EnsureSodium());
  if (key.public_key.size() != crypto_sign_PUBLICKEYBYTES ||
      key.secret_key.size() != crypto_sign_SECRETKEYBYTES) {
    return absl::InvalidArgumentError("signing key has the wrong sizes (want 32 + 64 bytes)");
  }
  if (absl::string_view(key.secret_key).substr(crypto_sign_SEEDBYTES) != key.public_key) {
    return absl::InvalidArgumentError("signing key: public key does not match the secret key");
  }
  m.set_signer(KeyId(key.public_key));  // before signing: the signer is covered too
  m.clear_signature();
  STEWARD_ASSIGN_OR_RETURN(const std::string msg, SigningMessage(m, domain));
  std::string sig(crypto_sign_BYTES, '\0');
  if (crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr, Bytes(msg),
                           msg.size(), Bytes(key.secret_key)) != 0) {
    return absl::InternalError("crypto_sign_detached failed");
  }
  m.set_signature(std::move(sig));
  return absl::OkStatus();
}

// Verifies a message that is signed (the caller checked) against `public_key`.
template <typename Message>
absl::Status VerifyWith(const Message& m, absl::string_view domain, absl::string_view public_key) {
  STEWARD_RETURN_IF_ERROR(EnsureSodium());
  if (public_key.size() != crypto_sign_PUBLICKEYBYTES) {
    return absl::InvalidArgumentError("verification key is not a 32-byte ed25519 public key");
  }
  const std::string want = KeyId(public_key);
  if (m.signer() != want) {
    return absl::PermissionDeniedError(
        absl::StrCat("signed by unknown key ", m.signer(), " (expected ", want, ")"));
  }
  if (m.signature().size() != crypto_sign_BYTES) {
    return absl::PermissionDeniedError(absl::StrCat("bad signature (", m.signature().size(),
                                                    " bytes, want ", crypto_sign_BYTES, ")"));
  }
  STEWARD_ASSIGN_OR_RETURN(const std::string msg, SigningMessage(m, domain));
  if (crypto_sign_verify_detached(Bytes(m.signature()), Bytes(msg), msg.size(), Bytes(public_key)) != 0) {
    return absl::PermissionDeniedError("bad signature (tampered, or signed with another key)");
  }
  return absl::OkStatus();
}

absl::Status Unsigned(const proto::Envelope& env) {
  return absl::PermissionDeniedError(env.kind() == proto::KIND_COMMAND ? "unsigned command"
                                                                         : "unsigned message");
}

}  // namespace

// SHA-256 by OpenSSL, not libsodium: OpenSSL uses the CPU's SHA extensions (about 1.9
// GB/s here against libsodium's 0.2), and copies hash every byte three times (stewardctl,
// the agent per chunk, the agent for the whole file).
std::string Sha256(absl::string_view data) {
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  ::SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
           reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

absl::StatusOr<std::string> Sha256File(const std::string& path, uint64_t length) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  return Sha256Fd(fd.get(), path, length);
}

absl::StatusOr<std::string> Sha256Fd(int fd, const std::string& path, uint64_t length) {
  Sha256Stream h;
  std::string buf(1 << 20, '\0');
  while (length > 0) {
    const ssize_t n = ::read(fd, buf.data(), static_cast<size_t>(std::min<uint64_t>(buf.size(), length)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat("read ", path, ": ", std::strerror(errno)));
    if (n == 0) break;
    h.Update(absl::string_view(buf.data(), static_cast<size_t>(n)));
    length -= static_cast<uint64_t>(n);
  }
  std::string digest = h.Finish();
  if (digest.empty()) return absl::InternalError("SHA-256: OpenSSL could not make a digest");
  return digest;
}

std::string KeyId(absl::string_view public_key) {
  SodiumReady();
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, Bytes(public_key), public_key.size());
  return absl::StrCat("ed25519:",
                      absl::BytesToHexString(absl::string_view(
                          reinterpret_cast<const char*>(digest), 8)));
}

absl::StatusOr<KeyPair> Generate() {
  STEWARD_RETURN_IF_ERROR(EnsureSodium());
  KeyPair pair;
  pair.public_key.resize(crypto_sign_PUBLICKEYBYTES);
  pair.secret_key.resize(crypto_sign_SECRETKEYBYTES);
  if (crypto_sign_keypair(reinterpret_cast<unsigned char*>(pair.public_key.data()),
                          reinterpret_cast<unsigned char*>(pair.secret_key.data())) != 0) {
    Wipe(pair.secret_key);
    return absl::InternalError("crypto_sign_keypair failed");
  }
  return pair;
}

std::string EncodePublicKey(absl::string_view public_key, absl::string_view comment) {
  SodiumReady();
  std::string out = absl::StrCat(kPublicPrefix, " ", ToBase64(public_key));
  // The comment stays on the one line: control characters become spaces.
  std::string clean(absl::StripAsciiWhitespace(comment));
  for (char& c : clean) {
    if (absl::ascii_iscntrl(static_cast<unsigned char>(c))) c = ' ';
  }
  if (!clean.empty()) absl::StrAppend(&out, " ", clean);
  out.push_back('\n');
  return out;
}

absl::StatusOr<std::string> DecodePublicKey(absl::string_view text) {
  STEWARD_RETURN_IF_ERROR(EnsureSodium());
  absl::string_view prefix, rest;
  SplitFirst(absl::StripAsciiWhitespace(text), prefix, rest);
  if (prefix == kSecretPrefix) {
    return absl::InvalidArgumentError("this is a secret key, not a public key");
  }
  if (prefix != kPublicPrefix) {
    return absl::InvalidArgumentError(
        absl::StrCat("public key must start with \"", kPublicPrefix, " \""));
  }
  absl::string_view b64, comment;
  SplitFirst(rest, b64, comment);
  if (b64.empty()) return absl::InvalidArgumentError("public key: missing base64 key");
  STEWARD_ASSIGN_OR_RETURN(std::string key,
                           FromBase64(b64, crypto_sign_PUBLICKEYBYTES, "public key"));
  if (!IsValidPublicKey(key)) {
    return absl::InvalidArgumentError("public key is not a valid ed25519 point");
  }
  return key;
}

absl::Status WriteKeyPair(const KeyPair& pair, const std::string& base,
                          absl::string_view comment) {
  STEWARD_RETURN_IF_ERROR(EnsureSodium());
  if (pair.public_key.size() != crypto_sign_PUBLICKEYBYTES ||
      pair.secret_key.size() != crypto_sign_SECRETKEYBYTES) {
    return absl::InvalidArgumentError("key pair has the wrong sizes (want 32 + 64 bytes)");
  }
  const std::string key_path = base + ".key";
  const std::string pub_path = base + ".pub";
  std::string secret_text = absl::StrCat(kSecretPrefix, " ", ToBase64(pair.secret_key), "\n");
  absl::Status st = CreateKeyFile(key_path, secret_text, 0600);
  Wipe(secret_text);
  STEWARD_RETURN_IF_ERROR(st);
  st = CreateKeyFile(pub_path, EncodePublicKey(pair.public_key, comment), 0644);
  if (!st.ok()) unlink(key_path.c_str());  // never leave half a pair behind
  return st;
}

absl::Status CheckPrivateFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("stat ", path));
  return CheckPrivateStat(st, path);
}

absl::StatusOr<KeyPair> LoadKeyPair(const std::string& secret_path) {
  STEWARD_RETURN_IF_ERROR(EnsureSodium());
  STEWARD_RETURN_IF_ERROR(CheckPrivateFile(secret_path));
  Fd fd(open(secret_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", secret_path));
  // Check the file actually opened too (it may have been swapped since the stat).
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("fstat ", secret_path));
  }
  STEWARD_RETURN_IF_ERROR(CheckPrivateStat(st, secret_path));
  STEWARD_ASSIGN_OR_RETURN(std::string text, ReadAll(fd.get(), secret_path));

  absl::StatusOr<std::string> secret = ParseSecretKey(text, secret_path);
  Wipe(text);
  if (!secret.ok()) return secret.status();

  KeyPair pair;
  pair.secret_key = std::move(*secret);
  // libsodium's secret key is seed (32) || public key (32): the public half must be a
  // valid point and must be the one the seed derives.
  pair.public_key = pair.secret_key.substr(crypto_sign_SEEDBYTES);
  unsigned char derived_pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char derived_sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(derived_pk, derived_sk, Bytes(pair.secret_key));
  sodium_memzero(derived_sk, sizeof(derived_sk));
  if (!IsValidPublicKey(pair.public_key) ||
      sodium_memcmp(derived_pk, Bytes(pair.public_key), sizeof(derived_pk)) != 0) {
    Wipe(pair.secret_key);
    return absl::InvalidArgumentError(
        absl::StrCat(secret_path, ": corrupt secret key (its public half does not match)"));
  }
  return pair;
}

absl::StatusOr<std::string> LoadPublicKey(const std::string& public_path) {
  Fd fd(open(public_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", public_path));
  STEWARD_ASSIGN_OR_RETURN(std::string text, ReadAll(fd.get(), public_path));
  absl::StatusOr<std::string> key = DecodePublicKey(text);
  if (!key.ok()) {
    return absl::Status(key.status().code(),
                        absl::StrCat(public_path, ": ", key.status().message()));
  }
  return key;
}

absl::Status SignEnvelope(proto::Envelope& env, const KeyPair& key) {
  return Sign(env, kEnvelopeDomain, key);
}

absl::Status SignAck(proto::Ack& ack, const KeyPair& key) { return Sign(ack, kAckDomain, key); }

void TrustedKeys::Add(absl::string_view public_key) {
  std::string id = KeyId(public_key);
  absl::MutexLock lock(&mu_);
  keys_[std::move(id)] = std::string(public_key);
}

absl::Status TrustedKeys::AddFile(const std::string& public_path) {
  STEWARD_ASSIGN_OR_RETURN(const std::string key, LoadPublicKey(public_path));
  Add(key);
  return absl::OkStatus();
}

std::optional<std::string> TrustedKeys::Find(absl::string_view key_id) const {
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(std::string(key_id));
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

bool TrustedKeys::empty() const {
  absl::MutexLock lock(&mu_);
  return keys_.empty();
}

absl::Status VerifyEnvelope(const proto::Envelope& env, const TrustedKeys& trusted) {
  if (env.signature().empty()) return Unsigned(env);
  if (env.signer().empty()) {
    return absl::PermissionDeniedError("signature without a signer key id");
  }
  std::optional<std::string> key = trusted.Find(env.signer());
  if (!key) {
    return absl::PermissionDeniedError(absl::StrCat("signed by unknown key ", env.signer()));
  }
  return VerifyEnvelopeWith(env, *key);
}

absl::Status VerifyEnvelopeWith(const proto::Envelope& env, absl::string_view public_key) {
  if (env.signature().empty()) return Unsigned(env);
  return VerifyWith(env, kEnvelopeDomain, public_key);
}

absl::Status VerifyAckWith(const proto::Ack& ack, absl::string_view public_key) {
  if (ack.signature().empty()) return absl::PermissionDeniedError("unsigned acknowledgement");
  return VerifyWith(ack, kAckDomain, public_key);
}

}  // namespace steward::signing
