// A JetStream key-value bucket of the HA station's (the lease, the roster of instances):
// its JetStream context made and the bucket bound, or created when missing (another
// instance creating it at the same moment is fine: then it is bound).
#pragma once

#include <nats/nats.h>

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace steward::station::ha {

struct BucketSpec {
  std::string name;
  const char* description = "";
  absl::Duration ttl;  // how long a value lives (the stream's max_age)
  int replicas = 1;
  jsStorageType storage = js_FileStorage;
  std::string what;  // for errors: "lease bucket steward_lease"
};

// On success the caller owns `*js` and `*kv` (kvStore_Destroy, then jsCtx_Destroy).
absl::Status BindBucket(natsConnection* nc, absl::Duration timeout, const BucketSpec& spec, jsCtx** js,
                        kvStore** kv);

}  // namespace steward::station::ha
