// copy: files to and from the node, in chunks that fit the broker's max payload, each
// chunk its own command (so through the ledger, signed, ACL-checked and run once like
// any command). The ACL sees argv "VERB PATH ...", so a rule "copy:put /etc/nginx/*"
// admits writes under /etc/nginx only.
//
//   put PATH OFFSET SIZE MODE SHA256 CHUNK_SHA256 [OWNER]   payload: the chunk at OFFSET
//       OWNER (USER:GROUP, USER or :GROUP, names or numbers) is resolved on the node and
//       checked with every chunk (an unknown user is refused before anything is
//       written), and given to the file before it is renamed into place.
//       Written to <dir>/.<name>.steward-<SHA256 prefix>.part; the chunk's hash is
//       checked first. Chunks may come in any order (the sender keeps several in
//       flight): "have N" counts the bytes from 0 with no gap, kept in <part>.have
//       (chunks past a gap are remembered until the agent restarts; then they are
//       asked for again). A chunk at OFFSET > 0 for a part file that does not exist is
//       refused with "have 0" (the first chunk makes it). Once the bytes from 0 reach
//       SIZE: the whole file's hash is checked, the mode set, the file fsynced and
//       renamed over PATH. stdout: "have N" or "done".
//   stat PATH SIZE SHA256        stdout "have N": what a resumed put starts from.
//   get PATH OFFSET LENGTH       payload: the bytes; stdout "size S sha256 H" (H of the
//                                whole file, with OFFSET 0) or "size S".
//
// A path must be absolute with no "." or ".." component; a directory, a missing parent
// directory, a file over the size limit (1 GiB) and a full disk are clear errors.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/method.h"
#include "common/protocol.h"
#include "common/owner.h"
#include "common/sha256_stream.h"
#include "common/signing.h"
#include "common/unique_fd.h"

