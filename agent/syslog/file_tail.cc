// File tail: pread from the open file, lines through a Framer, rotation and truncation
// detected by (device, inode) and size, the offset saved in a state file.
#include "agent/syslog/file_tail.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "agent/syslog/framer.h"
#include "common/atomic_write.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace steward::agent::syslog {
namespace {

constexpr absl::Duration kFilePollInterval = absl::Milliseconds(50);
constexpr absl::Duration kFileRetryInterval = absl::Milliseconds(10);
constexpr absl::Duration kFlushInterval = absl::Milliseconds(100);
constexpr absl::Duration kFlushTimeout = absl::Milliseconds(200);
// After rotation, the old file is read until it has had no new data for this long.
constexpr absl::Duration kRotateGrace = absl::Milliseconds(200);
constexpr size_t kFileReadChunk = 64 * 1024;
// Bytes read per step before the tail looks at `stop` and flushes again.
constexpr size_t kMaxReadPerStep = 4 << 20;

absl::Status ErrnoStatus(absl::string_view what) { return absl::ErrnoToStatus(errno, what); }

// Where a file was read up to: the file (device, inode) and the byte offset.
struct FilePosition {
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t offset = 0;
  bool operator==(const FilePosition&) const = default;
};

// FNV-1a: a stable hash (absl::Hash is seeded per process), to tell apart paths that
// sanitize alike.
uint64_t Fnv1a(absl::string_view s) {
  uint64_t h = 14695981039346656037ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

// "tail-_var_log_app.log-<hash>.offset": readable, and unique per path.
std::string StateFileName(absl::string_view path) {
  std::string safe(path.substr(0, 100));
  for (char& c : safe) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  return absl::StrCat("tail-", safe, "-", absl::Hex(Fnv1a(path), absl::kZeroPad16), ".offset");
}

absl::Status EnsureDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::ErrnoToStatus(ec.value(), "create state directory " + dir);
  return absl::OkStatus();
}

// Replaces `path` with "<dev> <ino> <offset>\n".
absl::Status SavePosition(const std::string& path, const FilePosition& pos) {
  return WriteFileAtomically(path, absl::StrCat(pos.dev, " ", pos.ino, " ", pos.offset, "\n"));
}

// The saved position, nullopt when there is none (or it is unreadable garbage).
absl::StatusOr<std::optional<FilePosition>> LoadPosition(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::nullopt;
    return ErrnoStatus("open " + path);
  }
  char buf[128];
  const ssize_t n = read(fd.get(), buf, sizeof(buf));
  if (n < 0) return ErrnoStatus("read " + path);
  const std::vector<absl::string_view> parts = absl::StrSplit(
      absl::StripAsciiWhitespace(absl::string_view(buf, static_cast<size_t>(n))), ' ');
  FilePosition pos;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &pos.dev) ||
      !absl::SimpleAtoi(parts[1], &pos.ino) || !absl::SimpleAtoi(parts[2], &pos.offset) ||
      pos.offset < 0) {
    STEWARD_LOG_WARNING("ignoring unreadable tail state {}", path);
    return std::nullopt;
  }
  return pos;
}

class FileTail : public Input {
 public:
  FileTail(std::string path, const InputOptions& options, std::string state_dir, bool from_start)
      : path_(std::move(path)),
        origin_(std::make_shared<const LineOrigin>(LineOrigin{.source = "file:" + path_,
                                                              .domain = options.domain,
                                                              .zone = options.zone,
                                                              .severity = options.severity,
                                                              .plain_text = true})),
        state_dir_(std::move(state_dir)),
        state_path_(state_dir_ + "/" + StateFileName(path_)),
        from_start_(from_start),
        framer_(options.max_frame_bytes, Framing::kLines),
        buf_(kFileReadChunk) {}

  absl::Status Run(const absl::Notification& stop, LineSink& sink) override;
  std::string name() const override { return "tail:" + path_; }
  std::string file() const override { return path_; }
  int64_t offset() const override { return committed_.load(std::memory_order_relaxed); }

 private:
  absl::Status TryOpen(bool at_start, LineSink& sink);
  // The file the saved position names, found by its inode beside path_ after a rotation
  // while the agent was down (app.log.1): an open descriptor, or none.
  UniqueFd FindRotated(struct stat* st) const;
  int64_t StartOffset(const struct stat& st, bool at_start) const;
  absl::Status Step(const absl::Notification& stop, LineSink& sink, bool* progressed);
  absl::StatusOr<size_t> ReadSome(const absl::Notification& stop, LineSink& sink);
  bool OfferChunk(absl::string_view chunk, const absl::Notification& stop, LineSink& sink);
  // Offers `line` (cut when `truncated`) until the sink takes it.
  bool OfferBlocking(const std::string& line, bool truncated, const absl::Notification& stop,
                     LineSink& sink);
  absl::Status CheckRotation(const absl::Notification& stop, LineSink& sink);
  absl::Status MaybeSave(LineSink& sink, bool force);

