// Tests for common/signing.h: envelope sign/verify (every field covered, unsigned,
// unknown and forged signers, malformed signatures), key ids, public key text forms,
// key files (exclusive creation, 0600 enforcement) and TrustedKeys.
#include "common/signing.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "common/protocol.h"
#include "tests/testing/nats_server.h"

namespace steward::signing {
namespace {

using steward::testing::TempDir;

KeyPair MustGenerate() {
  absl::StatusOr<KeyPair> pair = Generate();
  REQUIRE(pair.ok());
  REQUIRE(pair->public_key.size() == 32);
  REQUIRE(pair->secret_key.size() == 64);
  return *std::move(pair);
}

proto::Envelope SampleCommand() {
  proto::Envelope env =
      NewEnvelope("station", "node1", proto::KIND_COMMAND, kMethodShell, kCliDomain);
  env.set_expires_unix_ms(env.created_unix_ms() + 60000);
  env.set_timeout_ms(5000);
  env.add_argv("/bin/echo");
  env.add_argv("hello");
  env.set_payload(std::string("pay\0load", 8));
  env.mutable_shell()->set_working_dir("/tmp");
  env.mutable_shell()->add_env("A=1");
  env.set_request_id("req-1");
  env.set_operator_("alice");
  return env;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
  }
  REQUIRE(chmod(path.c_str(), mode) == 0);
}

bool Contains(const absl::Status& st, const std::string& s) {
  return std::string(st.message()).find(s) != std::string::npos;
}

TEST_CASE("SignEnvelope then VerifyEnvelope round trips", "[signing]") {
  const KeyPair key = MustGenerate();
  TrustedKeys trusted;
  CHECK(trusted.empty());
  trusted.Add(key.public_key);
  CHECK_FALSE(trusted.empty());

  proto::Envelope env = SampleCommand();
  REQUIRE(SignEnvelope(env, key).ok());
  CHECK(env.signer() == KeyId(key.public_key));
  CHECK(env.signature().size() == 64);
  CHECK(VerifyEnvelope(env, trusted).ok());
  CHECK(VerifyEnvelopeWith(env, key.public_key).ok());

  // Survives the wire.
  std::string bytes;
  REQUIRE(env.SerializeToString(&bytes));
  absl::StatusOr<proto::Envelope> decoded = DecodeEnvelope(bytes);
  REQUIRE(decoded.ok());
  CHECK(VerifyEnvelope(*decoded, trusted).ok());

  // Signing again (e.g. a resend) replaces the old signature and still verifies.
  REQUIRE(SignEnvelope(env, key).ok());
  CHECK(VerifyEnvelope(env, trusted).ok());
}

TEST_CASE("Changing any envelope field after signing breaks the signature", "[signing]") {
  const KeyPair key = MustGenerate();
  TrustedKeys trusted;
  trusted.Add(key.public_key);
  proto::Envelope signed_env = SampleCommand();
  REQUIRE(SignEnvelope(signed_env, key).ok());
  REQUIRE(VerifyEnvelope(signed_env, trusted).ok());

  const std::vector<std::pair<std::string, std::function<void(proto::Envelope&)>>> mutations = {
      {"protocol_version", [](proto::Envelope& e) { e.set_protocol_version(2); }},
      {"id", [](proto::Envelope& e) { e.set_id(NewEnvelope("a", "b", proto::KIND_COMMAND, "m", "d").id()); }},
      {"from_node", [](proto::Envelope& e) { e.set_from_node("mallory"); }},
      {"to_node", [](proto::Envelope& e) { e.set_to_node("node2"); }},
      {"kind", [](proto::Envelope& e) { e.set_kind(proto::KIND_EVENT); }},
      {"method", [](proto::Envelope& e) { e.set_method(kMethodPing); }},
      {"domain", [](proto::Envelope& e) { e.set_domain("other"); }},
      {"created", [](proto::Envelope& e) { e.set_created_unix_ms(e.created_unix_ms() + 1); }},
      {"expires", [](proto::Envelope& e) { e.set_expires_unix_ms(e.expires_unix_ms() + 3600000); }},
      {"expires cleared", [](proto::Envelope& e) { e.clear_expires_unix_ms(); }},
      {"timeout", [](proto::Envelope& e) { e.set_timeout_ms(0); }},
      {"argv added", [](proto::Envelope& e) { e.add_argv("; rm -rf /"); }},
      {"argv changed", [](proto::Envelope& e) { e.set_argv(1, "bye"); }},
      {"argv removed", [](proto::Envelope& e) { e.mutable_argv()->RemoveLast(); }},
      {"payload", [](proto::Envelope& e) { e.set_payload("other"); }},
      {"shell.use_shell", [](proto::Envelope& e) { e.mutable_shell()->set_use_shell(true); }},
      {"shell.working_dir", [](proto::Envelope& e) { e.mutable_shell()->set_working_dir("/"); }},
      {"shell.env added", [](proto::Envelope& e) { e.mutable_shell()->add_env("LD_PRELOAD=/x.so"); }},
      {"shell.env changed", [](proto::Envelope& e) { e.mutable_shell()->set_env(0, "A=2"); }},
      {"shell.max_output_bytes",
       [](proto::Envelope& e) { e.mutable_shell()->set_max_output_bytes(1); }},
      {"shell.kill_grace_ms", [](proto::Envelope& e) { e.mutable_shell()->set_kill_grace_ms(1); }},
      {"shell cleared", [](proto::Envelope& e) { e.clear_shell(); }},
      {"request_id", [](proto::Envelope& e) { e.set_request_id("req-2"); }},
      {"operator", [](proto::Envelope& e) { e.set_operator_("mallory"); }},
  };
  for (const auto& [name, mutate] : mutations) {
    INFO(name);
    proto::Envelope env = signed_env;
    mutate(env);
    const absl::Status st = VerifyEnvelope(env, trusted);
    CHECK(st.code() == absl::StatusCode::kPermissionDenied);
    CHECK(Contains(st, "bad signature"));
    CHECK(VerifyEnvelopeWith(env, key.public_key).code() == absl::StatusCode::kPermissionDenied);
  }

  SECTION("the signer field is covered too") {
    // Another trusted key's id in the signer field: that key did not sign it.
    const KeyPair other = MustGenerate();
    trusted.Add(other.public_key);
    proto::Envelope env = signed_env;
    env.set_signer(KeyId(other.public_key));
    const absl::Status st = VerifyEnvelope(env, trusted);
    CHECK(st.code() == absl::StatusCode::kPermissionDenied);
    CHECK(Contains(st, "bad signature"));
  }
  SECTION("flipping one signature bit") {
    proto::Envelope env = signed_env;
    std::string sig = env.signature();
    sig[10] = static_cast<char>(sig[10] ^ 1);
    env.set_signature(sig);
    CHECK(VerifyEnvelope(env, trusted).code() == absl::StatusCode::kPermissionDenied);
  }
}

TEST_CASE("Unsigned envelopes are refused", "[signing]") {
  const KeyPair key = MustGenerate();
  TrustedKeys trusted;
  trusted.Add(key.public_key);

  proto::Envelope env = SampleCommand();
  absl::Status st = VerifyEnvelope(env, trusted);
  CHECK(st.code() == absl::StatusCode::kPermissionDenied);
  CHECK(Contains(st, "unsigned"));
  st = VerifyEnvelopeWith(env, key.public_key);
  CHECK(st.code() == absl::StatusCode::kPermissionDenied);
  CHECK(Contains(st, "unsigned"));

  // Signed, then the signature stripped (the signer left in place).
  REQUIRE(SignEnvelope(env, key).ok());
  env.clear_signature();
  st = VerifyEnvelope(env, trusted);
  CHECK(st.code() == absl::StatusCode::kPermissionDenied);
  CHECK(Contains(st, "unsigned"));

  // An empty TrustedKeys trusts nothing.
  REQUIRE(SignEnvelope(env, key).ok());
  CHECK(VerifyEnvelope(env, TrustedKeys()).code() == absl::StatusCode::kPermissionDenied);
}

TEST_CASE("Envelopes signed by an unknown key are refused", "[signing]") {
  const KeyPair trusted_key = MustGenerate();
  const KeyPair stranger = MustGenerate();
  TrustedKeys trusted;
  trusted.Add(trusted_key.public_key);

  proto::Envelope env = SampleCommand();
  REQUIRE(SignEnvelope(env, stranger).ok());
  const absl::Status st = VerifyEnvelope(env, trusted);
  CHECK(st.code() == absl::StatusCode::kPermissionDenied);
  CHECK(Contains(st, "signed by unknown key " + KeyId(stranger.public_key)));

  env.clear_signer();
  CHECK(VerifyEnvelope(env, trusted).code() == absl::StatusCode::kPermissionDenied);
}

TEST_CASE("A signature by another key with a forged signer is a bad signature", "[signing]") {
  const KeyPair station = MustGenerate();
  const KeyPair mallory = MustGenerate();
  TrustedKeys trusted;
  trusted.Add(station.public_key);

  // Mallory signs with her own key and then names the station as the signer.
  proto::Envelope env = SampleCommand();
  REQUIRE(SignEnvelope(env, mallory).ok());
  env.set_signer(KeyId(station.public_key));
  absl::Status st = VerifyEnvelope(env, trusted);
  CHECK(st.code() == absl::StatusCode::kPermissionDenied);
  CHECK(Contains(st, "bad signature"));
  CHECK(VerifyEnvelopeWith(env, station.public_key).code() ==
        absl::StatusCode::kPermissionDenied);

  // Her signature moved onto an envelope the station really signed does not verify.
  proto::Envelope genuine = SampleCommand();
  REQUIRE(SignEnvelope(genuine, station).ok());
  genuine.set_signature(env.signature());
  st = VerifyEnvelope(genuine, trusted);
  CHECK(st.code() == absl::StatusCode::kPermissionDenied);
  CHECK(Contains(st, "bad signature"));
}

TEST_CASE("Truncated, oversized and garbage signatures are refused, never a crash",
          "[signing]") {
  const KeyPair key = MustGenerate();
  TrustedKeys trusted;
  trusted.Add(key.public_key);
  proto::Envelope signed_env = SampleCommand();
  REQUIRE(SignEnvelope(signed_env, key).ok());

  const std::vector<std::string> sigs = {
      signed_env.signature().substr(0, 63), signed_env.signature().substr(0, 1),
      signed_env.signature() + "x",         std::string(64, '\0'),
      std::string(64, '\xff'),              std::string(1000, 'A'),
  };
  for (const std::string& sig : sigs) {
    INFO(sig.size());
    proto::Envelope env = signed_env;
    env.set_signature(sig);
    CHECK(VerifyEnvelope(env, trusted).code() == absl::StatusCode::kPermissionDenied);
    CHECK(VerifyEnvelopeWith(env, key.public_key).code() ==
          absl::StatusCode::kPermissionDenied);
  }
}

TEST_CASE("KeyId is stable and differs between keys", "[signing]") {
  const KeyPair a = MustGenerate();
  const KeyPair b = MustGenerate();
  const std::string id = KeyId(a.public_key);
  CHECK(id == KeyId(a.public_key));
  CHECK(id != KeyId(b.public_key));
  REQUIRE(id.size() == std::string("ed25519:").size() + 16);
  CHECK(id.rfind("ed25519:", 0) == 0);
  for (char c : id.substr(8)) CHECK(std::string("0123456789abcdef").find(c) != std::string::npos);
  // SHA-256("") = e3b0c44298fc1c14...
  CHECK(KeyId("") == "ed25519:e3b0c44298fc1c14");
}

TEST_CASE("EncodePublicKey and DecodePublicKey round trip", "[signing]") {
  const KeyPair key = MustGenerate();
  for (const std::string comment : {"", "station@hq", "with spaces in it"}) {
    INFO(comment);
    const std::string text = EncodePublicKey(key.public_key, comment);
    CHECK(text.rfind("steward-ed25519 ", 0) == 0);
    CHECK(text.back() == '\n');
    CHECK(text.find('\n') == text.size() - 1);
    if (!comment.empty()) CHECK(text.find(comment) != std::string::npos);
    absl::StatusOr<std::string> decoded = DecodePublicKey(text);
    REQUIRE(decoded.ok());
    CHECK(*decoded == key.public_key);
  }
  // A comment cannot break the one-line form.
  const std::string text = EncodePublicKey(key.public_key, "two\nlines");
  CHECK(text.find('\n') == text.size() - 1);
  REQUIRE(DecodePublicKey(text).ok());
  // Surrounding whitespace and a missing newline are fine.
  std::string bare = EncodePublicKey(key.public_key);
  bare.pop_back();
  CHECK(DecodePublicKey("  " + bare + "  \n\n").value() == key.public_key);
}

TEST_CASE("DecodePublicKey rejects malformed texts", "[signing]") {
  const KeyPair key = MustGenerate();
  const std::string good = EncodePublicKey(key.public_key);
  const std::string b64 = good.substr(good.find(' ') + 1, good.size() - good.find(' ') - 2);
  REQUIRE(DecodePublicKey("steward-ed25519 " + b64).ok());

  const std::vector<std::string> bad = {
      "",
      "steward-ed25519",
      "steward-ed25519 ",
      "ssh-ed25519 " + b64,
      "steward-ed25519-secret " + b64,
      "steward-ed25519x " + b64,
      b64,
      "steward-ed25519 " + b64.substr(1),       // bad base64 (length)
      "steward-ed25519 !!!!" + b64.substr(4),   // bad base64 (alphabet)
      "steward-ed25519 " + b64 + "AAAA",        // 35 bytes
      "steward-ed25519 AAAA",                   // 3 bytes
      "steward-ed25519 " + std::string(64, 'A'),  // 48 bytes
  };
  for (const std::string& text : bad) {
    INFO(text);
    absl::StatusOr<std::string> decoded = DecodePublicKey(text);
    CHECK(decoded.status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(Contains(DecodePublicKey("steward-ed25519 AAAA").status(), "3 bytes"));
  CHECK(Contains(DecodePublicKey("steward-ed25519 !!!!").status(), "base64"));
}

TEST_CASE("WriteKeyPair then LoadKeyPair round trips", "[signing]") {
  TempDir dir;
  const KeyPair key = MustGenerate();
  const std::string base = dir.str() + "/station";
  REQUIRE(WriteKeyPair(key, base, "station key").ok());

  struct stat st;
  REQUIRE(stat((base + ".key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(ReadFile(base + ".key").rfind("steward-ed25519-secret ", 0) == 0);
  CHECK(ReadFile(base + ".pub") == EncodePublicKey(key.public_key, "station key"));
  CHECK(CheckPrivateFile(base + ".key").ok());

  absl::StatusOr<KeyPair> loaded = LoadKeyPair(base + ".key");
  REQUIRE(loaded.ok());
  CHECK(loaded->secret_key == key.secret_key);
  CHECK(loaded->public_key == key.public_key);
  absl::StatusOr<std::string> pub = LoadPublicKey(base + ".pub");
  REQUIRE(pub.ok());
  CHECK(*pub == key.public_key);

  // A loaded pair signs what the public file verifies.
  TrustedKeys trusted;
  REQUIRE(trusted.AddFile(base + ".pub").ok());
  proto::Envelope env = SampleCommand();
  REQUIRE(SignEnvelope(env, *loaded).ok());
  CHECK(VerifyEnvelope(env, trusted).ok());
}

TEST_CASE("WriteKeyPair never overwrites an existing key", "[signing]") {
  TempDir dir;
  const KeyPair first = MustGenerate();
  const KeyPair second = MustGenerate();
  const std::string base = dir.str() + "/node";
  REQUIRE(WriteKeyPair(first, base, "").ok());
  const std::string before = ReadFile(base + ".key");

  const absl::Status st = WriteKeyPair(second, base, "");
  CHECK(st.code() == absl::StatusCode::kAlreadyExists);
  CHECK(Contains(st, base + ".key"));
  CHECK(ReadFile(base + ".key") == before);
  CHECK(LoadKeyPair(base + ".key")->public_key == first.public_key);
  CHECK(LoadPublicKey(base + ".pub").value() == first.public_key);

  // A stray .pub: the .key is not left behind either.
  const std::string base2 = dir.str() + "/other";
  WriteFile(base2 + ".pub", "steward-ed25519 junk\n", 0644);
  CHECK(WriteKeyPair(second, base2, "").code() == absl::StatusCode::kAlreadyExists);
  CHECK_FALSE(std::filesystem::exists(base2 + ".key"));
}

TEST_CASE("LoadKeyPair refuses a key file others can read", "[signing]") {
  TempDir dir;
  const std::string base = dir.str() + "/k";
  REQUIRE(WriteKeyPair(MustGenerate(), base, "").ok());
  const std::string path = base + ".key";

  for (mode_t mode : {0644, 0640, 0604, 0660, 0602}) {
    INFO(mode);
    REQUIRE(chmod(path.c_str(), mode) == 0);
    absl::StatusOr<KeyPair> loaded = LoadKeyPair(path);
    CHECK(loaded.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK(Contains(loaded.status(), "chmod 600 " + path));
    CHECK(CheckPrivateFile(path).code() == absl::StatusCode::kFailedPrecondition);
  }
  REQUIRE(chmod(path.c_str(), 0644) == 0);
  CHECK(Contains(LoadKeyPair(path).status(), "(mode 0644)"));
  REQUIRE(chmod(path.c_str(), 0400) == 0);
  CHECK(LoadKeyPair(path).ok());
}

TEST_CASE("CheckPrivateFile: missing files and non-files", "[signing]") {
  TempDir dir;
  const std::string missing = dir.str() + "/nope.key";
  absl::Status st = CheckPrivateFile(missing);
  CHECK(st.code() == absl::StatusCode::kNotFound);
  CHECK(Contains(st, missing));
  CHECK(LoadKeyPair(missing).status().code() == absl::StatusCode::kNotFound);
  CHECK(LoadPublicKey(missing).status().code() == absl::StatusCode::kNotFound);

  REQUIRE(chmod(dir.str().c_str(), 0700) == 0);
  st = CheckPrivateFile(dir.str());
  CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(Contains(st, "not a regular file"));
}

TEST_CASE("LoadKeyPair rejects malformed secret key files", "[signing]") {
  TempDir dir;
  const KeyPair key = MustGenerate();
  const std::string path = dir.str() + "/bad.key";
  std::string b64 = EncodePublicKey(key.secret_key);  // base64 of the 64 secret bytes
  b64 = b64.substr(b64.find(' ') + 1);
  b64.pop_back();

  // The public half of the secret key tampered with (the seed no longer derives it).
  KeyPair mismatched = key;
  mismatched.secret_key.replace(32, 32, MustGenerate().public_key);
  std::string mismatched_b64 = EncodePublicKey(mismatched.secret_key);
  mismatched_b64 = mismatched_b64.substr(mismatched_b64.find(' ') + 1);
  mismatched_b64.pop_back();

  const std::vector<std::string> bad = {
      "",
      "steward-ed25519 " + b64 + "\n",
      "steward-ed25519-secret\n",
      "steward-ed25519-secret " + b64.substr(0, 40) + "\n",
      "steward-ed25519-secret !!" + b64.substr(2) + "\n",
      "steward-ed25519-secret " + b64 + " trailing\n",
      "steward-ed25519-secret " + mismatched_b64 + "\n",
  };
  for (const std::string& text : bad) {
    INFO(text);
    std::filesystem::remove(path);
    WriteFile(path, text, 0600);
    absl::StatusOr<KeyPair> loaded = LoadKeyPair(path);
    CHECK(loaded.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Contains(loaded.status(), path));
  }
  std::filesystem::remove(path);
  WriteFile(path, "steward-ed25519-secret " + b64 + "\n", 0600);
  CHECK(LoadKeyPair(path).ok());
}

TEST_CASE("TrustedKeys holds several keys", "[signing]") {
  std::vector<KeyPair> keys;
  for (int i = 0; i < 4; ++i) keys.push_back(MustGenerate());
  TrustedKeys trusted;
  for (int i = 0; i < 3; ++i) trusted.Add(keys[i].public_key);
  trusted.Add(keys[0].public_key);  // idempotent

  for (int i = 0; i < 3; ++i) {
    INFO(i);
    CHECK(trusted.Find(KeyId(keys[i].public_key)) == keys[i].public_key);
    proto::Envelope env = SampleCommand();
    REQUIRE(SignEnvelope(env, keys[i]).ok());
    CHECK(VerifyEnvelope(env, trusted).ok());
  }
  CHECK_FALSE(trusted.Find(KeyId(keys[3].public_key)).has_value());
  CHECK_FALSE(trusted.Find("ed25519:0000000000000000").has_value());
  proto::Envelope env = SampleCommand();
  REQUIRE(SignEnvelope(env, keys[3]).ok());
  CHECK(VerifyEnvelope(env, trusted).code() == absl::StatusCode::kPermissionDenied);

  TempDir dir;
  const std::string bad = dir.str() + "/bad.pub";
  WriteFile(bad, "not a key\n", 0644);
  CHECK(trusted.AddFile(bad).code() == absl::StatusCode::kInvalidArgument);
  CHECK(trusted.AddFile(dir.str() + "/missing.pub").code() == absl::StatusCode::kNotFound);
}

TEST_CASE("VerifyEnvelopeWith checks against one pinned key", "[signing]") {
  const KeyPair right = MustGenerate();
  const KeyPair wrong = MustGenerate();
  proto::Envelope env =
      NewEnvelope("node1", "station", proto::KIND_EVENT, kEventResult, kCliDomain);
  env.set_payload("result");
  REQUIRE(SignEnvelope(env, right).ok());

  TrustedKeys trusted;
  trusted.Add(right.public_key);
  CHECK(VerifyEnvelope(env, trusted).ok());
  CHECK(VerifyEnvelopeWith(env, right.public_key).ok());
  CHECK(VerifyEnvelopeWith(env, wrong.public_key).code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK_FALSE(VerifyEnvelopeWith(env, "short").ok());

  env.clear_signature();
  CHECK(Contains(VerifyEnvelopeWith(env, right.public_key), "unsigned message"));
}

TEST_CASE("SignEnvelope refuses malformed key pairs", "[signing]") {
  const KeyPair key = MustGenerate();
  proto::Envelope env = SampleCommand();
  CHECK_FALSE(SignEnvelope(env, KeyPair{}).ok());
  KeyPair mismatched = key;
  mismatched.public_key = MustGenerate().public_key;
  CHECK(SignEnvelope(env, mismatched).code() == absl::StatusCode::kInvalidArgument);
  CHECK(env.signature().empty());
}

TEST_CASE("SHA-256 of bytes and of a file (or its first bytes) matches the standard's vectors", "[signing]") {
  const std::string abc_hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  CHECK(absl::BytesToHexString(Sha256("abc")) == abc_hex);
  CHECK(absl::BytesToHexString(Sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  TempDir dir;
  const std::string path = dir.str() + "/f";
  // Over the 1 MiB read buffer, so that the file is hashed in several updates.
  std::string big((3 << 20) + 7, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + (i >> 9));
  std::ofstream(path, std::ios::binary) << "abc" << big;
  auto head = Sha256File(path, 3);
  REQUIRE(head.ok());
  CHECK(absl::BytesToHexString(*head) == abc_hex);
  auto whole = Sha256File(path);
  REQUIRE(whole.ok());
  CHECK(*whole == Sha256("abc" + big));
  CHECK(Sha256File(dir.str() + "/missing").status().code() == absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace steward::signing
