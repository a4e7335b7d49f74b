// WriteFileAtomically: the one way steward writes a file that must be whole (state,
// keys, credentials, ACLs, certificates). Readers see the old file or the new one,
// never a mix, and after a crash the path holds one of them. InstallFile puts a file
// that is already written (by openssl, say) in place the same way.
//
//   STEWARD_RETURN_IF_ERROR(WriteFileAtomically(dir + "/acl.pb", doc.SerializeAsString()));
//   STEWARD_RETURN_IF_ERROR(WriteFileAtomically(
//       path, secret, {.mode = 0600, .if_exists = IfExists::kFail}));
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace steward {

// What to do when `path` already names a file (or a symlink, which is never followed).
enum class IfExists {
  kReplace,  // put the new file in its place
  kFail,     // AlreadyExists, and leave it be
};

struct WriteFileOptions {
  mode_t mode = 0644;  // the new file's permissions, exactly (the umask does not apply)
  IfExists if_exists = IfExists::kReplace;
};

// Writes `contents` to a new temporary file in the directory of `path`, sets its mode,
// fsyncs it, renames it over `path` (kReplace) or links it there (kFail), then fsyncs
// the directory. On failure the temporary file is removed and whatever was at `path`
// is untouched; the status says which step failed, on which path, with the errno text
// ("write /var/lib/steward/acl.pb: create /var/lib/steward/.acl.pb.tmp-Ab12Cd:
// Permission denied"), its code from the errno (PermissionDenied, NotFound, ...), or
// AlreadyExists ("<path> exists; refusing to overwrite it") for kFail.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents,
                                 const WriteFileOptions& options = {});

// InstallFile does the same for a file another program wrote: `from`, which must be
// on the same file system as `path` (a regular file, not a symlink), gets its mode, is
// fsynced and moved to `path`, then the directory is fsynced. On failure `from` stays;
// errors read "install <path>: <step> <file>: <errno text>".
absl::Status InstallFile(const std::string& from, const std::string& path,
                         const WriteFileOptions& options = {});

}  // namespace steward
