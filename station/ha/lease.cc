#include "station/ha/lease.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "station/ha/js_error.h"
#include "station/ha/kv_bucket.h"
#include "common/status_macros.h"

namespace steward::station::ha {
namespace {

// Bucket and key names as JetStream takes them: letters, digits, '-' and '_'.
absl::Status CheckName(absl::string_view what, absl::string_view name) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError(absl::StrCat("lease ", what, " must be 1 to 64 characters"));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat("lease ", what, " \"", name,
                                                     "\" may hold only letters, digits, '-' and '_'"));
    }
  }
  return absl::OkStatus();
}

std::optional<LeaseRecord> Parse(kvEntry* e) {
  if (kvEntry_Operation(e) != kvOp_Put) return std::nullopt;  // deleted or purged: free
  LeaseRecord r;
  r.revision = kvEntry_Revision(e);
  nlohmann::json j = nlohmann::json::parse(
      std::string(static_cast<const char*>(kvEntry_Value(e)), static_cast<size_t>(kvEntry_ValueLen(e))),
      nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    // Not ours: treated as held by an unknown writer until it expires, never overwritten.
    r.holder = "(unreadable lease value)";
    r.term = r.revision;
    return r;
  }
  r.holder = j.value("holder", "");
  r.since_unix_ms = j.value("since_unix_ms", int64_t{0});
  r.renewed_unix_ms = j.value("renewed_unix_ms", int64_t{0});
  r.released = j.value("released", false);
  const uint64_t term = j.value("term", uint64_t{0});
  r.term = term != 0 ? term : r.revision;  // the acquiring write names no term: its revision is
  return r;
}

struct EntryDeleter {
  void operator()(kvEntry* e) const noexcept { kvEntry_Destroy(e); }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Lease>> Lease::Open(natsConnection* nc, LeaseOptions options) {
  if (absl::Status st = CheckName("bucket", options.bucket); !st.ok()) return st;
  if (absl::Status st = CheckName("key", options.key); !st.ok()) return st;
  if (options.holder.empty()) return absl::InvalidArgumentError("lease holder must not be empty");
  if (options.ttl < absl::Seconds(1)) return absl::InvalidArgumentError("lease ttl must be at least 1s");
  if (options.replicas < 1 || options.replicas > 5) {
    return absl::InvalidArgumentError("lease replicas must be 1 to 5");
  }
  jsCtx* js = nullptr;
  kvStore* kv = nullptr;
  STEWARD_RETURN_IF_ERROR(BindBucket(nc, options.timeout,
                                     {.name = options.bucket,
                                      .description = "steward: which station instance is active",
                                      .ttl = options.ttl,
                                      .replicas = options.replicas,
                                      .storage = js_FileStorage,
                                      .what = absl::StrCat("lease bucket ", options.bucket)},
                                     &js, &kv));
  natsStatus s = NATS_OK;
  kvStatus* status = nullptr;
  if (s = kvStore_Status(&status, kv); s != NATS_OK) {
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    return JsError(s, 0, absl::StrCat("lease bucket ", options.bucket, " status"));
  }
  const int64_t ttl_ms = kvStatus_TTL(status) / 1000000;
  kvStatus_Destroy(status);
  if (ttl_ms != absl::ToInt64Milliseconds(options.ttl)) {
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    return absl::FailedPreconditionError(
        absl::StrCat("lease bucket ", options.bucket, " expires values after ", ttl_ms, " ms, not ",
                     absl::ToInt64Milliseconds(options.ttl),
                     " ms: every station instance must use the same lease length"));
  }
  return std::unique_ptr<Lease>(new Lease(std::move(options), js, kv));
}

Lease::Lease(LeaseOptions options, jsCtx* js, kvStore* kv) : options_(std::move(options)), js_(js), kv_(kv) {}

Lease::~Lease() {
  kvStore_Destroy(kv_);
  jsCtx_Destroy(js_);
}

absl::Duration Lease::valid_for() const {
  // A fifth of the TTL is kept back for clock drift and for a thread that wakes late.
  return options_.ttl - options_.ttl / 5;
}

absl::Duration Lease::renew_every() const { return valid_for() / 3; }

bool Lease::Held() const {
  absl::MutexLock lock(&mu_);
  return held_.revision != 0 && Clock::now() < valid_until_;
}

absl::Time Lease::ValidUntil() const {
  absl::MutexLock lock(&mu_);
  return absl::Now() + absl::FromChrono(valid_until_ - Clock::now());
}

uint64_t Lease::term() const {
  absl::MutexLock lock(&mu_);
  return held_.revision != 0 && Clock::now() < valid_until_ ? held_.term : 0;
}

absl::StatusOr<uint64_t> Lease::Write(uint64_t last, int64_t since_unix_ms, bool released, uint64_t term) {
  nlohmann::json j = {{"holder", options_.holder},
                      {"since_unix_ms", since_unix_ms},
                      {"renewed_unix_ms", NowUnixMillis()},
                      {"released", released}};
  if (term != 0) j["term"] = term;
  const std::string value = j.dump();
  uint64_t rev = 0;
  const natsStatus s = last == 0 ? kvStore_Create(&rev, kv_, options_.key.c_str(), value.data(),
                                                  static_cast<int>(value.size()))
                                 : kvStore_Update(&rev, kv_, options_.key.c_str(), value.data(),
                                                  static_cast<int>(value.size()), last);
  if (s != NATS_OK) return JsError(s, 0, absl::StrCat("writing lease ", options_.key));
  return rev;
}

absl::StatusOr<std::optional<LeaseRecord>> Lease::Current() const {
  kvEntry* raw = nullptr;
  const natsStatus s = kvStore_Get(&raw, kv_, options_.key.c_str());
  if (s == NATS_NOT_FOUND) return std::nullopt;
  if (s != NATS_OK) return JsError(s, 0, absl::StrCat("reading lease ", options_.key));
  std::unique_ptr<kvEntry, EntryDeleter> entry(raw);
  std::optional<LeaseRecord> r = Parse(entry.get());
  if (r.has_value() && r->released) return std::nullopt;
  return r;
}

Lease::Holding Lease::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return held_;
}

