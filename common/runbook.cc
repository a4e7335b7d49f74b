#include "common/runbook.h"

#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/protocol.h"

namespace steward::runbook {
namespace {

// Where a value is, for messages: "radar.toml:12".
std::string At(const std::string& source, const toml::node& n) {
  return absl::StrCat(source, ":", n.source().begin.line);
}

absl::Status Unknown(const std::string& source, const toml::table& t, std::initializer_list<const char*> known,
                     const std::string& where) {
  for (const auto& [key, value] : t) {
    bool ok = false;
    for (const char* k : known) ok = ok || key.str() == k;
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(At(source, value), ": unknown key `", std::string(key.str()), "` in ", where));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> String(const std::string& source, const toml::node& n, const std::string& what) {
  if (!n.is_string()) return absl::InvalidArgumentError(absl::StrCat(At(source, n), ": ", what, " must be a string"));
  return std::string(*n.value<std::string>());
}

absl::StatusOr<int64_t> Integer(const std::string& source, const toml::node& n, const std::string& what) {
  if (!n.is_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(At(source, n), ": ", what, " must be an integer"));
  }
  return *n.value<int64_t>();
}

absl::StatusOr<int64_t> Millis(const std::string& source, const toml::node& n, const std::string& what) {
  absl::StatusOr<std::string> text = String(source, n, what);
  if (!text.ok()) return text.status();
  absl::Duration d;
  if (!absl::ParseDuration(*text, &d) || d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(At(source, n), ": ", what, " `", *text, "` is not a duration like 30s, 2m or 1h30m"));
  }
  return absl::ToInt64Milliseconds(d);
}

// `run`, `shell`, `method`, `timeout` of a step or a check.
absl::Status ReadAction(const std::string& source, const toml::table& t, const std::string& where,
                        proto::RunbookAction& a) {
  const toml::node* run = t.get("run");
  const toml::node* shell = t.get("shell");
  if (run != nullptr && shell != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(At(source, *run), ": ", where, " has both `run` and `shell`"));
  }
  if (run != nullptr) {
    const toml::array* argv = run->as_array();
    if (argv == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(At(source, *run), ": ", where, ": `run` must be an array of strings, like [\"uptime\"]"));
    }
    for (const toml::node& arg : *argv) {
      absl::StatusOr<std::string> s = String(source, arg, absl::StrCat(where, ": each word of `run`"));
      if (!s.ok()) return s.status();
      a.add_argv(*s);
    }
  } else if (shell != nullptr) {
    absl::StatusOr<std::string> s = String(source, *shell, absl::StrCat(where, ": `shell`"));
    if (!s.ok()) return s.status();
    a.add_argv(*s);
    a.set_shell(true);
  }
  if (const toml::node* m = t.get("method")) {
    absl::StatusOr<std::string> s = String(source, *m, absl::StrCat(where, ": `method`"));
    if (!s.ok()) return s.status();
    a.set_method(*s);
  }
  if (const toml::node* d = t.get("timeout")) {
    absl::StatusOr<int64_t> ms = Millis(source, *d, absl::StrCat(where, ": `timeout`"));
    if (!ms.ok()) return ms.status();
    a.set_timeout_ms(*ms);
  }
  return absl::OkStatus();
}

absl::Status ReadStep(const std::string& source, const toml::table& t, int index, proto::RunbookStep& step) {
  std::string where = absl::StrCat("step ", index + 1);
  if (absl::Status st = Unknown(source, t, {"name", "run", "shell", "method", "timeout", "on_failure", "check"}, where);
      !st.ok()) {
    return st;
  }
  if (const toml::node* n = t.get("name")) {
    absl::StatusOr<std::string> s = String(source, *n, absl::StrCat(where, ": `name`"));
    if (!s.ok()) return s.status();
    step.set_name(*s);
    where = absl::StrCat(where, " (", *s, ")");
  }
  if (absl::Status st = ReadAction(source, t, where, *step.mutable_action()); !st.ok()) return st;
  if (const toml::node* n = t.get("on_failure")) {
    absl::StatusOr<std::string> s = String(source, *n, absl::StrCat(where, ": `on_failure`"));
    if (!s.ok()) return s.status();
    if (*s == "stop") {
      step.set_on_failure(proto::ON_FAILURE_STOP);
    } else if (*s == "continue") {
      step.set_on_failure(proto::ON_FAILURE_CONTINUE);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(At(source, *n), ": ", where, ": on_failure is `stop` or `continue`, not `", *s, "`"));
    }
  }
  if (const toml::node* n = t.get("check")) {
    const toml::table* c = n->as_table();
    const std::string cw = absl::StrCat(where, ": check");
    if (c == nullptr) return absl::InvalidArgumentError(absl::StrCat(At(source, *n), ": ", cw, " must be a table"));
    if (absl::Status st =
            Unknown(source, *c, {"run", "shell", "method", "timeout", "retries", "interval", "observe"}, cw);
        !st.ok()) {
      return st;
    }
    proto::RunbookCheck& check = *step.mutable_check();
    if (absl::Status st = ReadAction(source, *c, cw, *check.mutable_action()); !st.ok()) return st;
    if (const toml::node* r = c->get("retries")) {
      absl::StatusOr<int64_t> v = Integer(source, *r, absl::StrCat(cw, ": `retries`"));
      if (!v.ok()) return v.status();
      if (*v < 0 || *v > kMaxRetries) {
        return absl::InvalidArgumentError(
            absl::StrCat(At(source, *r), ": ", cw, ": retries must be 0 to ", kMaxRetries));
      }
      check.set_retries(static_cast<int32_t>(*v));
    }
    for (const char* key : {"interval", "observe"}) {
      const toml::node* d = c->get(key);
      if (d == nullptr) continue;
      absl::StatusOr<int64_t> ms = Millis(source, *d, absl::StrCat(cw, ": `", key, "`"));
      if (!ms.ok()) return ms.status();
      if (std::string(key) == "interval") {
        check.set_interval_ms(*ms);
      } else {
        check.set_observe_ms(*ms);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateAction(const proto::RunbookAction& a, const std::string& where) {
  if (a.argv().empty() || a.argv(0).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, " has no command (`run = [...]` or `shell = \"...\"`)"));
  }
  if (a.timeout_ms() < 0) return absl::InvalidArgumentError(absl::StrCat(where, ": negative timeout"));
  return absl::OkStatus();
}

}  // namespace

