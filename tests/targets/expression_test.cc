// Target expressions (targets/expression.h): the grammar, its errors with columns, and
// what matches, against hand-made node views.
#include "targets/expression.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

namespace steward::targets {
namespace {

struct Fleet {
  std::vector<proto::Facts> facts;
  std::vector<std::map<std::string, std::string>> tags;
  std::vector<NodeView> views;
};

// ship1: debian radar north, online; ship2: ubuntu engine south, offline, group web;
// ship3: debian, no tags, custom fact fleet=north, in maintenance.
Fleet MakeFleet() {
  Fleet f;
  f.facts.resize(3);
  f.tags.resize(3);
  f.facts[0].set_os("debian");
  f.facts[0].set_os_version("12");
  f.facts[0].set_arch("x86_64");
  f.facts[1].set_os("ubuntu");
  f.facts[1].set_arch("aarch64");
  f.facts[2].set_os("debian");
  f.facts[2].set_arch("x86_64");
  (*f.facts[2].mutable_custom())["fleet"] = "north";
  f.tags[0] = {{"role", "radar"}, {"region", "north"}};
  f.tags[1] = {{"role", "engine"}, {"region", "south"}};
  for (int i = 0; i < 3; ++i) {
    NodeView v;
    v.name = "ship" + std::to_string(i + 1);
    v.online = i != 1;
    v.status = v.online ? "online" : "offline";
    v.maintenance = i == 2;
    v.hostname = "host-" + v.name;
    v.agent_version = "0.1.0";
    f.views.push_back(v);
  }
  for (int i = 0; i < 3; ++i) {
    f.views[i].facts = &f.facts[i];
    f.views[i].tags = &f.tags[i];
  }
  f.views[1].in_group = [](const std::string& g) { return g == "web"; };
  return f;
}

// The names of the nodes `text` matches.
std::vector<std::string> Match(const std::string& text) {
  static const Fleet fleet = MakeFleet();
  absl::StatusOr<Expression> e = Expression::Parse(text);
  INFO(text << ": " << e.status().ToString());
  REQUIRE(e.ok());
  std::vector<std::string> out;
  for (const NodeView& v : fleet.views) {
    if (e->Matches(v)) out.push_back(v.name);
  }
  return out;
}

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<Expression> e = Expression::Parse(text);
  REQUIRE_FALSE(e.ok());
  CHECK(absl::IsInvalidArgument(e.status()));
  return std::string(e.status().message());
}

using V = std::vector<std::string>;

TEST_CASE("comparisons, globs and lists select by facts, tags and names", "[targets]") {
  CHECK(Match(R"(os == "debian")") == V{"ship1", "ship3"});
  CHECK(Match(R"(os != "debian")") == V{"ship2"});
  CHECK(Match(R"(tag.role == "radar")") == V{"ship1"});
  CHECK(Match(R"(name =~ "ship[12]")") == V{"ship1", "ship2"});
  CHECK(Match(R"(hostname !~ "*3")") == V{"ship1", "ship2"});
  CHECK(Match(R"(arch in ["aarch64", "riscv64"])") == V{"ship2"});
  CHECK(Match(R"(os not in ['ubuntu'])") == V{"ship1", "ship3"});
  CHECK(Match(R"(fact.fleet == "north")") == V{"ship3"});
  CHECK(Match(R"(os_version == "12" and agent_version == "0.1.0")") == V{"ship1"});
  CHECK(Match(R"(status == "offline")") == V{"ship2"});
  CHECK(Match(R"(@web)") == V{"ship2"});
  CHECK(Match("true") == V{"ship1", "ship2", "ship3"});
  CHECK(Match("false").empty());
}

TEST_CASE("a missing tag or fact is the empty string", "[targets]") {
  CHECK(Match(R"(tag.role != "radar")") == V{"ship2", "ship3"});
  CHECK(Match(R"(tag.role == "")") == V{"ship3"});
  CHECK(Match(R"(fact.fleet == "")") == V{"ship1", "ship2"});
}

TEST_CASE("flags stand alone or compare with true and false", "[targets]") {
  CHECK(Match("online") == V{"ship1", "ship3"});
  CHECK(Match("not online") == V{"ship2"});
  CHECK(Match("not maintenance") == V{"ship1", "ship2"});
  CHECK(Match("maintenance == true") == V{"ship3"});
  CHECK(Match("online != true") == V{"ship2"});
  CHECK(Match("online == false") == V{"ship2"});
}

TEST_CASE("not binds tighter than and, and tighter than or, parentheses group", "[targets]") {
  // or of ands: (debian and radar) or ubuntu
  CHECK(Match(R"(os == "debian" and tag.role == "radar" or os == "ubuntu")") == V{"ship1", "ship2"});
  // and over a parenthesised or
  CHECK(Match(R"(os == "debian" and (tag.role == "radar" or maintenance))") == V{"ship1", "ship3"});
  CHECK(Match(R"(not os == "debian" or maintenance)") == V{"ship2", "ship3"});
  CHECK(Match(R"(not (os == "debian" or maintenance))") == V{"ship2"});
  CHECK(Match("not not online") == V{"ship1", "ship3"});
  CHECK(Match(R"(os == "debian" and tag.role == "radar" and not maintenance)") == V{"ship1"});
}

TEST_CASE("strings take either quote and escapes", "[targets]") {
  CHECK(Match(R"(name == 'ship1')") == V{"ship1"});
  CHECK(Match(R"(tag.role == "ra\"dar" or name == "ship\\2")").empty());
  CHECK(Match(R"(os in ["debian",])") == V{"ship1", "ship3"});  // a trailing comma
}

TEST_CASE("bad syntax is refused with the column where it goes wrong", "[targets]") {
  CHECK(ErrorOf(R"(os == "debian" and tag.role == radar)") ==
        R"(at column 32: expected a quoted string after ==, found radar (write "radar"))");
  CHECK(ErrorOf("") ==
        "at column 1: expected a condition (a field such as os, tag.KEY, or @GROUP, or `not`, "
        "or a parenthesis), found the end");
  CHECK(ErrorOf(R"(os = "debian")") == "at column 4: expected == or =~ (a single = compares nothing)");
  CHECK(ErrorOf(R"((os == "debian")") == "at column 16: expected ) to close the ( at column 1, found the end");
  CHECK(ErrorOf(R"(os == "debian" online)") == "at column 16: expected `and`, `or` or the end, found online");
  CHECK(ErrorOf(R"(os == "debian)") == "at column 7: unterminated string: it opens here and has no closing \"");
  CHECK(ErrorOf(R"(os == "debian" && online)") == "at column 16: unexpected & (write `and`, `or`)");
  CHECK(ErrorOf("os") == "at column 3: expected ==, !=, =~, !~ or in after os, found the end");
  CHECK(ErrorOf(R"(os in "debian")") ==
        R"(at column 7: expected [ after in (as in os in ["debian", "ubuntu"]), found the string "debian")");
  CHECK(ErrorOf(R"(os in ["a" "b"])") == R"(at column 12: expected , or ] in the list, found the string "b")");
  CHECK(ErrorOf(R"(online == "yes")") ==
        R"(at column 11: online is true or false: expected true or false after ==, found the string "yes")");
  CHECK(ErrorOf(R"(online =~ "y*")") ==
        "at column 8: online is true or false: use it alone (online, not online) or compare it with == true");
  CHECK(ErrorOf(R"(name == "x" and)") ==
        "at column 16: expected a condition (a field such as os, tag.KEY, or @GROUP, or `not`, or a "
        "parenthesis), found the end");
  CHECK(ErrorOf(R"(os not "debian")") == R"(at column 8: expected `in` after `os not`, found the string "debian")");
  CHECK(ErrorOf("@") == "at column 1: expected a group name after @ (as in @web)");
  CHECK(ErrorOf(R"(name == "a\qb")") == R"(at column 11: unknown escape \q in a string (use \\ for a backslash))");
}

TEST_CASE("nesting deeper than 64 levels is refused, however deep the text goes", "[targets]") {
  auto nested = [](int n, const std::string& open, const std::string& close) {
    std::string text;
    for (int i = 0; i < n; ++i) text += open;
    text += "online";
    for (int i = 0; i < n; ++i) text += close;
    return text;
  };
  CHECK(Expression::Parse(nested(64, "(", ")")).ok());
  CHECK(Expression::Parse(nested(64, "not ", "")).ok());
  CHECK(ErrorOf(nested(65, "(", ")")) == "at column 65: nested deeper than 64 levels of ( and not");
  CHECK(ErrorOf(nested(65, "not ", "")) == "at column 257: nested deeper than 64 levels of ( and not");
  // Deep enough to overflow a stack without the limit: refused, not a crash.
  CHECK_THAT(ErrorOf(nested(200000, "(", ")")), Catch::Contains("nested deeper than 64 levels"));
  CHECK_THAT(ErrorOf(nested(200000, "not ", "")), Catch::Contains("nested deeper than 64 levels"));
}

TEST_CASE("columns count characters, not bytes", "[targets]") {
  // "é" is two bytes: the error is at the 15th character, the 16th byte.
  CHECK(ErrorOf(R"(name == "é" or ==)") ==
        "at column 16: expected a condition (a field such as os, tag.KEY, or @GROUP, or `not`, or a "
        "parenthesis), found ==");
}

TEST_CASE("unknown fields are errors, with the near miss", "[targets]") {
  CHECK(ErrorOf(R"(tags.role == "radar")") ==
        R"(at column 1: unknown field "tags.role" (did you mean "tag.role"?); the fields are name, hostname, )"
        "status, os, os_version, arch, kernel, agent_version, online, maintenance, tag.KEY, fact.KEY and @GROUP");
  CHECK_THAT(ErrorOf(R"(os == "debian" and hostnme == "x")"),
             Catch::StartsWith(R"(at column 20: unknown field "hostnme" (did you mean "hostname"?))"));
  CHECK_THAT(ErrorOf(R"(region == "north")"), Catch::StartsWith(R"(at column 1: unknown field "region"; the fields)"));
  CHECK(ErrorOf(R"(tag == "x")") == "at column 1: tag needs a key: tag.KEY (as in tag.role)");
  CHECK(ErrorOf(R"(fact. == "x")") == "at column 1: fact needs a key: fact.KEY (as in fact.fleet)");
}

TEST_CASE("the caret points under the column of the error", "[targets]") {
  const std::string text = R"(os == "debian" and tag.role == radar)";
  absl::StatusOr<Expression> e = Expression::Parse(text);
  REQUIRE_FALSE(e.ok());
  CHECK(Caret(text, e.status()) == "  " + text + "\n  " + std::string(31, ' ') + "^");
  CHECK(Caret(text, absl::InvalidArgumentError("no column here")).empty());
}

TEST_CASE("keys, values and node globs are checked", "[targets]") {
  CHECK(ValidateKey("role").ok());
  CHECK(ValidateKey("a.b-c_9").ok());
  CHECK_FALSE(ValidateKey("").ok());
  CHECK_FALSE(ValidateKey("-x").ok());
  CHECK_FALSE(ValidateKey("a b").ok());
  CHECK_FALSE(ValidateKey(std::string(65, 'k')).ok());
  CHECK(ValidateValue("north west").ok());
  CHECK(ValidateValue("").ok());
  CHECK(ValidateValue("é").ok());
  CHECK_FALSE(ValidateValue("a\nb").ok());
  CHECK_FALSE(ValidateValue("\xff").ok());
  CHECK_FALSE(ValidateValue(std::string(257, 'v')).ok());
  CHECK(IsGlob("ship*"));
  CHECK(IsGlob("ship[12]"));
  CHECK_FALSE(IsGlob("ship1"));
  CHECK(GlobMatch("ship*", "ship12"));
  CHECK_FALSE(GlobMatch("ship?", "ship12"));
}

TEST_CASE("the empty expression matches every node", "[targets]") {
  const Fleet fleet = MakeFleet();
  const Expression all;
  for (const NodeView& v : fleet.views) CHECK(all.Matches(v));
  CHECK(all.text().empty());
}

}  // namespace
}  // namespace steward::targets
