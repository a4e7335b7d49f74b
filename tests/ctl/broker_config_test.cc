// Tests for ctl/broker_config.h and ctl/broker_tls.h: creds files, TLS material made
// with openssl, and the nats-server configuration, run against a real nats-server
// started with it to show that each node's credentials confine it to its own subjects.
#include "ctl/broker_config.h"
#include "ctl/broker_tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <list>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/nats.h"
#include "common/status_macros.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/process.h"

namespace steward::ctl {
namespace {

using steward::testing::TempDir;

// How long a message that must not arrive is waited for.
constexpr absl::Duration kQuiet = absl::Milliseconds(500);
constexpr absl::Duration kArrive = absl::Seconds(3);

bool HaveOpenssl() {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(dir, "/openssl");
    if (::access(candidate.c_str(), X_OK) == 0) return true;
  }
  return false;
}

#define STEWARD_REQUIRE_OPENSSL()                                  \
  do {                                                             \
    if (!HaveOpenssl()) {                                          \
      WARN("openssl is not installed; skipping this broker test"); \
      return;                                                      \
    }                                                              \
  } while (false)

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// A nats-server started with a configuration file, on the port it picked itself
// (listen "127.0.0.1:-1" + --ports_file_dir), stopped on destruction.
class ConfiguredServer {
 public:
  ConfiguredServer(const std::filesystem::path& dir, const std::string& config) : dir_(dir) {
    const std::string conf = (dir_ / "nats-server.conf").string();
    const absl::Status written = WritePrivateFile(conf, config);
    if (!written.ok()) throw std::runtime_error(written.ToString());
    // The configuration's own listen address ("127.0.0.1:-1"), not one forced on it.
    absl::StatusOr<pid_t> pid = testing::StartChild({.argv = testing::NatsServerArgv(
                                                         "", dir_.string(), log_path(), conf)});
    if (!pid.ok()) throw std::runtime_error(pid.status().ToString());
    pid_ = *pid;
    absl::StatusOr<int> port = testing::WaitForNatsPort(dir_.string(), pid_, [this] {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) != pid_) return absl::OkStatus();
      pid_ = -1;
      return absl::UnavailableError("nats-server exited at start: " + log());
    });
    if (!port.ok()) {
      Stop();
      throw std::runtime_error(std::string(port.status().message()));
    }
    port_ = *port;
  }
  ~ConfiguredServer() { Stop(); }
  ConfiguredServer(const ConfiguredServer&) = delete;
  ConfiguredServer& operator=(const ConfiguredServer&) = delete;

  int port() const { return port_; }
  std::string url(absl::string_view scheme = "tls") const {
    return absl::StrCat(scheme, "://127.0.0.1:", port_);
  }
  std::string log_path() const { return (dir_ / "server.log").string(); }
  std::string log() const { return ReadFile(log_path()); }

 private:
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }

  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// Asynchronous errors nats.c reported for one connection (permissions violations
// arrive this way: the server answers a refused PUB or SUB with -ERR, the connection
// stays up).
class ErrorLog {
 public:
  void Add(natsStatus status, std::string text) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    entries_.emplace_back(status, std::move(text));
  }
  // Waits (polling, up to `timeout`) until `status` was reported with a text that
  // contains `needle`.
  bool WaitFor(natsStatus status, absl::string_view needle, absl::Duration timeout)
      ABSL_LOCKS_EXCLUDED(mu_) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        for (const auto& [s, text] : entries_) {
          if (s == status && absl::StrContains(text, needle)) return true;
        }
      }
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  std::string Dump() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    std::string out;
    for (const auto& [s, text] : entries_) {
      absl::StrAppend(&out, natsStatus_GetText(s), ": ", text, "\n");
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::pair<natsStatus, std::string>> entries_ ABSL_GUARDED_BY(mu_);
};

void OnAsyncError(natsConnection* nc, natsSubscription*, natsStatus err, void* closure) {
  const char* text = nullptr;
  natsConnection_GetLastError(nc, &text);
  auto* log = static_cast<ErrorLog*>(closure);
  log->Add(err, text == nullptr ? "" : text);
}

// nats.c may run the error handler until the library closes, so the logs live for the
// whole process (reachable, not leaked).
ErrorLog* NewErrorLog() {
  static absl::Mutex mu;
  static std::list<ErrorLog>* logs = new std::list<ErrorLog>();
  absl::MutexLock lock(&mu);
  return &logs->emplace_back();
}

struct Client {
  ErrorLog* errors = nullptr;
  nats::ConnectionPtr nc;
};

struct ClientOptions {
  std::string url;
  std::string user;
  std::string password;
  std::string ca_file;       // "" = no TLS
  std::string inbox_prefix;  // "" = nats.c's default "_INBOX"
  std::string expected_hostname;
};

