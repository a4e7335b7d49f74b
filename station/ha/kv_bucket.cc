#include "station/ha/kv_bucket.h"

#include "station/ha/js_error.h"

namespace steward::station::ha {

absl::Status BindBucket(natsConnection* nc, absl::Duration timeout, const BucketSpec& spec, jsCtx** js,
                        kvStore** kv) {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = absl::ToInt64Milliseconds(timeout);
  *js = nullptr;
  *kv = nullptr;
  if (natsStatus s = natsConnection_JetStream(js, nc, &jo); s != NATS_OK) return JsError(s, 0, "JetStream context");
  natsStatus s = js_KeyValue(kv, *js, spec.name.c_str());
  if (s == NATS_NOT_FOUND) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = spec.name.c_str();
    cfg.Description = spec.description;
    cfg.History = 1;
    cfg.TTL = absl::ToInt64Nanoseconds(spec.ttl);  // nats.c passes it on as the stream's max_age
    cfg.Replicas = spec.replicas;
    cfg.StorageType = spec.storage;
    s = js_CreateKeyValue(kv, *js, &cfg);
    if (s != NATS_OK) s = js_KeyValue(kv, *js, spec.name.c_str());  // another instance made it meanwhile
  }
  if (s != NATS_OK) {
    jsCtx_Destroy(*js);
    *js = nullptr;
    *kv = nullptr;
    return JsError(s, 0, spec.what);
  }
  return absl::OkStatus();
}

}  // namespace steward::station::ha
