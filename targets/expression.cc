// Target expressions: a lexer, a recursive-descent parser and the evaluator.
#include "targets/expression.h"

#include <fnmatch.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/cli.h"
#include "common/utf8.h"

namespace steward::targets {

enum class Field {
  kName,
  kHostname,
  kStatus,
  kOs,
  kOsVersion,
  kArch,
  kKernel,
  kAgentVersion,
  kTag,
  kFact,
  kOnline,       // flag
  kMaintenance,  // flag
};

struct Expression::Node {
  enum class Kind { kTrue, kFalse, kOr, kAnd, kNot, kFlag, kGroup, kEquals, kNotEquals, kGlob, kNotGlob, kIn };
  Kind kind = Kind::kTrue;
  std::vector<std::shared_ptr<const Node>> children;  // or, and: 2+; not: 1
  Field field = Field::kName;
  std::string key;                  // tag.KEY, fact.KEY, @GROUP
  std::vector<std::string> values;  // the literal(s) compared with
  bool negate_in = false;           // "not in"
};

namespace {

using Node = Expression::Node;
using Kind = Expression::Node::Kind;

struct FieldInfo {
  const char* name;
  Field field;
};

constexpr FieldInfo kFields[] = {
    {"name", Field::kName},
    {"hostname", Field::kHostname},
    {"status", Field::kStatus},
    {"os", Field::kOs},
    {"os_version", Field::kOsVersion},
    {"arch", Field::kArch},
    {"kernel", Field::kKernel},
    {"agent_version", Field::kAgentVersion},
    {"online", Field::kOnline},
    {"maintenance", Field::kMaintenance},
};

bool IsFlag(Field f) { return f == Field::kOnline || f == Field::kMaintenance; }

bool KeyChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'; }

// ---- lexer ----

enum class Tok { kEnd, kWord, kString, kGroup, kLParen, kRParen, kLBracket, kRBracket, kComma, kOp, kBad };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;  // word, op, group name, or the string's unescaped value
  size_t pos = 0;    // byte offset of its first character
};

class Lexer {
 public:
  explicit Lexer(absl::string_view in) : in_(in) {}

  // Next token; kBad with `error` set for a character or string that cannot start one.
  Token Next(std::string* error) {
    while (i_ < in_.size() && absl::ascii_isspace(static_cast<unsigned char>(in_[i_]))) ++i_;
    Token t;
    t.pos = i_;
    if (i_ >= in_.size()) return t;
    const char c = in_[i_];
    auto single = [&](Tok k) {
      t.kind = k;
      t.text = std::string(1, c);
      ++i_;
      return t;
    };
    switch (c) {
      case '(':
        return single(Tok::kLParen);
      case ')':
        return single(Tok::kRParen);
      case '[':
        return single(Tok::kLBracket);
      case ']':
        return single(Tok::kRBracket);
      case ',':
        return single(Tok::kComma);
      case '"':
      case '\'':
        return String(c, error);
      default:
        break;
    }
    if (c == '=' || c == '!') {
      const char n = i_ + 1 < in_.size() ? in_[i_ + 1] : '\0';
      if (n == '=' || n == '~') {
        t.kind = Tok::kOp;
        t.text = std::string(in_.substr(i_, 2));
        i_ += 2;
        return t;
      }
      t.kind = Tok::kBad;
      *error = c == '=' ? "expected == or =~ (a single = compares nothing)"
                        : "expected != or !~ (write `not` to negate a condition)";
      return t;
    }
    if (c == '@') {
      size_t j = i_ + 1;
      while (j < in_.size() && KeyChar(in_[j])) ++j;
      t.kind = Tok::kGroup;
      t.text = std::string(in_.substr(i_ + 1, j - i_ - 1));
      i_ = j;
      if (t.text.empty()) {
        t.kind = Tok::kBad;
        *error = "expected a group name after @ (as in @web)";
      }
      return t;
    }
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i_;
      while (j < in_.size() && KeyChar(in_[j])) ++j;
      t.kind = Tok::kWord;
      t.text = std::string(in_.substr(i_, j - i_));
      i_ = j;
      return t;
    }
    t.kind = Tok::kBad;
    if (c == '&' || c == '|') {
      *error = absl::StrCat("unexpected ", std::string(1, c), " (write `and`, `or`)");
    } else {
      *error = absl::StrCat("unexpected character ",
                            Shown(in_.substr(i_, std::max<size_t>(1, Utf8SequenceLength(in_, i_)))));
    }
    return t;
  }

