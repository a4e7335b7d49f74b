// The dashboard's files: "/" is index.html; the rest by name. Public: they hold no
// data (the page reads the API, with a token where one is needed).
#include "station/http/dashboard.h"

#include <string>

#include "station/http/server.h"

namespace steward::station::http {

void AddDashboard(Router& r) {
  for (size_t i = 0; i < kDashboardFileCount; ++i) {
    const EmbeddedFile& f = kDashboardFiles[i];
    const std::string path = f.path == std::string("/index.html") ? "/" : f.path;
    r.Add("GET", path, "dashboard", Access::kPublic,
          [&f](const httplib::Request&, httplib::Response& res, const Principal&) {
            res.set_header("Cache-Control", "no-cache");
            res.set_header("Content-Security-Policy",
                           "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                           "frame-ancestors 'none'");
            res.set_content(reinterpret_cast<const char*>(f.data), f.size, f.content_type);
          });
  }
}

}  // namespace steward::station::http