// Connects with raw nats.c (ConnectOptions has no custom inbox prefix or error
// handler). The error names nats.c's last error text (e.g. "Authorization Violation").
absl::StatusOr<Client> ConnectClient(const ClientOptions& o) {
  natsOptions* raw = nullptr;
  STEWARD_RETURN_IF_ERROR(nats::ToStatus(natsOptions_Create(&raw), "natsOptions_Create"));
  nats::OptionsPtr opts(raw);
  Client client{NewErrorLog(), nullptr};
  natsStatus s = natsOptions_SetURL(raw, o.url.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(raw, 2000);
  if (s == NATS_OK) s = natsOptions_SetAllowReconnect(raw, false);
  if (s == NATS_OK) s = natsOptions_SetSendAsap(raw, true);
  if (s == NATS_OK) s = natsOptions_SetErrorHandler(raw, &OnAsyncError, client.errors);
  if (s == NATS_OK && !o.user.empty()) {
    s = natsOptions_SetUserInfo(raw, o.user.c_str(), o.password.c_str());
  }
  if (s == NATS_OK && !o.ca_file.empty()) s = natsOptions_SetSecure(raw, true);
  if (s == NATS_OK && !o.ca_file.empty()) {
    s = natsOptions_LoadCATrustedCertificates(raw, o.ca_file.c_str());
  }
  if (s == NATS_OK && !o.expected_hostname.empty()) {
    s = natsOptions_SetExpectedHostname(raw, o.expected_hostname.c_str());
  }
  if (s == NATS_OK && !o.inbox_prefix.empty()) {
    s = natsOptions_SetCustomInboxPrefix(raw, o.inbox_prefix.c_str());
  }
  STEWARD_RETURN_IF_ERROR(nats::ToStatus(s, "natsOptions"));
  natsConnection* nc = nullptr;
  s = natsConnection_Connect(&nc, raw);
  client.nc.reset(nc);
  if (s != NATS_OK) {
    const char* last = nats_GetLastError(nullptr);
    return absl::UnavailableError(absl::StrCat("connect ", o.user, " to ", o.url, ": ",
                                               natsStatus_GetText(s), " (",
                                               last == nullptr ? "" : last, ")"));
  }
  return client;
}

// A TLS broker with users station, ops (operator), ship1 and ship2 (nodes).
class Broker {
 public:
  Broker() {
    const absl::Status tls = GenerateTls(dir_.str(), {"127.0.0.1", "localhost"});
    if (!tls.ok()) throw std::runtime_error(tls.ToString());
    BrokerConfigOptions options{.listen = "127.0.0.1:-1", .station = "station", .tls_dir = dir_.str()};
    options.users = {{"station", station_pw_, BrokerUser::Role::kStation},
                     {"ops", ops_pw_, BrokerUser::Role::kOperator},
                     {"ship1", ship1_pw_, BrokerUser::Role::kNode},
                     {"ship2", ship2_pw_, BrokerUser::Role::kNode}};
    absl::StatusOr<std::string> config = NatsServerConfig(options);
    if (!config.ok()) throw std::runtime_error(config.status().ToString());
    server_ = std::make_unique<ConfiguredServer>(dir_.path(), *config);
  }

  std::string ca_file() const { return dir_.str() + "/ca.pem"; }
  ConfiguredServer& server() { return *server_; }

  std::string PasswordOf(const std::string& user) const {
    if (user == "station") return station_pw_;
    if (user == "ops") return ops_pw_;
    if (user == "ship1") return ship1_pw_;
    return ship2_pw_;
  }

  // `user` with its password, TLS and the inbox prefix "_INBOX_<user>".
  Client Connect(const std::string& user) {
    absl::StatusOr<Client> c = ConnectClient({.url = server_->url(), .user = user,
                                              .password = PasswordOf(user), .ca_file = ca_file(),
                                              .inbox_prefix = "_INBOX_" + user});
    INFO(c.status().ToString());
    REQUIRE(c.ok());
    return *std::move(c);
  }

 private:
  TempDir dir_;
  std::string station_pw_ = RandomPassword();
  std::string ops_pw_ = RandomPassword();
  std::string ship1_pw_ = RandomPassword();
  std::string ship2_pw_ = RandomPassword();
  std::unique_ptr<ConfiguredServer> server_;
};

nats::SubscriptionPtr MustSubscribe(natsConnection* nc, const std::string& subject) {
  absl::StatusOr<nats::SubscriptionPtr> sub = nats::SubscribeSync(nc, subject, 64);
  INFO(sub.status().ToString());
  REQUIRE(sub.ok());
  REQUIRE(nats::Flush(nc, absl::Seconds(2)).ok());
  return *std::move(sub);
}

void MustPublish(natsConnection* nc, const std::string& subject, absl::string_view data,
                 const std::string& reply = "") {
  REQUIRE(nats::Publish(nc, subject, data, reply).ok());
  REQUIRE(nats::Flush(nc, absl::Seconds(2)).ok());
}

// The data of the next message on `sub`, or "" when none came within `timeout`.
std::string NextData(natsSubscription* sub, absl::Duration timeout) {
  absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(sub, timeout);
  return msg.ok() ? std::string(nats::Data(msg->get())) : std::string();
}

bool Quiet(natsSubscription* sub) {
  return absl::IsDeadlineExceeded(nats::NextMsg(sub, kQuiet).status());
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

TEST_CASE("RandomPassword gives 32 base62 characters and differs each time", "[broker]") {
  const std::string a = RandomPassword();
  const std::string b = RandomPassword();
  CHECK(a.size() == 32);
  CHECK(a != b);
  CHECK(ValidateBrokerPassword(a).ok());
}

TEST_CASE("WriteCreds and ReadCreds round trip and refuse loose modes", "[broker]") {
  TempDir dir;
  const std::string path = dir.str() + "/ship1.creds";
  const BrokerCreds creds{"ship1", RandomPassword()};
  REQUIRE(WriteCreds(path, creds).ok());
  CHECK(ModeOf(path) == 0600);
  CHECK(ReadFile(path) == absl::StrCat("user ship1\npassword ", creds.password, "\n"));
  absl::StatusOr<BrokerCreds> back = ReadCreds(path);
  REQUIRE(back.ok());
  CHECK(back->user == "ship1");
  CHECK(back->password == creds.password);

  CHECK(absl::IsAlreadyExists(WriteCreds(path, creds)));

  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  back = ReadCreds(path);
  CHECK(absl::IsFailedPrecondition(back.status()));
  CHECK(absl::StrContains(back.status().message(), "chmod 600 " + path));
  REQUIRE(::chmod(path.c_str(), 0620) == 0);
  CHECK(absl::IsFailedPrecondition(ReadCreds(path).status()));

  CHECK(absl::IsInvalidArgument(WriteCreds(dir.str() + "/bad1", {"a\"b", "pw"})));
  CHECK(absl::IsInvalidArgument(WriteCreds(dir.str() + "/bad2", {"ship1", "pw\nuser x"})));
  CHECK(absl::IsInvalidArgument(WriteCreds(dir.str() + "/bad3", {"ship1", ""})));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "bad2"));

  REQUIRE(WritePrivateFile(dir.str() + "/garbled", "user ship1\nshell /bin/sh\n").ok());
  CHECK(absl::IsInvalidArgument(ReadCreds(dir.str() + "/garbled").status()));
  REQUIRE(WritePrivateFile(dir.str() + "/nopass", "user ship1\n").ok());
  CHECK(absl::IsInvalidArgument(ReadCreds(dir.str() + "/nopass").status()));
  CHECK(absl::IsNotFound(ReadCreds(dir.str() + "/missing").status()));
}

