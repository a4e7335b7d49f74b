// Broker credentials files: "user <name>\npassword <secret>\n", private to their owner
// (mode 0600). Written by `stewardctl enroll`, read by every program's --creds.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace steward {

struct BrokerCreds {
  std::string user;
  std::string password;
};

// Refuses (FailedPrecondition, "chmod 600 <path>") a file others may read or write.
absl::StatusOr<BrokerCreds> ReadCreds(const std::string& path);
// Creates the file with mode 0600; AlreadyExists if it is there.
absl::Status WriteCreds(const std::string& path, const BrokerCreds& creds);

}  // namespace steward
