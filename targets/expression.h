// Target expressions: which nodes a command is for, said by what they are.
//
//   os == "debian" and tag.role == "radar" and not maintenance
//   name =~ "ship*" and (fact.fleet in ["north", "west"] or @web)
//
// Grammar (a hand-written recursive descent; `not` binds tighter than `and`, `and`
// tighter than `or`):
//
//   expr     := and ("or" and)*
//   and      := unary ("and" unary)*
//   unary    := "not" unary | primary
//   primary  := "(" expr ")" | "@" GROUP | "true" | "false" | FIELD [test]
//   test     := ("==" | "!=" | "=~" | "!~") STRING | ["not"] "in" "[" STRING ("," STRING)* "]"
//
// Fields: text fields name, hostname, status, os, os_version, arch, kernel,
// agent_version, tag.KEY (an operator's tag) and fact.KEY (a custom fact from the
// agent's --facts file); flags online and maintenance, used alone (`not online`) or
// compared with true/false. `@web` holds for members of group web (the ACL groups).
// `=~` and `!~` match a glob (fnmatch: * ? [...]). Strings are quoted with " or ',
// with \" \' \\ \n \t escapes. A tag or fact a node does not have is "" (so
// `tag.role != "radar"` holds for a node without a role, and `tag.role == ""` finds
// them).
//
// Errors name the column (1-based, in characters) where the expression goes wrong:
// `at column 17: expected a quoted string after ==, found radar`. An unknown field is
// an error, never a silent false.
//
//   STEWARD_ASSIGN_OR_RETURN(Expression e, Expression::Parse(text));
//   if (e.Matches(view)) ...
//
// Pure. An Expression is immutable and cheap to copy; Matches is thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/steward.pb.h"

namespace steward::targets {

// What an expression may ask about one node.
struct NodeView {
  std::string name;
  std::string status;  // "online", "offline", "pending", "unknown"
  bool online = false;
  bool maintenance = false;
  std::string hostname;
  std::string agent_version;
  const proto::Facts* facts = nullptr;                       // null: none reported
  const std::map<std::string, std::string>* tags = nullptr;  // null: none
  std::function<bool(const std::string& group)> in_group;    // empty: in no group
};

class Expression {
 public:
  // An expression that matches every node (the empty --where).
  Expression();

  // Parse reads `text`; InvalidArgument "at column N: ..." when it is not an
  // expression of the grammar above.
  static absl::StatusOr<Expression> Parse(absl::string_view text);

  bool Matches(const NodeView& node) const;
  // The text it was parsed from ("" for the match-all expression).
  const std::string& text() const { return text_; }

  struct Node;  // the syntax tree (expression.cc)

 private:
  std::shared_ptr<const Node> root_;
  std::string text_;
};

// Caret shows where a Parse error points: `text` on one line, a ^ under the column
// the error names on the next (both indented by two spaces); "" when `error` names no
// column.
std::string Caret(absl::string_view text, const absl::Status& error);

// The names of the fields, for help and error messages.
const std::vector<std::string>& FieldNames();

// Node-name patterns (the positional targets of send and targets): whether `s` is a
// glob (holds *, ? or [), and whether `name` matches it.
bool IsGlob(absl::string_view s);
bool GlobMatch(const std::string& pattern, const std::string& name);

// Keys of tags and custom facts: 1..64 characters of A-Z a-z 0-9 _ . - , starting with a
// letter or digit. InvalidArgument names the key and the rule.
absl::Status ValidateKey(absl::string_view key);
// Tag and fact values: at most 256 bytes of valid UTF-8 without control characters.
absl::Status ValidateValue(absl::string_view value);

}  // namespace steward::targets
