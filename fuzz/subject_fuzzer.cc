// libFuzzer target for the subject grammar: Parse, Make and Sanitize on arbitrary bytes.
// A subject that parses prints back to the input and has valid tokens; Sanitize always
// gives a valid token and leaves a valid one alone.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fuzz/fuzz_check.h"
#include "subjects/subject.h"

namespace subjects = steward::subjects;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);

  if (absl::StatusOr<subjects::Subject> s = subjects::Parse(input); s.ok()) {
    FUZZ_CHECK(s->ToString() == input);
    FUZZ_CHECK(subjects::ValidateToken(s->node).ok());
    FUZZ_CHECK(subjects::ValidateToken(s->method).ok());
    FUZZ_CHECK(subjects::ValidateToken(s->domain).ok());
    absl::StatusOr<subjects::Kind> kind = subjects::ParseKind(subjects::KindName(s->kind));
    FUZZ_CHECK(kind.ok() && *kind == s->kind);
    absl::StatusOr<subjects::Subject> made =
        subjects::Make(s->node, s->kind, s->method, s->domain);
    FUZZ_CHECK(made.ok() && *made == *s);
  }

  const std::string clean = subjects::Sanitize(input);
  FUZZ_CHECK(subjects::ValidateToken(clean).ok());
  if (subjects::ValidateToken(input).ok()) FUZZ_CHECK(clean == input);
  return 0;
}
