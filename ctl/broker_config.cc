// Broker security material: creds files, broker users and their per-role permissions,
// and the nats-server configuration text (the CA and server certificate: broker_tls.cc).
#include "ctl/broker_config.h"

#include <sodium.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "subjects/site.h"
#include "subjects/subject.h"

namespace steward::ctl {
namespace {

constexpr size_t kPasswordLength = 32;
constexpr char kBase62[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
// TLS handshake timeout in seconds (edge links can be slow).
constexpr int kTlsTimeoutSeconds = 5;

// A double-quoted configuration string: '\' and '"' escaped, control characters refused.
absl::StatusOr<std::string> Quote(absl::string_view text, absl::string_view what) {
  std::string out = "\"";
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " \"", absl::CEscape(text), "\" contains a control character"));
    }
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

// ["a", "b"] from subjects that are already validated.
absl::StatusOr<std::string> QuotedList(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  for (const std::string& item : items) {
    STEWARD_ASSIGN_OR_RETURN(std::string q, Quote(item, "subject"));
    quoted.push_back(std::move(q));
  }
  return absl::StrCat("[", absl::StrJoin(quoted, ", "), "]");
}

// "host:port" with port -1..65535 and a host of address/hostname characters.
absl::Status ValidateListen(absl::string_view listen) {
  const size_t colon = listen.rfind(':');
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", absl::CEscape(listen), "\" ", why, ", want host:port"));
  };
  if (colon == absl::string_view::npos) return bad("has no port");
  const absl::string_view host = listen.substr(0, colon);
  int port = 0;
  if (!absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < -1 || port > 65535) {
    return bad("has a bad port");
  }
  if (host.empty()) return bad("has no host");
  for (const char c : host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' &&
        c != ':' && c != '[' && c != ']') {
      return bad("has a bad host");
    }
  }
  return absl::OkStatus();
}

// Permissions text for one user (inside "permissions: { ... }").
absl::StatusOr<std::string> Permissions(const BrokerUser& user, const std::string& station) {
  std::vector<std::string> publish;
  std::vector<std::string> subscribe;
  bool allow_responses = false;
  const std::string inbox = absl::StrCat("_INBOX_", user.name, ".>");
  switch (user.role) {
    case BrokerUser::Role::kStation:
      publish = {">"};
      subscribe = {">"};
      break;
    case BrokerUser::Role::kOperator: {
      publish = {absl::StrCat(station, ".command.*.cli")};
      STEWARD_ASSIGN_OR_RETURN(std::string debug, subjects::DebugSubscribePattern(user.name));
      subscribe = {inbox, debug};  // its own debug streams (stewardctl debug)
      allow_responses = true;      // answers a streaming node's "still there?"
      break;
    }
    case BrokerUser::Role::kSiteLink: {
      std::vector<std::string> deny;
      for (const std::string& other : user.other_sites) {
        STEWARD_ASSIGN_OR_RETURN(std::string subject, subjects::SiteSubject(station, other));
        deny.push_back(std::move(subject));
      }
      STEWARD_ASSIGN_OR_RETURN(std::string denied, QuotedList(deny));
      return absl::StrCat("        publish: { allow: [\">\"]", deny.empty() ? "" : absl::StrCat(", deny: ", denied),
                          " }\n        subscribe: { allow: [\">\"] }\n");
    }
    case BrokerUser::Role::kNode: {
      STEWARD_ASSIGN_OR_RETURN(std::string own, subjects::NodePattern(user.name));
      STEWARD_ASSIGN_OR_RETURN(std::string debug, subjects::DebugPublishPattern(user.name));
      publish = {absl::StrCat(station, ".event.>"), debug};  // its own log, to debug streams
      subscribe = {own, inbox};
      allow_responses = true;
      break;
    }
  }
  STEWARD_ASSIGN_OR_RETURN(std::string pub, QuotedList(publish));
  STEWARD_ASSIGN_OR_RETURN(std::string sub, QuotedList(subscribe));
  return absl::StrCat("        publish: { allow: ", pub, " }\n",
                      "        subscribe: { allow: ", sub, " }\n",
                      allow_responses ? "        allow_responses: true\n" : "");
}

