// ChunkSpool: the bytes of copy chunks, kept in files beside the ledger rather than in
// SQLite (ledger schema step 9). In SQLite every byte of a chunk was written twice (the
// WAL, then the checkpoint into station.db), in 4 KiB pages, each a system call; here a
// chunk is one write, and the group's one fdatasync comes before its COMMIT, so a chunk
// the station acknowledged is on disk like its row. The row (command_payloads) names the
// file, offset, length and SHA-256 of the bytes; a read checks all of them.
//
// Files: <dir>/chunks-<N>.spool, appended to until one holds kFileBytes, then the next.
// A file goes when no row names it any more and it is not the one being appended to
// (a finished chunk's row is deleted with its payload, ledger/command_rows.cc), after the
// transaction that deleted its last row committed. At start, files no row names are
// deleted (appended to by a transaction that never committed) and a new file is begun.
//
//   STEWARD_ASSIGN_OR_RETURN(auto spool, ChunkSpool::Open(dir, rows_by_file));
//   // on the writer thread, inside a transaction:
//   STEWARD_ASSIGN_OR_RETURN(ChunkSpool::Ref ref, spool->Append(bytes));  // + its row
//   spool->Sync();                 // before COMMIT
//   spool->Ended(committed);       // after COMMIT or ROLLBACK
//   // anywhere:
//   STEWARD_ASSIGN_OR_RETURN(std::string bytes, spool->Read(ref));
//
// Append, Added, Released, Sync and Ended: the writer thread only. Read: any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"

namespace steward::station::ledger {

class ChunkSpool {
 public:
  // Where a payload is: what its row holds.
  struct Ref {
    int64_t file = 0;
    int64_t offset = 0;
    int64_t length = 0;
    std::string sha256;  // of the bytes, raw (32 bytes)
  };
  // A spool file is not appended to past this size.
  static constexpr int64_t kFileBytes = int64_t{64} << 20;

  // `rows` is how many rows name each file (from the ledger, at start); `file_bytes`
  // (tests) instead of kFileBytes.
  static absl::StatusOr<std::unique_ptr<ChunkSpool>> Open(const std::string& dir,
                                                          const std::map<int64_t, int64_t>& rows,
                                                          int64_t file_bytes = kFileBytes);
  ChunkSpool(const ChunkSpool&) = delete;
  ChunkSpool& operator=(const ChunkSpool&) = delete;

  // Writes `bytes` at the end of the current file (not synced yet). `sha256` is their
  // SHA-256 when the caller has it (a copy chunk names its own, which its node checks):
  // a read checks the bytes against it; else it is computed here.
  absl::StatusOr<Ref> Append(absl::string_view bytes, std::string sha256 = "");
  // A row naming `file` was inserted / deleted in the open transaction.
  void Added(int64_t file) { ++pending_[file]; }
  void Released(int64_t file) { --pending_[file]; }
  // The open transaction's counts at a savepoint: RollbackTo(Mark()) undoes the Added
  // and Released since, whose rows ROLLBACK TO undid (what Append wrote stays, unnamed).
  std::map<int64_t, int64_t> Mark() const { return pending_; }
  void RollbackTo(std::map<int64_t, int64_t> mark) { pending_ = std::move(mark); }
  // Makes what Append wrote since the last Sync durable (before the COMMIT that makes
  // rows name it).
  absl::Status Sync();
  // After the transaction: its row counts count now (committed) or are forgotten; files
  // no row names any more are deleted, and the current one, when no row names it, is
  // emptied (a copy that ended leaves no bytes behind).
  void Ended(bool committed);

  // The bytes `ref` names, checked: a file that is gone, shorter than the row says, or
  // holds other bytes (SHA-256) is an error saying so.
  absl::StatusOr<std::string> Read(const Ref& ref) const;

  // Spool files on disk now, by number (for tests).
  std::vector<int64_t> Files() const;
  std::string Path(int64_t file) const;

 private:
  ChunkSpool(std::string dir, int64_t file_bytes) : dir_(std::move(dir)), file_bytes_(file_bytes) {}
  absl::Status StartFile(int64_t file);
  void DeleteUnnamed();

  const std::string dir_;
  const int64_t file_bytes_;
  // The file appended to, its size, and whether it has bytes not synced yet.
  int64_t current_ = 0;
  UniqueFd fd_;
  int64_t size_ = 0;
  bool unsynced_ = false;
  std::map<int64_t, int64_t> rows_;     // committed rows by file
  std::map<int64_t, int64_t> pending_;  // changes by the open transaction
  std::set<int64_t> left_;              // files not appended to any more, still on disk
};

}  // namespace steward::station::ledger
