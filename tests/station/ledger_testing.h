// Helpers of the ledger's tests: a write that waits for its commit, a count, a command
// record to write, a held writer and a write that fails part-way.
#pragma once

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/sqlite.h"
#include "station/ledger/store.h"

namespace steward::station::ledger::testing {

// Runs `op` in the writer's next transaction and waits for its commit.
inline absl::Status WriteAndWait(Store& store, Store::Op op) {
  absl::Notification done;
  absl::Status result;
  store.Write(std::move(op), [&](absl::Status st) {
    result = st;
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

// The first column of the first row of `sql` (a count), or the error.
inline absl::StatusOr<int64_t> QueryInt(Store& store, const std::string& sql) {
  int64_t n = -1;
  absl::Status st = store.Read([&](sqlite::Database& db) -> absl::Status {
    auto stmt = db.Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    auto row = stmt->Step();
    if (!row.ok()) return row.status();
    n = stmt->ColumnInt(0);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return n;
}

// An empty directory <tmp>/steward-NAME-PID.
inline std::filesystem::path FreshDir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("steward-", name, "-", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// `id` with an envelope of `method` ("put /tmp/x", `payload`), signed "sig-1" for
// installation "inst-1", in `state`.
inline proto::CommandState CommandRecord(const std::string& id, const std::string& method,
                                         const std::string& payload, proto::State state) {
  proto::CommandState c;
  c.set_id(id);
  c.set_node("ship1");
  c.set_request_id(id);
  c.set_state(state);
  c.set_created_unix_ms(1000);
  c.set_updated_unix_ms(1000);
  proto::Envelope& e = *c.mutable_command();
  e.set_id(id);
  e.set_method(method);
  e.add_argv("put");
  e.add_argv("/tmp/x");
  e.set_payload(payload);
  e.set_target_instance("inst-1");
  e.set_signature("sig-1");
  return c;
}

// Holds the writer in a write of its own until the returned notification: the writes
// queued meanwhile make one group (one transaction) after it.
inline std::shared_ptr<absl::Notification> HoldWriter(Store& store) {
  auto release = std::make_shared<absl::Notification>();
  absl::Notification holding;
  store.Write([release, &holding](sqlite::Database&) {
    holding.Notify();  // its last use of `holding`, which the caller waits for
    release->WaitForNotification();
    return absl::OkStatus();
  });
  holding.WaitForNotification();
  return release;
}

// A write that fails part-way: it stores setting `key`, then fails (Internal) with the
// transaction still open.
inline Store::Op FailsPartWay(std::string key) {
  return [key = std::move(key)](sqlite::Database& db) -> absl::Status {
    if (absl::Status st = Store::PutSetting(key, "half")(db); !st.ok()) return st;
    return absl::InternalError(absl::StrCat(key, ": its second statement failed"));
  };
}

// The completions of `n` writes, each kept by its index (At(i) is the i-th's Done).
class Completions {
 public:
  explicit Completions(int n) : done_(static_cast<size_t>(n)), left_(n) {}
  Store::Done At(int i) {
    return [this, i](absl::Status st) {
      absl::MutexLock lock(&mu_);
      done_[static_cast<size_t>(i)] = std::move(st);
      if (--left_ == 0) all_.Notify();
    };
  }
  // Whether every one ran in time.
  bool Wait() { return all_.WaitForNotificationWithTimeout(absl::Seconds(10)); }
  std::vector<absl::Status> statuses() {
    absl::MutexLock lock(&mu_);
    return done_;
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::Status> done_;
  int left_;
  absl::Notification all_;
};

// The keys of the ledger's settings, sorted (Settings must work).
inline std::vector<std::string> SettingKeys(Store& store) {
  auto settings = store.Settings();
  REQUIRE(settings.ok());
  std::vector<std::string> keys;
  for (const auto& [key, value] : *settings) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  return keys;
}

// QueryInt that must work; PutCommand that must commit.
inline int64_t Int(Store& store, const std::string& sql) {
  absl::StatusOr<int64_t> n = QueryInt(store, sql);
  REQUIRE(n.ok());
  return *n;
}
inline void Put(Store& store, const proto::CommandState& c) { REQUIRE(WriteAndWait(store, store.PutCommand(c)).ok()); }

}  // namespace steward::station::ledger::testing
