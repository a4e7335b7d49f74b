#include "station/ledger/chunk_spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/signing.h"
#include "common/status_macros.h"

namespace steward::station::ledger {
namespace {

constexpr char kPrefix[] = "chunks-";
constexpr char kSuffix[] = ".spool";

// A full disk (ENOSPC, EDQUOT, EFBIG) is ResourceExhausted and an I/O error or a
// file system turned read-only is DataLoss: the ledger's health counts both as storage
// failures (Store::IsStorageFailure). Anything else stays Internal.
absl::Status Errno(absl::string_view what, const std::string& path) {
  const int err = errno;
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return absl::ResourceExhaustedError(std::move(msg));
    case EIO:
    case EROFS:
      return absl::DataLossError(std::move(msg));
    default:
      return absl::InternalError(std::move(msg));
  }
}

// The number in "chunks-N.spool"; -1 for any other name.
int64_t FileNumber(const std::string& name) {
  if (!absl::StartsWith(name, kPrefix) || !absl::EndsWith(name, kSuffix)) return -1;
  int64_t n = -1;
  const absl::string_view digits =
      absl::string_view(name).substr(sizeof(kPrefix) - 1, name.size() - (sizeof(kPrefix) - 1) - (sizeof(kSuffix) - 1));
  return absl::SimpleAtoi(digits, &n) && n > 0 ? n : -1;
}

absl::Status SyncDir(const std::string& dir) {
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.get() < 0) return Errno("open", dir);
  if (::fsync(d.get()) != 0) return Errno("fsync", dir);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChunkSpool>> ChunkSpool::Open(const std::string& dir,
                                                             const std::map<int64_t, int64_t>& rows,
                                                             int64_t file_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("create ", dir, ": ", ec.message()));
  std::unique_ptr<ChunkSpool> spool(new ChunkSpool(dir, file_bytes));
  int64_t last = 0;
  for (const auto& [file, n] : rows) {
    if (n > 0) spool->rows_[file] = n;
    last = std::max(last, file);
  }
  for (const int64_t file : spool->Files()) {
    last = std::max(last, file);
    spool->left_.insert(file);
  }
  STEWARD_RETURN_IF_ERROR(spool->StartFile(last + 1));
  // Files appended to by a transaction that never committed, or whose chunks all
  // finished: nothing names them.
  spool->DeleteUnnamed();
  return spool;
}

std::string ChunkSpool::Path(int64_t file) const { return absl::StrCat(dir_, "/", kPrefix, file, kSuffix); }

std::vector<int64_t> ChunkSpool::Files() const {
  std::vector<int64_t> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const int64_t n = FileNumber(entry.path().filename().string());
    if (n > 0) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::Status ChunkSpool::StartFile(int64_t file) {
  const std::string path = Path(file);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Errno("create", path);
  // The file's name is durable before a row can name it.
  STEWARD_RETURN_IF_ERROR(SyncDir(dir_));
  if (current_ > 0) left_.insert(current_);  // it goes once no row names it (Ended)
  fd_ = std::move(fd);
  current_ = file;
  size_ = 0;
  unsynced_ = false;
  return absl::OkStatus();
}

absl::StatusOr<ChunkSpool::Ref> ChunkSpool::Append(absl::string_view bytes, std::string sha256) {
  if (size_ > 0 && size_ + static_cast<int64_t>(bytes.size()) > file_bytes_) {
    // What this transaction wrote to the old file is synced before it is left.
    STEWARD_RETURN_IF_ERROR(Sync());
    STEWARD_RETURN_IF_ERROR(StartFile(current_ + 1));
  }
  Ref ref{current_, size_, static_cast<int64_t>(bytes.size()),
          sha256.empty() ? signing::Sha256(bytes) : std::move(sha256)};
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd_.get(), bytes.data() + done, bytes.size() - done,
                               static_cast<off_t>(size_ + static_cast<int64_t>(done)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status failed = Errno("write", Path(current_));
      // A write cut short (a full disk) left bytes past the file's end as recorded:
      // they would keep the room until the file is emptied or deleted.
      if (done > 0 && ::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0) {
        STEWARD_LOG_WARNING("cannot cut {} back to {} bytes: {}", Path(current_), size_, std::strerror(errno));
      }
      return failed;
    }
    done += static_cast<size_t>(n);
  }
  size_ += ref.length;
  unsynced_ = true;
  return ref;
}

absl::Status ChunkSpool::Sync() {
  if (!unsynced_) return absl::OkStatus();
  if (::fdatasync(fd_.get()) != 0) return Errno("fdatasync", Path(current_));
  unsynced_ = false;
  return absl::OkStatus();
}

void ChunkSpool::Ended(bool committed) {
  std::map<int64_t, int64_t> changes;
  changes.swap(pending_);
  if (committed) {
    for (const auto& [file, delta] : changes) {
      int64_t& n = rows_[file];
      n += delta;
      if (n <= 0) rows_.erase(file);
    }
  }
  DeleteUnnamed();
  if (size_ > 0 && rows_.count(current_) == 0) {
    if (::ftruncate(fd_.get(), 0) == 0) {
      size_ = 0;
      unsynced_ = false;
    } else {
      STEWARD_LOG_WARNING("cannot empty {}: {}", Path(current_), std::strerror(errno));
    }
  }
}

void ChunkSpool::DeleteUnnamed() {
  for (auto it = left_.begin(); it != left_.end();) {
    if (rows_.count(*it) > 0) {
      ++it;
      continue;
    }
    if (::unlink(Path(*it).c_str()) != 0 && errno != ENOENT) {
      STEWARD_LOG_WARNING("cannot delete {}: {}", Path(*it), std::strerror(errno));
    }
    it = left_.erase(it);
  }
}

absl::StatusOr<std::string> ChunkSpool::Read(const Ref& ref) const {
  const std::string path = Path(ref.file);
  const std::string where = absl::StrCat(ref.length, " bytes at ", ref.offset, " of ", path);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return absl::DataLossError(absl::StrCat("spooled chunk (", where, ") is missing: ", std::strerror(errno)));
  }
  std::string bytes(static_cast<size_t>(ref.length), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n =
        ::pread(fd.get(), bytes.data() + got, bytes.size() - got, static_cast<off_t>(ref.offset) + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read", path);
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat("spooled chunk (", where, ") is truncated: the file ends after ", got, " of its bytes"));
    }
    got += static_cast<size_t>(n);
  }
  if (signing::Sha256(bytes) != ref.sha256) {
    return absl::DataLossError(absl::StrCat("spooled chunk (", where, ") is damaged: its SHA-256 differs"));
  }
  return bytes;
}

}  // namespace steward::station::ledger