proto::Envelope ActionTemplate(const proto::RunbookAction& a) {
  proto::Envelope e;
  e.set_method(a.method().empty() ? std::string(kMethodShell) : a.method());
  e.set_domain("operatingsystem");
  for (const std::string& arg : a.argv()) e.add_argv(arg);
  e.mutable_shell()->set_use_shell(a.shell());
  e.set_timeout_ms(a.timeout_ms());
  return e;
}

const char* RunStateName(proto::RunState s) {
  switch (s) {
    case proto::RUN_RUNNING:
      return "running";
    case proto::RUN_SUCCEEDED:
      return "succeeded";
    case proto::RUN_FAILED:
      return "failed";
    case proto::RUN_CANCELED:
      return "canceled";
    case proto::RUN_PREEMPTED:
      return "preempted";
    case proto::RUN_BUSY:
      return "busy";
    default:
      return "unknown";
  }
}

std::string StepName(const proto::Runbook& rb, int step) {
  std::string out = absl::StrCat("step ", step + 1);
  if (step >= 0 && step < rb.steps_size() && !rb.steps(step).name().empty()) {
    absl::StrAppend(&out, " (", rb.steps(step).name(), ")");
  }
  return out;
}

absl::Status Validate(const proto::Runbook& rb) {
  if (rb.steps().empty()) return absl::InvalidArgumentError("the runbook has no step ([[step]] tables)");
  if (rb.steps_size() > kMaxSteps) {
    return absl::InvalidArgumentError(absl::StrCat("the runbook has ", rb.steps_size(), " steps; at most ", kMaxSteps));
  }
  if (!proto::OnBusy_IsValid(rb.on_busy())) return absl::InvalidArgumentError("unknown on_busy");
  for (int i = 0; i < rb.steps_size(); ++i) {
    const proto::RunbookStep& s = rb.steps(i);
    const std::string where = StepName(rb, i);
    if (absl::Status st = ValidateAction(s.action(), where); !st.ok()) return st;
    if (!proto::OnFailure_IsValid(s.on_failure())) return absl::InvalidArgumentError(where + ": unknown on_failure");
    if (s.has_check()) {
      const proto::RunbookCheck& c = s.check();
      if (absl::Status st = ValidateAction(c.action(), where + ": its check"); !st.ok()) return st;
      if (c.retries() < 0 || c.retries() > kMaxRetries || c.interval_ms() < 0 || c.observe_ms() < 0) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": its check's retries, interval or observe is out of range"));
      }
      if (c.observe_ms() > 0 && c.interval_ms() <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": a check that observes needs an interval"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<proto::Runbook> Parse(const std::string& text, const std::string& source) {
  toml::table t;
  try {
    t = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", e.source().begin.line, ":", e.source().begin.column,
                                                   ": ", std::string(e.description())));
  }
  proto::Runbook rb;
  rb.set_source(source);
  if (absl::Status st = Unknown(source, t, {"name", "description", "priority", "on_busy", "step"}, "the runbook");
      !st.ok()) {
    return st;
  }
  for (const char* key : {"name", "description"}) {
    const toml::node* n = t.get(key);
    if (n == nullptr) continue;
    absl::StatusOr<std::string> s = String(source, *n, absl::StrCat("`", key, "`"));
    if (!s.ok()) return s.status();
    std::string(key) == "name" ? rb.set_name(*s) : rb.set_description(*s);
  }
  if (const toml::node* n = t.get("priority")) {
    absl::StatusOr<int64_t> v = Integer(source, *n, "`priority`");
    if (!v.ok()) return v.status();
    rb.set_priority(static_cast<int32_t>(*v));
  }
  if (const toml::node* n = t.get("on_busy")) {
    absl::StatusOr<std::string> s = String(source, *n, "`on_busy`");
    if (!s.ok()) return s.status();
    if (*s == "reject") {
      rb.set_on_busy(proto::ON_BUSY_REJECT);
    } else if (*s == "queue") {
      rb.set_on_busy(proto::ON_BUSY_QUEUE);
    } else if (*s == "preempt") {
      rb.set_on_busy(proto::ON_BUSY_PREEMPT);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(At(source, *n), ": on_busy is `reject`, `queue` or `preempt`, not `", *s, "`"));
    }
  }
  if (const toml::node* n = t.get("step")) {
    const toml::array* steps = n->as_array();
    if (steps == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(At(source, *n), ": steps are [[step]] tables"));
    }
    int i = 0;
    for (const toml::node& s : *steps) {
      const toml::table* st = s.as_table();
      if (st == nullptr) return absl::InvalidArgumentError(absl::StrCat(At(source, s), ": steps are [[step]] tables"));
      if (absl::Status ok = ReadStep(source, *st, i, *rb.add_steps()); !ok.ok()) return ok;
      ++i;
    }
  }
  if (absl::Status st = Validate(rb); !st.ok()) return absl::InvalidArgumentError(absl::StrCat(source, ": ", st.message()));
  return rb;
}

absl::StatusOr<proto::Runbook> ParseFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("runbook ", path, ": cannot read it"));
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

}  // namespace steward::runbook
