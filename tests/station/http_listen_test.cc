// The station's HTTP server thread against httplib's stop(): a stop right after the
// accept loop's thread started must end that loop (a station whose start failed just
// after its HTTP server came up, its broker connection closed under it, hung in its
// Shutdown, waiting on accept() for good). Real sockets, no station around it.
#include <catch2/catch.hpp>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "station/http/server.h"

namespace steward::station::http {
namespace {

TEST_CASE("an HTTP server stopped as soon as its thread starts ends its accept loop", "[http]") {
  for (int i = 0; i < 200; ++i) {
    INFO("round " << i);
    // Both leaked if the loop never ends: its thread still uses them.
    auto* server = new httplib::Server;
    REQUIRE(server->bind_to_any_port("127.0.0.1") > 0);
    auto* thread = new std::thread(ListenOnThread(*server));
    CHECK(server->is_running());
    server->stop();
    auto joined = std::make_shared<absl::Notification>();
    std::thread joiner([thread, joined] {
      thread->join();
      joined->Notify();
    });
    if (!joined->WaitForNotificationWithTimeout(absl::Seconds(5))) {
      joiner.detach();
      FAIL("the accept loop did not end after stop()");
    }
    joiner.join();
    delete thread;
    delete server;
  }
}

}  // namespace
}  // namespace steward::station::http