TEST_CASE("NatsServerConfig refuses names that could inject configuration", "[broker]") {
  const std::string pw = RandomPassword();
  auto config_with_node = [&](const std::string& name) {
    BrokerConfigOptions o;
    o.users = {{"station", pw, BrokerUser::Role::kStation}, {name, pw, BrokerUser::Role::kNode}};
    return NatsServerConfig(o).status();
  };
  CHECK(config_with_node("ship1").ok());
  for (const char* bad : {"a\"b", "a }", "a}", "a\nb", "a\\b", "a#b", "a,b", "a$b", "a:b",
                          "a'b", "a]", "", "a.b", "a*", ">", "_INBOX", "_INBOX_ship2",
                          "station"}) {
    INFO(bad);
    CHECK(absl::IsInvalidArgument(config_with_node(bad)));
  }

  BrokerConfigOptions o;
  o.users = {{"station", "pass\"word", BrokerUser::Role::kStation}};
  CHECK(absl::IsInvalidArgument(NatsServerConfig(o).status()));
  o.users = {{"station", "", BrokerUser::Role::kStation}};
  CHECK(absl::IsInvalidArgument(NatsServerConfig(o).status()));
  o.users = {};  // No users would mean no authorization at all.
  CHECK(absl::IsInvalidArgument(NatsServerConfig(o).status()));
  o.users = {{"ship1", pw, BrokerUser::Role::kNode}, {"ship1", pw, BrokerUser::Role::kOperator}};
  CHECK(absl::IsInvalidArgument(NatsServerConfig(o).status()));
  o.users = {{"station", pw, BrokerUser::Role::kStation}};
  o.station = "st\"ation";
  CHECK(absl::IsInvalidArgument(NatsServerConfig(o).status()));
  o.station = "station";
  for (const char* bad : {"127.0.0.1", "127.0.0.1:99999", "127.0.0.1:4222\"\nx: 1", ":4222",
                          "host name:4222"}) {
    INFO(bad);
    o.listen = bad;
    CHECK(absl::IsInvalidArgument(NatsServerConfig(o).status()));
  }
  o.listen = "127.0.0.1:4222";
  o.tls_dir = "/etc/tls\ndir";
  CHECK(absl::IsInvalidArgument(NatsServerConfig(o).status()));
  o.tls_dir = "/etc/a \"quoted\\ dir";  // Escaped, not refused.
  absl::StatusOr<std::string> text = NatsServerConfig(o);
  REQUIRE(text.ok());
  CHECK(absl::StrContains(*text, R"(cert_file: "/etc/a \"quoted\\ dir/server.pem")"));
}

TEST_CASE("NatsServerConfig writes each role's permissions", "[broker]") {
  BrokerConfigOptions o{.station = "hq"};
  o.users = {{"hq", "pw1", BrokerUser::Role::kStation},
             {"alice", "pw2", BrokerUser::Role::kOperator},
             {"ship1", "pw3", BrokerUser::Role::kNode}};
  absl::StatusOr<std::string> text = NatsServerConfig(o);
  REQUIRE(text.ok());
  INFO(*text);
  CHECK(absl::StrContains(*text, "listen: \"127.0.0.1:4222\""));
  CHECK_FALSE(absl::StrContains(*text, "tls"));
  CHECK(absl::StrContains(*text, R"(publish: { allow: ["hq.command.*.cli"] })"));
  CHECK(absl::StrContains(*text, R"(subscribe: { allow: ["_INBOX_alice.>", "_DEBUG.alice.>"] })"));
  CHECK(absl::StrContains(*text, R"(publish: { allow: ["hq.event.>", "_DEBUG.*.ship1.>"] })"));
  CHECK(absl::StrContains(*text, R"(subscribe: { allow: ["ship1.>", "_INBOX_ship1.>"] })"));
  CHECK(absl::StrContains(*text, "allow_responses: true"));
}

TEST_CASE("NatsServerConfig: a hub accepts sites as leaf nodes, a site is a leaf of the hub", "[broker]") {
  const std::string pw = RandomPassword();
  BrokerConfigOptions hub{.listen = "0.0.0.0:4222", .tls_dir = "/k/tls"};
  hub.users = {{"station", pw, BrokerUser::Role::kStation}, {"ship1", pw, BrokerUser::Role::kNode}};
  hub.leaf_hub = LeafHub{.listen = "0.0.0.0:7422", .sites = {{"leaf-ship-a", pw}, {"leaf-ship-b", pw}}};
  absl::StatusOr<std::string> text = NatsServerConfig(hub);
  REQUIRE(text.ok());
  INFO(*text);
  CHECK(absl::StrContains(*text, "leafnodes {\n  listen: \"0.0.0.0:7422\"\n  tls {\n    cert_file: \"/k/tls/server.pem\""));
  // The link users are in the authorization block (nats-server 2.9 takes permissions
  // only there), each denied the other sites' site-control subject: a site speaks for
  // itself only.
  CHECK(absl::StrContains(*text, absl::StrCat("user: \"leaf-ship-a\"\n      password: \"", pw, "\"\n      permissions: {\n",
                                              R"(        publish: { allow: [">"], deny: ["_STEWARD.site.station.ship-b"] })")));
  CHECK(absl::StrContains(*text, R"(deny: ["_STEWARD.site.station.ship-a"])"));
  CHECK_FALSE(absl::StrContains(text->substr(text->find("leafnodes {")), "authorization"));

  BrokerConfigOptions site{.listen = "127.0.0.1:4222", .tls_dir = "/k/tls"};
  site.users = {{"ship1", pw, BrokerUser::Role::kNode}};
  site.leaf_remote = LeafRemote{.hub = "hub.example.com:7422", .link = {"leaf-ship-a", pw}, .ca_file = "/k/tls/ca.pem"};
  text = NatsServerConfig(site);
  REQUIRE(text.ok());
  INFO(*text);
  CHECK(absl::StrContains(*text, absl::StrCat("url: \"tls://leaf-ship-a:", pw, "@hub.example.com:7422\"")));
  CHECK(absl::StrContains(*text, "ca_file: \"/k/tls/ca.pem\""));
  CHECK(absl::StrContains(*text, R"(subscribe: { allow: ["ship1.>", "_INBOX_ship1.>"] })"));
  site.leaf_remote->ca_file = "";
  CHECK(absl::StrContains(*NatsServerConfig(site), "url: \"nats-leaf://leaf-ship-a:"));

  // Refused: both roles at once, a hub without sites, bad names, a bad hub address, a
  // site user that is also a client user.
  BrokerConfigOptions both = site;
  both.leaf_hub = hub.leaf_hub;
  CHECK(absl::IsInvalidArgument(NatsServerConfig(both).status()));
  BrokerConfigOptions empty = hub;
  empty.leaf_hub->sites.clear();
  CHECK(absl::IsInvalidArgument(NatsServerConfig(empty).status()));
  BrokerConfigOptions clash = hub;
  clash.leaf_hub->sites = {{"ship1", pw}};
  CHECK(absl::IsInvalidArgument(NatsServerConfig(clash).status()));
  site.leaf_remote->hub = "hub\"x:7422";
  CHECK(absl::IsInvalidArgument(NatsServerConfig(site).status()));
  site.leaf_remote->hub = "hub:7422";
  site.leaf_remote->link.user = "a b";
  CHECK(absl::IsInvalidArgument(NatsServerConfig(site).status()));
  CHECK(*LeafUserName("ship-a") == "leaf-ship-a");
  CHECK(absl::IsInvalidArgument(LeafUserName("a.b").status()));
}

TEST_CASE("NatsServerConfig: a cluster member routes to its peers with mutual TLS and has JetStream", "[broker]") {
  const std::string pw = RandomPassword();
  BrokerConfigOptions member{.listen = "0.0.0.0:4222", .tls_dir = "/k/tls"};
  member.users = {{"station", pw, BrokerUser::Role::kStation}, {"ship1", pw, BrokerUser::Role::kNode}};
  member.cluster = ClusterMember{.server_name = "n1",
                                 .listen = "0.0.0.0:6222",
                                 .routes = {"n1:6222", "n2:6222", "n3:6222"},
                                 .route = {"route-steward", pw},
                                 .jetstream_dir = "/var/lib/nats/js"};
  absl::StatusOr<std::string> text = NatsServerConfig(member);
  REQUIRE(text.ok());
  INFO(*text);
  CHECK(absl::StrContains(*text, "server_name: \"n1\"\n"));
  CHECK(absl::StrContains(*text, "cluster {\n  name: \"steward\"\n  listen: \"0.0.0.0:6222\"\n  tls {\n"));
  CHECK(absl::StrContains(*text, "    ca_file: \"/k/tls/ca.pem\"\n"));  // routes check each other
  CHECK(absl::StrContains(*text, absl::StrCat("nats-route://route-steward:", pw, "@n3:6222")));
  CHECK(absl::StrContains(*text, "jetstream {\n  store_dir: \"/var/lib/nats/js\"\n}"));
  // The client port's own TLS stays one-way (clients show no certificate).
  CHECK(absl::StrContains(*text, "listen: \"0.0.0.0:4222\"\ntls {\n  cert_file: \"/k/tls/server.pem\"\n  key_file: "
                                 "\"/k/tls/server.key\"\n  timeout: 5\n}"));
  member.cluster->jetstream_dir = "";
  CHECK(!absl::StrContains(*NatsServerConfig(member), "jetstream"));

  // Refused: no routes, no or a bad server name, a bad route, a route user that is also a
  // client user.
  BrokerConfigOptions bad = member;
  bad.cluster->routes.clear();
  CHECK(absl::IsInvalidArgument(NatsServerConfig(bad).status()));
  bad = member;
  bad.cluster->server_name = "";
  CHECK(absl::IsInvalidArgument(NatsServerConfig(bad).status()));
  bad.cluster->server_name = "n 1";
  CHECK(absl::IsInvalidArgument(NatsServerConfig(bad).status()));
  bad = member;
  bad.cluster->routes = {"n2\":6222"};
  CHECK(absl::IsInvalidArgument(NatsServerConfig(bad).status()));
  bad = member;
  bad.cluster->route.user = "ship1";
  CHECK(absl::IsInvalidArgument(NatsServerConfig(bad).status()));

  // A site linked to every member: the link fails over between them.
  BrokerConfigOptions site{.listen = "127.0.0.1:4222", .tls_dir = "/k/tls"};
  site.users = {{"ship1", pw, BrokerUser::Role::kNode}};
  site.leaf_remote = LeafRemote{.hub = "n1:7422,n2:7422", .link = {"leaf-ship-a", pw}, .ca_file = "/k/tls/ca.pem"};
  text = NatsServerConfig(site);
  REQUIRE(text.ok());
  CHECK(absl::StrContains(*text, absl::StrCat("urls: [\"tls://leaf-ship-a:", pw, "@n1:7422\", \"tls://leaf-ship-a:", pw,
                                              "@n2:7422\"]")));
}

TEST_CASE("GenerateTls writes a CA and a server certificate and never overwrites", "[broker]") {
  STEWARD_REQUIRE_OPENSSL();
  TempDir dir;
  CHECK(absl::IsInvalidArgument(GenerateTls(dir.str(), {})));
  CHECK(absl::IsInvalidArgument(GenerateTls(dir.str(), {"bad host"})));
  CHECK(absl::IsInvalidArgument(GenerateTls(dir.str(), {"a,DNS:evil"})));
  REQUIRE(GenerateTls(dir.str(), {"127.0.0.1", "localhost", "::1", "broker.example.com"}).ok());
  CHECK(ModeOf(dir.str() + "/ca.key") == 0600);
  CHECK(ModeOf(dir.str() + "/server.key") == 0600);
  CHECK(ModeOf(dir.str() + "/ca.pem") == 0644);
  CHECK(ModeOf(dir.str() + "/server.pem") == 0644);
  CHECK(absl::StartsWith(ReadFile(dir.path() / "server.pem"), "-----BEGIN CERTIFICATE-----"));
  const std::string ca_before = ReadFile(dir.path() / "ca.pem");
  CHECK(absl::IsAlreadyExists(GenerateTls(dir.str(), {"127.0.0.1"})));
  CHECK(ReadFile(dir.path() / "ca.pem") == ca_before);
  int entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    (void)entry;
    ++entries;
  }
  CHECK(entries == 4);  // The working directory is gone.
}

