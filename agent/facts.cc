// Facts: os-release, uname and the custom facts file.
#include "agent/facts.h"

#include <sys/utsname.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "targets/expression.h"

namespace steward::agent {
namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

// os-release values may be quoted: ID="debian", VERSION_ID='12'.
std::string Unquote(absl::string_view v) {
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  return std::string(v);
}

}  // namespace

void ParseFactLines(absl::string_view text, absl::string_view where, proto::Facts& facts,
                    std::vector<std::string>* problems) {
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      problems->push_back(absl::StrCat(where, " line ", line_no, ": not key=value"));
      continue;
    }
    const std::string key(absl::StripAsciiWhitespace(line.substr(0, eq)));
    const std::string value(absl::StripAsciiWhitespace(line.substr(eq + 1)));
    absl::Status st = targets::ValidateKey(key);
    if (st.ok()) st = targets::ValidateValue(value);
    if (!st.ok()) {
      problems->push_back(absl::StrCat(where, " line ", line_no, ": ", st.message()));
      continue;
    }
    (*facts.mutable_custom())[key] = value;
  }
}

proto::Facts ReadFacts(const FactsOptions& options, std::vector<std::string>* problems) {
  proto::Facts facts;
  std::string text;
  if (ReadFile(options.os_release, &text) || ReadFile("/usr/lib/os-release", &text)) {
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (absl::ConsumePrefix(&line, "ID=")) facts.set_os(Unquote(line));
      if (absl::ConsumePrefix(&line, "VERSION_ID=")) facts.set_os_version(Unquote(line));
    }
  }
  struct utsname u {};
  if (::uname(&u) == 0) {
    facts.set_arch(u.machine);
    facts.set_kernel(u.release);
  }
  if (!options.file.empty()) {
    if (ReadFile(options.file, &text)) {
      ParseFactLines(text, options.file, facts, problems);
    } else {
      problems->push_back(absl::StrCat("cannot read the facts file ", options.file));
    }
  }
  return facts;
}

}  // namespace steward::agent