  const std::string path_;
  const OriginPtr origin_;
  const std::string state_dir_;
  const std::string state_path_;
  const bool from_start_;
  Framer framer_;
  std::vector<char> buf_;

  // Per Run.
  UniqueFd fd_;               // the file being read (maybe no longer at path_)
  uint64_t dev_ = 0;
  uint64_t ino_ = 0;
  int64_t read_pos_ = 0;      // next byte to read from fd_
  // End of the last line the sink took; read by status from other threads.
  std::atomic<int64_t> committed_{0};
  std::optional<FilePosition> saved_;  // what the state file says
  absl::Time last_flush_ = absl::InfinitePast();
  std::optional<absl::Time> rotated_since_;  // path_ names another file (or none) since
  bool first_open_ = true;  // no file opened yet in this Run
};

absl::Status FileTail::Run(const absl::Notification& stop, LineSink& sink) {
  STEWARD_RETURN_IF_ERROR(EnsureDir(state_dir_));
  STEWARD_ASSIGN_OR_RETURN(saved_, LoadPosition(state_path_));
  fd_.Reset();
  framer_.Reset();
  rotated_since_.reset();
  first_open_ = true;
  bool at_start = true;
  while (!stop.HasBeenNotified()) {
    bool progressed = false;
    if (!fd_.valid()) STEWARD_RETURN_IF_ERROR(TryOpen(at_start, sink));
    at_start = false;
    if (fd_.valid()) STEWARD_RETURN_IF_ERROR(Step(stop, sink, &progressed));
    STEWARD_RETURN_IF_ERROR(MaybeSave(sink, /*force=*/false));
    if (!progressed) stop.WaitForNotificationWithTimeout(kFilePollInterval);
  }
  absl::Status status = MaybeSave(sink, /*force=*/true);
  fd_.Reset();
  return status;
}

// Opens path_ when it exists and decides where reading starts.
absl::Status FileTail::TryOpen(bool at_start, LineSink& sink) {
  UniqueFd fd(open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return absl::OkStatus();  // not there yet: wait for it
    return ErrnoStatus("open " + path_);
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat " + path_);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(path_ + " is not a regular file");
  if (first_open_ && saved_ && (saved_->dev != st.st_dev || saved_->ino != st.st_ino)) {
    // Rotated while the agent was down: the rest of the old file first, when it is still
    // beside path_ (renamed); the rotation handling (CheckRotation) then comes to the
    // new one. Gone (compressed, removed): what it got after the saved offset is missed.
    struct stat old {};
    if (UniqueFd rotated = FindRotated(&old); rotated.valid()) {
      fd = std::move(rotated);
      st = old;
      STEWARD_LOG_INFO("{}: rotated while the agent was down; reading the rest of the old file first", name());
    } else {
      STEWARD_LOG_WARNING("{}: rotated while the agent was down, and the old file is no longer beside it: lines it "
                          "got after offset {} are missed",
                          name(), saved_->offset);
    }
  }
  first_open_ = false;
  fd_ = std::move(fd);
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  read_pos_ = committed_ = StartOffset(st, at_start);
  framer_.Reset();
  rotated_since_.reset();
  STEWARD_LOG_INFO("{}: reading from offset {}", name(), read_pos_);
  return MaybeSave(sink, /*force=*/true);
}

UniqueFd FileTail::FindRotated(struct stat* st) const {
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::path(path_).parent_path();
  const std::string base = std::filesystem::path(path_).filename().string();
  for (const auto& entry : std::filesystem::directory_iterator(dir.empty() ? "." : dir, ec)) {
    // Only a renamed copy of this file (app.log.1, app.log-20261202), uncompressed, at
    // least as long as what was read of it: an inode number freed by a removal may be
    // another file's now.
    const std::string name = entry.path().filename().string();
    if (name.size() <= base.size() || name.compare(0, base.size(), base) != 0) continue;
    if (absl::EndsWith(name, ".gz") || absl::EndsWith(name, ".bz2") || absl::EndsWith(name, ".xz") ||
        absl::EndsWith(name, ".zst")) {
      continue;
    }
    struct stat s {};
    if (stat(entry.path().c_str(), &s) != 0 || !S_ISREG(s.st_mode)) continue;
    if (s.st_dev != saved_->dev || s.st_ino != saved_->ino || s.st_size < saved_->offset) continue;
    UniqueFd fd(open(entry.path().c_str(), O_RDONLY | O_CLOEXEC));
    // The one opened is the one checked (it may have moved on meanwhile).
    if (fd.valid() && fstat(fd.get(), st) == 0 && st->st_dev == saved_->dev && st->st_ino == saved_->ino) return fd;
  }
  return UniqueFd();
}

int64_t FileTail::StartOffset(const struct stat& st, bool at_start) const {
  if (saved_ && saved_->dev == st.st_dev && saved_->ino == st.st_ino) {
    return saved_->offset <= st.st_size ? saved_->offset : 0;  // shorter: truncated meanwhile
  }
  // A saved position for another file means the file was rotated while we were down:
  // the new one is read from 0. Lines the old file got after the last saved offset are
  // missed (we cannot tell where it went). A reused inode number would fool us too.
  if (at_start && !saved_ && !from_start_) return st.st_size;  // tail -F: only new lines
  return 0;
}

// Reads what is new in the open file; when there is nothing, looks for rotation.
absl::Status FileTail::Step(const absl::Notification& stop, LineSink& sink, bool* progressed) {
  struct stat st {};
  if (fstat(fd_.get(), &st) != 0) return ErrnoStatus("fstat " + path_);
  if (st.st_size < read_pos_) {  // copytruncate
    STEWARD_LOG_INFO("{}: truncated, reading from 0", name());
    read_pos_ = committed_ = 0;
    framer_.Reset();
  }
  STEWARD_ASSIGN_OR_RETURN(const size_t n, ReadSome(stop, sink));
  if (n > 0) {
    *progressed = true;
    rotated_since_.reset();  // the old file is still being written: keep reading it
    return absl::OkStatus();
  }
  return CheckRotation(stop, sink);
}

// Reads and offers up to kMaxReadPerStep bytes; returns how many were read.
absl::StatusOr<size_t> FileTail::ReadSome(const absl::Notification& stop, LineSink& sink) {
  size_t total = 0;
  while (total < kMaxReadPerStep) {
    const ssize_t n = pread(fd_.get(), buf_.data(), buf_.size(), static_cast<off_t>(read_pos_));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + path_);
    }
    if (n == 0) break;
    if (!OfferChunk(absl::string_view(buf_.data(), static_cast<size_t>(n)), stop, sink)) break;
    total += static_cast<size_t>(n);
  }
  return total;
}