  // The token text as an error message shows it.
  static std::string Shown(absl::string_view s) {
    std::string out;
    for (char ch : s) {
      const auto b = static_cast<unsigned char>(ch);
      if (b < 0x20 || b == 0x7f) {
        absl::StrAppend(&out, "\\x", absl::Hex(b, absl::kZeroPad2));
      } else {
        out += ch;
      }
    }
    return out;
  }

 private:
  Token String(char quote, std::string* error) {
    Token t;
    t.kind = Tok::kString;
    t.pos = i_;
    ++i_;
    while (i_ < in_.size() && in_[i_] != quote) {
      char ch = in_[i_];
      if (ch == '\\' && i_ + 1 < in_.size()) {
        const char e = in_[i_ + 1];
        switch (e) {
          case 'n':
            ch = '\n';
            break;
          case 't':
            ch = '\t';
            break;
          case '\\':
          case '"':
          case '\'':
            ch = e;
            break;
          default:
            t.kind = Tok::kBad;
            t.pos = i_;
            *error =
                absl::StrCat("unknown escape \\", Shown(std::string(1, e)), " in a string (use \\\\ for a backslash)");
            return t;
        }
        i_ += 2;
      } else {
        ++i_;
      }
      t.text += ch;
    }
    if (i_ >= in_.size()) {
      t.kind = Tok::kBad;
      *error = absl::StrCat("unterminated string: it opens here and has no closing ", std::string(1, quote));
      return t;
    }
    ++i_;
    return t;
  }

  absl::string_view in_;
  size_t i_ = 0;
};

// ---- parser ----

class Parser {
 public:
  explicit Parser(absl::string_view text) : text_(text), lexer_(text) { Advance(); }

  absl::StatusOr<std::shared_ptr<const Node>> Parse() {
    std::shared_ptr<const Node> root = Or();
    if (!failed_ && tok_.kind != Tok::kEnd) {
      Fail(tok_, absl::StrCat("expected `and`, `or` or the end, found ", Describe(tok_)));
    }
    if (failed_) return absl::InvalidArgumentError(error_);
    return root;
  }

 private:
  void Advance() {
    if (failed_) return;
    std::string why;
    tok_ = lexer_.Next(&why);
    if (tok_.kind == Tok::kBad) Fail(tok_, why);
  }

  // 1-based column of byte offset `pos`, counting characters (not bytes).
  size_t Column(size_t pos) const {
    size_t col = 1;
    for (size_t i = 0; i < pos && i < text_.size();) {
      const size_t n = Utf8SequenceLength(text_, i);
      i += n == 0 ? 1 : n;
      ++col;
    }
    return col;
  }

