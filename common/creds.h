// Broker credentials files: "user <name>\npassword <secret>\n", private to their owner
// (mode 0600). Written by `stewardctl enroll` / `keys init`, read by every program's
// --creds. Also the rules for names and passwords that go into a broker config.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace steward {

// One user's broker login, as stored in a creds file.
struct BrokerCreds {
  std::string user;
  std::string password;
};

// ValidateBrokerUserName accepts a name that may be written into a nats-server
// configuration and used as a subject token: it passes subjects::ValidateToken, holds
// none of the characters that mean something in the configuration syntax
// (" ' \ { } [ ] ( ) # $ , ; = : /), and does not start with "_INBOX" (whose
// subscribe permission would reach other clients' inboxes). InvalidArgument otherwise.
absl::Status ValidateBrokerUserName(absl::string_view name);

// ValidateBrokerPassword accepts a non-empty password made of [A-Za-z0-9] only.
absl::Status ValidateBrokerPassword(absl::string_view password);

// WritePrivateFile creates `path` with mode 0600 and `contents`, whole and synced
// (WriteFileAtomically with IfExists::kFail): AlreadyExists if anything is at the path
// (a symlink is never followed); nothing is left behind on failure.
absl::Status WritePrivateFile(const std::string& path, absl::string_view contents);

// WriteCreds writes "user <name>\npassword <secret>\n" to a new file `path` with mode
// 0600 (see WritePrivateFile). The name and password are validated first
// (InvalidArgument); AlreadyExists if `path` exists.
absl::Status WriteCreds(const std::string& path, const BrokerCreds& creds);

// ReadCreds reads a file written by WriteCreds. It refuses a file that group or others
// may read or write (FailedPrecondition, "... chmod 600 <path>"), one that is not a
// regular file, larger than 4 KiB, or malformed (InvalidArgument).
absl::StatusOr<BrokerCreds> ReadCreds(const std::string& path);

}  // namespace steward