absl::StatusOr<bool> Lease::Step() {
  absl::MutexLock step(&step_mu_);
  const auto [revision, term, since] = Snapshot();
  const Clock::time_point started = Clock::now();
  if (revision != 0) {
    // Renew: only over our own last write.
    absl::StatusOr<uint64_t> rev = Write(revision, since, false, term);
    if (rev.ok()) {
      absl::MutexLock lock(&mu_);
      held_.revision = *rev;
      valid_until_ = started + absl::ToChronoMilliseconds(valid_for());
      return true;
    }
    // Another revision (someone took it after ours expired), or the broker unreachable:
    // which one, the bucket says; unreadable, we keep what we had until it runs out.
    absl::StatusOr<std::optional<LeaseRecord>> now = Current();
    if (!now.ok()) return rev.status();
    if (now->has_value() && (*now)->revision == revision) return rev.status();  // a failed write only
    if (now->has_value() && (*now)->holder == options_.holder && (*now)->term == term) {
      // Our own renewal, stored though its answer was lost: it was written after `started`.
      absl::MutexLock lock(&mu_);
      held_.revision = (*now)->revision;
      valid_until_ = started + absl::ToChronoMilliseconds(valid_for());
      return true;
    }
    absl::MutexLock lock(&mu_);
    held_ = Holding{};
    return false;
  }
  // Acquire: the key is absent (never held, expired, deleted) or released.
  kvEntry* raw = nullptr;
  natsStatus s = kvStore_Get(&raw, kv_, options_.key.c_str());
  uint64_t expect = 0;
  if (s == NATS_OK) {
    std::unique_ptr<kvEntry, EntryDeleter> entry(raw);
    std::optional<LeaseRecord> r = Parse(entry.get());
    if (r.has_value() && !r->released) return false;  // held by another
    if (r.has_value()) expect = r->revision;          // released: replace exactly that value
  } else if (s != NATS_NOT_FOUND) {
    return JsError(s, 0, absl::StrCat("reading lease ", options_.key));
  }
  const int64_t now_ms = NowUnixMillis();
  absl::StatusOr<uint64_t> rev = Write(expect, now_ms, false, 0);
  if (!rev.ok()) {
    // Somebody else was quicker (a wrong last revision), or the broker is unreachable:
    // either way not ours.
    if (rev.status().code() == absl::StatusCode::kInternal) return false;
    return rev.status();
  }
  absl::MutexLock lock(&mu_);
  held_ = Holding{.revision = *rev, .term = *rev, .since_unix_ms = now_ms};
  valid_until_ = started + absl::ToChronoMilliseconds(valid_for());
  return true;
}

absl::Status Lease::Release() {
  absl::MutexLock step(&step_mu_);
  const auto [revision, term, since] = Snapshot();
  {
    // From here on this instance does not act as the holder, whatever the write does.
    absl::MutexLock lock(&mu_);
    held_ = Holding{};
  }
  if (revision == 0) return absl::OkStatus();
  absl::StatusOr<uint64_t> rev = Write(revision, since, true, term);
  return rev.ok() ? absl::OkStatus() : rev.status();
}

}  // namespace steward::station::ha