  void Fail(const Token& at, absl::string_view why) {
    if (failed_) return;
    failed_ = true;
    error_ = absl::StrCat("at column ", Column(at.pos), ": ", why);
    tok_.kind = Tok::kEnd;  // stops every loop
  }

  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case Tok::kEnd:
        return "the end";
      case Tok::kString:
        return absl::StrCat("the string \"", Lexer::Shown(t.text), "\"");
      case Tok::kGroup:
        return absl::StrCat("@", t.text);
      default:
        return Lexer::Shown(t.text);
    }
  }

  bool IsWord(absl::string_view w) const { return tok_.kind == Tok::kWord && tok_.text == w; }

  static std::shared_ptr<const Node> Combine(Kind kind, std::vector<std::shared_ptr<const Node>> parts) {
    if (parts.size() == 1) return std::move(parts.front());
    auto n = std::make_shared<Node>();
    n->kind = kind;
    n->children = std::move(parts);
    return n;
  }

  std::shared_ptr<const Node> Or() {
    std::vector<std::shared_ptr<const Node>> parts{And()};
    while (!failed_ && IsWord("or")) {
      Advance();
      parts.push_back(And());
    }
    return Combine(Kind::kOr, std::move(parts));
  }

  std::shared_ptr<const Node> And() {
    std::vector<std::shared_ptr<const Node>> parts{Unary()};
    while (!failed_ && IsWord("and")) {
      Advance();
      parts.push_back(Unary());
    }
    return Combine(Kind::kAnd, std::move(parts));
  }

  // Parentheses and `not`s nest at most kMaxDepth deep: the parser, the evaluation and
  // the tree's destruction recurse, and the text comes from any client.
  static constexpr int kMaxDepth = 64;
  struct Nested {
    explicit Nested(Parser& p, const Token& at) : parser(p) {
      if (++parser.depth_ > kMaxDepth) {
        parser.Fail(at, absl::StrCat("nested deeper than ", kMaxDepth, " levels of ( and not"));
      }
    }
    ~Nested() { --parser.depth_; }
    Parser& parser;
  };

  std::shared_ptr<const Node> Unary() {
    if (IsWord("not")) {
      Nested nested(*this, tok_);
      Advance();
      auto n = std::make_shared<Node>();
      n->kind = Kind::kNot;
      if (!failed_) n->children.push_back(Unary());
      return n;
    }
    return Primary();
  }

  std::shared_ptr<const Node> Primary() {
    auto n = std::make_shared<Node>();
    if (failed_) return n;
    const Token start = tok_;
    switch (tok_.kind) {
      case Tok::kLParen: {
        Nested nested(*this, tok_);
        Advance();
        if (failed_) return n;
        std::shared_ptr<const Node> inner = Or();
        if (!failed_ && tok_.kind != Tok::kRParen) {
          Fail(tok_,
               absl::StrCat("expected ) to close the ( at column ", Column(start.pos), ", found ", Describe(tok_)));
        }
        Advance();
        return inner;
      }
      case Tok::kGroup:
        n->kind = Kind::kGroup;
        n->key = tok_.text;
        Advance();
        return n;
      case Tok::kWord:
        break;
      default:
        Fail(tok_, absl::StrCat("expected a condition (a field such as os, tag.KEY, or @GROUP, or `not`, or "
                                "a parenthesis), found ",
                                Describe(tok_)));
        return n;
    }
    if (tok_.text == "true" || tok_.text == "false") {
      n->kind = tok_.text == "true" ? Kind::kTrue : Kind::kFalse;
      Advance();
      return n;
    }
    if (tok_.text == "and" || tok_.text == "or" || tok_.text == "in") {
      Fail(tok_, absl::StrCat("expected a condition, found `", tok_.text, "`"));
      return n;
    }
    if (!ReadField(*n)) return n;
    Advance();
    if (IsFlag(n->field)) return FlagTest(std::move(n), start);
    return TextTest(std::move(n), start);
  }

  // Reads the field the current word names into `n`; false (and failed) if none.
  bool ReadField(Node& n) {
    const std::string& w = tok_.text;
    for (const char* prefix : {"tag", "fact"}) {
      const std::string dotted = absl::StrCat(prefix, ".");
      if (w == prefix || absl::StartsWith(w, dotted)) {
        n.field = w[0] == 't' ? Field::kTag : Field::kFact;
        n.key = w.size() > dotted.size() ? w.substr(dotted.size()) : "";
        if (n.key.empty()) {
          Fail(tok_, absl::StrCat(prefix, " needs a key: ", prefix, ".KEY (as in ", prefix,
                                  w[0] == 't' ? ".role)" : ".fleet)"));
          return false;
        }
        if (absl::Status st = ValidateKey(n.key); !st.ok()) {
          Fail(tok_, st.message());
          return false;
        }
        return true;
      }
    }
    for (const FieldInfo& f : kFields) {
      if (w == f.name) {
        n.field = f.field;
        return true;
      }
    }
    // A near miss: a field ("hostnme"), or tag./fact. misspelt ("tags.role").
    std::string near = cli::Closest(w, FieldNames());
    if (const size_t dot = w.find('.'); near.empty() && dot != std::string::npos) {
      near = cli::Closest(w.substr(0, dot), {"tag", "fact"});
      if (!near.empty()) near += w.substr(dot);
    }
    Fail(tok_, absl::StrCat("unknown field \"", Lexer::Shown(w), "\"",
                            near.empty() || near == w ? "" : absl::StrCat(" (did you mean \"", near, "\"?)"),
                            "; the fields are ", absl::StrJoin(FieldNames(), ", "), ", tag.KEY, fact.KEY and @GROUP"));
    return false;
  }

  std::shared_ptr<const Node> FlagTest(std::shared_ptr<Node> n, const Token& start) {
    n->kind = Kind::kFlag;
    if (tok_.kind == Tok::kOp && (tok_.text == "==" || tok_.text == "!=")) {
      const bool negate = tok_.text == "!=";
      Advance();
      if (!IsWord("true") && !IsWord("false")) {
        Fail(tok_, absl::StrCat(start.text, " is true or false: expected true or false after ",
                                negate ? "!=" : "==", ", found ", Describe(tok_)));
        return n;
      }
      const bool want = IsWord("true") != negate;
      Advance();
      if (want) return n;
      auto inverted = std::make_shared<Node>();
      inverted->kind = Kind::kNot;
      inverted->children.push_back(std::move(n));
      return inverted;
    }
    if (tok_.kind == Tok::kOp || IsWord("in")) {
      Fail(tok_, absl::StrCat(start.text, " is true or false: use it alone (", start.text, ", not ", start.text,
                              ") or compare it with == true"));
    }
    return n;
  }

  std::shared_ptr<const Node> TextTest(std::shared_ptr<Node> n, const Token& start) {
    const std::string field_text = start.text;
    if (tok_.kind == Tok::kOp) {
      const std::string op = tok_.text;
      n->kind = op == "==" ? Kind::kEquals : op == "!=" ? Kind::kNotEquals : op == "=~" ? Kind::kGlob : Kind::kNotGlob;
      Advance();
      if (failed_) return n;
      if (tok_.kind != Tok::kString) {
        Fail(tok_, absl::StrCat("expected a quoted string after ", op, ", found ", Describe(tok_),
                                tok_.kind == Tok::kWord ? absl::StrCat(" (write \"", tok_.text, "\")") : ""));
        return n;
      }
      n->values.push_back(tok_.text);
      Advance();
      return n;
    }
    bool negate = false;
    if (IsWord("not")) {
      negate = true;
      Advance();
      if (!IsWord("in")) {
        Fail(tok_, absl::StrCat("expected `in` after `", field_text, " not`, found ", Describe(tok_)));
        return n;
      }
    }
    if (IsWord("in")) {
      Advance();
      n->kind = Kind::kIn;
      n->negate_in = negate;
      if (tok_.kind != Tok::kLBracket) {
        Fail(tok_, absl::StrCat("expected [ after in (as in os in [\"debian\", \"ubuntu\"]), found ", Describe(tok_)));
        return n;
      }
      Advance();
      while (!failed_) {
        if (tok_.kind != Tok::kString) {
          Fail(tok_, absl::StrCat("expected a quoted string in the list, found ", Describe(tok_)));
          return n;
        }
        n->values.push_back(tok_.text);
        Advance();
        if (tok_.kind == Tok::kComma) {
          Advance();
          if (tok_.kind == Tok::kRBracket) break;  // a trailing comma
          continue;
        }
        if (tok_.kind != Tok::kRBracket) {
          Fail(tok_, absl::StrCat("expected , or ] in the list, found ", Describe(tok_)));
          return n;
        }
        break;
      }
      Advance();
      return n;
    }
    Fail(tok_, absl::StrCat("expected ==, !=, =~, !~ or in after ", field_text, ", found ", Describe(tok_)));
    return n;
  }

  absl::string_view text_;
  Lexer lexer_;
  Token tok_;
  bool failed_ = false;
  std::string error_;
  int depth_ = 0;  // ( and not now open
};

