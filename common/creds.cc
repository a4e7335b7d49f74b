// Broker credentials files and the names and passwords that may go into them.
#include "common/creds.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/atomic_write.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "subjects/subject.h"

namespace steward {
namespace {

using Fd = UniqueFd;
constexpr off_t kMaxCredsBytes = 4096;
// Characters with a meaning in the nats-server configuration syntax.
constexpr absl::string_view kConfigSyntax = "\"'\\{}[]()#$,;=:/";
constexpr absl::string_view kInboxPrefix = "_INBOX";

}  // namespace

absl::Status ValidateBrokerUserName(absl::string_view name) {
  STEWARD_RETURN_IF_ERROR(subjects::ValidateToken(name));
  for (const char c : name) {
    if (kConfigSyntax.find(c) != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("broker user name \"", absl::CEscape(name), "\" contains '", std::string(1, c),
                       "', which is not allowed in a broker configuration"));
    }
  }
  if (absl::StartsWith(name, kInboxPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "broker user name \"", name, "\" starts with \"", kInboxPrefix, "\", which is reserved"));
  }
  return absl::OkStatus();
}

absl::Status ValidateBrokerPassword(absl::string_view password) {
  if (password.empty()) return absl::InvalidArgumentError("broker password is empty");
  for (const char c : password) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          "broker password may contain only letters and digits [A-Za-z0-9]");
    }
  }
  return absl::OkStatus();
}

absl::Status WritePrivateFile(const std::string& path, absl::string_view contents) {
  return WriteFileAtomically(path, contents, {.mode = 0600, .if_exists = IfExists::kFail});
}

absl::Status WriteCreds(const std::string& path, const BrokerCreds& creds) {
  STEWARD_RETURN_IF_ERROR(ValidateBrokerUserName(creds.user));
  STEWARD_RETURN_IF_ERROR(ValidateBrokerPassword(creds.password));
  return WritePrivateFile(path,
                          absl::StrCat("user ", creds.user, "\npassword ", creds.password, "\n"));
}

absl::StatusOr<BrokerCreds> ReadCreds(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return absl::ErrnoToStatus(errno, "stat " + path);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("creds file ", path, " is accessible by group or others (mode ",
                     fmt::format("{:04o}", st.st_mode & 07777), "); chmod 600 ", path));
  }
  if (st.st_size > kMaxCredsBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is larger than ", kMaxCredsBytes,
                                                   " bytes; not a creds file"));
  }
  std::string text;
  char buf[1024];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "read " + path);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > static_cast<size_t>(kMaxCredsBytes)) {
      return absl::InvalidArgumentError(absl::StrCat(path, " is too large"));
    }
  }
  BrokerCreds creds;
  bool has_user = false;
  bool has_password = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (kv.first == "user" && !has_user) {
      creds.user = std::string(kv.second);
      has_user = true;
    } else if (kv.first == "password" && !has_password) {
      creds.password = std::string(kv.second);
      has_password = true;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": unexpected line; want \"user <name>\" and \"password <secret>\""));
    }
  }
  if (!has_user || !has_password) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": want one \"user <name>\" and one \"password <secret>\" line"));
  }
  if (absl::Status s = ValidateBrokerUserName(creds.user); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  if (absl::Status s = ValidateBrokerPassword(creds.password); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  return creds;
}

}  // namespace steward