// Sets PATH for the life of the object (tests run one at a time; no other thread reads
// the environment meanwhile).
class ScopedPath {
 public:
  explicit ScopedPath(const std::string& path) {
    if (const char* old = std::getenv("PATH"); old != nullptr) saved_ = old;
    ::setenv("PATH", path.c_str(), 1);
  }
  ~ScopedPath() {
    if (saved_.has_value()) {
      ::setenv("PATH", saved_->c_str(), 1);
    } else {
      ::unsetenv("PATH");
    }
  }
  ScopedPath(const ScopedPath&) = delete;
  ScopedPath& operator=(const ScopedPath&) = delete;

 private:
  std::optional<std::string> saved_;
};

TEST_CASE("GenerateTls reports a missing or failing openssl", "[broker]") {
  TempDir dir;
  const std::string bin = dir.str() + "/bin";
  std::filesystem::create_directories(bin);
  {
    ScopedPath path(dir.str() + "/nowhere");
    CHECK(absl::IsNotFound(GenerateTls(dir.str(), {"127.0.0.1"})));
  }
  {
    std::ofstream fake(bin + "/openssl");
    fake << "#!/bin/sh\necho \"fake openssl: no entropy\" >&2\nexit 3\n";
  }
  REQUIRE(::chmod((bin + "/openssl").c_str(), 0755) == 0);
  absl::Status st;
  {
    ScopedPath path(bin);
    st = GenerateTls(dir.str(), {"127.0.0.1"});
  }
  CHECK(absl::IsInternal(st));
  CHECK(absl::StrContains(st.message(), "exit status 3"));
  CHECK(absl::StrContains(st.message(), "fake openssl: no entropy"));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "ca.key"));
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    CHECK(entry.path().filename() == "bin");  // The working directory is gone.
  }
}

