// libFuzzer target for message decoding: DecodeEnvelope and DecodeAck on arbitrary
// bytes (what decodes re-serializes and decodes again), and VerifyEnvelope against a
// fixed trusted key, which must only ever return a status. Signing a decoded envelope
// with that key must make it verify.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "fuzz/fixed_key.h"
#include "fuzz/fuzz_check.h"
#include "google/protobuf/stubs/logging.h"
#include "proto/steward.pb.h"

namespace {

const steward::signing::TrustedKeys& Trusted() {
  // TrustedKeys holds a mutex (not movable): built in place and kept for the process.
  static const steward::signing::TrustedKeys* const trusted = [] {
    auto* t = new steward::signing::TrustedKeys;
    t->Add(steward::fuzz::FixedKeyPair().public_key);
    return t;
  }();
  return *trusted;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // Many inputs are refused for invalid UTF-8 in string fields; protobuf would log each.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  const steward::signing::TrustedKeys& trusted = Trusted();

  if (absl::StatusOr<steward::proto::Envelope> env = steward::DecodeEnvelope(bytes); env.ok()) {
    std::string again;
    FUZZ_CHECK(env->SerializeToString(&again));
    FUZZ_CHECK(steward::DecodeEnvelope(again).ok());
    (void)steward::signing::VerifyEnvelope(*env, trusted);

    steward::proto::Envelope resigned = *env;
    FUZZ_CHECK(steward::signing::SignEnvelope(resigned, steward::fuzz::FixedKeyPair()).ok());
    FUZZ_CHECK(steward::signing::VerifyEnvelope(resigned, trusted).ok());
  }

  if (absl::StatusOr<steward::proto::Ack> ack = steward::DecodeAck(bytes); ack.ok()) {
    std::string again;
    FUZZ_CHECK(ack->SerializeToString(&again));
    FUZZ_CHECK(steward::DecodeAck(again).ok());
  }

  // Verification also sees envelopes DecodeEnvelope would refuse (any version, kind, id).
  steward::proto::Envelope raw;
  if (raw.ParseFromArray(data, static_cast<int>(size))) {
    (void)steward::signing::VerifyEnvelope(raw, trusted);
  }
  return 0;
}
