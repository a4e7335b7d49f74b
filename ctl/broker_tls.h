// The broker's TLS material: a private CA and a server certificate signed by it, made
// with the `openssl` command line. What can go wrong here is processes, deadlines,
// files and their modes; the broker configuration that names these files is
// ctl/broker_config.h.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace steward::ctl {

// GenerateTls writes, in the existing directory `dir`, a new CA (ca.pem, ca.key; valid
// 10 years) and a server certificate signed by it (server.pem, server.key; valid 825
// days) whose subjectAltName lists `hosts`: IP addresses become IP entries, the rest
// DNS entries ({"127.0.0.1", "localhost"} -> IP:127.0.0.1, DNS:localhost). Keys are
// ECDSA P-256 and written 0600, certificates 0644.
//
// It runs the `openssl` command line (posix_spawnp, argv only, no shell, found on
// PATH) in a private temporary directory inside `dir` and links the four files into
// place only when all succeeded. InvalidArgument for an empty or malformed host,
// AlreadyExists if any of the four files exists (nothing is overwritten), NotFound if
// openssl is not installed, Internal with openssl's output when a step fails.
absl::Status GenerateTls(const std::string& dir, const std::vector<std::string>& hosts);

}  // namespace steward::ctl