TEST_CASE("a node publishes station events but not another node's commands",
          "[broker][integration]") {
  STEWARD_REQUIRE_OPENSSL();
  nats::Library lib;
  Broker broker;
  Client station = broker.Connect("station");
  Client ship1 = broker.Connect("ship1");
  nats::SubscriptionPtr commands = MustSubscribe(station.nc.get(), "ship2.command.>");
  nats::SubscriptionPtr events = MustSubscribe(station.nc.get(), "station.event.>");

  MustPublish(ship1.nc.get(), "ship2.command.shellcommand.x", "forged");
  MustPublish(ship1.nc.get(), "station.event.result.x", "result");
  CHECK(NextData(events.get(), kArrive) == "result");
  CHECK(Quiet(commands.get()));
  // The refused PUB surfaces asynchronously; the connection stays usable.
  CHECK(ship1.errors->WaitFor(NATS_NOT_PERMITTED, "Permissions Violation for Publish",
                              absl::Seconds(2)));
  INFO(ship1.errors->Dump());
  CHECK(natsConnection_Status(ship1.nc.get()) == NATS_CONN_STATUS_CONNECTED);
  // Nor may it publish to itself or fake another node's events under another name.
  nats::SubscriptionPtr own = MustSubscribe(station.nc.get(), "ship1.>");
  MustPublish(ship1.nc.get(), "ship1.command.shellcommand.x", "self");
  CHECK(Quiet(own.get()));
}

