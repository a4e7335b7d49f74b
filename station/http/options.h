// What the station's HTTP server is started with (steward-station --http ...).
#pragma once

#include <cstddef>
#include <string>

namespace steward::station::http {

struct HttpOptions {
  // "HOST:PORT" to listen on ("127.0.0.1:8080"; port 0 picks a free one); "" is off.
  std::string listen;
  // The listen address is the default, not the operator's: when it cannot be bound
  // (another station on this host has it), the station runs without HTTP and says so.
  bool listen_is_default = false;
  // TLS: required for an address that is not loopback.
  std::string cert_file;
  std::string key_file;
  int threads = 16;                        // connections served at once (SSE streams hold one each)
  size_t max_body_bytes = size_t{1} << 20;  // larger request bodies get 413
};

}  // namespace steward::station::http
