// Tests for the subject grammar: validation, Make/Parse round trips, patterns, Sanitize.
#include "subjects/subject.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace steward::subjects {
namespace {

using Catch::Matchers::Contains;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// Parse must fail with InvalidArgument; returns the message.
std::string ParseError(absl::string_view text) {
  absl::StatusOr<Subject> s = Parse(text);
  INFO("subject: " << std::string(text));
  REQUIRE_FALSE(s.ok());
  CHECK(absl::IsInvalidArgument(s.status()));
  return Message(s.status());
}

// ValidateToken must fail with InvalidArgument; returns the message.
std::string TokenError(absl::string_view token) {
  absl::Status s = ValidateToken(token);
  INFO("token: " << std::string(token));
  REQUIRE_FALSE(s.ok());
  CHECK(absl::IsInvalidArgument(s));
  return Message(s);
}

TEST_CASE("KindName and ParseKind", "[subjects]") {
  CHECK(KindName(Kind::kCommand) == "command");
  CHECK(KindName(Kind::kEvent) == "event");

  REQUIRE(ParseKind("command").ok());
  CHECK(*ParseKind("command") == Kind::kCommand);
  REQUIRE(ParseKind("event").ok());
  CHECK(*ParseKind("event") == Kind::kEvent);

  for (const char* bad : {"cmd", "Command", "COMMAND", "Event", "events", "", " command",
                          "command ", "evt"}) {
    INFO("kind: " << bad);
    absl::StatusOr<Kind> k = ParseKind(bad);
    REQUIRE_FALSE(k.ok());
    CHECK(absl::IsInvalidArgument(k.status()));
    CHECK_THAT(Message(k.status()), Contains(absl::StrCat("\"", bad, "\"")));
    CHECK_THAT(Message(k.status()), Contains("is not command or event"));
  }
  CHECK(Message(ParseKind("cmd").status()) == "kind \"cmd\" is not command or event");
}

TEST_CASE("ValidateToken accepts ordinary tokens", "[subjects]") {
  for (const char* ok : {"a", "ship2", "shellcommand", "operatingsystem", "nginx[123]",
                         "my-app_1", "a:b", "a/b", "a@b", "a#b", "a$b", "a+b=c", "A~z",
                         "(x)", "{y}", "\"quoted\"", "back\\slash", "1", "_", "-", "!",
                         "<", "?", "%", "'"}) {
    INFO("token: " << ok);
    CHECK(ValidateToken(ok).ok());
  }
}

TEST_CASE("ValidateToken accepts UTF-8", "[subjects]") {
  for (const char* ok : {"skib\xc3\xa5", "\xc3\xa6\xc3\xb8\xc3\xa5",  // skibå, æøå
                         "\xe8\x88\xb9",                              // 船
                         "\xf0\x9f\x9a\xa2",                          // 🚢
                         "\x80", "\xff"}) {
    INFO("token: " << ok);
    CHECK(ValidateToken(ok).ok());
  }
}

TEST_CASE("ValidateToken rejects empty tokens", "[subjects]") {
  CHECK(TokenError("") == "token is empty");
}

TEST_CASE("ValidateToken length limit", "[subjects]") {
  CHECK(kMaxTokenLength == 64);
  CHECK(ValidateToken(std::string(64, 'a')).ok());
  CHECK(ValidateToken(std::string(63, 'a')).ok());

  const std::string too_long = std::string(65, 'a');
  const std::string msg = TokenError(too_long);
  CHECK_THAT(msg, Contains("65 bytes"));
  CHECK_THAT(msg, Contains("the limit is 64"));
  CHECK_THAT(msg, Contains(absl::StrCat("\"", std::string(16, 'a'), "...\"")));

  const std::string seventy = "abcdefghijklmnopqrstuvwxyz" + std::string(44, 'x');
  REQUIRE(seventy.size() == 70);
  CHECK(TokenError(seventy) == "token \"abcdefghijklmnop...\" is 70 bytes, the limit is 64");

  // 64 bytes of UTF-8 is fine: 32 two-byte characters.
  std::string utf8;
  for (int i = 0; i < 32; ++i) utf8 += "\xc3\xa5";
  REQUIRE(utf8.size() == 64);
  CHECK(ValidateToken(utf8).ok());
  CHECK_THAT(TokenError(utf8 + "a"), Contains("65 bytes"));
}

TEST_CASE("ValidateToken rejects whitespace and control characters", "[subjects]") {
  CHECK(TokenError("a b") == "token \"a b\" contains a space");
  CHECK(TokenError(" ") == "token \" \" contains a space");
  CHECK(TokenError("a\tb") == "token \"a\\tb\" contains a tab");
  CHECK(TokenError("a\nb") == "token \"a\\nb\" contains a newline");
  CHECK(TokenError("a\rb") == "token \"a\\rb\" contains a carriage return");
  CHECK(TokenError("a\x7f" "b") == "token \"a\\x7fb\" contains control character 0x7f (DEL)");
  CHECK(TokenError(std::string("a\0b", 3)) ==
        "token \"a\\x00b\" contains control character 0x00");
  CHECK(TokenError("a\x1b" "b") == "token \"a\\x1bb\" contains control character 0x1b");

  // Every control byte is refused, and the message never contains a raw control byte.
  for (int b = 0; b < 0x20; ++b) {
    const std::string token = absl::StrCat("x", std::string(1, static_cast<char>(b)), "y");
    INFO("byte " << b);
    const std::string msg = TokenError(token);
    for (const char c : msg) {
      CHECK(static_cast<unsigned char>(c) >= 0x20);
    }
  }
  TokenError("\x7f");
}

TEST_CASE("ValidateToken rejects '.', '*' and '>'", "[subjects]") {
  CHECK(TokenError("x*") == "token \"x*\" contains '*'");
  CHECK(TokenError("*") == "token \"*\" contains '*'");
  CHECK(TokenError(">") == "token \">\" contains '>'");
  CHECK(TokenError("a>b") == "token \"a>b\" contains '>'");
  CHECK(TokenError("a.b") == "token \"a.b\" contains '.'");
  CHECK(TokenError(".") == "token \".\" contains '.'");
  CHECK(TokenError("a.") == "token \"a.\" contains '.'");
  // The first offending byte is reported.
  CHECK_THAT(TokenError("a*b.c"), Contains("contains '*'"));
  CHECK_THAT(TokenError("a.b*c"), Contains("contains '.'"));
}

TEST_CASE("Valid subjects round-trip through Parse and ToString", "[subjects]") {
  for (const char* text : {"ship2.command.shellcommand.operatingsystem",
                           "ship2.event.log.syslog", "a.command.b.c", "a.event.b.c",
                           "edge-01.command.exec.shell", "nginx[123].event.restart.service",
                           "skib\xc3\xa5.event.m\xc3\xa5ling.dom\xc3\xa6ne"}) {
    INFO("subject: " << text);
    absl::StatusOr<Subject> s = Parse(text);
    REQUIRE(s.ok());
    CHECK(s->ToString() == text);
    absl::StatusOr<Subject> again = Parse(s->ToString());
    REQUIRE(again.ok());
    CHECK(*again == *s);
  }

  absl::StatusOr<Subject> s = Parse("ship2.command.shellcommand.operatingsystem");
  REQUIRE(s.ok());
  CHECK(s->node == "ship2");
  CHECK(s->kind == Kind::kCommand);
  CHECK(s->method == "shellcommand");
  CHECK(s->domain == "operatingsystem");

  absl::StatusOr<Subject> e = Parse("ship2.event.log.syslog");
  REQUIRE(e.ok());
  CHECK(e->kind == Kind::kEvent);

  // Longest tokens everywhere.
  const std::string t64(64, 'z');
  const std::string longest = absl::StrCat(t64, ".event.", t64, ".", t64);
  absl::StatusOr<Subject> l = Parse(longest);
  REQUIRE(l.ok());
  CHECK(l->ToString() == longest);
}

TEST_CASE("Make builds the same subject Parse reads", "[subjects]") {
  absl::StatusOr<Subject> m = Make("ship2", Kind::kCommand, "shellcommand", "operatingsystem");
  REQUIRE(m.ok());
  CHECK(m->ToString() == "ship2.command.shellcommand.operatingsystem");
  absl::StatusOr<Subject> p = Parse(m->ToString());
  REQUIRE(p.ok());
  CHECK(*p == *m);

  absl::StatusOr<Subject> ev = Make("n", Kind::kEvent, "m", "d");
  REQUIRE(ev.ok());
  CHECK(ev->ToString() == "n.event.m.d");

  CHECK(*Make("a", Kind::kEvent, "b", "c") != *Make("a", Kind::kCommand, "b", "c"));
}

TEST_CASE("Make rejects bad tokens and names them", "[subjects]") {
  auto make_error = [](absl::string_view node, absl::string_view method,
                       absl::string_view domain) {
    absl::StatusOr<Subject> s = Make(node, Kind::kCommand, method, domain);
    REQUIRE_FALSE(s.ok());
    CHECK(absl::IsInvalidArgument(s.status()));
    return Message(s.status());
  };
  CHECK(make_error("ship 1", "m", "d") == "node name \"ship 1\" contains a space");
  CHECK(make_error("", "m", "d") == "node name is empty");
  CHECK(make_error("n", "", "d") == "method name is empty");
  CHECK(make_error("n", "m", "") == "domain name is empty");
  CHECK(make_error("*", "m", "d") == "node name \"*\" contains '*'");
  CHECK(make_error(">", "m", "d") == "node name \">\" contains '>'");
  CHECK(make_error("a.b", "m", "d") == "node name \"a.b\" contains '.'");
  CHECK(make_error("n", "exec*", "d") == "method name \"exec*\" contains '*'");
  CHECK(make_error("n", "m", "sh>ell") == "domain name \"sh>ell\" contains '>'");
  CHECK(make_error("n", "m\tx", "d") == "method name \"m\\tx\" contains a tab");
  CHECK_THAT(make_error(std::string(65, 'n'), "m", "d"), Contains("65 bytes"));
  CHECK(Make(std::string(64, 'n'), Kind::kCommand, std::string(64, 'm'), std::string(64, 'd'))
            .ok());
}

TEST_CASE("Parse rejects wrong token counts", "[subjects]") {
  CHECK_THAT(ParseError(""), Contains("empty"));
  CHECK_THAT(ParseError(""), Contains("<node>.<command|event>.<method>.<domain>"));

  CHECK(ParseError("a.b.c") ==
        "subject \"a.b.c\" has 3 tokens, want 4 (<node>.<command|event>.<method>.<domain>)");
  CHECK_THAT(ParseError("ship2"), Contains("\"ship2\" has 1 token,"));
  CHECK_THAT(ParseError("a.command"), Contains("has 2 tokens"));
  CHECK_THAT(ParseError("a.command.b.c.d"), Contains("\"a.command.b.c.d\" has 5 tokens"));
  CHECK_THAT(ParseError("a.command.b.c.d.e.f"), Contains("has 7 tokens"));
  // Leading / trailing dots add an (empty) token.
  CHECK_THAT(ParseError("a.command.b.c."), Contains("has 5 tokens"));
  CHECK_THAT(ParseError(".a.command.b.c"), Contains("has 5 tokens"));
  CHECK_THAT(ParseError("."), Contains("has 2 tokens"));
  CHECK_THAT(ParseError("..."), Contains("token 1 is empty"));
  CHECK_THAT(ParseError(">"), Contains("has 1 token"));
  CHECK_THAT(ParseError("edge.>"), Contains("has 2 tokens"));
}

TEST_CASE("Parse rejects an empty token in each position", "[subjects]") {
  CHECK(ParseError("a..b.c") == "invalid subject \"a..b.c\": token 2 is empty");
  CHECK(ParseError(".command.b.c") == "invalid subject \".command.b.c\": token 1 is empty");
  CHECK(ParseError("a.command..c") == "invalid subject \"a.command..c\": token 3 is empty");
  CHECK(ParseError("a.command.b.") == "invalid subject \"a.command.b.\": token 4 is empty");
}

TEST_CASE("Parse rejects whitespace and control characters", "[subjects]") {
  CHECK(ParseError("ship 1.command.b.c") ==
        "invalid subject \"ship 1.command.b.c\": token 1 \"ship 1\" contains a space");
  CHECK_THAT(ParseError("a.command.b c.d"), Contains("token 3 \"b c\" contains a space"));
  CHECK_THAT(ParseError("a.command.b.c "), Contains("token 4 \"c \" contains a space"));
  CHECK_THAT(ParseError("a.command .b.c"), Contains("token 2 \"command \" contains a space"));
  CHECK_THAT(ParseError("a\tb.command.b.c"), Contains("\"a\\tb\" contains a tab"));
  CHECK_THAT(ParseError("a.command.b.c\n"), Contains("\"c\\n\" contains a newline"));
  CHECK_THAT(ParseError("a.command.b\x7f.c"), Contains("\"b\\x7f\" contains control character"));
  CHECK_THAT(ParseError(std::string("a.command.b.c\0", 14)),
             Contains("\"c\\x00\" contains control character 0x00"));
}

TEST_CASE("Parse rejects wildcards inside tokens", "[subjects]") {
  CHECK(ParseError("*.command.exec.shell") ==
        "invalid subject \"*.command.exec.shell\": token 1 \"*\" contains '*'");
  CHECK_THAT(ParseError("edge.*.exec.shell"), Contains("token 2 \"*\" contains '*'"));
  CHECK_THAT(ParseError("edge.command.*.shell"), Contains("token 3 \"*\" contains '*'"));
  CHECK_THAT(ParseError("edge.command.*.*"), Contains("token 3 \"*\" contains '*'"));
  CHECK_THAT(ParseError("edge.command.exec.>"), Contains("token 4 \">\" contains '>'"));
  CHECK_THAT(ParseError("edge.command.ex*ec.shell"), Contains("\"ex*ec\" contains '*'"));
  CHECK_THAT(ParseError("ed>ge.command.exec.shell"), Contains("\"ed>ge\" contains '>'"));
  // "edge.command.>" is a wildcard subscription, never a subject.
  CHECK_THAT(ParseError("edge.command.>"), Contains("has 3 tokens"));
  CHECK_THAT(ParseError("edge.command.>"), Contains("\"edge.command.>\""));
  CHECK_THAT(ParseError(">.command.exec.shell"), Contains("token 1 \">\" contains '>'"));
}

TEST_CASE("Parse rejects a bad kind", "[subjects]") {
  CHECK(ParseError("a.cmd.b.c") ==
        "invalid subject \"a.cmd.b.c\": kind \"cmd\" is not command or event");
  CHECK_THAT(ParseError("a.Command.b.c"), Contains("kind \"Command\" is not command or event"));
  CHECK_THAT(ParseError("a.EVENT.b.c"), Contains("kind \"EVENT\""));
  CHECK_THAT(ParseError("a.events.b.c"), Contains("kind \"events\""));
  // The token rules come first: a kind with a wildcard is reported as such.
  CHECK_THAT(ParseError("a.comm*nd.b.c"), Contains("\"comm*nd\" contains '*'"));
}

TEST_CASE("Parse enforces the token length limit", "[subjects]") {
  const std::string t64(64, 'a');
  const std::string t65(65, 'b');
  CHECK(Parse(absl::StrCat(t64, ".command.m.d")).ok());
  CHECK(Parse(absl::StrCat("n.command.", t64, ".d")).ok());
  CHECK(Parse(absl::StrCat("n.command.m.", t64)).ok());

  const std::string msg = ParseError(absl::StrCat(t65, ".command.m.d"));
  CHECK_THAT(msg, Contains("token 1 \"bbbbbbbbbbbbbbbb...\" is 65 bytes, the limit is 64"));
  CHECK_THAT(ParseError(absl::StrCat("n.command.", t65, ".d")),
             Contains("token 3 \"bbbbbbbbbbbbbbbb...\" is 65 bytes"));
  CHECK_THAT(ParseError(absl::StrCat("n.command.m.", t65)),
             Contains("token 4 \"bbbbbbbbbbbbbbbb...\" is 65 bytes"));
  const std::string k65 = "command" + std::string(58, 'x');
  CHECK_THAT(ParseError(absl::StrCat("n.", k65, ".m.d")),
             Contains("token 2 \"commandxxxxxxxxx...\""));

  // A huge subject does not produce a huge message.
  const std::string huge = absl::StrCat(std::string(100000, 'h'), ".command.m.d");
  CHECK(ParseError(huge).size() < 400);
}

TEST_CASE("Parse accepts UTF-8 tokens", "[subjects]") {
  const std::string text = "\xe8\x88\xb9.event.\xf0\x9f\x9a\xa2.d\xc3\xa5";
  absl::StatusOr<Subject> s = Parse(text);
  REQUIRE(s.ok());
  CHECK(s->node == "\xe8\x88\xb9");
  CHECK(s->method == "\xf0\x9f\x9a\xa2");
  CHECK(s->domain == "d\xc3\xa5");
  CHECK(s->ToString() == text);
  // UTF-8 stays readable in error messages.
  CHECK_THAT(ParseError("skib\xc3\xa5 1.command.m.d"), Contains("\"skib\xc3\xa5 1\""));
}

TEST_CASE("KindPattern", "[subjects]") {
  absl::StatusOr<std::string> p = KindPattern("ship2", Kind::kCommand);
  REQUIRE(p.ok());
  CHECK(*p == "ship2.command.*.*");
  REQUIRE(KindPattern("ship2", Kind::kEvent).ok());
  CHECK(*KindPattern("ship2", Kind::kEvent) == "ship2.event.*.*");

  for (const char* bad : {"a.b", "*", ">", "", "a b", "a\tb", "edge.>", "x*"}) {
    INFO("node: " << bad);
    absl::StatusOr<std::string> r = KindPattern(bad, Kind::kCommand);
    REQUIRE_FALSE(r.ok());
    CHECK(absl::IsInvalidArgument(r.status()));
    CHECK_THAT(Message(r.status()), Contains("node name"));
  }
  CHECK(Message(KindPattern("a.b", Kind::kCommand).status()) ==
        "node name \"a.b\" contains '.'");
  CHECK_FALSE(KindPattern(std::string(65, 'n'), Kind::kEvent).ok());
  CHECK(KindPattern(std::string(64, 'n'), Kind::kEvent).ok());
}

TEST_CASE("MethodPattern", "[subjects]") {
  absl::StatusOr<std::string> p = MethodPattern("ship2", Kind::kCommand, "shellcommand");
  REQUIRE(p.ok());
  CHECK(*p == "ship2.command.shellcommand.*");
  CHECK(*MethodPattern("n", Kind::kEvent, "log") == "n.event.log.*");

  for (const char* bad : {"a.b", "*", ">", "", "a b"}) {
    INFO("bad: " << bad);
    absl::StatusOr<std::string> r = MethodPattern(bad, Kind::kCommand, "m");
    REQUIRE_FALSE(r.ok());
    CHECK(absl::IsInvalidArgument(r.status()));
    CHECK_THAT(Message(r.status()), Contains("node name"));

    r = MethodPattern("n", Kind::kCommand, bad);
    REQUIRE_FALSE(r.ok());
    CHECK(absl::IsInvalidArgument(r.status()));
    CHECK_THAT(Message(r.status()), Contains("method name"));
  }
  CHECK(Message(MethodPattern("n", Kind::kEvent, "exec*").status()) ==
        "method name \"exec*\" contains '*'");
}

TEST_CASE("NodePattern", "[subjects]") {
  absl::StatusOr<std::string> p = NodePattern("ship2");
  REQUIRE(p.ok());
  CHECK(*p == "ship2.>");
  for (const char* bad : {"a.b", "*", ">", "", "ship 1", "a\nb"}) {
    INFO("node: " << bad);
    absl::StatusOr<std::string> r = NodePattern(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(absl::IsInvalidArgument(r.status()));
  }
  CHECK(Message(NodePattern(">").status()) == "node name \">\" contains '>'");
  CHECK(Message(NodePattern("*").status()) == "node name \"*\" contains '*'");
  CHECK(Message(NodePattern("").status()) == "node name is empty");
}

TEST_CASE("Patterns agree with Parse", "[subjects]") {
  // A subject built from the same node starts with the pattern's literal prefix.
  absl::StatusOr<Subject> s = Make("edge-7", Kind::kEvent, "log", "syslog");
  REQUIRE(s.ok());
  const std::string text = s->ToString();
  CHECK(text.rfind("edge-7.event.", 0) == 0);
  CHECK(*KindPattern("edge-7", Kind::kEvent) == "edge-7.event.*.*");
  CHECK(*MethodPattern("edge-7", Kind::kEvent, "log") == "edge-7.event.log.*");
  // Patterns are not subjects.
  CHECK_FALSE(Parse(*KindPattern("edge-7", Kind::kEvent)).ok());
  CHECK_FALSE(Parse(*MethodPattern("edge-7", Kind::kEvent, "log")).ok());
  CHECK_FALSE(Parse(*NodePattern("edge-7")).ok());
}

TEST_CASE("Sanitize examples", "[subjects]") {
  CHECK(Sanitize("nginx[123]") == "nginx[123]");
  CHECK(Sanitize("my app") == "my_app");
  CHECK(Sanitize("") == "_");
  CHECK(Sanitize("host.example.com") == "host_example_com");
  CHECK(Sanitize("*") == "_");
  CHECK(Sanitize(">") == "_");
  CHECK(Sanitize("a*b>c") == "a_b_c");
  CHECK(Sanitize("a\tb\nc\rd\x7f" "e") == "a_b_c_d_e");
  CHECK(Sanitize(std::string("a\0b", 3)) == "a_b");
  CHECK(Sanitize("   ") == "___");
  CHECK(Sanitize("skib\xc3\xa5") == "skib\xc3\xa5");
  CHECK(Sanitize("ok-token_1") == "ok-token_1");
  CHECK(Sanitize(std::string(64, 'a')) == std::string(64, 'a'));
  CHECK(Sanitize(std::string(65, 'a')) == std::string(64, 'a'));
  CHECK(Sanitize(std::string(1000, '.')) == std::string(64, '_'));
}

TEST_CASE("Sanitize does not split a UTF-8 character at the cut", "[subjects]") {
  // 63 ASCII bytes then a 2-byte character: byte 64 would be half of it.
  const std::string text = std::string(63, 'a') + "\xc3\xa5";
  CHECK(Sanitize(text) == std::string(63, 'a'));
  // A 4-byte character straddling the limit.
  const std::string emoji = std::string(62, 'a') + "\xf0\x9f\x9a\xa2" + "tail";
  CHECK(Sanitize(emoji) == std::string(62, 'a'));
  // A character ending exactly at the limit is kept.
  const std::string exact = std::string(62, 'a') + "\xc3\xa5" + "tail";
  CHECK(Sanitize(exact) == std::string(62, 'a') + "\xc3\xa5");
}

TEST_CASE("Sanitize output is always a valid token", "[subjects]") {
  std::vector<std::string> inputs = {
      "", " ", ".", "*", ">", "..", "*.*", ".>", "\t", "\n", "\r\n", "\x7f",
      std::string(1, '\0'), std::string(3, '\0'), "nginx[123]", "my app",
      "host.example.com", "edge.command.>", "*.command.exec.shell", "a b\tc\nd",
      std::string(64, 'x'), std::string(65, 'x'), std::string(200, ' '),
      std::string(200, '.'), std::string(1000, '>'), "\xc3\xa5", "\xe8\x88\xb9 \xe8\x88\xb9",
      std::string(63, 'a') + "\xc3\xa5", std::string(100, '\x80'), std::string(100, '\xff'),
      std::string(61, 'a') + "\xf0\x9f\x9a\xa2", "\xc3", "\x80", std::string(64, '\xc3'),
  };
  // Every single byte, alone and embedded.
  for (int b = 0; b < 256; ++b) {
    const std::string c(1, static_cast<char>(b));
    inputs.push_back(c);
    inputs.push_back(absl::StrCat("pre", c, "post"));
    inputs.push_back(std::string(70, static_cast<char>(b)));
  }
  // Long strings with a tricky byte at every position around the limit.
  for (size_t pos = 55; pos < 75; ++pos) {
    for (const char c : {' ', '.', '*', '>', '\t', '\x7f', '\xc3'}) {
      std::string s(80, 'q');
      s[pos] = c;
      inputs.push_back(s);
    }
  }
  for (const std::string& in : inputs) {
    const std::string out = Sanitize(in);
    INFO("input size " << in.size() << ": " << in);
    CHECK(ValidateToken(out).ok());
    CHECK(out.size() <= kMaxTokenLength);
    CHECK_FALSE(out.empty());
    // Sanitize is idempotent: a valid token passes through unchanged.
    CHECK(Sanitize(out) == out);
    // And the result can be a node name.
    CHECK(NodePattern(out).ok());
  }
}

TEST_CASE("Sanitize leaves valid tokens unchanged", "[subjects]") {
  for (const char* ok : {"a", "ship2", "nginx[123]", "my-app_1", "a:b", "skib\xc3\xa5"}) {
    REQUIRE(ValidateToken(ok).ok());
    CHECK(Sanitize(ok) == ok);
  }
}

}  // namespace
}  // namespace steward::subjects
