// WriteFileAtomically and InstallFile: a finished file is synced, then renamed or
// linked into place, then its directory is synced.
#include "common/atomic_write.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/unique_fd.h"

namespace steward {
namespace {

// "<verb> <path>: <step> <file>: <errno text>", with the errno's code.
class Failure {
 public:
  Failure(absl::string_view verb, const std::string& path) : verb_(verb), path_(path) {}
  absl::Status operator()(int err, absl::string_view step, absl::string_view file) const {
    return absl::ErrnoToStatus(err, absl::StrCat(verb_, " ", path_, ": ", step, " ", file));
  }

 private:
  const absl::string_view verb_;
  const std::string& path_;
};

// Writes all of `data`; 0, or the errno of the write that failed.
int WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

// Gives the open file `name` its mode, syncs and closes it (a failed close can mean
// lost writes).
absl::Status SyncAndClose(UniqueFd fd, const std::string& name, mode_t mode,
                          const Failure& failed) {
  if (::fchmod(fd.get(), mode) != 0) return failed(errno, "chmod", name);
  if (::fsync(fd.get()) != 0) return failed(errno, "fsync", name);
  if (::close(fd.Release()) != 0) return failed(errno, "close", name);
  return absl::OkStatus();
}

// Moves the synced file `from` to `path` (rename, or link then unlink for kFail) and
// syncs the directory. `from` stays when `path` does not get it.
absl::Status Commit(const std::string& from, const std::string& path, IfExists if_exists,
                    const Failure& failed) {
  if (if_exists == IfExists::kReplace) {
    if (::rename(from.c_str(), path.c_str()) != 0) return failed(errno, "rename to", path);
  } else {
    // link() never replaces what is there, unlike rename().
    if (::link(from.c_str(), path.c_str()) != 0) {
      if (errno == EEXIST) {
        return absl::AlreadyExistsError(absl::StrCat(path, " exists; refusing to overwrite it"));
      }
      return failed(errno, "link to", path);
    }
    ::unlink(from.c_str());  // `path` holds the file now
  }
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid()) return failed(errno, "open directory", dir);
  if (::fsync(dir_fd.get()) != 0) return failed(errno, "fsync directory", dir);
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents,
                                 const WriteFileOptions& options) {
  const Failure failed("write", path);
  const std::filesystem::path target(path);
  // Hidden, unique, and in the same directory: a rename or link never crosses file systems.
  std::string tmp =
      (target.parent_path() / absl::StrCat(".", target.filename().string(), ".tmp-XXXXXX"))
          .string();
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd.valid()) return failed(errno, "create", tmp);
  absl::Cleanup remove_tmp = [&tmp] { ::unlink(tmp.c_str()); };
  if (const int err = WriteAll(fd.get(), contents); err != 0) return failed(err, "write", tmp);
  if (absl::Status st = SyncAndClose(std::move(fd), tmp, options.mode, failed); !st.ok()) {
    return st;
  }
  absl::Status st = Commit(tmp, path, options.if_exists, failed);
  if (st.ok()) std::move(remove_tmp).Cancel();  // moved: the name is gone already
  return st;
}

absl::Status InstallFile(const std::string& from, const std::string& path,
                         const WriteFileOptions& options) {
  const Failure failed("install", path);
  UniqueFd fd(::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return failed(errno, "open", from);
  if (absl::Status st = SyncAndClose(std::move(fd), from, options.mode, failed); !st.ok()) {
    return st;
  }
  return Commit(from, path, options.if_exists, failed);
}

}  // namespace steward
