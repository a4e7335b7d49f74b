// Writes seed inputs for envelope_fuzzer into the directory given as argv[1]: valid
// envelopes (signed with the fuzzers' fixed key and unsigned) and ACKs. Run once when
// the protocol changes; the output is checked in under fuzz/corpus/envelope.
#include <cstdio>
#include <fstream>
#include <string>

#include "common/ids.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "fuzz/fixed_key.h"
#include "proto/steward.pb.h"

namespace {

bool Write(const std::string& dir, const char* name, const std::string& bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out << bytes;
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  namespace proto = steward::proto;
  bool ok = true;

  proto::Envelope ping = steward::NewEnvelope("station", "ship1", proto::KIND_COMMAND,
                                              steward::kMethodPing, "operatingsystem");
  ping.set_expires_unix_ms(ping.created_unix_ms() + 60000);
  ok &= steward::signing::SignEnvelope(ping, steward::fuzz::FixedKeyPair()).ok();
  ok &= Write(dir, "ping_signed", ping.SerializeAsString());

  proto::Envelope shell = steward::NewEnvelope("station", "ship2", proto::KIND_COMMAND,
                                               steward::kMethodShell, "operatingsystem");
  shell.add_argv("/bin/sh");
  shell.add_argv("-c");
  shell.add_argv("uname -a");
  shell.set_timeout_ms(5000);
  shell.set_request_id(steward::NewId());
  shell.set_operator_("alice");
  shell.mutable_shell()->set_working_dir("/tmp");
  shell.mutable_shell()->add_env("LANG=C");
  shell.mutable_shell()->set_max_output_bytes(4096);
  ok &= steward::signing::SignEnvelope(shell, steward::fuzz::FixedKeyPair()).ok();
  ok &= Write(dir, "shell_signed", shell.SerializeAsString());

  proto::Envelope event = steward::NewEnvelope("ship1", "station", proto::KIND_EVENT,
                                               steward::kEventHello, "steward");
  event.set_payload(std::string("\x00\x01\xff payload", 11));
  ok &= Write(dir, "hello_unsigned", event.SerializeAsString());

  proto::Ack received = steward::NewAck(ping.id(), "ship1", proto::STAGE_RECEIVED,
                                        proto::OUTCOME_UNSPECIFIED);
  ok &= Write(dir, "ack_received", received.SerializeAsString());
  proto::Ack result = steward::NewAck(shell.id(), "ship2", proto::STAGE_RESULT,
                                      proto::OUTCOME_FAILED);
  result.set_exit_code(1);
  result.set_stdout("Linux ship2\n");
  result.set_stderr("warning\n");
  result.set_stderr_truncated(true);
  result.set_started_unix_ms(shell.created_unix_ms());
  result.set_finished_unix_ms(shell.created_unix_ms() + 12);
  ok &= Write(dir, "ack_result", result.SerializeAsString());
  ok &= Write(dir, "ack_rejected",
              steward::RejectAck(ping.id(), "ship1", "expired").SerializeAsString());

  if (!ok) std::fprintf(stderr, "envelope_seeds: failed\n");
  return ok ? 0 : 1;
}
