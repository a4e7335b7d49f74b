// The "steward-wal-batch" VFS (common/sqlite.h, OpenOptions::batch_wal_writes): the
// default VFS, except that a WAL file's contiguous writes are gathered in memory and
// reach the file together, in writes of up to 64 KiB, when SQLite next syncs, reads,
// sizes, truncates or closes it (or when they stop being contiguous, or pass kMaxBatch).
//
// Why: SQLite writes each WAL frame as two writes (its 24-byte header, then its page),
// so a commit of 20 pages cost 40 write calls before its sync; on this project's
// virtual machines those calls took about as long as the sync itself, on the ledger's
// writer thread, which every acknowledgement waits for (ledger_bench: 6.2 write calls
// per durable command before, 0.7 after).
//
// Why it keeps every guarantee: with synchronous=FULL (the only setting it is allowed
// with) SQLite syncs the WAL before a commit is published to other connections or
// returned to the caller, and the sync writes the batch first. Frames written without
// a sync (a transaction's cache spill) are read back only by the same connection,
// through this file, whose reads write the batch first. A process that dies with a
// batch unwritten loses only frames of a commit that had not returned, which SQLite's
// recovery drops by their checksums, as it drops any torn WAL tail. It relies on the
// connection opened with it being the only one that writes frames to its WAL (the
// ledger's writer; other connections read, or checkpoint PASSIVE): frames of a rolled-back
// transaction may reach the file at a later flush, as the default VFS writes them at once.
#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "common/sqlite.h"