TEST_CASE("a node cannot subscribe outside its own subjects", "[broker][integration]") {
  STEWARD_REQUIRE_OPENSSL();
  nats::Library lib;
  Broker broker;
  Client station = broker.Connect("station");
  Client ship1 = broker.Connect("ship1");

  // nats.c accepts the SUB locally; the server refuses it with -ERR, reported to the
  // error handler and natsConnection_GetLastError as NATS_NOT_PERMITTED.
  nats::SubscriptionPtr stolen = MustSubscribe(ship1.nc.get(), "ship2.command.>");
  CHECK(ship1.errors->WaitFor(NATS_NOT_PERMITTED,
                              "Permissions Violation for Subscription to \"ship2.command.>\"",
                              absl::Seconds(2)));
  const char* last = nullptr;
  CHECK(natsConnection_GetLastError(ship1.nc.get(), &last) == NATS_NOT_PERMITTED);
  CHECK(absl::StrContains(last == nullptr ? "" : last, "Permissions Violation"));
  // The error text is the connection's latest: await each refusal before the next.
  nats::SubscriptionPtr everything = MustSubscribe(ship1.nc.get(), ">");
  CHECK(ship1.errors->WaitFor(NATS_NOT_PERMITTED, "Subscription to \">\"", absl::Seconds(2)));
  nats::SubscriptionPtr station_events = MustSubscribe(ship1.nc.get(), "station.event.>");
  CHECK(ship1.errors->WaitFor(NATS_NOT_PERMITTED, "Subscription to \"station.event.>\"",
                              absl::Seconds(2)));
  nats::SubscriptionPtr own = MustSubscribe(ship1.nc.get(), "ship1.command.>");

  MustPublish(station.nc.get(), "ship2.command.x", "for ship2");
  MustPublish(station.nc.get(), "station.event.result.x", "for the station");
  MustPublish(station.nc.get(), "ship1.command.ping.x", "for ship1");
  CHECK(NextData(own.get(), kArrive) == "for ship1");
  CHECK(Quiet(stolen.get()));
  CHECK(absl::IsDeadlineExceeded(nats::NextMsg(everything.get(), absl::Milliseconds(50)).status()));
  CHECK(absl::IsDeadlineExceeded(
      nats::NextMsg(station_events.get(), absl::Milliseconds(50)).status()));
  CHECK(natsConnection_Status(ship1.nc.get()) == NATS_CONN_STATUS_CONNECTED);
}

