// File owners as an operator writes them ("user:group", "user", ":group", names or
// numbers), resolved on the machine that applies them (stewardctl copy --owner).
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace steward {

struct Owner {
  uid_t uid = static_cast<uid_t>(-1);  // -1: left as it is (chown's convention)
  gid_t gid = static_cast<gid_t>(-1);
};

// Resolves `spec` with this machine's user and group databases. InvalidArgument for an
// empty or malformed spec; NotFound naming the user or group that does not exist here.
absl::StatusOr<Owner> ResolveOwner(absl::string_view spec);

// Whether this process may give a file to `owner`: root may; anyone else only keeps
// the user (its own) and picks one of its groups. FailedPrecondition saying why not.
absl::Status CheckCanChown(const Owner& owner);

}  // namespace steward
