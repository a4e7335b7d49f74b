#include "station/ledger/checkpointer.h"

#include <utility>

#include "absl/time/clock.h"
#include "common/log.h"

namespace steward::station::ledger {

Checkpointer::Checkpointer(sqlite::Database own, Options options)
    : options_(options), own_(std::move(own)), thread_([this] { Loop(); }) {}

Checkpointer::~Checkpointer() {
  Stop();
  // The hook points here: a later commit on the writer's connection must not call it.
  if (writer_ != nullptr) sqlite3_wal_hook(writer_, nullptr, nullptr);
}

void Checkpointer::Attach(sqlite3* writer) {
  writer_ = writer;
  sqlite3_wal_hook(writer, &Checkpointer::OnWalCommit, this);
}

int Checkpointer::OnWalCommit(void* self, sqlite3* /*db*/, const char* /*name*/, int frames) {
  static_cast<Checkpointer*>(self)->frames_.store(frames, std::memory_order_relaxed);
  return SQLITE_OK;
}

void Checkpointer::AfterCommit() {
  const int frames = frames_.load(std::memory_order_relaxed);
  if (frames >= options_.limit_frames) {
    int log = 0;
    int copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(writer_, nullptr, SQLITE_CHECKPOINT_RESTART, &log, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      STEWARD_LOG_WARNING("ledger checkpoint by the writer failed: {}", sqlite3_errstr(rc));
    }
    frames_.store(0, std::memory_order_relaxed);
    woken_frames_ = 0;
    if (rc == SQLITE_OK) copied_.store(0, std::memory_order_relaxed);  // the WAL starts over
    absl::MutexLock lock(&mu_);
    ++counts_.by_writer;
    return;
  }
  if (frames < woken_frames_) {
    // The WAL started over: what the last checkpoint copied was the old WAL's. (Should
    // that checkpoint store its count only now, the retries below wait for the next
    // wake per `frames` new frames; nothing worse.)
    woken_frames_ = 0;
    copied_.store(0, std::memory_order_relaxed);
  }
  const absl::Time now = absl::Now();
  const bool retry = frames >= options_.frames && frames > copied_.load(std::memory_order_relaxed) &&
                     now - woken_at_ >= options_.retry;
  if (frames - woken_frames_ < options_.frames && !retry) return;
  woken_frames_ = frames;
  woken_at_ = now;
  absl::MutexLock lock(&mu_);
  wanted_ = true;
}

void Checkpointer::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || wanted_; };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      wanted_ = false;
    }
    // PASSIVE: copies what no reader still needs and never makes the writer wait.
    int log = 0;
    int copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(own_.raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      STEWARD_LOG_WARNING("ledger checkpoint failed: {}", sqlite3_errstr(rc));
    }
    copied_.store(rc == SQLITE_OK && copied == log ? log : 0, std::memory_order_relaxed);
    absl::MutexLock lock(&mu_);
    ++counts_.background;
  }
}

void Checkpointer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

Checkpointer::Counts Checkpointer::counts() const {
  absl::MutexLock lock(&mu_);
  return counts_;
}

}  // namespace steward::station::ledger
