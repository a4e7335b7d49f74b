// The dashboard's static files (station/http/dashboard/), compiled into the station by
// station/http/embed.cmake: plain HTML, CSS and JavaScript, no build step, no CDN.
#pragma once

#include <cstddef>

namespace steward::station::http {

struct EmbeddedFile {
  const char* path;  // "/index.html"
  const unsigned char* data;
  size_t size;
  const char* content_type;
};

extern const EmbeddedFile kDashboardFiles[];
extern const size_t kDashboardFileCount;

}  // namespace steward::station::http
