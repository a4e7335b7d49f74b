// stewardctl's security subcommands. Through the station: accept (pin a node's key), acl
// and group. Local, in the keys directory: keys init, enroll, nats-config.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/atomic_write.h"
#include "common/cli.h"
#include "common/creds.h"
#include "common/signing.h"
#include "common/status_macros.h"
#include "ctl/broker_config.h"
#include "ctl/broker_tls.h"
#include "ctl/ctl.h"
#include "ctl/render_text.h"

namespace steward::ctl {
namespace {

// Prints the station's reply lines, or fails with its error.
int PrintReply(const absl::StatusOr<proto::AclReply>& reply) {
  if (!reply.ok()) return Fail(reply.status());
  fmt::print("{}", ReplyLines(*reply));
  return 0;
}

int KeysInit(const std::string& dir, const std::vector<std::string>& hosts) {
  std::error_code ec;
  for (const char* sub : {"/tls", "/creds", "/nodes"}) std::filesystem::create_directories(dir + sub, ec);
  if (ec) return Fail("cannot create " + dir + ": " + ec.message());
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  for (const char* who : {"station", "operator"}) {
    auto pair = signing::Generate();
    if (!pair.ok()) return Fail(pair.status());
    if (absl::Status st = signing::WriteKeyPair(*pair, dir + "/" + who, who); !st.ok()) return Fail(st);
  }
  if (absl::Status st = GenerateTls(dir + "/tls", hosts); !st.ok()) return Fail(st);
  for (const char* who : {"station", "operator"}) {
    if (absl::Status st = WriteCreds(dir + "/creds/" + who + ".creds", {who, RandomPassword()}); !st.ok()) {
      return Fail(st);
    }
  }
  fmt::print(
      "keys in {}:\n  station.key/.pub   signs commands (steward-station --keys {})\n"
      "  operator.key/.pub  signs your requests (stewardctl --keys {})\n"
      "  tls/               CA and broker certificate\n  creds/             broker users\n"
      "next: stewardctl --keys {} enroll NODE; stewardctl --keys {} nats-config > nats.conf\n",
      dir, dir, dir, dir, dir);
  return 0;
}

int Enroll(const std::string& dir, const std::string& node, bool node_key) {
  if (absl::Status st = CheckNodeName(node); !st.ok()) return Fail(st);
  const std::string bundle = dir + "/nodes/" + node;
  std::error_code ec;
  std::filesystem::create_directories(bundle, ec);
  if (ec) return Fail("cannot create " + bundle + ": " + ec.message());
  const BrokerCreds creds{node, RandomPassword()};
  for (const std::string& path : {dir + "/creds/" + node + ".creds", bundle + "/" + node + ".creds"}) {
    if (absl::Status st = WriteCreds(path, creds); !st.ok()) return Fail(st);
  }
  const auto overwrite = std::filesystem::copy_options::overwrite_existing;
  std::filesystem::copy_file(dir + "/tls/ca.pem", bundle + "/ca.pem", overwrite, ec);
  if (!ec) std::filesystem::copy_file(dir + "/station.pub", bundle + "/station.pub", overwrite, ec);
  if (ec) return Fail("cannot write the trust bundle: " + ec.message());
  std::string key_id;
  if (node_key) {
    // The node's signing key, made here: the station pins node.pub at the node's first
    // hello, so nothing else can pass for this node (no key to accept by hand).
    auto pair = signing::Generate();
    if (!pair.ok()) return Fail(pair.status());
    if (absl::Status st = signing::WriteKeyPair(*pair, bundle + "/node", node); !st.ok()) return Fail(st);
    key_id = signing::KeyId(pair->public_key);
  }
  fmt::print(
      "enrolled {}: copy {} to the node and run\n"
      "  steward-agent --node {} --creds {}.creds --tls-ca ca.pem --trust station.pub{} --nats "
      "tls://BROKER:4222\n"
      "then regenerate the broker config (stewardctl nats-config) and reload nats-server.\n",
      node, bundle, node, node, node_key ? " --node-key node.key" : "");
  if (node_key) {
    fmt::print("its key {} is pinned at its first hello.\n", key_id);
  } else {
    fmt::print("once the node has announced its key (the agent logs it at start): stewardctl accept {}\n", node);
  }
  return 0;
}

// What nats-config makes: the hub (optionally accepting sites as leaf nodes) or a site.
struct NatsConfigOptions {
  std::string listen = "127.0.0.1:4222";
  std::string leaf_listen;          // hub: accept sites' brokers here
  std::vector<std::string> sites;   // hub: the sites it accepts
  std::string leaf;                 // site: this site's name
  std::string hub;                  // site: the hub's leaf node port
  std::vector<std::string> nodes;   // site: the nodes whose agents connect to this broker
  bool site_station = false;        // site: a user for its site station (steward-station --site)
  std::string cluster_listen;       // cluster member: its route port
  std::vector<std::string> routes;  // cluster member: every member's route port
  std::string server_name;          // cluster member: its own name
  std::string cluster_name = "steward";
  std::string jetstream;            // JetStream's store directory ("": none)
  std::string output;               // write here (mode 0600) instead of stdout
};

// The link creds of `site` (creds/leaf-<site>.creds), made on first use.
absl::StatusOr<BrokerCreds> SiteCreds(const std::string& dir, const std::string& site) {
  STEWARD_ASSIGN_OR_RETURN(std::string user, LeafUserName(site));
  const std::string path = dir + "/creds/" + user + ".creds";
  if (!std::filesystem::exists(path)) {
    STEWARD_RETURN_IF_ERROR(WriteCreds(path, {user, RandomPassword()}));
  }
  return ReadCreds(path);
}

// The site station's creds of `site` (creds/site-<site>.creds), made on first use.
absl::StatusOr<BrokerCreds> SiteStationCreds(const std::string& dir, const std::string& site) {
  const std::string user = "site-" + site;
  STEWARD_RETURN_IF_ERROR(ValidateBrokerUserName(user));
  const std::string path = dir + "/creds/" + user + ".creds";
  if (!std::filesystem::exists(path)) {
    STEWARD_RETURN_IF_ERROR(WriteCreds(path, {user, RandomPassword()}));
  }
  return ReadCreds(path);
}

// The route creds of cluster `name` (creds/route-<name>.creds), made on first use: every
// member's configuration must be made from the same keys directory.
absl::StatusOr<BrokerCreds> RouteCreds(const std::string& dir, const std::string& name) {
  const std::string user = "route-" + name;
  STEWARD_RETURN_IF_ERROR(ValidateBrokerUserName(user));
  const std::string path = dir + "/creds/" + user + ".creds";
  if (!std::filesystem::exists(path)) {
    STEWARD_RETURN_IF_ERROR(WriteCreds(path, {user, RandomPassword()}));
  }
  return ReadCreds(path);
}

int NatsConfig(const std::string& dir, const NatsConfigOptions& o, const std::string& station) {
  BrokerConfigOptions opts;
  opts.listen = o.listen;
  opts.station = station;
  opts.tls_dir = std::filesystem::absolute(dir + "/tls").string();
  using Role = BrokerUser::Role;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/creds", ec)) {
    const std::string stem = e.path().stem().string();
    if (e.path().extension() != ".creds" || stem.rfind("leaf-", 0) == 0 || stem.rfind("route-", 0) == 0 ||
        stem.rfind("site-", 0) == 0) {
      continue;
    }
    auto c = ReadCreds(e.path().string());
    if (!c.ok()) return Fail(c.status());
    const Role role = c->user == "station"    ? Role::kStation
                      : c->user == "operator" ? Role::kOperator
                                              : Role::kNode;
    // A site's broker knows only the site's own nodes (and, with a site station, the
    // operators: they manage the ship through it while the link is cut); the hub knows
    // every user.
    const bool site_user = role == Role::kNode ? std::find(o.nodes.begin(), o.nodes.end(), c->user) != o.nodes.end()
                                               : role == Role::kOperator && o.site_station;
    if (!o.leaf.empty() && !site_user) continue;
    opts.users.push_back({c->user, c->password, role});
  }
  if (ec) return Fail("cannot read " + dir + "/creds: " + ec.message());
  if (!o.leaf.empty()) {
    if (o.hub.empty()) return Fail("--leaf needs --hub HOST:PORT (the hub's leaf node port)");
    for (const std::string& node : o.nodes) {
      if (!std::filesystem::exists(dir + "/creds/" + node + ".creds")) {
        return Fail("node " + node + " is not enrolled: stewardctl enroll " + node);
      }
    }
    auto link = SiteCreds(dir, o.leaf);
    if (!link.ok()) return Fail(link.status());
    if (o.site_station) {
      // The site station (steward-station --site, station/site.h) on the site's own broker:
      // its own user (creds/site-SITE.creds, never the central station's), with the
      // station's rights there. Its probes cross the link on _STEWARD.site.<station>.<site>,
      // which the link user carries like every subject.
      auto user = SiteStationCreds(dir, o.leaf);
      if (!user.ok()) return Fail(user.status());
      opts.users.push_back({user->user, user->password, Role::kStation});
    }
    opts.leaf_remote = LeafRemote{.hub = o.hub, .link = *link, .ca_file = opts.tls_dir + "/ca.pem"};
  } else if (!o.leaf_listen.empty()) {
    LeafHub hub{.listen = o.leaf_listen};
    for (const std::string& site : o.sites) {
      auto link = SiteCreds(dir, site);
      if (!link.ok()) return Fail(link.status());
      hub.sites.push_back(*link);
    }
    opts.leaf_hub = std::move(hub);
  }
  if (!o.cluster_listen.empty()) {
    auto route = RouteCreds(dir, o.cluster_name);
    if (!route.ok()) return Fail(route.status());
    opts.cluster = ClusterMember{.name = o.cluster_name,
                                 .server_name = o.server_name,
                                 .listen = o.cluster_listen,
                                 .routes = o.routes,
                                 .route = *route,
                                 .jetstream_dir = o.jetstream};
  }
  auto text = NatsServerConfig(opts);
  if (!text.ok()) return Fail(text.status());
  const bool secret = !opts.users.empty() || opts.leaf_hub.has_value() || opts.leaf_remote.has_value();
  if (!o.output.empty()) {
    if (absl::Status st = WriteFileAtomically(o.output, *text, {.mode = 0600}); !st.ok()) return Fail(st);
    fmt::print(stderr, "stewardctl: wrote {} (mode 0600{})\n", o.output, secret ? ": it holds broker passwords" : "");
    return 0;
  }
  if (secret && isatty(STDOUT_FILENO)) {
    return Fail("the configuration holds broker passwords: not printed to a terminal; write it with "
                "--output FILE (mode 0600)");
  }
  if (struct stat st; secret && fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode)) {
    // `> nats.conf` made the file with the umask's mode (0644, readable by all): close it.
    if (fchmod(STDOUT_FILENO, 0600) != 0) {
      fmt::print(stderr, "stewardctl: warning: cannot make the output file private: {}\n", std::strerror(errno));
    }
  }
  fmt::print("{}", *text);
  if (secret) fmt::print(stderr, "stewardctl: the configuration holds broker passwords: keep it private\n");
  return 0;
}

}  // namespace