namespace steward::sqlite {
namespace {

constexpr int kMaxBatch = 1 << 20;   // bytes held at most; a larger write goes straight through
constexpr int kMaxWrite = 64 << 10;  // bytes a call to the real file writes at most

struct BatchFile {
  sqlite3_file base;   // its pMethods is kMethods
  sqlite3_file* real;  // the default VFS's file, right behind this struct
  bool wal;            // a WAL file on a powersafe-overwrite device: its writes are gathered
  char* data;          // the gathered bytes (sqlite3_malloc), `len` of `cap`
  int len;
  int cap;
  int head;          // data[head, len) is not written yet (a failed write leaves it for the next try)
  sqlite3_int64 at;  // the file offset of data[0]
};

sqlite3_vfs* Real(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }
BatchFile* Of(sqlite3_file* f) { return reinterpret_cast<BatchFile*>(f); }
sqlite3_file* RealOf(sqlite3_file* f) { return Of(f)->real; }

// Writes what is gathered, in order. A failure (a full disk) keeps what was not written:
// the next flush (at the latest the commit's sync) tries it again before anything else,
// so the file never has a hole where SQLite believes frames are. (When the failure came
// through a read, SQLite fails only that statement and its transaction goes on; when it
// came through the commit's sync, Sync drops what is left.)
int Flush(BatchFile* f) {
  while (f->head < f->len) {
    // In pieces: the unix VFS writes at most 128 KiB - 1 bytes a call (it masks the
    // size with 0x1ffff, and takes a 128 KiB write that comes out empty for a full disk).
    const int n = std::min(kMaxWrite, f->len - f->head);
    const int rc = f->real->pMethods->xWrite(f->real, f->data + f->head, n, f->at + f->head);
    if (rc != SQLITE_OK) return rc;
    f->head += n;
  }
  f->head = 0;
  f->len = 0;
  return SQLITE_OK;
}

int Close(sqlite3_file* file) {
  BatchFile* f = Of(file);
  const int flushed = Flush(f);
  const int rc = f->real->pMethods->xClose(f->real);
  sqlite3_free(f->data);
  f->data = nullptr;
  f->cap = 0;
  return flushed != SQLITE_OK ? flushed : rc;
}

int Read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  if (const int rc = Flush(Of(file)); rc != SQLITE_OK) return rc;
  return RealOf(file)->pMethods->xRead(RealOf(file), out, amount, offset);
}

int Write(sqlite3_file* file, const void* in, int amount, sqlite3_int64 offset) {
  BatchFile* f = Of(file);
  if (!f->wal) return f->real->pMethods->xWrite(f->real, in, amount, offset);
  const bool follows = f->len > f->head && offset == f->at + f->len;
  if (!follows || f->len + amount > kMaxBatch) {
    if (const int rc = Flush(f); rc != SQLITE_OK) return rc;
    if (amount > kMaxWrite) return f->real->pMethods->xWrite(f->real, in, amount, offset);
    f->at = offset;
  }
  if (f->len + amount > f->cap) {
    const int cap = std::max(f->len + amount, std::max(64 << 10, f->cap * 2));
    void* grown = sqlite3_realloc(f->data, cap);
    if (grown == nullptr) return SQLITE_IOERR_NOMEM;
    f->data = static_cast<char*>(grown);
    f->cap = cap;
  }
  std::memcpy(f->data + f->len, in, static_cast<size_t>(amount));
  f->len += amount;
  return SQLITE_OK;
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  if (const int rc = Flush(Of(file)); rc != SQLITE_OK) return rc;
  return RealOf(file)->pMethods->xTruncate(RealOf(file), size);
}

// A commit whose frames could not be written fails, and SQLite takes its frames as never
// written (the next transaction writes over them): what is left of them is dropped, never
// written later. Written later, a crash before that overwrite would have recovery replay a
// commit that was reported failed (its commit frame whole). (SQLite syncs a WAL only at a
// commit, or at a checkpoint outside this connection's transactions, when all it can hold
// is frames of a transaction that never committed.)
int Sync(sqlite3_file* file, int flags) {
  BatchFile* f = Of(file);
  if (const int rc = Flush(f); rc != SQLITE_OK) {
    f->head = 0;
    f->len = 0;
    return rc;
  }
  return RealOf(file)->pMethods->xSync(RealOf(file), flags);
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  if (const int rc = Flush(Of(file)); rc != SQLITE_OK) return rc;
  return RealOf(file)->pMethods->xFileSize(RealOf(file), size);
}

int Lock(sqlite3_file* file, int level) { return RealOf(file)->pMethods->xLock(RealOf(file), level); }
int Unlock(sqlite3_file* file, int level) { return RealOf(file)->pMethods->xUnlock(RealOf(file), level); }
int CheckReservedLock(sqlite3_file* file, int* out) {
  return RealOf(file)->pMethods->xCheckReservedLock(RealOf(file), out);
}

int FileControl(sqlite3_file* file, int op, void* arg) {
  if (const int rc = Flush(Of(file)); rc != SQLITE_OK) return rc;
  return RealOf(file)->pMethods->xFileControl(RealOf(file), op, arg);
}

int SectorSize(sqlite3_file* file) { return RealOf(file)->pMethods->xSectorSize(RealOf(file)); }
int DeviceCharacteristics(sqlite3_file* file) { return RealOf(file)->pMethods->xDeviceCharacteristics(RealOf(file)); }
int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  return RealOf(file)->pMethods->xShmMap(RealOf(file), region, size, extend, out);
}
int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  return RealOf(file)->pMethods->xShmLock(RealOf(file), offset, n, flags);
}
void ShmBarrier(sqlite3_file* file) { RealOf(file)->pMethods->xShmBarrier(RealOf(file)); }
int ShmUnmap(sqlite3_file* file, int del) { return RealOf(file)->pMethods->xShmUnmap(RealOf(file), del); }
// Memory-mapped reads, where the real file has them (else SQLite reads instead).
int Fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  *out = nullptr;
  if (RealOf(file)->pMethods->iVersion < 3) return SQLITE_OK;
  if (const int rc = Flush(Of(file)); rc != SQLITE_OK) return rc;
  return RealOf(file)->pMethods->xFetch(RealOf(file), offset, amount, out);
}
int Unfetch(sqlite3_file* file, sqlite3_int64 offset, void* p) {
  if (RealOf(file)->pMethods->iVersion < 3) return SQLITE_OK;
  return RealOf(file)->pMethods->xUnfetch(RealOf(file), offset, p);
}

