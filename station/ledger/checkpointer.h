// Checkpointer: copies the ledger's WAL back into the database file (the checkpoint) on
// a thread and connection of its own, so that a commit an acknowledgement waits for
// never carries a checkpoint's page copies and syncs. The Store's writer thread tells it
// about each commit; it decides from the WAL's size when a checkpoint is due:
//
//  - per `frames` new WAL frames, not after every commit once the WAL is that long: a
//    PASSIVE checkpoint never shortens the WAL, so that rule woke it for each commit's
//    few pages, each time with two syncs and a copy of the same hot pages again;
//  - while the WAL holds `frames` or more and frames that no checkpoint copied, again
//    at most every `retry`: the WAL starts over only at a transaction that begins after
//    a checkpoint copied all of it, and under a steady light load one checkpoint per
//    `frames` new frames seldom catches that moment;
//  - past `limit_frames` the writer checkpoints itself (RESTART: the WAL starts over),
//    when a steady stream of commits never lets the thread catch up.
//
//   auto ckpt = std::make_unique<Checkpointer>(std::move(own_connection), options);
//   ckpt->Attach(writer.raw());  // before the first commit
//   ...                          // writer thread, after each COMMIT:
//   ckpt->AfterCommit();
//   ckpt->Stop();                // after the writer's last commit
//
// Attach is called before the writer thread starts (or on it), AfterCommit on it;
// counts() from any thread; Stop() from any thread, not from two at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/sqlite.h"

namespace steward::station::ledger {

class Checkpointer {
 public:
  struct Options {
    // New WAL frames (pages) that wake the thread: SQLite's default.
    int frames = 1000;
    // WAL frames after which the writer checkpoints itself (4 KiB pages: about 64 MiB).
    int limit_frames = 16384;
    // How often a commit wakes the thread again while frames are left uncopied.
    absl::Duration retry = absl::Milliseconds(50);
  };
  // Checkpoints done by the thread, and by the writer itself past the limit.
  struct Counts {
    uint64_t background = 0;
    uint64_t by_writer = 0;
  };

  // Starts the thread. `own`: a read-write connection to the ledger file, used by the
  // thread only.
  Checkpointer(sqlite::Database own, Options options);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Replaces SQLite's automatic checkpoint on `writer` (which would run inside the
  // commit) with this one: the WAL hook tells it each commit's WAL size. `writer` must
  // stay open until the checkpointer is destroyed (which removes the hook).
  void Attach(sqlite3* writer);
  // After each commit, on the writer thread (after the commit's completions: they never
  // wait for it). Wakes the thread, or checkpoints on the writer's connection past the
  // limit.
  void AfterCommit() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the thread (a checkpoint under way finishes first). Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  Counts counts() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  static int OnWalCommit(void* self, sqlite3* db, const char* name, int frames);
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  sqlite::Database own_;  // the thread's
  sqlite3* writer_ = nullptr;
  // Frames in the WAL after the last commit (set by the WAL hook, on the writer thread).
  std::atomic<int> frames_{0};
  // Writer thread only: the WAL's size and the time when the thread was last woken.
  int woken_frames_ = 0;
  absl::Time woken_at_ = absl::InfinitePast();
  // The WAL frames the last checkpoint copied, when it copied all of them (else 0); set
  // by the thread, and back to 0 by the writer thread when the WAL starts over.
  std::atomic<int> copied_{0};
  mutable absl::Mutex mu_;
  bool wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Counts counts_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace steward::station::ledger
