// Implementation of owners: getpwnam_r/getgrnam_r, a number when the name is all digits.
#include "common/owner.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace steward {
namespace {

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<uid_t> User(const std::string& name) {
  if (uint32_t n = 0; AllDigits(name) && absl::SimpleAtoi(name, &n)) return static_cast<uid_t>(n);
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return absl::NotFoundError(absl::StrCat("no user \"", name, "\" here"));
  }
  return found->pw_uid;
}

absl::StatusOr<gid_t> Group(const std::string& name) {
  if (uint32_t n = 0; AllDigits(name) && absl::SimpleAtoi(name, &n)) return static_cast<gid_t>(n);
  std::vector<char> buf(16384);
  struct group gr {};
  struct group* found = nullptr;
  if (::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return absl::NotFoundError(absl::StrCat("no group \"", name, "\" here"));
  }
  return found->gr_gid;
}

}  // namespace

absl::StatusOr<Owner> ResolveOwner(absl::string_view spec) {
  const size_t colon = spec.find(':');
  const std::string user(spec.substr(0, colon));
  const std::string group(colon == absl::string_view::npos ? "" : spec.substr(colon + 1));
  if ((user.empty() && group.empty()) || group.find(':') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("owner \"", spec, "\" is not USER, USER:GROUP or :GROUP"));
  }
  Owner o;
  if (!user.empty()) {
    absl::StatusOr<uid_t> uid = User(user);
    if (!uid.ok()) return uid.status();
    o.uid = *uid;
  }
  if (!group.empty()) {
    absl::StatusOr<gid_t> gid = Group(group);
    if (!gid.ok()) return gid.status();
    o.gid = *gid;
  }
  return o;
}

absl::Status CheckCanChown(const Owner& owner) {
  if (::geteuid() == 0) return absl::OkStatus();
  if (owner.uid != static_cast<uid_t>(-1) && owner.uid != ::geteuid()) {
    return absl::FailedPreconditionError(
        absl::StrCat("runs as uid ", ::geteuid(), ", not root: it cannot give a file to uid ", owner.uid));
  }
  if (owner.gid == static_cast<gid_t>(-1) || owner.gid == ::getegid()) return absl::OkStatus();
  std::vector<gid_t> groups(static_cast<size_t>(std::max(::getgroups(0, nullptr), 0)));
  if (::getgroups(static_cast<int>(groups.size()), groups.data()) >= 0) {
    for (gid_t g : groups) {
      if (g == owner.gid) return absl::OkStatus();
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("runs as uid ", ::geteuid(), ", not root, and is not in group ", owner.gid));
}

}  // namespace steward
