// The station's HTTP API against a real station, agent and broker: every endpoint,
// paging, bad input, tokens (wrong, expired, revoked, read-only), the audit of writes,
// and the refusal to serve a non-loopback address without TLS.
#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/http/http_util.h"
#include "tests/testing/wait.h"

using steward::testing::Cluster;
using steward::testing::Http;
using steward::testing::MakeToken;
using steward::testing::Reply;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

namespace {

std::string IdOf(const RunResult& r) { return r.out.substr(r.out.find(' ') + 1, 26); }

TEST_CASE("the read API answers every endpoint with the station's truth", "[integration][http]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const int port = c.HttpPort();
  REQUIRE(port > 0);
  RunResult r = c.Ctl({"send", "ship1", "--", "sh", "-c", "printf 0123456789; echo oops >&2"});
  REQUIRE(r.exit_code == 0);
  r = c.Ctl({"send", "--no-wait", "ship1", "--", "true"});
  REQUIRE(r.exit_code == 0);
  const std::string second = IdOf(r);
  REQUIRE(c.Ctl({"send", "ship1", "--", "false"}).exit_code == 1);

  Reply fleet = Http(port, "GET", "/api/v1/fleet");
  REQUIRE(fleet.status == 200);
  // A page of another site whose name was rebound to 127.0.0.1 reads nothing without a
  // token: its requests name that site.
  Reply rebound = Http(port, "GET", "/api/v1/fleet", "", "", {{"Host", "attacker.example:8080"}});
  CHECK(rebound.status == 403);
  CHECK_THAT(rebound.body, Catch::Contains("loopback names only"));
  CHECK(Http(port, "GET", "/api/v1/fleet", "", "", {{"Host", "127.0.0.1.attacker.example"}}).status == 403);
  CHECK(Http(port, "GET", "/api/v1/fleet", "", "", {{"Host", "localhost:" + std::to_string(port)}}).status == 200);
  CHECK(Http(port, "GET", "/api/v1/fleet", "", "", {{"Host", "[::1]:" + std::to_string(port)}}).status == 200);
  CHECK(fleet.json["counts"]["online"] == 1);
  CHECK(fleet.json["nodes"][0]["name"] == "ship1");
  CHECK(fleet.json["nodes"][0]["status"] == "online");
  CHECK(fleet.json["dispatch"]["paused"] == false);
  CHECK(fleet.json["event_id"].get<uint64_t>() > 0);

  Reply nodes = Http(port, "GET", "/api/v1/nodes");
  REQUIRE(nodes.status == 200);
  REQUIRE(nodes.json["nodes"].size() == 1);
  CHECK(nodes.json["nodes"][0]["version"] == STEWARD_VERSION);
  CHECK(nodes.json["nodes"][0]["agent_stats"]["rss_bytes"].get<uint64_t>() > 0);
  CHECK(Http(port, "GET", "/api/v1/nodes?status=offline").json["nodes"].empty());
  CHECK(Http(port, "GET", "/api/v1/nodes?status=online").json["nodes"].size() == 1);
  Reply typo = Http(port, "GET", "/api/v1/nodes?status=onlin");  // not "no node is onlin"
  CHECK(typo.status == 400);
  CHECK_THAT(typo.body, Catch::Contains("one of unknown, online"));
  CHECK(Http(port, "GET", "/api/v1/nodes?q=hip").json["nodes"].size() == 1);

  Reply node = Http(port, "GET", "/api/v1/nodes/ship1");
  REQUIRE(node.status == 200);
  CHECK(node.json["node"]["name"] == "ship1");
  CHECK(node.json["recent"].size() == 3);
  CHECK(node.json["errors"].is_array());
  CHECK(Http(port, "GET", "/api/v1/nodes/nosuch").status == 404);

  // Commands, newest first, one page at a time.
  Reply page1 = Http(port, "GET", "/api/v1/commands?node=ship1&limit=2");
  REQUIRE(page1.status == 200);
  REQUIRE(page1.json["commands"].size() == 2);
  CHECK(page1.json["commands"][1]["id"] == second);
  REQUIRE(page1.json["next"] == second);
  Reply page2 = Http(port, "GET", "/api/v1/commands?node=ship1&limit=2&before=" + second);
  REQUIRE(page2.json["commands"].size() == 1);
  CHECK(page2.json["next"].is_null());
  const std::string first = page2.json["commands"][0]["id"];
  CHECK(Http(port, "GET", "/api/v1/commands?state=failed").json["commands"].size() == 1);
  CHECK(Http(port, "GET", "/api/v1/commands?since=1h").json["commands"].size() == 3);
  CHECK(Http(port, "GET", "/api/v1/commands?until=1").json["commands"].empty());
  CHECK(Http(port, "GET", "/api/v1/commands?state=bogus").status == 400);
  CHECK(Http(port, "GET", "/api/v1/commands?limit=x").status == 400);
  CHECK(Http(port, "GET", "/api/v1/commands?since=yesterday").status == 400);

  Reply one = Http(port, "GET", "/api/v1/commands/" + first);
  REQUIRE(one.status == 200);
  CHECK(one.json["state"] == "succeeded");
  CHECK(one.json["result"]["stdout"] == "0123456789");
  CHECK(one.json["result"]["stderr"] == "oops\n");
  CHECK(one.json["stdout_bytes"] == 10);
  Reply range = Http(port, "GET", "/api/v1/commands/" + first + "/output?offset=3&length=4");
  CHECK(range.status == 200);
  CHECK(range.body == "3456");
  CHECK(Http(port, "GET", "/api/v1/commands/" + first + "/output?stream=stderr").body == "oops\n");
  CHECK(Http(port, "GET", "/api/v1/commands/" + first + "/output?stream=stdin").status == 400);
  CHECK(Http(port, "GET", "/api/v1/commands/01J0000000000000000000000A").status == 404);

  Reply req = Http(port, "GET", "/api/v1/requests/" + std::string(one.json["request_id"]));
  REQUIRE(req.status == 200);
  CHECK(req.json["counts"]["total"] == 1);
  CHECK(req.json["counts"]["succeeded"] == 1);
  CHECK(req.json["not_answered"].empty());
  CHECK(Http(port, "GET", "/api/v1/requests/01J0000000000000000000000A").status == 404);

  Reply logs = Http(port, "GET", "/api/v1/logs?node=ship1&limit=10");
  CHECK(logs.status == 200);
  CHECK(logs.json["entries"].is_array());
  CHECK(logs.json["next_page"].is_string());
  CHECK(Http(port, "GET", "/api/v1/logs?severity=9").status == 400);
  Reply audit = Http(port, "GET", "/api/v1/audit?node=ship1");
  CHECK(audit.status == 200);
  CHECK(audit.json["commands"].size() == 3);
  CHECK(Http(port, "GET", "/api/v1/dispatch").json["paused"] == false);

  Reply page = Http(port, "GET", "/");
  CHECK(page.status == 200);
  CHECK(page.body.find("<html") != std::string::npos);
  CHECK(Http(port, "GET", "/no/such/page").status == 404);
  // No other origin's page may frame the dashboard (its buttons act with the token it
  // keeps: clickjacking), and no answer is sniffed as another type.
  auto header = [](const Reply& reply, const char* name) {
    auto it = reply.headers.find(name);
    return it == reply.headers.end() ? std::string() : it->second;
  };
  CHECK_THAT(header(page, "Content-Security-Policy"), Catch::Contains("frame-ancestors 'none'"));
  CHECK(header(page, "X-Frame-Options") == "DENY");
  CHECK(header(page, "X-Content-Type-Options") == "nosniff");
  CHECK(header(audit, "X-Content-Type-Options") == "nosniff");
}

TEST_CASE("HTTP writes need a valid operator token and are audited", "[integration][http]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const int port = c.HttpPort();
  REQUIRE(port > 0);
  const std::string alice = MakeToken(c, "alice");
  const std::string reader = MakeToken(c, "rita", {"--read-only"});
  const std::string brief = MakeToken(c, "bob", {"--ttl", "1s"});
  const std::string body = R"({"nodes":["ship1"],"argv":["echo","hi"],"wait_ms":10000})";

  CHECK(Http(port, "POST", "/api/v1/commands", "", body).status == 401);
  CHECK(Http(port, "POST", "/api/v1/commands", "stw_wrong", body).status == 401);
  CHECK(Http(port, "GET", "/api/v1/nodes", "stw_wrong").status == 401);  // a wrong token is never ignored
  Reply ro = Http(port, "POST", "/api/v1/commands", reader, body);
  CHECK(ro.status == 403);
  CHECK(ro.json["error"].get<std::string>().find("read-only") != std::string::npos);
  CHECK(Http(port, "GET", "/api/v1/nodes", reader).status == 200);

  Reply ok = Http(port, "POST", "/api/v1/commands", alice, body);
  REQUIRE(ok.status == 201);
  CHECK(ok.json["states"][0]["state"] == "succeeded");
  CHECK(ok.json["states"][0]["result"]["stdout"] == "hi\n");
  CHECK(ok.json["states"][0]["command"]["operator"].get<std::string>().rfind("alice (http token t", 0) == 0);

  // Bad input changes nothing.
  CHECK(Http(port, "POST", "/api/v1/commands", alice, "{not json").status == 400);
  CHECK(Http(port, "POST", "/api/v1/commands", alice, R"({"nodes":"ship1","argv":["x"]})").status == 400);
  CHECK(Http(port, "POST", "/api/v1/commands", alice, R"({"nodes":["nosuch"],"argv":["x"]})").status == 404);
  CHECK(Http(port, "POST", "/api/v1/commands", alice, R"({"nodes":["ship1"]})").status == 400);
  Reply both = Http(port, "POST", "/api/v1/commands", alice, R"({"nodes":["ship1"],"all":true,"argv":["x"]})");
  CHECK(both.status == 400);  // one choice of target: never the names widened to every node
  CHECK_THAT(both.body, Catch::Contains("takes every node"));
  Reply nul = Http(port, "POST", "/api/v1/commands", alice, R"({"nodes":["ship1"],"argv":["echo","a\u0000b"]})");
  CHECK(nul.status == 400);  // refused before it is queued, not failed at the node
  CHECK_THAT(nul.body, Catch::Contains("argv[1] contains a NUL byte"));
  Reply far = Http(port, "POST", "/api/v1/commands", alice,
                   R"({"nodes":["ship1"],"argv":["x"],"ttl_ms":9223372036854775000})");
  CHECK(far.status == 400);
  CHECK_THAT(far.body, Catch::Contains("at most a year"));
  CHECK(Http(port, "POST", "/api/v1/commands", alice, std::string(2 << 20, ' ')).status == 413);
  {
    // A form body (curl -d without -H) over the HTTP library's 8 KiB form limit: the
    // refusal says to send JSON, which takes the same body.
    // (To a node that does not exist: read whole and understood, it is refused with 404
    // and makes nothing.)
    std::string big = R"({"nodes":["nosuch"],"argv":["echo","x"],"env":["PAD=)" + std::string(9000, 'p') + R"("]})";
    httplib::Client cli("127.0.0.1", port);
    httplib::Result form = cli.Post("/api/v1/commands", {{"Authorization", "Bearer " + alice}}, big,
                                    "application/x-www-form-urlencoded");
    REQUIRE(form);
    CHECK(form->status == 413);
    CHECK_THAT(form->body, Catch::Contains("Content-Type: application/json"));
    Reply as_json = Http(port, "POST", "/api/v1/commands", alice, big);
    CHECK(as_json.status == 404);
    CHECK_THAT(as_json.body, Catch::Contains("nosuch"));
  }
  CHECK(Http(port, "POST", "/api/v1/dispatch", alice, R"({"reason":"no paused field"})").status == 400);
  CHECK(Http(port, "POST", "/api/v1/nodes/nosuch/maintenance", alice, R"({"on":true})").status == 404);
  const std::string id = ok.json["commands"][0]["id"];
  CHECK(Http(port, "POST", "/api/v1/commands/" + id + "/cancel", alice).status == 409);  // finished
  CHECK(Http(port, "GET", "/api/v1/commands?node=ship1").json["commands"].size() == 1);

  // Expired and revoked tokens stop working.
  REQUIRE(WaitUntil([&] { return Http(port, "GET", "/api/v1/nodes", brief).status == 401; }, absl::Seconds(5)));
  RunResult revoke = c.Ctl({"token", "revoke", "alice"});
  CHECK(revoke.exit_code == 0);
  CHECK(Http(port, "POST", "/api/v1/commands", alice, body).status == 401);
  RunResult list = c.Ctl({"token", "list"});
  CHECK(list.out.find("rita") != std::string::npos);
  CHECK(list.out.find("alice") == std::string::npos);
  CHECK(list.out.find("stw_") == std::string::npos);  // never a secret

  // The audit names the operator of each HTTP write, refusals included.
  Reply audit = Http(port, "GET", "/api/v1/audit?limit=100");
  REQUIRE(audit.status == 200);
  bool submit = false, refused = false;
  int cancels = 0;
  for (const auto& a : audit.json["actions"]) {
    if (a["action"] == "submit" && a["outcome"] == "ok") submit = a["operator"].get<std::string>().rfind("alice", 0) == 0;
    if (a["outcome"].get<std::string>().find("read-only") != std::string::npos) refused = true;
    if (a["action"] == "cancel" && a["target"] == id) ++cancels;
  }
  CHECK(submit);
  CHECK(refused);
  CHECK(cancels == 1);  // the refused cancel, once
}

TEST_CASE("HTTP submits with an Idempotency-Key make their commands once", "[integration][http]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const int port = c.HttpPort();
  REQUIRE(port > 0);
  const std::string alice = MakeToken(c, "alice");
  const std::string bob = MakeToken(c, "bob");
  const std::string body = R"({"nodes":["ship1"],"argv":["echo","hi"],"wait_ms":10000})";
  auto count = [&] { return Http(port, "GET", "/api/v1/commands?node=ship1").json["commands"].size(); };

  Reply first = Http(port, "POST", "/api/v1/commands", alice, body, {{"Idempotency-Key", "deploy-42"}});
  REQUIRE(first.status == 201);
  const std::string id = first.json["commands"][0]["id"];
  // The same key again (the answer was lost, or another station instance took over):
  // the first answer, nothing new.
  Reply again = Http(port, "POST", "/api/v1/commands", alice, body, {{"Idempotency-Key", "deploy-42"}});
  REQUIRE(again.status == 201);
  CHECK(again.json["commands"][0]["id"] == id);
  CHECK(again.json["request_id"] == first.json["request_id"]);
  CHECK(count() == 1);
  // With another wait and a ttl (counted from each try), it is still the same request.
  Reply later = Http(port, "POST", "/api/v1/commands", alice,
                     R"({"nodes":["ship1"],"argv":["echo","hi"],"wait_ms":0,"ttl_ms":60000})",
                     {{"Idempotency-Key", "deploy-42"}});
  CHECK(later.status == 201);
  CHECK(later.json["request_id"] == first.json["request_id"]);
  // The same key for another request is refused, and makes nothing: the client reused a
  // key by mistake, and the first answer would say its new command ran.
  Reply other = Http(port, "POST", "/api/v1/commands", alice, R"({"nodes":["ship1"],"argv":["echo","other"]})",
                     {{"Idempotency-Key", "deploy-42"}});
  INFO(other.body);
  CHECK(other.status >= 400);
  CHECK(other.status < 500);
  CHECK(other.json["error"].get<std::string>().find("Idempotency-Key \"deploy-42\" was used") != std::string::npos);
  CHECK(count() == 1);
  // Another operator's key, another key, and no key are other requests.
  CHECK(Http(port, "POST", "/api/v1/commands", bob, body, {{"Idempotency-Key", "deploy-42"}}).status == 201);
  CHECK(Http(port, "POST", "/api/v1/commands", alice, body, {{"Idempotency-Key", "deploy-43"}}).status == 201);
  CHECK(Http(port, "POST", "/api/v1/commands", alice, body).status == 201);
  CHECK(count() == 4);
  // A key that is not one is refused, and makes nothing.
  Reply bad = Http(port, "POST", "/api/v1/commands", alice, body, {{"Idempotency-Key", "has space"}});
  CHECK(bad.status == 400);
  CHECK(bad.json["error"].get<std::string>().find("Idempotency-Key") != std::string::npos);
  CHECK(Http(port, "POST", "/api/v1/commands", alice, body, {{"Idempotency-Key", std::string(129, 'k')}}).status ==
        400);
  CHECK(count() == 4);
}

TEST_CASE("HTTP approvals: listed, four eyes, first decision wins, deny needs a reason", "[integration][http]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  const int port = c.HttpPort();
  REQUIRE(port > 0);
  const std::string alice = MakeToken(c, "alice");
  const std::string bob = MakeToken(c, "bob");
  const std::string carol = MakeToken(c, "carol");
  Reply held = Http(port, "POST", "/api/v1/commands", alice,
                    R"({"nodes":["ship1"],"argv":["echo","approved"],"wait_ms":10000,"require_approval":true})");
  REQUIRE(held.status == 201);
  CHECK(held.json["states"][0]["state"] == "awaiting_approval");  // answered at once, not after the wait
  const std::string id = held.json["commands"][0]["id"];
  Reply list = Http(port, "GET", "/api/v1/approvals");
  REQUIRE(list.status == 200);
  REQUIRE(list.json["commands"].size() == 1);
  CHECK(list.json["commands"][0]["marks"]["approval"]["reason"] == "--require-approval");

  CHECK(Http(port, "POST", "/api/v1/commands/" + id + "/approve", "", "{}").status == 401);
  CHECK(Http(port, "POST", "/api/v1/commands/" + id + "/approve", alice, "{}").status == 403);  // four eyes
  CHECK(Http(port, "POST", "/api/v1/commands/" + id + "/deny", bob, "{}").status == 400);  // no reason
  CHECK(Http(port, "POST", "/api/v1/commands/01ARZ3NDEKTSV4RRFFQ69G5FAV/approve", bob, "{}").status == 404);
  Reply ok = Http(port, "POST", "/api/v1/commands/" + id + "/approve", bob, R"({"comment":"go"})");
  REQUIRE(ok.status == 200);
  CHECK(ok.json["commands"][0]["state"] == "queued");
  Reply late = Http(port, "POST", "/api/v1/commands/" + id + "/deny", carol, R"({"reason":"too late"})");
  CHECK(late.status == 409);
  CHECK(late.json["error"].get<std::string>().find("already approved by bob") != std::string::npos);
  REQUIRE(WaitUntil([&] { return Http(port, "GET", "/api/v1/commands/" + id).json["state"] == "succeeded"; },
                    absl::Seconds(20)));
  CHECK(Http(port, "GET", "/api/v1/approvals").json["commands"].empty());
}

TEST_CASE("HTTP on an address other than loopback needs TLS and tokens", "[integration][http]") {
  Cluster c;
  RunResult r = steward::testing::RunProgram({steward::testing::BinPath("station/steward-station"), "--nats", c.url(),
                                              "--data-dir", c.dir().str() + "/refused", "--http", "0.0.0.0:0"},
                                             absl::Seconds(20));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("refusing to serve HTTP on 0.0.0.0:0 without TLS") != std::string::npos);

