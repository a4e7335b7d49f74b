// The operator's stewardctl client of a test cluster, as its tests connect it.
#pragma once

#include <catch2/catch.hpp>
#include <memory>

#include "common/creds.h"
#include "common/signing.h"
#include "ctl/client.h"
#include "tests/testing/cluster.h"

namespace steward::testing {

// A client of `c`'s station; in a secure cluster with the operator's credentials, the
// broker's CA and the operator key (requests signed).
inline std::unique_ptr<ctl::Client> OperatorClient(Cluster& c) {
  ctl::ClientOptions options{.nats = {.url = c.url()}};
  if (c.secure()) {
    auto cr = ReadCreds(c.keys() + "/creds/operator.creds");
    REQUIRE(cr.ok());
    auto key = signing::LoadKeyPair(c.keys() + "/operator.key");
    REQUIRE(key.ok());
    options.nats.user = cr->user;
    options.nats.password = cr->password;
    options.nats.tls_ca_file = c.keys() + "/tls/ca.pem";
    options.operator_key = *key;
  }
  auto client = ctl::Client::Connect(options);
  REQUIRE(client.ok());
  return std::move(*client);
}

}  // namespace steward::testing
