// Broker security material: creds files, a CA and server certificate made by running
// the openssl command line, and the nats-server configuration text with per-role
// permissions.
#include "ctl/broker_config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/atomic_write.h"
#include "common/spawn.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "subjects/site.h"
#include "subjects/subject.h"

namespace steward::ctl {
namespace {

constexpr size_t kPasswordLength = 32;
constexpr char kBase62[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
// How long one openssl step may take before it is killed.
constexpr absl::Duration kOpensslDeadline = absl::Seconds(30);
// How much of openssl's output is kept for an error message.
constexpr size_t kMaxOpensslOutput = 16 * 1024;
// TLS handshake timeout in seconds (edge links can be slow).
constexpr int kTlsTimeoutSeconds = 5;

using Fd = ::steward::UniqueFd;

void InitSodium() {
  if (sodium_init() < 0) abort();  // Broken invariant: no entropy source.
}

// Random hex digits for names and serial numbers.
std::string RandomHex(size_t bytes) {
  InitSodium();
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  raw[0] = static_cast<char>(raw[0] & 0x7f);  // Serial numbers must be positive.
  std::string hex(bytes * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                 raw.size());
  hex.pop_back();
  return hex;
}

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

// "IP:<addr>" or "DNS:<name>" for a subjectAltName; InvalidArgument for anything else.
absl::StatusOr<std::string> AltName(const std::string& host) {
  unsigned char addr[sizeof(in6_addr)];
  if (::inet_pton(AF_INET, host.c_str(), addr) == 1 ||
      ::inet_pton(AF_INET6, host.c_str(), addr) == 1) {
    return absl::StrCat("IP:", host);
  }
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("host \"", absl::CEscape(host), "\" ", why,
                     " (want an IP address or a DNS name)"));
  };
  if (host.empty()) return bad("is empty");
  if (host.size() > 253) return bad("is longer than 253 bytes");
  const std::vector<absl::string_view> labels = absl::StrSplit(host, '.');
  for (size_t i = 0; i < labels.size(); ++i) {
    const absl::string_view label = labels[i];
    if (i == 0 && label == "*" && labels.size() > 2) continue;  // *.example.com
    if (label.empty() || label.size() > 63) return bad("has an empty or too long label");
    if (label.front() == '-' || label.back() == '-') return bad("has a label at '-'");
    for (const char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
        return bad("has a character other than letters, digits, '-' and '.'");
      }
    }
  }
  return absl::StrCat("DNS:", host);
}

// Runs `openssl <args...>` with stdin from /dev/null and stdout+stderr captured; OK
// when it exits 0.
absl::Status RunOpenssl(const std::vector<std::string>& args) {
  STEWARD_ASSIGN_OR_RETURN(SpawnPipe out_pipe, MakeSpawnPipe());
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string what = absl::StrCat("openssl ", args.empty() ? "" : args[0]);
  absl::StatusOr<pid_t> spawned =
      SpawnProcess({.argv = std::move(argv),
                    .stdout_fd = out_pipe.write.get(),
                    .stderr_fd = out_pipe.write.get()},
                   absl::StrCat("cannot run ", what));
  if (absl::IsNotFound(spawned.status())) {
    return absl::NotFoundError("openssl is not installed (not found on PATH)");
  }
  STEWARD_RETURN_IF_ERROR(spawned.status());
  const pid_t pid = *spawned;
  const Fd read_end = std::move(out_pipe.read);
  out_pipe.write.Reset();  // EOF arrives when openssl exits.

  // Output until EOF (openssl exited) or the deadline; on any failure the child is
  // killed. It is always reaped.
  std::string output;
  absl::Status io = absl::OkStatus();
  const absl::Time deadline = absl::Now() + kOpensslDeadline;
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      io = absl::DeadlineExceededError(
          absl::StrCat(what, " did not finish within ", absl::FormatDuration(kOpensslDeadline)));
      break;
    }
    pollfd pfd{read_end.get(), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno != EINTR) {
      io = absl::ErrnoToStatus(errno, "poll");
      break;
    }
    if (ready <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      io = absl::ErrnoToStatus(errno, absl::StrCat("read output of ", what));
      break;
    }
    if (n == 0) break;
    if (output.size() < kMaxOpensslOutput) {
      output.append(buf, std::min(static_cast<size_t>(n), kMaxOpensslOutput - output.size()));
    }
  }
  if (!io.ok()) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return absl::ErrnoToStatus(errno, "waitpid openssl");
  }
  STEWARD_RETURN_IF_ERROR(io);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  const std::string how = WIFEXITED(status)
                              ? absl::StrCat("exit status ", WEXITSTATUS(status))
                              : absl::StrCat("signal ", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return absl::InternalError(
      absl::StrCat(what, " failed (", how, "): ", absl::StripAsciiWhitespace(output)));
}

