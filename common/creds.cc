// Broker credentials files.
#include "common/creds.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/signing.h"
#include "common/status_macros.h"

namespace steward {

absl::StatusOr<BrokerCreds> ReadCreds(const std::string& path) {
  STEWARD_RETURN_IF_ERROR(signing::CheckPrivateFile(path));
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  BrokerCreds creds;
  for (absl::string_view line : absl::StrSplit(buf.str(), '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (kv.first == "user") creds.user = kv.second;
    if (kv.first == "password") creds.password = kv.second;
  }
  if (creds.user.empty() || creds.password.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": want lines \"user NAME\" and \"password SECRET\""));
  }
  return creds;
}

absl::Status WriteCreds(const std::string& path, const BrokerCreds& creds) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return absl::AlreadyExistsError(absl::StrCat(path, " exists"));
    return absl::ErrnoToStatus(errno, absl::StrCat("create ", path));
  }
  ::fchmod(fd, 0600);
  const std::string text = absl::StrCat("user ", creds.user, "\npassword ", creds.password, "\n");
  const ssize_t n = ::write(fd, text.data(), text.size());
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) return absl::InternalError(absl::StrCat("write ", path));
  return absl::OkStatus();
}

}  // namespace steward