Runner SetupAccept(CLI::App& cmd) {
  auto node = std::make_shared<std::string>();
  auto key = std::make_shared<std::string>();
  cmd.add_option("NODE", *node, "The node whose announced key to pin")->required();
  cmd.add_option("--key", *key,
                 "The fingerprint of the key to pin (as the unit's agent logs it at start): needed "
                 "for a key change and for a node this station did not enroll")
      ->type_name("ed25519:...");
  return [node, key](const Globals& g) {
    return WithClient(g, [&](Client& c) { return PrintReply(c.Accept(*node, *key, g.timeout)); });
  };
}

Runner SetupAcl(CLI::App& cmd) {
  struct Options {
    std::string target;
    std::vector<std::string> rules;
  };
  auto o = std::make_shared<Options>();
  cmd.require_subcommand(1);
  CLI::App* set = cmd.add_subcommand("set", "Replace the rules of a node or @group");
  set->add_option("TARGET", o->target, "NODE or @GROUP")->required();
  cli::AddList(*set, "--allow", &o->rules,
               "Rules: \"method\" or \"method:argv-glob\" (argv joined by spaces)")
      ->type_name("RULE,...");
  CLI::App* show = cmd.add_subcommand("show", "Print the rules of a node or @group");
  show->add_option("TARGET", o->target, "NODE or @GROUP")->required();
  return [o, show](const Globals& g) {
    proto::AclRequest req;
    req.set_target(o->target);
    req.set_show(show->parsed());
    for (const std::string& r : o->rules) req.add_rules(r);
    return WithClient(g, [&](Client& c) { return PrintReply(c.Acl(req, g.timeout)); });
  };
}

