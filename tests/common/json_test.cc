// Tests for common/json.h: records to JSON, always valid UTF-8 and lossless.
#include "common/json.h"

#include <catch2/catch.hpp>

#include <string>

#include "absl/strings/escaping.h"
#include "proto/steward.pb.h"

namespace steward::json {
namespace {

// `bytes` as stdout of a result, converted, dumped and parsed back.
nlohmann::json StdoutJson(const std::string& bytes) {
  proto::CommandState s;
  s.mutable_result()->set_stdout(bytes);
  const std::string text = ToJson(s).dump();  // throws on invalid UTF-8
  return nlohmann::json::parse(text)["result"];
}

// The bytes carried as "<name>_base64".
std::string FromBase64(const nlohmann::json& value) {
  std::string out;
  REQUIRE(absl::Base64Unescape(value.get<std::string>(), &out));
  return out;
}

TEST_CASE("valid UTF-8 is strict: no overlongs, surrogates or code points past U+10FFFF", "[json]") {
  CHECK(IsValidUtf8(""));
  CHECK(IsValidUtf8("plain ASCII\n\t\x01\x7f"));
  CHECK(IsValidUtf8("\xC3\xBC"));          // ü
  CHECK(IsValidUtf8("\xE2\x82\xAC"));      // €
  CHECK(IsValidUtf8("\xF0\x9F\x98\x80"));  // U+1F600, four bytes
  CHECK(IsValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF, the last
  CHECK_FALSE(IsValidUtf8("\xFF"));
  CHECK_FALSE(IsValidUtf8("caf\xE9"));           // Latin-1
  CHECK_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong, three bytes
  CHECK_FALSE(IsValidUtf8("\xED\xA0\x80"));      // U+D800, a surrogate
  CHECK_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // U+110000
  CHECK_FALSE(IsValidUtf8("\xF0\x9F\x98"));      // cut short
  CHECK_FALSE(IsValidUtf8(std::string("a\0\xFF", 3)));
}

TEST_CASE("text output is a string under its field name, control characters escaped", "[json]") {
  nlohmann::json r = StdoutJson("line 1\n\x1b[31mred\x01 \xF0\x9F\x98\x80");
  REQUIRE(r.contains("stdout"));
  CHECK_FALSE(r.contains("stdout_base64"));
  CHECK(r["stdout"] == "line 1\n\x1b[31mred\x01 \xF0\x9F\x98\x80");
  proto::Ack ack;
  ack.set_stdout("\x1b\x01");
  CHECK(ToJson(ack).dump().find(R"("stdout":"\u001b\u0001")") != std::string::npos);
}

TEST_CASE("bytes that are not UTF-8 travel as <name>_base64, never as escaped high bytes", "[json]") {
  for (const std::string& bytes :
       {std::string("caf\xE9"), std::string("\xC0\xAF"), std::string("\xED\xA0\x80"),
        std::string("\xF4\x90\x80\x80"), std::string("ok\0\xFF", 4)}) {
    nlohmann::json r = StdoutJson(bytes);
    CHECK_FALSE(r.contains("stdout"));
    REQUIRE(r.contains("stdout_base64"));
    CHECK(FromBase64(r["stdout_base64"]) == bytes);
  }
  // The JSON text itself is valid UTF-8 and holds no escaped high byte.
  proto::Ack ack;
  ack.set_stderr("caf\xE9");
  const std::string text = ToJson(ack).dump();
  CHECK(IsValidUtf8(text));
  CHECK(text.find("\\u00e9") == std::string::npos);
}

TEST_CASE("a log message keeps its bytes, and a repeated field goes base64 as a whole", "[json]") {
  proto::LogEntry e;
  e.set_node("ship1");
  e.mutable_record()->set_message("bad \xFF byte");
  e.mutable_record()->set_severity(3);
  nlohmann::json j = nlohmann::json::parse(ToJson(e).dump());
  CHECK(j["node"] == "ship1");
  CHECK(j["record"]["severity"] == 3);
  CHECK(FromBase64(j["record"]["message_base64"]) == "bad \xFF byte");

  proto::Envelope env;
  env.add_argv("echo");
  env.add_argv("\xFE");
  j = nlohmann::json::parse(ToJson(env).dump());
  CHECK_FALSE(j.contains("argv"));
  REQUIRE(j["argv_base64"].size() == 2);
  CHECK(FromBase64(j["argv_base64"][0]) == "echo");
  CHECK(FromBase64(j["argv_base64"][1]) == "\xFE");
}

TEST_CASE("every field under its proto name, enums by name, unset messages null", "[json]") {
  proto::CommandState s;
  s.set_id("01J0000000000000000000000A");
  s.set_node("ship1");
  s.set_state(proto::STATE_TIMED_OUT);
  s.mutable_command()->set_kind(proto::KIND_COMMAND);
  s.mutable_command()->set_method("shellcommand");
  s.mutable_command()->add_argv("sleep");
  s.mutable_command()->set_signature("\x01\x02");
  nlohmann::json j = nlohmann::json::parse(ToJson(s).dump());
  CHECK(j["state"] == "timed_out");
  CHECK(j["result"].is_null());
  CHECK(j["attempts"] == 0);
  CHECK(j["command"]["kind"] == "command");
  CHECK(j["command"]["argv"] == nlohmann::json::array({"sleep"}));
  CHECK(j["command"]["shell"].is_null());
  CHECK(FromBase64(j["command"]["signature_base64"]) == "\x01\x02");  // never text
  CHECK(j["command"]["payload"] == "");

  s.mutable_result()->set_outcome(proto::OUTCOME_TIMED_OUT);
  s.mutable_result()->set_stage(proto::STAGE_RESULT);
  s.mutable_result()->set_term_signal(15);
  j = nlohmann::json::parse(ToJson(s).dump());
  CHECK(j["result"]["outcome"] == "timed_out");
  CHECK(j["result"]["stage"] == "result");
  CHECK(j["result"]["term_signal"] == 15);

  proto::NodeInfo n;
  n.set_name("ship1");
  n.set_status(proto::NODE_PENDING);
  n.set_last_heard_unix_ms(1'700'000'000'123);
  n.set_pending_key("\x03");
  j = nlohmann::json::parse(ToJson(n).dump());
  CHECK(j["name"] == "ship1");
  CHECK(j["status"] == "pending");
  CHECK(j["online"] == false);
  CHECK(j["last_heard_unix_ms"] == 1'700'000'000'123);
  CHECK(j["methods"] == nlohmann::json::array());
  CHECK(FromBase64(j["pending_key_base64"]) == "\x03");
  CHECK(FromBase64(j["public_key_base64"]).empty());
}

TEST_CASE("fields come in the order the proto declares them", "[json]") {
  proto::CommandState s;
  const std::string text = ToJson(s).dump();
  CHECK(text.rfind(R"({"id":"","node":"","request_id":"","state":)", 0) == 0);
}

}  // namespace
}  // namespace steward::json