// Offers the lines of `chunk` (read at read_pos_); false when `stop` came first.
bool FileTail::OfferChunk(absl::string_view chunk, const absl::Notification& stop,
                          LineSink& sink) {
  absl::string_view in = chunk;
  std::string line;
  while (framer_.Next(in, &line)) {
    if (!OfferBlocking(line, framer_.truncated(), stop, sink)) return false;
    committed_ = read_pos_ + static_cast<int64_t>(chunk.size() - in.size());
  }
  read_pos_ += static_cast<int64_t>(chunk.size());
  if (framer_.AtBoundary()) committed_ = read_pos_;
  return true;
}

// Offers `line` until the sink takes it (true) or `stop` comes (false).
bool FileTail::OfferBlocking(const std::string& line, bool truncated, const absl::Notification& stop,
                             LineSink& sink) {
  while (!Offer(sink, MakeLine(line, origin_, truncated))) {
    if (stop.WaitForNotificationWithTimeout(kFileRetryInterval)) return false;
  }
  return true;
}

// Once path_ names another file (or none) and the old one has been quiet for
// kRotateGrace, delivers the old file's unterminated last line and lets go of it.
absl::Status FileTail::CheckRotation(const absl::Notification& stop, LineSink& sink) {
  struct stat st {};
  if (stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    rotated_since_.reset();
    return absl::OkStatus();
  }
  const absl::Time now = absl::Now();
  if (!rotated_since_) rotated_since_ = now;
  if (now - *rotated_since_ < kRotateGrace) return absl::OkStatus();
  std::string line;
  if (framer_.Finish(&line) && !OfferBlocking(line, framer_.truncated(), stop, sink)) {
    return absl::OkStatus();
  }
  committed_ = read_pos_;
  STEWARD_RETURN_IF_ERROR(MaybeSave(sink, /*force=*/true));
  STEWARD_LOG_INFO("{}: rotated, done with the old file at offset {}", name(), read_pos_);
  fd_.Reset();
  rotated_since_.reset();
  return absl::OkStatus();
}

// Flushes the sink and saves the committed position when it moved (at most every
// kFlushInterval unless forced). Nothing is saved when the flush fails.
absl::Status FileTail::MaybeSave(LineSink& sink, bool force) {
  if (!fd_.valid()) return absl::OkStatus();
  const FilePosition pos{.dev = dev_, .ino = ino_, .offset = committed_.load()};
  if (saved_ == pos) return absl::OkStatus();
  const absl::Time now = absl::Now();
  if (!force && now - last_flush_ < kFlushInterval) return absl::OkStatus();
  last_flush_ = now;
  if (!sink.Flush(kFlushTimeout)) return absl::OkStatus();  // try again later
  STEWARD_RETURN_IF_ERROR(SavePosition(state_path_, pos));
  saved_ = pos;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Input>> NewFileTail(const std::string& path, const InputOptions& options,
                                                   const std::string& state_dir, bool from_start) {
  STEWARD_RETURN_IF_ERROR(CheckMaxFrameBytes(options.max_frame_bytes));
  if (path.empty()) return absl::InvalidArgumentError("empty path to tail");
  if (state_dir.empty()) return absl::InvalidArgumentError("empty state directory for " + path);
  STEWARD_RETURN_IF_ERROR(EnsureDir(state_dir));  // a bad directory fails at start-up
  return std::make_unique<FileTail>(path, options, state_dir, from_start);
}

}  // namespace steward::agent::syslog