  Cluster secure(Cluster::Secure{{"ship1"}});
  secure.StartStation({"--http", "0.0.0.0:0"});
  const int port = secure.HttpPort();
  REQUIRE(port > 0);
  const std::string token = MakeToken(secure, "alice");
  httplib::SSLClient tls("127.0.0.1", port);
  tls.set_ca_cert_path((secure.keys() + "/tls/ca.pem").c_str());
  tls.enable_server_certificate_verification(true);
  httplib::Result anonymous = tls.Get("/api/v1/nodes");
  REQUIRE(anonymous);
  CHECK(anonymous->status == 401);
  httplib::Result page = tls.Get("/");  // the dashboard's files hold no data
  REQUIRE(page);
  CHECK(page->status == 200);
  httplib::Result authed = tls.Get("/api/v1/nodes", {{"Authorization", "Bearer " + token}});
  REQUIRE(authed);
  CHECK(authed->status == 200);
  httplib::Result pause =
      tls.Post("/api/v1/dispatch", {{"Authorization", "Bearer " + token}}, R"({"paused":true})", "application/json");
  REQUIRE(pause);
  CHECK(pause->status == 200);
  CHECK(secure.Ctl({"nodes"}).out.find("dispatch PAUSED") != std::string::npos);
  httplib::Client plain("127.0.0.1", port);
  CHECK(!plain.Get("/api/v1/nodes"));  // no plain HTTP on a TLS port
}

}  // namespace