// ---- evaluation ----

std::string Text(const NodeView& v, Field f, const std::string& key) {
  auto lookup = [&key](const auto* map) -> std::string {
    if (map == nullptr) return "";
    auto it = map->find(key);
    return it == map->end() ? "" : it->second;
  };
  static const proto::Facts kNoFacts;
  const proto::Facts& facts = v.facts != nullptr ? *v.facts : kNoFacts;
  switch (f) {
    case Field::kName:
      return v.name;
    case Field::kHostname:
      return v.hostname;
    case Field::kStatus:
      return v.status;
    case Field::kOs:
      return facts.os();
    case Field::kOsVersion:
      return facts.os_version();
    case Field::kArch:
      return facts.arch();
    case Field::kKernel:
      return facts.kernel();
    case Field::kAgentVersion:
      return v.agent_version;
    case Field::kTag:
      return lookup(v.tags);
    case Field::kFact:
      return lookup(&facts.custom());
    case Field::kOnline:
    case Field::kMaintenance:
      break;
  }
  return "";
}

bool Eval(const Node& n, const NodeView& v) {
  switch (n.kind) {
    case Kind::kTrue:
      return true;
    case Kind::kFalse:
      return false;
    case Kind::kOr:
      return std::any_of(n.children.begin(), n.children.end(), [&](const auto& c) { return Eval(*c, v); });
    case Kind::kAnd:
      return std::all_of(n.children.begin(), n.children.end(), [&](const auto& c) { return Eval(*c, v); });
    case Kind::kNot:
      return !Eval(*n.children.front(), v);
    case Kind::kFlag:
      return n.field == Field::kOnline ? v.online : v.maintenance;
    case Kind::kGroup:
      return v.in_group && v.in_group(n.key);
    case Kind::kEquals:
      return Text(v, n.field, n.key) == n.values.front();
    case Kind::kNotEquals:
      return Text(v, n.field, n.key) != n.values.front();
    case Kind::kGlob:
      return GlobMatch(n.values.front(), Text(v, n.field, n.key));
    case Kind::kNotGlob:
      return !GlobMatch(n.values.front(), Text(v, n.field, n.key));
    case Kind::kIn: {
      const std::string value = Text(v, n.field, n.key);
      const bool in = std::find(n.values.begin(), n.values.end(), value) != n.values.end();
      return in != n.negate_in;
    }
  }
  return false;
}

}  // namespace

