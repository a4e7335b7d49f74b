// Unit tests for common/atomic_write.h: new files, replacement, exact modes, the
// no-replace mode (a symlink is never followed), InstallFile, and failures (an
// unwritable directory, a write cut short) that leave the old file whole and no
// temporary file behind.
#include "common/atomic_write.h"

#include <grp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/users.h"

namespace steward {
namespace {

using ::steward::testing::AsOrdinaryUser;

using steward::testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::vector<std::string> Entries(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST_CASE("WriteFileAtomically creates a file with exactly its mode", "[atomic_write]") {
  TempDir dir;
  const std::string path = dir.str() + "/state";
  const mode_t old_umask = ::umask(077);
  const absl::Status st = WriteFileAtomically(path, "one\n");
  ::umask(old_umask);
  REQUIRE(st.ok());
  CHECK(ReadFile(path) == "one\n");
  CHECK(ModeOf(path) == 0644);  // the umask does not apply
  REQUIRE(WriteFileAtomically(dir.str() + "/secret", "s", {.mode = 0600}).ok());
  CHECK(ModeOf(dir.str() + "/secret") == 0600);
  CHECK(Entries(dir.path()) == std::vector<std::string>{"secret", "state"});  // no temporary left
}

TEST_CASE("WriteFileAtomically replaces a file whole", "[atomic_write]") {
  TempDir dir;
  const std::string path = dir.str() + "/state";
  REQUIRE(WriteFileAtomically(path, std::string(100000, 'a')).ok());
  REQUIRE(WriteFileAtomically(path, "short").ok());
  CHECK(ReadFile(path) == "short");
  REQUIRE(WriteFileAtomically(path, "").ok());
  CHECK(ReadFile(path).empty());
  CHECK(Entries(dir.path()) == std::vector<std::string>{"state"});
}

TEST_CASE("WriteFileAtomically kFail never replaces, nor follows a symlink", "[atomic_write]") {
  TempDir dir;
  const std::string path = dir.str() + "/key";
  const WriteFileOptions no_replace{.mode = 0600, .if_exists = IfExists::kFail};
  REQUIRE(WriteFileAtomically(path, "first", no_replace).ok());
  const absl::Status st = WriteFileAtomically(path, "second", no_replace);
  CHECK(absl::IsAlreadyExists(st));
  CHECK(st.message() == path + " exists; refusing to overwrite it");
  CHECK(ReadFile(path) == "first");

  const std::string link = dir.str() + "/dangling";
  REQUIRE(::symlink((dir.str() + "/target").c_str(), link.c_str()) == 0);
  CHECK(absl::IsAlreadyExists(WriteFileAtomically(link, "x", no_replace)));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "target"));
  CHECK(Entries(dir.path()) == std::vector<std::string>{"dangling", "key"});
}

TEST_CASE("WriteFileAtomically into an unwritable directory keeps the old file",
          "[atomic_write]") {
  TempDir dir;
  const std::string sub = dir.str() + "/ro";
  REQUIRE(::mkdir(sub.c_str(), 0755) == 0);
  const std::string path = sub + "/state";
  REQUIRE(WriteFileAtomically(path, "old").ok());
  REQUIRE(::chmod(path.c_str(), 0666) == 0);  // the file itself is writable; its directory is not
  REQUIRE(::chmod(sub.c_str(), 0555) == 0);
  const absl::Status st = AsOrdinaryUser([&path] { return WriteFileAtomically(path, "new"); });
  REQUIRE(::chmod(sub.c_str(), 0755) == 0);
  INFO(st.ToString());
  CHECK(absl::IsPermissionDenied(st));
  CHECK(absl::StartsWith(st.message(), "write " + path + ": create " + sub + "/.state.tmp-"));
  CHECK(absl::EndsWith(st.message(), "Permission denied"));
  CHECK(ReadFile(path) == "old");
  CHECK(Entries(sub) == std::vector<std::string>{"state"});
}

TEST_CASE("WriteFileAtomically cut short by a write error keeps the old file", "[atomic_write]") {
  TempDir dir;
  const std::string path = dir.str() + "/state";
  REQUIRE(WriteFileAtomically(path, "old").ok());
  // A file size limit fails the write with EFBIG (even for root); SIGXFSZ is ignored.
  struct rlimit old_limit {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  auto* old_handler = ::signal(SIGXFSZ, SIG_IGN);
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  const absl::Status st = WriteFileAtomically(path, std::string(10000, 'n'));
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  ::signal(SIGXFSZ, old_handler);
  INFO(st.ToString());
  CHECK_FALSE(st.ok());
  CHECK(absl::StartsWith(st.message(), "write " + path + ": write " + dir.str() + "/.state.tmp-"));
  CHECK(absl::EndsWith(st.message(), "File too large"));
  CHECK(ReadFile(path) == "old");
  CHECK(Entries(dir.path()) == std::vector<std::string>{"state"});
}

TEST_CASE("WriteFileAtomically names a missing directory", "[atomic_write]") {
  TempDir dir;
  const std::string path = dir.str() + "/missing/state";
  const absl::Status st = WriteFileAtomically(path, "x");
  CHECK(absl::IsNotFound(st));
  CHECK(absl::StrContains(st.message(), path));
}

TEST_CASE("InstallFile moves a finished file into place", "[atomic_write]") {
  TempDir dir;
  const std::string work = dir.str() + "/work";
  REQUIRE(::mkdir(work.c_str(), 0700) == 0);
  std::ofstream(work + "/ca.pem") << "cert";
  std::ofstream(work + "/ca.key") << "key";
  REQUIRE(InstallFile(work + "/ca.pem", dir.str() + "/ca.pem").ok());
  const WriteFileOptions no_replace{.mode = 0600, .if_exists = IfExists::kFail};
  REQUIRE(InstallFile(work + "/ca.key", dir.str() + "/ca.key", no_replace).ok());
  CHECK(ReadFile(dir.str() + "/ca.pem") == "cert");
  CHECK(ModeOf(dir.str() + "/ca.pem") == 0644);
  CHECK(ModeOf(dir.str() + "/ca.key") == 0600);
  CHECK(std::filesystem::is_empty(work));

  std::ofstream(work + "/ca.key") << "other";
  CHECK(absl::IsAlreadyExists(InstallFile(work + "/ca.key", dir.str() + "/ca.key", no_replace)));
  CHECK(ReadFile(dir.str() + "/ca.key") == "key");
  CHECK(ReadFile(work + "/ca.key") == "other");  // `from` stays on failure
  const absl::Status st = InstallFile(work + "/nothing", dir.str() + "/x");
  CHECK(absl::IsNotFound(st));
  CHECK(absl::StrContains(st.message(), "install " + dir.str() + "/x: open " + work + "/nothing"));
}

}  // namespace
}  // namespace steward