Runner SetupGroup(CLI::App& cmd) {
  struct Options {
    std::string name;
    std::string nodes;
    std::string active;
    std::string member;
  };
  auto o = std::make_shared<Options>();
  cmd.require_subcommand(1);
  CLI::App* set = cmd.add_subcommand("set", "Define a group (replacing its members)");
  set->add_option("NAME", o->name, "The group")->required();
  set->add_option("NODES", o->nodes, "NODE[,NODE...], first first (the order is the priority for --active)")
      ->required();
  set->add_option("--active", o->active,
                  "Keep one member active: healthiest (the first online member; it changes only when it goes "
                  "offline or an operator moves it); send to it as @NAME:active")
      ->check(CLI::IsMember({"healthiest"}));
  CLI::App* show = cmd.add_subcommand("show", "Print a group's members, rules and active member");
  show->add_option("NAME", o->name, "The group")->required();
  CLI::App* active = cmd.add_subcommand("active", "Make a member its group's active one");
  active->add_option("NAME", o->name, "The group")->required();
  active->add_option("MEMBER", o->member, "The member")->required();
  return [o, show, active](const Globals& g) {
    proto::AclRequest req;
    const std::string name = absl::StartsWith(o->name, "@") ? o->name.substr(1) : o->name;
    if (show->parsed()) {
      req.set_target("@" + name);
      req.set_show(true);
    } else if (active->parsed()) {
      req.set_target("@" + name);
      req.set_move_active(o->member);
    } else {
      req.set_target(name);
      req.set_define_group(true);
      req.set_active_policy(o->active);
      for (absl::string_view n : absl::StrSplit(o->nodes, ',', absl::SkipEmpty())) {
        req.add_members(std::string(n));
      }
    }
    return WithClient(g, [&](Client& c) { return PrintReply(c.Acl(req, g.timeout)); });
  };
}