// The openssl configuration for the CA and the server certificate extensions.
std::string OpensslConfig(const std::string& ca_name, const std::vector<std::string>& alt_names) {
  return absl::StrCat(
      "[req]\n"
      "distinguished_name = dn\n"
      "prompt = no\n"
      "[dn]\n"
      "CN = ", ca_name, "\n"
      "[v3_ca]\n"
      "basicConstraints = critical, CA:TRUE, pathlen:0\n"
      "keyUsage = critical, keyCertSign, cRLSign\n"
      "subjectKeyIdentifier = hash\n"
      "[v3_server]\n"
      "basicConstraints = critical, CA:FALSE\n"
      "keyUsage = critical, digitalSignature\n"
      // clientAuth too: cluster routes are mutual TLS with the one certificate.
      "extendedKeyUsage = serverAuth, clientAuth\n"
      "subjectAltName = ", absl::StrJoin(alt_names, ", "), "\n"
      "subjectKeyIdentifier = hash\n"
      "authorityKeyIdentifier = keyid\n");
}

absl::Status CheckAbsent(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(absl::StrCat(path, " exists; refusing to overwrite it"));
  }
  if (errno != ENOENT) return absl::ErrnoToStatus(errno, absl::StrCat("stat ", path));
  return absl::OkStatus();
}

// The five openssl steps, writing ca.key, ca.pem, server.key, server.pem into `work`.
absl::Status MakeCertificates(const std::string& work, const std::vector<std::string>& alt_names) {
  const std::string cnf = work + "/openssl.cnf";
  STEWARD_RETURN_IF_ERROR(
      WritePrivateFile(cnf, OpensslConfig(absl::StrCat("steward CA ", RandomHex(4)), alt_names)));
  const std::vector<std::string> keygen = {"genpkey", "-algorithm", "EC", "-pkeyopt",
                                           "ec_paramgen_curve:P-256", "-out"};
  std::vector<std::string> ca_key = keygen;
  ca_key.push_back(work + "/ca.key");
  STEWARD_RETURN_IF_ERROR(RunOpenssl(ca_key));
  STEWARD_RETURN_IF_ERROR(RunOpenssl(
      {"req", "-new", "-x509", "-config", cnf, "-extensions", "v3_ca", "-key", work + "/ca.key",
       "-sha256", "-days", "3650", "-set_serial", "0x" + RandomHex(16), "-out", work + "/ca.pem"}));
  std::vector<std::string> server_key = keygen;
  server_key.push_back(work + "/server.key");
  STEWARD_RETURN_IF_ERROR(RunOpenssl(server_key));
  STEWARD_RETURN_IF_ERROR(RunOpenssl({"req", "-new", "-config", cnf, "-key", work + "/server.key",
                                      "-subj", "/CN=steward nats-server", "-out",
                                      work + "/server.csr"}));
  return RunOpenssl({"x509", "-req", "-in", work + "/server.csr", "-CA", work + "/ca.pem",
                     "-CAkey", work + "/ca.key", "-set_serial", "0x" + RandomHex(16), "-days",
                     "825", "-sha256", "-extfile", cnf, "-extensions", "v3_server", "-out",
                     work + "/server.pem"});
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
  InitSodium();
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

absl::Status GenerateTls(const std::string& dir, const std::vector<std::string>& hosts) {
  if (hosts.empty()) return absl::InvalidArgumentError("GenerateTls needs at least one host");
  std::vector<std::string> alt_names;
  for (const std::string& host : hosts) {
    STEWARD_ASSIGN_OR_RETURN(std::string alt, AltName(host));
    alt_names.push_back(std::move(alt));
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return absl::ErrnoToStatus(errno, "stat " + dir);
  if (!S_ISDIR(st.st_mode)) return absl::InvalidArgumentError(dir + " is not a directory");
  static constexpr const char* kFiles[] = {"ca.key", "ca.pem", "server.key", "server.pem"};
  for (const char* file : kFiles) STEWARD_RETURN_IF_ERROR(CheckAbsent(dir + "/" + file));

  // A private (0700) working directory: the keys are never visible to others, and
  // nothing appears in `dir` unless every step succeeded.
  std::string work_template = dir + "/.steward-tls-XXXXXX";
  if (::mkdtemp(work_template.data()) == nullptr) {
    return absl::ErrnoToStatus(errno, "mkdtemp in " + dir);
  }
  const std::string work = work_template;
  absl::Cleanup remove_work = [&work] {
    std::error_code ignored;
    std::filesystem::remove_all(work, ignored);
  };
  STEWARD_RETURN_IF_ERROR(MakeCertificates(work, alt_names));

  std::vector<std::string> installed;
  absl::Cleanup remove_on_failure = [&installed] {
    for (const std::string& path : installed) ::unlink(path.c_str());
  };
  for (const char* file : kFiles) {
    const std::string to = dir + "/" + file;
    const mode_t mode = absl::EndsWith(file, ".key") ? 0600 : 0644;
    STEWARD_RETURN_IF_ERROR(
        InstallFile(work + "/" + file, to, {.mode = mode, .if_exists = IfExists::kFail}));
    installed.push_back(to);
  }
  std::move(remove_on_failure).Cancel();
  return absl::OkStatus();
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
