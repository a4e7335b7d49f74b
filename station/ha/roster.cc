#include "station/ha/roster.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "station/ha/js_error.h"
#include "station/ha/kv_bucket.h"
#include "common/status_macros.h"

namespace steward::station::ha {
namespace {

// Key characters JetStream takes: an instance name (a host name, a pid) is mapped onto
// them, other characters becoming '_'.
std::string KeyPart(absl::string_view s) {
  std::string out(s);
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_';
    if (!ok) c = '_';
  }
  return out;
}

std::string Encode(const proto::StationInstance& r) {
  nlohmann::json j = {{"instance", r.instance()},       {"role", r.role()},
                      {"since_unix_ms", r.since_unix_ms()}, {"term", r.term()},
                      {"applied", r.applied()},         {"lag", r.lag()},
                      {"updated_unix_ms", r.updated_unix_ms()}};
  return j.dump();
}

bool Decode(absl::string_view text, proto::StationInstance& r) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  r.set_instance(j.value("instance", ""));
  r.set_role(j.value("role", ""));
  r.set_since_unix_ms(j.value("since_unix_ms", int64_t{0}));
  r.set_term(j.value("term", uint64_t{0}));
  r.set_applied(j.value("applied", uint64_t{0}));
  r.set_lag(j.value("lag", uint64_t{0}));
  r.set_updated_unix_ms(j.value("updated_unix_ms", int64_t{0}));
  return !r.instance().empty();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Roster>> Roster::Open(natsConnection* nc, RosterOptions options) {
  jsCtx* js = nullptr;
  kvStore* kv = nullptr;
  STEWARD_RETURN_IF_ERROR(BindBucket(
      nc, options.timeout,
      {.name = options.bucket,
       .description = "steward: what each station instance says about itself (stewardctl station status)",
       .ttl = options.max_age,
       .replicas = options.replicas,
       .storage = js_MemoryStorage,  // a second's news: rewritten every second
       .what = absl::StrCat("station roster bucket ", options.bucket)},
      &js, &kv));
  return std::unique_ptr<Roster>(new Roster(std::move(options), js, kv));
}

Roster::~Roster() {
  kvStore_Destroy(kv_);
  jsCtx_Destroy(js_);
}

absl::Status Roster::Put(const proto::StationInstance& self) {
  const std::string key = absl::StrCat(KeyPart(options_.station), ".", KeyPart(self.instance()));
  const std::string value = Encode(self);
  uint64_t rev = 0;
  if (natsStatus s = kvStore_Put(&rev, kv_, key.c_str(), value.data(), static_cast<int>(value.size()));
      s != NATS_OK) {
    return JsError(s, 0, absl::StrCat("writing station roster ", key));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<proto::StationInstance>> Roster::List() {
  std::vector<proto::StationInstance> out;
  kvKeysList keys{};
  natsStatus s = kvStore_Keys(&keys, kv_, nullptr);
  if (s == NATS_NOT_FOUND) return out;  // no keys
  if (s != NATS_OK) return JsError(s, 0, "listing the station roster");
  const std::string prefix = KeyPart(options_.station) + ".";
  for (int i = 0; i < keys.Count; ++i) {
    if (!absl::StartsWith(keys.Keys[i], prefix)) continue;
    kvEntry* e = nullptr;
    if (kvStore_Get(&e, kv_, keys.Keys[i]) != NATS_OK) continue;  // gone meanwhile
    proto::StationInstance r;
    if (kvEntry_Operation(e) == kvOp_Put &&
        Decode(absl::string_view(static_cast<const char*>(kvEntry_Value(e)), static_cast<size_t>(kvEntry_ValueLen(e))),
               r)) {
      out.push_back(std::move(r));
    }
    kvEntry_Destroy(e);
  }
  kvKeysList_Destroy(&keys);
  return out;
}

}  // namespace steward::station::ha