Runner SetupKeys(CLI::App& cmd) {
  auto hosts = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"127.0.0.1", "localhost"});
  cmd.require_subcommand(1);
  CLI::App* init = cmd.add_subcommand("init", "Make the keys directory (--keys, default steward-keys)");
  cli::AddList(*init, "--hosts", hosts.get(), "Names and addresses in the broker's TLS certificate")
      ->type_name("HOST,...")
      ->capture_default_str();
  return [hosts](const Globals& g) { return KeysInit(KeysDir(g), *hosts); };
}

Runner SetupEnroll(CLI::App& cmd) {
  auto node = std::make_shared<std::string>();
  auto no_key = std::make_shared<bool>(false);
  cmd.add_option("NODE", *node, "The node to enroll")->required();
  cmd.add_flag("--no-node-key", *no_key,
               "Make no node key: the agent makes its own, and an operator accepts it by its "
               "fingerprint (stewardctl accept) once the node announced it");
  return [node, no_key](const Globals& g) { return Enroll(KeysDir(g), *node, !*no_key); };
}

Runner SetupNatsConfig(CLI::App& cmd) {
  auto o = std::make_shared<NatsConfigOptions>();
  cmd.add_option("--listen", o->listen, "The broker's host:port (for clients)")
      ->type_name("HOST:PORT")
      ->capture_default_str();
  cmd.add_option("--leaf-listen", o->leaf_listen, "Hub: also accept sites' brokers as leaf nodes on this host:port")
      ->type_name("HOST:PORT");
  cli::AddList(cmd, "--sites", &o->sites, "Hub: the sites it accepts (each gets a link user, creds/leaf-SITE.creds)")
      ->type_name("SITE,...");
  cmd.add_option("--leaf", o->leaf, "Make a site's broker instead: a leaf node of the hub, for this site")
      ->type_name("SITE");
  cmd.add_option("--hub", o->hub, "Site: the hub's leaf node port")->type_name("HOST:PORT");
  cli::AddList(cmd, "--nodes", &o->nodes, "Site: the nodes whose agents connect to the site's broker")
      ->type_name("NODE,...");
  cmd.add_flag("--site-station", o->site_station,
               "Site: also a user for the site's own station (steward-station --site ... --creds "
               "creds/site-SITE.creds), which takes over the site's nodes while the link is down, and the "
               "operators' user, to manage the site through it");
  cmd.add_option("--cluster-listen", o->cluster_listen,
                 "Make one broker of a cluster: its route port (the members route to each other)")
      ->type_name("HOST:PORT");
  cli::AddList(cmd, "--routes", &o->routes, "Cluster: every member's route port (this one's is ignored)")
      ->type_name("HOST:PORT,...");
  cmd.add_option("--server-name", o->server_name, "Cluster: this broker's own name, unique in the cluster")
      ->type_name("NAME");
  cmd.add_option("--cluster-name", o->cluster_name, "Cluster: its name, the same on every member")
      ->capture_default_str();
  cmd.add_option("--jetstream", o->jetstream,
                 "Enable JetStream with its store in DIR (a cluster for a highly available station needs it on "
                 "every member)")
      ->type_name("DIR");
  cmd.add_option("-o,--output", o->output,
                 "Write the configuration to FILE, mode 0600 (it holds broker passwords); without it, it "
                 "goes to stdout, never to a terminal")
      ->type_name("FILE");
  cmd.footer(
      "A hub: stewardctl nats-config --listen 0.0.0.0:4222 --leaf-listen 0.0.0.0:7422 --sites ship-a -o hub.conf\n"
      "A site: stewardctl nats-config --leaf ship-a --hub HUB:7422 --nodes ship1,ship2 -o ship-a.conf\n"
      "A cluster of three: on each member N (n1, n2, n3), from the same keys directory:\n"
      "  stewardctl nats-config --listen 0.0.0.0:4222 --cluster-listen 0.0.0.0:6222 --server-name nN \\\n"
      "    --routes n1:6222,n2:6222,n3:6222 --jetstream /var/lib/nats/jetstream -o nN.conf\n"
      "  (clients list every member: --nats tls://n1:4222,tls://n2:4222,tls://n3:4222)");
  return [o](const Globals& g) {
    if (!o->leaf.empty() && !o->leaf_listen.empty()) return Fail("--leaf and --leaf-listen: a broker is one or the other");
    if (!o->leaf_listen.empty() && o->sites.empty()) return Fail("--leaf-listen needs --sites SITE,...");
    const bool member = !o->cluster_listen.empty();
    if (member && !o->leaf.empty()) return Fail("--cluster-listen and --leaf: a site's broker is a leaf node, not a member");
    if (o->site_station && o->leaf.empty()) return Fail("--site-station is for a site's broker: give --leaf SITE too");
    if (member && (o->routes.empty() || o->server_name.empty())) {
      return Fail("--cluster-listen needs --routes HOST:PORT,... (every member's route port) and --server-name NAME");
    }
    if (!member && (!o->routes.empty() || !o->server_name.empty())) {
      return Fail("--routes and --server-name make a cluster member: give --cluster-listen HOST:PORT too");
    }
    return NatsConfig(KeysDir(g), *o, g.station);
  };
}

}  // namespace steward::ctl