absl::string_view RoleName(BrokerUser::Role role) {
  switch (role) {
    case BrokerUser::Role::kStation: return "station";
    case BrokerUser::Role::kOperator: return "operator";
    case BrokerUser::Role::kNode: return "node";
    case BrokerUser::Role::kSiteLink: return "site link (leaf node)";
  }
  return "unknown";
}

}  // namespace

std::string RandomPassword() {
  if (sodium_init() < 0) abort();  // Broken invariant: no entropy source.
  std::string out;
  out.reserve(kPasswordLength);
  unsigned char buf[64];
  while (out.size() < kPasswordLength) {
    randombytes_buf(buf, sizeof(buf));
    for (const unsigned char b : buf) {
      // 248 = 4 * 62: rejecting larger bytes keeps every character equally likely.
      if (b >= 248 || out.size() == kPasswordLength) continue;
      out += kBase62[b % 62];
    }
  }
  return out;
}

namespace {

// A user's name and password as they may be written into the configuration, and a
// name no other user of the broker has (`names` collects them).
absl::Status CheckUser(const std::string& name, const std::string& password, std::set<std::string>& names) {
  STEWARD_RETURN_IF_ERROR(ValidateBrokerUserName(name));
  if (absl::Status s = ValidateBrokerPassword(password); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("user ", name, ": ", s.message()));
  }
  if (!names.insert(name).second) {
    return absl::InvalidArgumentError(absl::StrCat("broker user \"", name, "\" is listed twice"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckNodeName(absl::string_view node) {
  STEWARD_RETURN_IF_ERROR(ValidateBrokerUserName(node));
  if (node == "station" || node == "operator") {
    return absl::InvalidArgumentError(absl::StrCat("node name \"", node, "\" is reserved"));
  }
  if (absl::StartsWith(node, "_") || absl::StartsWith(node, "$")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node name \"", node, "\" begins with '", node.substr(0, 1),
        "': such names are the broker's and the station's own subjects (_INBOX, _DEBUG, _STEWARD, $SYS), "
        "which a node of that name could read"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LeafUserName(absl::string_view site) {
  const std::string name = absl::StrCat("leaf-", site);
  if (absl::Status s = ValidateBrokerUserName(name); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("site name: ", s.message()));
  }
  return name;
}

namespace {

// tls { ... } for a server port with the certificate of GenerateTls in `tls_dir`.
// tls { cert_file, key_file, timeout } with the server certificate; `verify_peers`
// adds the CA that peers' certificates must chain to (cluster routes: mutual TLS).
absl::StatusOr<std::string> ServerTls(const std::string& tls_dir, absl::string_view indent,
                                      bool verify_peers = false) {
  const std::filesystem::path dir(tls_dir);
  STEWARD_ASSIGN_OR_RETURN(std::string cert, Quote((dir / "server.pem").string(), "tls_dir"));
  STEWARD_ASSIGN_OR_RETURN(std::string key, Quote((dir / "server.key").string(), "tls_dir"));
  std::string ca;
  if (verify_peers) {
    STEWARD_ASSIGN_OR_RETURN(std::string file, Quote((dir / "ca.pem").string(), "tls_dir"));
    ca = absl::StrCat(indent, "  ca_file: ", file, "\n");
  }
  return absl::StrCat(indent, "tls {\n", indent, "  cert_file: ", cert, "\n", indent, "  key_file: ", key, "\n", ca,
                      indent, "  timeout: ", kTlsTimeoutSeconds, "\n", indent, "}\n");
}

// leafnodes { listen, tls }: the hub's side (its sites' link users are in the
// authorization block, SiteLinkUsers).
absl::StatusOr<std::string> LeafHubSection(const LeafHub& hub, const std::string& tls_dir) {
  STEWARD_RETURN_IF_ERROR(ValidateListen(hub.listen));
  if (hub.sites.empty()) return absl::InvalidArgumentError("a leaf node port needs at least one site");
  STEWARD_ASSIGN_OR_RETURN(std::string listen, Quote(hub.listen, "leaf listen address"));
  std::string out = absl::StrCat("# Sites (ships) connect their brokers here as leaf nodes.\nleafnodes {\n  listen: ",
                                 listen, "\n");
  if (!tls_dir.empty()) {
    STEWARD_ASSIGN_OR_RETURN(std::string tls, ServerTls(tls_dir, "  "));
    absl::StrAppend(&out, tls);
  }
  // The sites log in with their link users, which the authorization block holds.
  absl::StrAppend(&out, "}\n");
  return out;
}

// leafnodes { remotes = [ { urls, tls } ] }: a site's side.
absl::StatusOr<std::string> LeafRemoteSection(const LeafRemote& remote) {
  std::set<std::string> names;  // the link user is the hub's, apart from this broker's
  STEWARD_RETURN_IF_ERROR(CheckUser(remote.link.user, remote.link.password, names));
  std::vector<std::string> urls;
  for (absl::string_view hub : absl::StrSplit(remote.hub, ',', absl::SkipEmpty())) {
    STEWARD_RETURN_IF_ERROR(ValidateListen(hub));
    // Names and passwords were validated: nothing in them needs escaping in a URL.
    STEWARD_ASSIGN_OR_RETURN(
        std::string url, Quote(absl::StrCat(remote.ca_file.empty() ? "nats-leaf" : "tls", "://", remote.link.user,
                                            ":", remote.link.password, "@", hub),
                               "hub"));
    urls.push_back(std::move(url));
  }
  if (urls.empty()) return absl::InvalidArgumentError("a site needs the hub's leaf node port (host:port)");
  std::string out = absl::StrCat(
      "# This broker is a site: a leaf node of the hub. Its clients stay connected while the link\n"
      "# is down, and it reconnects by itself.\nleafnodes {\n  reconnect: 1\n  remotes = [\n    {\n      ",
      urls.size() == 1 ? absl::StrCat("url: ", urls[0]) : absl::StrCat("urls: [", absl::StrJoin(urls, ", "), "]"),
      "\n");
  if (!remote.ca_file.empty()) {
    STEWARD_ASSIGN_OR_RETURN(std::string ca, Quote(remote.ca_file, "ca_file"));
    absl::StrAppend(&out, "      tls {\n        ca_file: ", ca, "\n        timeout: ", kTlsTimeoutSeconds,
                    "\n      }\n");
  }
  absl::StrAppend(&out, "    }\n  ]\n}\n");
  return out;
}

// server_name, cluster { name, listen, tls, authorization, routes } and jetstream.
absl::StatusOr<std::string> ClusterSection(const ClusterMember& c, const std::string& tls_dir,
                                           std::set<std::string>& names) {
  if (c.server_name.empty()) return absl::InvalidArgumentError("a cluster member needs its own server name");
  STEWARD_RETURN_IF_ERROR(ValidateBrokerUserName(c.server_name));  // the same rules: a plain token
  STEWARD_RETURN_IF_ERROR(ValidateBrokerUserName(c.name));
  STEWARD_RETURN_IF_ERROR(ValidateListen(c.listen));
  if (c.routes.empty()) return absl::InvalidArgumentError("a cluster needs the members' route ports (--routes)");
  STEWARD_RETURN_IF_ERROR(CheckUser(c.route.user, c.route.password, names));
  STEWARD_ASSIGN_OR_RETURN(std::string server_name, Quote(c.server_name, "server name"));
  STEWARD_ASSIGN_OR_RETURN(std::string name, Quote(c.name, "cluster name"));
  STEWARD_ASSIGN_OR_RETURN(std::string listen, Quote(c.listen, "route listen address"));
  STEWARD_ASSIGN_OR_RETURN(std::string user, Quote(c.route.user, "user name"));
  STEWARD_ASSIGN_OR_RETURN(std::string password, Quote(c.route.password, "password"));
  std::string out = absl::StrCat("server_name: ", server_name,
                                 "\n# One broker of a cluster: clients may connect to any member.\ncluster {\n  name: ",
                                 name, "\n  listen: ", listen, "\n");
  if (!tls_dir.empty()) {
    // Routes are mutual TLS: each end shows the server certificate and checks the other's.
    STEWARD_ASSIGN_OR_RETURN(std::string tls, ServerTls(tls_dir, "  ", /*verify_peers=*/true));
    absl::StrAppend(&out, tls);
  }
  absl::StrAppend(&out, "  authorization {\n    user: ", user, "\n    password: ", password, "\n  }\n  routes = [\n");
  for (const std::string& route : c.routes) {
    STEWARD_RETURN_IF_ERROR(ValidateListen(route));
    STEWARD_ASSIGN_OR_RETURN(std::string url, Quote(absl::StrCat("nats-route://", c.route.user, ":", c.route.password,
                                                                 "@", route),
                                                    "route"));
    absl::StrAppend(&out, "    ", url, "\n");
  }
  absl::StrAppend(&out, "  ]\n}\n");
  if (!c.jetstream_dir.empty()) {
    STEWARD_ASSIGN_OR_RETURN(std::string dir, Quote(c.jetstream_dir, "JetStream directory"));
    absl::StrAppend(&out, "jetstream {\n  store_dir: ", dir, "\n}\n");
  }
  return out;
}

// The hub's sites' link users ("leaf-<site>"), each denied the others' site subjects.
std::vector<BrokerUser> SiteLinkUsers(const LeafHub& hub) {
  std::vector<BrokerUser> out;
  for (const BrokerCreds& site : hub.sites) {
    BrokerUser link{site.user, site.password, BrokerUser::Role::kSiteLink, {}};
    for (const BrokerCreds& other : hub.sites) {
      if (other.user != site.user) link.other_sites.emplace_back(absl::StripPrefix(other.user, "leaf-"));
    }
    out.push_back(std::move(link));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> NatsServerConfig(const BrokerConfigOptions& options) {
  STEWARD_RETURN_IF_ERROR(ValidateListen(options.listen));
  if (options.leaf_hub.has_value() && options.leaf_remote.has_value()) {
    return absl::InvalidArgumentError("a broker is either a hub for leaf nodes or a leaf node, not both");
  }
  if (absl::Status s = ValidateBrokerUserName(options.station); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("station name: ", s.message()));
  }
  if (options.users.empty()) {
    // An authorization block without users would let anyone connect with every right.
    return absl::InvalidArgumentError("the broker configuration needs at least one user");
  }
  std::vector<BrokerUser> users = options.users;
  if (options.leaf_hub.has_value()) {
    for (BrokerUser& link : SiteLinkUsers(*options.leaf_hub)) users.push_back(std::move(link));
  }
  std::set<std::string> names;
  for (const BrokerUser& user : users) {
    STEWARD_RETURN_IF_ERROR(CheckUser(user.name, user.password, names));
    if (user.role == BrokerUser::Role::kNode) STEWARD_RETURN_IF_ERROR(CheckNodeName(user.name));
    if (user.role == BrokerUser::Role::kNode && user.name == options.station) {
      // Its "<name>.>" subscription would receive everything sent to the station.
      return absl::InvalidArgumentError(
          absl::StrCat("node \"", user.name, "\" has the station's name"));
    }
  }

  STEWARD_ASSIGN_OR_RETURN(std::string listen, Quote(options.listen, "listen address"));
  std::string out = absl::StrCat(
      "# nats-server configuration generated by steward. It holds passwords: keep it 0600.\n",
      "listen: ", listen, "\n");
  if (!options.tls_dir.empty()) {
    STEWARD_ASSIGN_OR_RETURN(std::string tls, ServerTls(options.tls_dir, ""));
    absl::StrAppend(&out, tls);
  }
  absl::StrAppend(&out, "authorization {\n  users = [\n");
  for (const BrokerUser& user : users) {
    STEWARD_ASSIGN_OR_RETURN(std::string name, Quote(user.name, "user name"));
    STEWARD_ASSIGN_OR_RETURN(std::string password, Quote(user.password, "password"));
    STEWARD_ASSIGN_OR_RETURN(std::string permissions, Permissions(user, options.station));
    absl::StrAppend(&out, "    {\n      # ", RoleName(user.role), "\n      user: ", name,
                    "\n      password: ", password, "\n      permissions: {\n", permissions,
                    "      }\n    }\n");
  }
  absl::StrAppend(&out, "  ]\n}\n");
  if (options.leaf_hub.has_value()) {
    STEWARD_ASSIGN_OR_RETURN(std::string leaf, LeafHubSection(*options.leaf_hub, options.tls_dir));
    absl::StrAppend(&out, leaf);
  }
  if (options.leaf_remote.has_value()) {
    STEWARD_ASSIGN_OR_RETURN(std::string leaf, LeafRemoteSection(*options.leaf_remote));
    absl::StrAppend(&out, leaf);
  }
  if (options.cluster.has_value()) {
    STEWARD_ASSIGN_OR_RETURN(std::string cluster, ClusterSection(*options.cluster, options.tls_dir, names));
    absl::StrAppend(&out, cluster);
  }
  return out;
}

}  // namespace steward::ctl
