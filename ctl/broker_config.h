// Broker security material for nats-server: per-user credential files and the text of a
// nats-server configuration whose per-user permissions confine each node to its own
// subjects (DESIGN.md, "Security layers"). The CA and server certificate the TLS
// sections name are made by GenerateTls (ctl/broker_tls.h).
//
//   BrokerConfigOptions o{.listen = "0.0.0.0:4222", .tls_dir = "/etc/steward/tls"};
//   o.users.push_back({"station", RandomPassword(), BrokerUser::Role::kStation});
//   o.users.push_back({"ship1", RandomPassword(), BrokerUser::Role::kNode});
//   STEWARD_RETURN_IF_ERROR(GenerateTls(o.tls_dir, {"broker.example.com", "10.0.0.5"}));  // broker_tls.h
//   STEWARD_ASSIGN_OR_RETURN(std::string conf, NatsServerConfig(o));
//   STEWARD_RETURN_IF_ERROR(WritePrivateFile("/etc/steward/nats-server.conf", conf));
//
// Clients must use the custom inbox prefix "_INBOX_<user>"
// (natsOptions_SetCustomInboxPrefix): a user may subscribe only to its own inboxes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/creds.h"

namespace steward::ctl {

// Creds files and name/password rules live in common/creds.h (the agent reads them too).
using ::steward::BrokerCreds;
using ::steward::ReadCreds;
using ::steward::ValidateBrokerPassword;
using ::steward::ValidateBrokerUserName;
using ::steward::WriteCreds;
using ::steward::WritePrivateFile;

// RandomPassword returns 32 characters from [A-Za-z0-9] (about 190 bits), drawn
// uniformly from libsodium's randombytes_buf. Thread-safe.
std::string RandomPassword();

// One broker user and what it may do.
struct BrokerUser {
  enum class Role {
    // The trusted hub: publish and subscribe ">".
    kStation,
    // stewardctl: publishes "<station>.command.*.cli", subscribes "_INBOX_<name>.>".
    kOperator,
    // An edge unit: publishes "<station>.event.>" and replies to requests it received
    // (allow_responses); subscribes "<name>.>" and "_INBOX_<name>.>".
    kNode,
    // A site's broker, its leaf node link to the hub ("leaf-<site>"): everything, but
    // never another site's _STEWARD.site.<station>.<site>, so that a site speaks for
    // itself only (station/site.h).
    kSiteLink,
  };

  std::string name;
  std::string password;
  Role role = Role::kNode;
  std::vector<std::string> other_sites;  // kSiteLink: the hub's other sites
};

// A hub that accepts sites' brokers as NATS leaf nodes: each site logs in with its own
// link user ("leaf-<site>") on the leaf node port. The link users are in the broker's
// authorization block (nats-server 2.9 takes no permissions in the leafnodes one), with
// the kSiteLink role.
struct LeafHub {
  std::string listen = "0.0.0.0:7422";  // host:port of the leaf node port
  std::vector<BrokerCreds> sites;        // one link user per site
};

// A site's broker as a leaf node of the hub: its own clients (the site's agents) log in
// locally, and everything it routes goes over one link to the hub.
struct LeafRemote {
  std::string hub;   // host:port of the hub's leaf node port; several, comma-separated,
                     // for a hub that is a cluster (the link fails over between them)
  BrokerCreds link;  // the site's link user, as the hub knows it
  // The CA that signed the hub's certificate (GenerateTls's ca.pem): the link is TLS and
  // verifies the hub. "": a plain link (development only).
  std::string ca_file;
};

// One broker of a cluster: routes to its peers with the cluster's route user, mutual TLS
// on the routes when the broker has TLS (the server certificate serves both ends), and
// JetStream (replicated streams and key-value buckets need every member to have it).
struct ClusterMember {
  std::string name = "steward";     // the cluster's name, the same on every member
  std::string server_name;          // this broker's own name, unique in the cluster
  std::string listen;               // host:port of this broker's route port
  std::vector<std::string> routes;  // host:port of the members' route ports (itself ignored)
  BrokerCreds route;                // the cluster's route user, the same on every member
  std::string jetstream_dir;        // JetStream's store; "": no JetStream
};

// The configuration of one broker, made of sections (listen, tls, authorization, leaf
// nodes); a mode adds its section here. A plain hub has neither leaf section.
struct BrokerConfigOptions {
  // host:port to listen on; port -1 lets nats-server pick a free one (learn it with
  // nats-server --ports_file_dir).
  std::string listen = "127.0.0.1:4222";
  // The station's name, the first token of its subjects.
  std::string station = "station";
  // "" = no TLS; else the server uses tls_dir/server.pem and tls_dir/server.key (see
  // GenerateTls) and accepts TLS clients only.
  std::string tls_dir;
  std::vector<BrokerUser> users;
  std::optional<LeafHub> leaf_hub;        // this hub also accepts sites as leaf nodes
  std::optional<LeafRemote> leaf_remote;  // this broker is a site: a leaf node of a hub
  std::optional<ClusterMember> cluster;   // this broker is one of a cluster
};

// The link user of a site: "leaf-<site>". InvalidArgument for a site name that is not a
// valid broker user name.
absl::StatusOr<std::string> LeafUserName(absl::string_view site);

// CheckNodeName: a node's name as a broker user: a broker user name, and not one of the
// names whose subjects are the broker's or the station's own ("station", "operator", and
// names beginning with '_' or '$': _INBOX, _DEBUG, _STEWARD, $SYS, $JS), which a node
// of that name would be allowed to read.
absl::Status CheckNodeName(absl::string_view node);

// NatsServerConfig returns the text of a nats-server (2.9) configuration: listen, a tls
// block when tls_dir is set, an authorization block with one entry per user and the
// permissions of its role (see BrokerUser::Role), and a leafnodes block for a hub that
// accepts sites (its own listen, the same certificate, one user per site) or for a site
// (a remote: the hub's URL with the site's link user, the CA to verify it). Every name is checked with
// ValidateBrokerUserName and every password with ValidateBrokerPassword before it is
// written; user names must be unique, a node may not be named like the station, and
// there must be at least one user (an empty list would let anyone in). Violations are
// InvalidArgument. The text holds passwords: write it with WritePrivateFile.
absl::StatusOr<std::string> NatsServerConfig(const BrokerConfigOptions& options);

}  // namespace steward::ctl
