// service::StartReport without a service manager (no $NOTIFY_SOCKET): what a daemon's
// main loop asks of the daemon each turn. With systemd it is tested end to end in
// tests/e2e/service_test.cc.
#include "common/service.h"

#include <stdlib.h>

#include <catch2/catch.hpp>

namespace steward::service {
namespace {

TEST_CASE("Without a service manager a start asks whether the daemon serves only until it first does",
          "[service]") {
  unsetenv("NOTIFY_SOCKET");
  Notifier notifier;
  REQUIRE_FALSE(notifier.active());
  StartReport report(notifier, "nats://127.0.0.1:4222");
  int asked = 0, alive_asked = 0;
  bool serving = false;
  const auto serves = [&] {
    ++asked;
    return serving;
  };
  const auto alive = [&](absl::Duration) {
    ++alive_asked;
    return true;
  };
  report.Tick(serves, alive);
  report.Tick(serves, alive);
  CHECK(asked == 2);  // not yet: asked each turn
  serving = true;
  report.Tick(serves, alive);
  CHECK(asked == 3);  // it serves now, and says so once
  for (int i = 0; i < 5; ++i) report.Tick(serves, alive);
  CHECK(asked == 3);  // nobody to tell: not asked again (Serving flushes the connection)
  CHECK(alive_asked == 0);

  // The next start of the daemon in its process asks again.
  StartReport next(notifier, "nats://127.0.0.1:4222");
  next.Tick(serves, alive);
  CHECK(asked == 4);
}

}  // namespace
}  // namespace steward::service