const sqlite3_io_methods kMethods = {
    3,
    Close,
    Read,
    Write,
    Truncate,
    Sync,
    FileSize,
    Lock,
    Unlock,
    CheckReservedLock,
    FileControl,
    SectorSize,
    DeviceCharacteristics,
    ShmMap,
    ShmLock,
    ShmBarrier,
    ShmUnmap,
    Fetch,
    Unfetch,
};

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  BatchFile* f = Of(file);
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  f->wal = (flags & SQLITE_OPEN_WAL) != 0;
  f->data = nullptr;
  f->len = 0;
  f->cap = 0;
  f->head = 0;
  f->at = 0;
  const int rc = Real(vfs)->xOpen(Real(vfs), name, f->real, flags, out_flags);
  // Without methods SQLite calls no xClose; the real file's decide whether ours exist.
  f->base.pMethods = f->real->pMethods != nullptr ? &kMethods : nullptr;
  // Without powersafe overwrite SQLite pads a commit to a sector boundary, syncs there,
  // and writes the rest of its last frame with no sync after: that rest would stay
  // gathered while readers are shown the frame. SQLite asks the database file, and a WAL
  // file answers with the build's default, so this catches a build without powersafe
  // overwrite; a URI's "psow=0" reaches only the database file, and Database::Open
  // refuses a URI with batched writes.
  if (f->wal && f->base.pMethods != nullptr &&
      (f->real->pMethods->xDeviceCharacteristics(f->real) & SQLITE_IOCAP_POWERSAFE_OVERWRITE) == 0) {
    f->wal = false;
  }
  return rc;
}

int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) { return Real(vfs)->xDelete(Real(vfs), name, sync_dir); }
int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Real(vfs)->xAccess(Real(vfs), name, flags, out);
}
int FullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return Real(vfs)->xFullPathname(Real(vfs), name, n, out);
}
void* DlOpen(sqlite3_vfs* vfs, const char* name) { return Real(vfs)->xDlOpen(Real(vfs), name); }
void DlError(sqlite3_vfs* vfs, int n, char* out) { Real(vfs)->xDlError(Real(vfs), n, out); }
void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return Real(vfs)->xDlSym(Real(vfs), handle, symbol);
}
void DlClose(sqlite3_vfs* vfs, void* handle) { Real(vfs)->xDlClose(Real(vfs), handle); }
int Randomness(sqlite3_vfs* vfs, int n, char* out) { return Real(vfs)->xRandomness(Real(vfs), n, out); }
int Sleep(sqlite3_vfs* vfs, int us) { return Real(vfs)->xSleep(Real(vfs), us); }
int CurrentTime(sqlite3_vfs* vfs, double* out) { return Real(vfs)->xCurrentTime(Real(vfs), out); }
int GetLastError(sqlite3_vfs* vfs, int n, char* out) { return Real(vfs)->xGetLastError(Real(vfs), n, out); }
int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) { return Real(vfs)->xCurrentTimeInt64(Real(vfs), out); }

}  // namespace

const char* WalBatchVfs() {
  static sqlite3_vfs vfs;
  static std::once_flag once;
  static bool registered = false;
  std::call_once(once, [] {
    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    if (real == nullptr || real->iVersion < 2) return;
    vfs.iVersion = 2;
    vfs.szOsFile = static_cast<int>(sizeof(BatchFile)) + real->szOsFile;
    vfs.mxPathname = real->mxPathname;
    vfs.zName = "steward-wal-batch";
    vfs.pAppData = real;
    vfs.xOpen = Open;
    vfs.xDelete = Delete;
    vfs.xAccess = Access;
    vfs.xFullPathname = FullPathname;
    vfs.xDlOpen = DlOpen;
    vfs.xDlError = DlError;
    vfs.xDlSym = DlSym;
    vfs.xDlClose = DlClose;
    vfs.xRandomness = Randomness;
    vfs.xSleep = Sleep;
    vfs.xCurrentTime = CurrentTime;
    vfs.xGetLastError = GetLastError;
    vfs.xCurrentTimeInt64 = CurrentTimeInt64;
    registered = sqlite3_vfs_register(&vfs, /*makeDflt=*/0) == SQLITE_OK;
  });
  return registered ? vfs.zName : nullptr;
}

}  // namespace steward::sqlite
