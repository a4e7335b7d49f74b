// Helpers for the HTTP tests: requests to a real station's HTTP server with
// cpp-httplib's client, JSON bodies, and Server-Sent Events read off a live stream.
#pragma once

#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/testing/cluster.h"

namespace steward::testing {

struct Reply {
  int status = 0;
  std::string body;
  nlohmann::json json;  // null when the body is not JSON
  httplib::Headers headers;
};

// One request and its reply, or why none came. Asserts nothing: any thread may call it.
inline absl::StatusOr<Reply> TryHttp(int port, const std::string& method, const std::string& path,
                                     const std::string& token = "", const std::string& body = "",
                                     httplib::Headers headers = {}) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(30);
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  httplib::Result r = method == "GET"    ? cli.Get(path, headers)
                      : method == "PUT"  ? cli.Put(path, headers, body, "application/json")
                                         : cli.Post(path, headers, body, "application/json");
  if (!r)
    return absl::UnavailableError(absl::StrCat("HTTP ", method, " ", path, " failed: ", httplib::to_string(r.error())));
  Reply out;
  out.status = r->status;
  out.body = r->body;
  out.headers = r->headers;
  out.json = nlohmann::json::parse(r->body, nullptr, false);
  if (out.json.is_discarded()) out.json = nullptr;
  return out;
}

inline Reply Http(int port, const std::string& method, const std::string& path, const std::string& token = "",
                  const std::string& body = "", httplib::Headers headers = {}) {
  absl::StatusOr<Reply> r = TryHttp(port, method, path, token, body, std::move(headers));
  if (!r.ok()) {
    FAIL(r.status().message());
    return Reply{};
  }
  return *std::move(r);
}

// Makes an operator token through stewardctl.
inline std::string MakeToken(Cluster& c, const std::string& name, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"token", "create", "--name", name};
  args.insert(args.end(), extra.begin(), extra.end());
  RunResult r = c.Ctl(args);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return std::string(absl::StripAsciiWhitespace(r.out));
}

struct SseEvent {
  std::string event;  // "" for an id-only frame
  std::string id;
  std::string data;
};

// Splits complete frames off the front of `buffer` (what a stream sent so far).
inline std::vector<SseEvent> TakeFrames(std::string& buffer) {
  std::vector<SseEvent> out;
  size_t end;
  while ((end = buffer.find("\n\n")) != std::string::npos) {
    SseEvent e;
    for (absl::string_view line : absl::StrSplit(buffer.substr(0, end), '\n')) {
      if (absl::ConsumePrefix(&line, "event: ")) e.event = std::string(line);
      else if (absl::ConsumePrefix(&line, "id: ")) e.id = std::string(line);
      else if (absl::ConsumePrefix(&line, "data: ")) e.data = std::string(line);
    }
    buffer.erase(0, end + 2);
    if (!e.id.empty() || !e.event.empty()) out.push_back(std::move(e));
  }
  return out;
}

// The value of one sample ("name{labels}") in a /metrics text; -1 when absent.
inline double Sample(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.size() > series.size() && line.substr(0, series.size()) == series && line[series.size()] == ' ') {
      double v = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
    }
  }
  return -1;
}

}  // namespace steward::testing