namespace steward::agent {
namespace {

constexpr uint64_t kMaxCopyBytes = uint64_t{1} << 30;
constexpr size_t kMaxChunk = size_t{8} << 20;

absl::Status Errno(absl::string_view what, const std::string& path) {
  const int err = errno;
  std::string text = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOSPC) return absl::ResourceExhaustedError(text);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(text);
  if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(text);
  return absl::InternalError(text);
}

absl::Status CheckPath(const std::string& path) {
  if (path.empty() || path[0] != '/') return absl::InvalidArgumentError(absl::StrCat("\"", path, "\" is not an absolute path"));
  if (path.back() == '/') return absl::InvalidArgumentError(absl::StrCat(path, " names a directory"));
  for (absl::string_view part : absl::StrSplit(path.substr(1), '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(path, ": no empty, \".\" or \"..\" components"));
    }
  }
  return absl::OkStatus();
}

std::string PartPath(const std::string& path, const std::string& sha_hex) {
  const size_t slash = path.rfind('/');
  return absl::StrCat(path.substr(0, slash + 1), ".", path.substr(slash + 1), ".steward-", sha_hex.substr(0, 16),
                      ".part");
}

uint64_t SizeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// The bytes of `part` from 0 with no gap: its .have file, or (a part written by an
// agent from before chunks came out of order) its size; never more than its size.
uint64_t Prefix(const std::string& part) {
  const uint64_t size = SizeOf(part);
  UniqueFd fd(::open((part + ".have").c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return size;
  char buf[32] = {};
  const ssize_t n = ::read(fd.get(), buf, sizeof(buf) - 1);
  uint64_t have = 0;
  if (n <= 0 || !absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(buf, static_cast<size_t>(n))), &have)) {
    return 0;
  }
  return std::min(have, size);
}

// Like the chunks themselves, written without fsync: what a crash of the machine takes
// back is found by the whole file's hash at the end (then the copy starts again).
void SavePrefix(const std::string& part, uint64_t have) {
  UniqueFd fd(::open((part + ".have").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) return;
  const std::string text = absl::StrCat(have, "\n");
  (void)!::write(fd.get(), text.data(), text.size());
}

// Feeds bytes [from, to) of `fd` to `h`.
absl::Status HashRange(int fd, const std::string& path, uint64_t from, uint64_t to, signing::Sha256Stream& h) {
  std::string buf(static_cast<size_t>(std::min<uint64_t>(to - from, uint64_t{1} << 20)), '\0');
  while (from < to) {
    const ssize_t n = ::pread(fd, buf.data(), static_cast<size_t>(std::min<uint64_t>(buf.size(), to - from)),
                              static_cast<off_t>(from));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read", path);
    if (n == 0) return absl::DataLossError(absl::StrCat(path, " ends at ", from, ", before ", to));
    h.Update(absl::string_view(buf.data(), static_cast<size_t>(n)));
    from += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

class CopyMethod final : public Method {
 public:
  // Of each part file being written: its bytes from 0 with no gap, and the chunks that
  // came past the gap (offset -> end).
  // `whole` is the SHA-256 of the bytes from 0 to `have`, fed as they join (a part file
  // this agent did not write from 0 has none: its hash is read at the end).
  struct Progress {
    uint64_t have = 0;
    std::map<uint64_t, uint64_t> beyond;
    std::optional<signing::Sha256Stream> whole;
  };

  absl::StatusOr<proto::Ack> Execute(const ExecContext& ctx) override {
    const proto::Envelope& cmd = ctx.command;
    proto::Ack ack = NewAck(cmd.id(), ctx.node, proto::STAGE_RESULT, proto::OUTCOME_SUCCEEDED);
    ack.set_started_unix_ms(NowUnixMillis());
    absl::Status st = Run(cmd, ack);
    if (absl::IsInvalidArgument(st) && absl::StartsWith(st.message(), "usage")) {
      return RejectAck(cmd.id(), ctx.node, st.message());
    }
    if (!st.ok()) {
      ack.set_outcome(proto::OUTCOME_FAILED);
      ack.set_exit_code(1);
      ack.set_error(std::string(st.message()));
      ack.clear_payload();
    }
    ack.set_finished_unix_ms(NowUnixMillis());
    return ack;
  }

 private:
  std::map<std::string, Progress> parts_;  // by part file

  static absl::Status Usage() {
    return absl::InvalidArgumentError(
        "usage: copy put PATH OFFSET SIZE MODE SHA256 CHUNK_SHA256 | stat PATH SIZE SHA256 | get PATH OFFSET LENGTH");
  }

  absl::Status Run(const proto::Envelope& cmd, proto::Ack& ack) {
    const auto& a = cmd.argv();
    if (a.size() < 2) return Usage();
    const std::string& verb = a[0];
    const std::string& path = a[1];
    if (verb == "put" && (a.size() == 7 || a.size() == 8)) {
      uint64_t offset = 0, size = 0;
      uint32_t mode = 0;
      if (!absl::SimpleAtoi(a[2], &offset) || !absl::SimpleAtoi(a[3], &size) ||
          !absl::numbers_internal::safe_strtou32_base(a[4], &mode, 8) || mode > 07777 || a[5].size() != 64) {
        return Usage();
      }
      std::optional<Owner> owner;
      if (a.size() == 8) {
        absl::StatusOr<Owner> o = ResolveOwner(a[7]);
        if (!o.ok()) return o.status();
        if (absl::Status can = CheckCanChown(*o); !can.ok()) {
          return absl::FailedPreconditionError(absl::StrCat("owner ", a[7], ": the agent ", can.message()));
        }
        owner = *o;
      }
      return Put(path, offset, size, static_cast<mode_t>(mode), owner, a[5], a[6], cmd.payload(), ack);
    }
    if (verb == "stat" && a.size() == 4) {
      if (absl::Status st = CheckPath(path); !st.ok()) return st;
      if (a[3].size() != 64) return Usage();
      ack.set_stdout(absl::StrCat("have ", Prefix(PartPath(path, a[3])), "\n"));
      return absl::OkStatus();
    }
    if (verb == "get" && a.size() == 4) {
      uint64_t offset = 0, length = 0;
      if (!absl::SimpleAtoi(a[2], &offset) || !absl::SimpleAtoi(a[3], &length)) return Usage();
      return Get(path, offset, std::min<uint64_t>(length, kMaxChunk), ack);
    }
    return Usage();
  }

  absl::Status Put(const std::string& path, uint64_t offset, uint64_t size, mode_t mode,
                   const std::optional<Owner>& owner, const std::string& sha_hex,
                   const std::string& chunk_hex, const std::string& chunk, proto::Ack& ack) {
    if (absl::Status st = CheckPath(path); !st.ok()) return st;
    if (size > kMaxCopyBytes) {
      return absl::InvalidArgumentError(absl::StrCat("refused: ", size, " bytes is over the limit of ", kMaxCopyBytes));
    }
    if (struct stat st {}; ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(path, " is a directory"));
    }
    if (sha_hex.size() != 64 || offset + chunk.size() > size) return Usage();
    if (absl::BytesToHexString(signing::Sha256(chunk)) != chunk_hex) {
      return absl::DataLossError(absl::StrCat("chunk at ", offset, " of ", path, " does not match its SHA-256"));
    }
    const std::string part = PartPath(path, sha_hex);
    // Only the first chunk makes the part file: a late or repeated chunk after the copy
    // ended (renamed into place) leaves nothing behind.
    UniqueFd fd(::open(part.c_str(), O_RDWR | O_CLOEXEC | (offset == 0 ? O_CREAT : 0), 0600));
    if (fd.get() < 0 && errno == ENOENT && offset > 0) {
      ack.set_stdout("have 0\n");
      return absl::FailedPreconditionError(
          absl::StrCat("chunk at ", offset, " of ", path, " comes before its first: resume from 0"));
    }
    if (fd.get() < 0) return Errno("create", part);
    struct stat pst {};
    if (::fstat(fd.get(), &pst) != 0) return Errno("stat", part);
    auto [it, fresh] = parts_.try_emplace(part);
    Progress& p = it->second;
    if (fresh || pst.st_size == 0) {
      p = Progress{.have = pst.st_size == 0 ? 0 : Prefix(part)};
      if (p.have == 0) p.whole.emplace();
    }
    size_t done = 0;
    while (done < chunk.size()) {
      const ssize_t n = ::pwrite(fd.get(), chunk.data() + done, chunk.size() - done,
                                 static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        // What was written whole stays (a resume starts at the gap); the torn chunk is
        // written again.
        return Errno("write", part);
      }
      done += static_cast<size_t>(n);
    }
    if (offset <= p.have) {
      const uint64_t before = p.have;
      p.have = std::max(p.have, offset + chunk.size());
      // The whole file's hash grows with the bytes from 0 as they come (so the last
      // chunk does not read the file again): this chunk's new bytes from memory, ...
      if (p.whole.has_value() && p.have > before) p.whole->Update(absl::string_view(chunk).substr(before - offset));
      // Chunks that came early join once the gap before them is filled.
      const uint64_t joined_from = p.have;
      for (auto b = p.beyond.begin(); b != p.beyond.end() && b->first <= p.have; b = p.beyond.erase(b)) {
        p.have = std::max(p.have, b->second);
      }
      // ... and those that joined, read back (from the page cache, just written).
      if (p.whole.has_value() && p.have > joined_from) {
        if (absl::Status st = HashRange(fd.get(), part, joined_from, p.have, *p.whole); !st.ok()) p.whole.reset();
      }
      SavePrefix(part, p.have);
    } else {
      uint64_t& end = p.beyond[offset];
      end = std::max(end, offset + chunk.size());
    }
    const uint64_t now_have = p.have;
    if (now_have < size) {
      ack.set_stdout(absl::StrCat("have ", now_have, "\n"));
      return absl::OkStatus();
    }
    std::optional<signing::Sha256Stream> streamed = std::move(p.whole);
    parts_.erase(part);
    ::unlink((part + ".have").c_str());
    // The last chunk: the whole file, its hash, its mode, then in place.
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return Errno("truncate", part);
    if (::fsync(fd.get()) != 0) return Errno("fsync", part);
    absl::StatusOr<std::string> whole =
        streamed.has_value() ? absl::StatusOr<std::string>(streamed->Finish()) : signing::Sha256File(part);
    if (!whole.ok()) return whole.status();
    if (absl::BytesToHexString(*whole) != sha_hex) {
      ::unlink(part.c_str());
      ::unlink((part + ".have").c_str());
      return absl::DataLossError(absl::StrCat(path, ": the file's SHA-256 does not match; the copy was discarded"));
    }
    // The owner first: a chown may clear set-id bits that the mode then sets.
    if (owner.has_value() && ::fchown(fd.get(), owner->uid, owner->gid) != 0) return Errno("chown", part);
    if (::fchmod(fd.get(), mode) != 0) return Errno("chmod", part);
    if (::rename(part.c_str(), path.c_str()) != 0) return Errno("rename to", path);
    const std::string dir = path.substr(0, path.rfind('/') + 1);
    if (UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); d.get() >= 0) (void)::fsync(d.get());
    ack.set_stdout(absl::StrCat("done ", size, "\n"));
    return absl::OkStatus();
  }

  absl::Status Get(const std::string& path, uint64_t offset, uint64_t length, proto::Ack& ack) {
    if (absl::Status st = CheckPath(path); !st.ok()) return st;
    // O_NONBLOCK: opening a FIFO (or a device) for reading must not wait for a writer;
    // it is refused below, and a regular file reads the same either way.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (fd.get() < 0) return Errno("open", path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Errno("stat", path);
    if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size > kMaxCopyBytes) {
      return absl::InvalidArgumentError(absl::StrCat("refused: ", size, " bytes is over the limit of ", kMaxCopyBytes));
    }
    std::string data(static_cast<size_t>(std::min<uint64_t>(length, offset < size ? size - offset : 0)), '\0');
    size_t got = 0;
    while (got < data.size()) {
      const ssize_t n = ::pread(fd.get(), data.data() + got, data.size() - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Errno("read", path);
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    data.resize(got);
    std::string line = absl::StrCat("size ", size, " chunk ", absl::BytesToHexString(signing::Sha256(data)));
    if (offset == 0) {
      // Through the descriptor checked above, never the name again (it could be
      // something else by now). Its position is still 0: only pread used it.
      absl::StatusOr<std::string> whole = signing::Sha256Fd(fd.get(), path);
      if (!whole.ok()) return whole.status();
      absl::StrAppend(&line, " sha256 ", absl::BytesToHexString(*whole));
    }
    ack.set_stdout(absl::StrCat(line, "\n"));
    ack.set_payload(std::move(data));
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<Method> NewCopyMethod() { return std::make_unique<CopyMethod>(); }

}  // namespace steward::agent