TEST_CASE("a node answers the station's requests once (allow_responses)",
          "[broker][integration]") {
  STEWARD_REQUIRE_OPENSSL();
  nats::Library lib;
  Broker broker;
  Client station = broker.Connect("station");
  Client ship1 = broker.Connect("ship1");
  nats::SubscriptionPtr pings = MustSubscribe(ship1.nc.get(), "ship1.command.>");

  std::thread responder([&] {
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(pings.get(), absl::Seconds(5));
    if (!msg.ok()) return;
    nats::Publish(ship1.nc.get(), nats::Reply(msg->get()), "pong").IgnoreError();
  });
  absl::StatusOr<nats::MsgPtr> reply =
      nats::Request(station.nc.get(), "ship1.command.ping.x", "ping", absl::Seconds(5));
  responder.join();
  INFO(reply.status().ToString());
  REQUIRE(reply.ok());
  CHECK(nats::Data(reply->get()) == "pong");

  // One response per request: a second reply to the same inbox is refused, and so is
  // publishing to an inbox the node was never asked on.
  const std::string inbox = "_INBOX_station.manual";
  nats::SubscriptionPtr replies = MustSubscribe(station.nc.get(), inbox);
  MustPublish(station.nc.get(), "ship1.command.ping.x", "ping", inbox);
  absl::StatusOr<nats::MsgPtr> request = nats::NextMsg(pings.get(), kArrive);
  REQUIRE(request.ok());
  CHECK(nats::Reply(request->get()) == inbox);
  MustPublish(ship1.nc.get(), inbox, "first");
  MustPublish(ship1.nc.get(), inbox, "second");
  MustPublish(ship1.nc.get(), "_INBOX_station.unasked", "unasked");
  CHECK(NextData(replies.get(), kArrive) == "first");
  CHECK(Quiet(replies.get()));
}

TEST_CASE("a node makes requests to the station with its own inbox prefix",
          "[broker][integration]") {
  STEWARD_REQUIRE_OPENSSL();
  nats::Library lib;
  Broker broker;
  Client station = broker.Connect("station");
  Client ship1 = broker.Connect("ship1");
  nats::SubscriptionPtr requests = MustSubscribe(station.nc.get(), "station.event.>");

  std::string seen_reply;
  std::thread responder([&] {
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(requests.get(), absl::Seconds(5));
    if (!msg.ok()) return;
    seen_reply = nats::Reply(msg->get());
    nats::Publish(station.nc.get(), seen_reply, "confirmed").IgnoreError();
  });
  absl::StatusOr<nats::MsgPtr> reply =
      nats::Request(ship1.nc.get(), "station.event.result.x", "result", absl::Seconds(5));
  responder.join();
  INFO(reply.status().ToString());
  REQUIRE(reply.ok());
  CHECK(nats::Data(reply->get()) == "confirmed");
  CHECK(absl::StartsWith(seen_reply, "_INBOX_ship1."));

  // With nats.c's default "_INBOX." prefix the reply subscription is refused, so the
  // request can only time out: clients must set the custom prefix.
  absl::StatusOr<Client> plain = ConnectClient({.url = broker.server().url(), .user = "ship1",
                                                .password = broker.PasswordOf("ship1"),
                                                .ca_file = broker.ca_file()});
  REQUIRE(plain.ok());
  std::thread responder2([&] {
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(requests.get(), absl::Seconds(2));
    if (!msg.ok()) return;
    nats::Publish(station.nc.get(), nats::Reply(msg->get()), "confirmed").IgnoreError();
  });
  absl::StatusOr<nats::MsgPtr> lost =
      nats::Request(plain->nc.get(), "station.event.result.x", "result", absl::Seconds(1));
  responder2.join();
  CHECK_FALSE(lost.ok());
  CHECK(plain->errors->WaitFor(NATS_NOT_PERMITTED, "Subscription to \"_INBOX.",
                               absl::Seconds(1)));
}

TEST_CASE("the broker refuses bad passwords and plaintext and other CAs",
          "[broker][integration]") {
  STEWARD_REQUIRE_OPENSSL();
  nats::Library lib;
  Broker broker;

  const absl::Time start = absl::Now();
  absl::StatusOr<Client> wrong = ConnectClient({.url = broker.server().url(), .user = "ship1",
                                                .password = "wrong", .ca_file = broker.ca_file()});
  CHECK(absl::Now() - start < absl::Seconds(2));
  REQUIRE_FALSE(wrong.ok());
  CHECK(absl::StrContains(wrong.status().message(), "Authorization Violation"));
  // ship2's password does not open ship1's account.
  CHECK_FALSE(ConnectClient({.url = broker.server().url(), .user = "ship1",
                             .password = broker.PasswordOf("ship2"), .ca_file = broker.ca_file()})
                  .ok());
  // The project's wrapper works with the right credentials.
  CHECK(nats::Connect({.url = broker.server().url(), .name = "ship1", .keep_trying = false,
                       .user = "ship1", .password = broker.PasswordOf("ship1"),
                       .tls_ca_file = broker.ca_file()})
            .ok());

  // No TLS: nats.c without a CA cannot verify the server...
  absl::StatusOr<Client> plain = ConnectClient({.url = broker.server().url("nats"),
                                                .user = "station",
                                                .password = broker.PasswordOf("station")});
  CHECK_FALSE(plain.ok());
  INFO(plain.status().ToString());
  // ...and a client that speaks plaintext NATS with valid credentials gets no PONG.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(broker.server().port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  const std::string hello = absl::StrCat(R"(CONNECT {"user":"station","pass":")",
                                         broker.PasswordOf("station"),
                                         R"(","verbose":false})", "\r\nPING\r\n");
  std::string received;
  const absl::Time deadline = absl::Now() + absl::Seconds(3);
  bool sent = false;
  while (absl::Now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 100) <= 0) {
      if (!sent) sent = ::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) > 0;
      continue;
    }
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;  // The server closed the connection.
    received.append(buf, static_cast<size_t>(n));
    if (!sent) sent = ::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) > 0;
  }
  ::close(fd);
  INFO(received);
  CHECK(sent);
  CHECK(absl::StrContains(received, "\"tls_required\":true"));
  CHECK_FALSE(absl::StrContains(received, "PONG"));

  // A CA that did not sign the server certificate.
  TempDir other;
  REQUIRE(GenerateTls(other.str(), {"127.0.0.1"}).ok());
  absl::StatusOr<Client> foreign = ConnectClient({.url = broker.server().url(),
                                                  .user = "station",
                                                  .password = broker.PasswordOf("station"),
                                                  .ca_file = other.str() + "/ca.pem"});
  CHECK_FALSE(foreign.ok());
  INFO(foreign.status().ToString());

  // The server certificate names the requested hosts.
  CHECK(ConnectClient({.url = broker.server().url(), .user = "station",
                       .password = broker.PasswordOf("station"), .ca_file = broker.ca_file(),
                       .expected_hostname = "localhost"})
            .ok());
  CHECK_FALSE(ConnectClient({.url = broker.server().url(), .user = "station",
                             .password = broker.PasswordOf("station"),
                             .ca_file = broker.ca_file(), .expected_hostname = "evil.example"})
                  .ok());
}