Expression::Expression() : root_(std::make_shared<Node>()) {}

absl::StatusOr<Expression> Expression::Parse(absl::string_view text) {
  Parser p(text);
  absl::StatusOr<std::shared_ptr<const Node>> root = p.Parse();
  if (!root.ok()) return root.status();
  Expression e;
  e.root_ = *std::move(root);
  e.text_ = std::string(text);
  return e;
}

bool Expression::Matches(const NodeView& node) const { return Eval(*root_, node); }

std::string Caret(absl::string_view text, const absl::Status& error) {
  absl::string_view msg = error.message();
  const size_t at = msg.find("at column ");
  size_t column = 0;
  if (at == absl::string_view::npos) return "";
  msg.remove_prefix(at + 10);
  const size_t digits = msg.find(':');
  if (!absl::SimpleAtoi(msg.substr(0, digits), &column) || column == 0) return "";
  std::string shown = Lexer::Shown(text);
  return absl::StrCat("  ", shown, "\n  ", std::string(column - 1, ' '), "^");
}

const std::vector<std::string>& FieldNames() {
  static const auto* names = [] {
    auto* v = new std::vector<std::string>();
    for (const FieldInfo& f : kFields) v->push_back(f.name);
    return v;
  }();
  return *names;
}

bool IsGlob(absl::string_view s) { return s.find_first_of("*?[") != absl::string_view::npos; }

bool GlobMatch(const std::string& pattern, const std::string& name) {
  return ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

absl::Status ValidateKey(absl::string_view key) {
  if (key.empty() || key.size() > 64) {
    return absl::InvalidArgumentError(absl::StrCat("key \"", Lexer::Shown(key), "\" must be 1 to 64 characters"));
  }
  if (!absl::ascii_isalnum(static_cast<unsigned char>(key[0]))) {
    return absl::InvalidArgumentError(
        absl::StrCat("key \"", Lexer::Shown(key), "\" must start with a letter or digit"));
  }
  for (char c : key) {
    if (!KeyChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("key \"", Lexer::Shown(key), "\" may hold only letters, digits, _ . and -"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateValue(absl::string_view value) {
  if (value.size() > 256) return absl::InvalidArgumentError("a value may hold at most 256 bytes");
  for (size_t i = 0; i < value.size();) {
    const size_t n = Utf8SequenceLength(value, i);
    const auto b = static_cast<unsigned char>(value[i]);
    if (n == 0) return absl::InvalidArgumentError("a value must be valid UTF-8");
    if (b < 0x20 || b == 0x7f || (b == 0xC2 && n == 2 && static_cast<unsigned char>(value[i + 1]) <= 0x9F)) {
      return absl::InvalidArgumentError(absl::StrCat("value \"", Lexer::Shown(value), "\" holds a control character"));
    }
    i += n;
  }
  return absl::OkStatus();
}

}  // namespace steward::targets
