// What `send`, `schedule add` and runbooks share (ctl/command_options.cc): the options
// that describe the remote command, and the ones that pick its targets.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/steward.pb.h"

namespace steward::ctl {

// The remote command: method, domain, argv and how to run it.
struct CommandOptions {
  std::string domain = "operatingsystem";
  std::string method = "shellcommand";
  bool shell = false;
  std::string cwd;
  std::vector<std::string> env;
  absl::Duration exec_timeout;
  absl::Duration ttl;
};
// AddCommandOptions adds --domain, --method, --shell, --cwd, --env, --exec-timeout, --ttl.
void AddCommandOptions(CLI::App& cmd, CommandOptions* o);
// The command template `o` describes for `argv` (no expiry: the station sets it from the
// ttl when it makes each command).
proto::Envelope CommandTemplate(const CommandOptions& o, const std::vector<std::string>& argv);

// AddTargetOptions adds --where and --all.
void AddTargetOptions(CLI::App& cmd, std::string* where, bool* all);
// TargetSpecOf: NODES as typed ("ship1,ship*,@web"), --all and --where.
proto::TargetSpec TargetSpecOf(const std::string& nodes, bool all, const std::string& where);
// The target's arguments as chosen (0), or a usage error: NODES with --all (which takes
// every node), or NODES that name no node ("," alone).
int CheckTargetArgs(const CLI::App& cmd, const std::string& nodes, bool all);
// CheckWhere parses `where` here, before anything is sent: 0 when it parses, else a
// usage error (the message with a caret under the column it names), kUsageExit.
int CheckWhere(const CLI::App& cmd, const std::string& where);
// CheckCommand checks here what the station would refuse in a command: a method or
// domain that is no subject token, an argument, --env or --cwd that is not UTF-8 text
// (protobuf strings). 0 when fine, else a usage error (exit 2) naming it.
int CheckCommand(const CLI::App& cmd, const CommandOptions& o, const std::vector<std::string>& argv);

}  // namespace steward::ctl