TEST_CASE("an operator submits to the station only", "[broker][integration]") {
  STEWARD_REQUIRE_OPENSSL();
  nats::Library lib;
  Broker broker;
  Client station = broker.Connect("station");
  Client ops = broker.Connect("ops");
  nats::SubscriptionPtr submits = MustSubscribe(station.nc.get(), "station.command.>");
  nats::SubscriptionPtr direct = MustSubscribe(station.nc.get(), "ship1.>");
  nats::SubscriptionPtr events = MustSubscribe(station.nc.get(), "station.event.>");

  // nats.c hands the error handler only a status; the text (GetLastError) is the
  // connection's latest error, so each refusal is awaited before the next one.
  MustPublish(ops.nc.get(), "ship1.command.shellcommand.x", "bypass");
  CHECK(ops.errors->WaitFor(NATS_NOT_PERMITTED, "Publish to \"ship1.command.shellcommand.x\"",
                            absl::Seconds(2)));
  MustPublish(ops.nc.get(), "station.event.result.x", "forged result");
  CHECK(ops.errors->WaitFor(NATS_NOT_PERMITTED, "Publish to \"station.event.result.x\"",
                            absl::Seconds(2)));
  MustPublish(ops.nc.get(), "station.command.submit.cli", "submit");
  CHECK(NextData(submits.get(), kArrive) == "submit");
  CHECK(Quiet(direct.get()));
  CHECK(absl::IsDeadlineExceeded(nats::NextMsg(events.get(), absl::Milliseconds(50)).status()));

  // Request/reply through its own inbox.
  std::thread responder([&] {
    absl::StatusOr<nats::MsgPtr> msg = nats::NextMsg(submits.get(), absl::Seconds(5));
    if (!msg.ok()) return;
    nats::Publish(station.nc.get(), nats::Reply(msg->get()), "accepted").IgnoreError();
  });
  absl::StatusOr<nats::MsgPtr> reply =
      nats::Request(ops.nc.get(), "station.command.submit.cli", "submit", absl::Seconds(5));
  responder.join();
  INFO(reply.status().ToString());
  REQUIRE(reply.ok());
  CHECK(nats::Data(reply->get()) == "accepted");
  // An operator cannot listen in on nodes.
  nats::SubscriptionPtr snoop = MustSubscribe(ops.nc.get(), "ship1.>");
  CHECK(ops.errors->WaitFor(NATS_NOT_PERMITTED, "Subscription to \"ship1.>\"", absl::Seconds(2)));
}

TEST_CASE("clients check that the server certificate names the host they dial",
          "[broker][integration]") {
  STEWARD_REQUIRE_OPENSSL();
  nats::Library lib;
  TempDir dir;
  REQUIRE(GenerateTls(dir.str(), {"only.example"}).ok());
  const std::string pw = RandomPassword();
  BrokerConfigOptions o{.listen = "127.0.0.1:-1", .tls_dir = dir.str()};
  o.users = {{"station", pw, BrokerUser::Role::kStation}};
  absl::StatusOr<std::string> config = NatsServerConfig(o);
  REQUIRE(config.ok());
  ConfiguredServer server(dir.path(), *config);
  const ClientOptions client{.url = server.url(), .user = "station", .password = pw,
                             .ca_file = dir.str() + "/ca.pem"};
  // nats.c verifies the URL's host against the subjectAltName by default.
  absl::StatusOr<Client> by_ip = ConnectClient(client);
  CHECK_FALSE(by_ip.ok());
  INFO(by_ip.status().ToString());
  ClientOptions named = client;
  named.expected_hostname = "only.example";
  absl::StatusOr<Client> by_name = ConnectClient(named);
  INFO(by_name.status().ToString());
  CHECK(by_name.ok());
}

}  // namespace
}  // namespace steward::ctl
