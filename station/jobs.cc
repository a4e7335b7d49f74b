#include "station/jobs.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/protocol.h"

namespace steward::station {

Fate FateOf(proto::State s) {
  switch (s) {
    case proto::STATE_SUCCEEDED:
      return Fate::kSucceeded;
    case proto::STATE_FAILED:
    case proto::STATE_REJECTED:
    case proto::STATE_LOST:
    case proto::STATE_BUSY:
    case proto::STATE_PREEMPTED:
      return Fate::kFailed;
    case proto::STATE_TIMED_OUT:
      return Fate::kTimedOut;
    case proto::STATE_EXPIRED:
      return Fate::kNotAnswered;
    case proto::STATE_CANCELED:
      return Fate::kCanceled;
    default:
      return Fate::kPending;
  }
}

void CountFate(Fate f, proto::JobCounts& c) {
  c.set_targets(c.targets() + 1);
  switch (f) {
    case Fate::kPending:
      c.set_pending(c.pending() + 1);
      break;
    case Fate::kSucceeded:
      c.set_succeeded(c.succeeded() + 1);
      break;
    case Fate::kFailed:
      c.set_failed(c.failed() + 1);
      break;
    case Fate::kTimedOut:
      c.set_timed_out(c.timed_out() + 1);
      break;
    case Fate::kNotAnswered:
      c.set_not_answered(c.not_answered() + 1);
      break;
    case Fate::kCanceled:
      c.set_canceled(c.canceled() + 1);
      break;
  }
}

std::vector<int> PlanBatches(const proto::RolloutSpec& spec, int total) {
  std::vector<int> sizes;
  int left = total;
  if (spec.canary() > 0 && left > 0) {
    sizes.push_back(std::min(spec.canary(), left));
    left -= sizes.back();
  }
  int size = spec.batch_size();
  if (size <= 0 && spec.batch_percent() > 0) {
    size = static_cast<int>(std::ceil(spec.batch_percent() * total / 100.0 - 1e-9));
  }
  if (size <= 0) size = left;  // no batch size: the rest in one batch
  size = std::max(size, 1);
  while (left > 0) {
    sizes.push_back(std::min(size, left));
    left -= sizes.back();
  }
  return sizes;
}

int Failures(const proto::RolloutSpec& spec, const proto::JobCounts& c) {
  return c.failed() + (spec.timed_out_fails() ? c.timed_out() : 0) + (spec.not_answered_fails() ? c.not_answered() : 0);
}

bool ShouldAbort(const proto::RolloutSpec& spec, int failures, int total) {
  if (failures <= 0) return false;
  if (spec.abort_after() > 0 && failures >= spec.abort_after()) return true;
  // failures / total >= P%, without rounding the threshold down.
  return spec.abort_percent() > 0 && failures * 100.0 >= spec.abort_percent() * total - 1e-9;
}

const proto::Job* JobTable::Find(const std::string& id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second.job;
}

void JobTable::HoldBack(const Entry& e, const proto::JobTarget& t) {
  Hold h{e.job.id()};
  if (e.job.has_rollout() && t.batch() >= e.job.progress().released()) {
    holds_[t.command_id()] = std::move(h);  // until its batch is released
    return;
  }
  if (t.release_unix_ms() > 0) {
    h.until = absl::FromUnixMillis(t.release_unix_ms());
    timed_.emplace(h.until, t.command_id());
    holds_[t.command_id()] = std::move(h);
  }
}

void JobTable::Follow(Entry& e, absl::Time now, const std::vector<proto::CommandState>* states) {
  absl::flat_hash_map<std::string, proto::State> state_of;
  if (states != nullptr) {
    for (const proto::CommandState& s : *states) state_of[s.id()] = s.state();
  }
  absl::flat_hash_set<std::string> not_answered(e.job.progress().not_answered().begin(),
                                                e.job.progress().not_answered().end());
  for (const proto::JobTarget& t : e.job.targets()) {
    e.given.insert(t.node());
    if (e.job.has_rollout()) {
      if (e.batches.size() <= static_cast<size_t>(t.batch())) e.batches.resize(static_cast<size_t>(t.batch()) + 1);
      e.batches[static_cast<size_t>(t.batch())].push_back(t.command_id());
    }
    auto s = state_of.find(t.command_id());
    const bool ended = s != state_of.end() && IsTerminal(s->second);
    if (e.job.has_rollout() && t.batch() < e.job.progress().released()) {
      if (not_answered.contains(t.command_id())) {
        e.counted[t.command_id()] = Fate::kNotAnswered;
      } else if (ended) {
        e.counted[t.command_id()] = FateOf(s->second);
      }
    }
    if (!ended && (e.job.has_rollout() || absl::FromUnixMillis(t.release_unix_ms()) > now)) HoldBack(e, t);
  }
}

void JobTable::Add(proto::Job job, absl::Time now) {
  if (!IsOpenJob(job.state())) return;
  const std::string id = job.id();
  Entry& e = jobs_[id];
  e = Entry{};
  e.job = std::move(job);
  e.writing = true;  // the launch itself
  Follow(e, now, nullptr);
}

void JobTable::Load(proto::Job job, const std::vector<proto::CommandState>& states, absl::Time now) {
  if (!IsOpenJob(job.state())) return;
  const std::string id = job.id();
  Entry& e = jobs_[id];
  e = Entry{};
  e.job = std::move(job);
  e.stored = true;
  Follow(e, now, &states);
}

std::vector<std::string> JobTable::Continuous() const {
  std::vector<std::string> out;
  for (const auto& [id, e] : jobs_) {
    if (e.job.continuous() && e.job.state() == proto::JOB_OPEN && e.stored && !e.writing && !e.rewrite) {
      out.push_back(id);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool JobTable::Gave(const std::string& id, const std::string& node) const {
  auto it = jobs_.find(id);
  return it != jobs_.end() && it->second.given.contains(node);
}

proto::Job JobTable::AddTargets(const std::string& id, std::vector<proto::JobTarget> targets) {
  Entry& e = jobs_.at(id);
  for (proto::JobTarget& t : targets) {
    e.given.insert(t.node());
    *e.job.add_targets() = std::move(t);
  }
  e.adding = static_cast<int>(targets.size());
  e.writing = true;
  return e.job;
}

void JobTable::Write(Entry& e, Work& work) {
  e.writing = true;
  e.rewrite = false;
  work.writes.push_back(e.job);
}

void JobTable::Release(const std::string& id, Work& work) {
  auto it = holds_.find(id);
  if (it == holds_.end()) return;
  work.release.push_back(id);
  Drop(id);
}

void JobTable::Drop(const std::string& id) {
  auto it = holds_.find(id);
  if (it == holds_.end()) return;
  if (it->second.until != absl::InfiniteFuture()) timed_.erase({it->second.until, id});
  holds_.erase(it);
}

void JobTable::Written(const std::string& id, bool ok, Work& work) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Entry& e = it->second;
  e.writing = false;
  if (!e.stored) {
    // The launch: its commands are in the table now, or were never stored.
    if (ok) {
      e.stored = true;
    } else {
      for (const proto::JobTarget& t : e.job.targets()) Drop(t.command_id());
      jobs_.erase(it);
      return;
    }
  } else if (e.adding > 0) {
    if (!ok) {
      // Taken back: the nodes are offered the command again at the next look.
      for (int i = 0; i < e.adding; ++i) {
        e.given.erase(e.job.targets(e.job.targets_size() - 1).node());
        e.job.mutable_targets()->RemoveLast();
      }
    }
    e.adding = 0;
  } else if (!ok) {
    e.rewrite = true;
    return;
  } else if (std::exchange(e.release_pending, false)) {
    const int batch = e.job.progress().released() - 1;
    for (const std::string& cid : e.batches[static_cast<size_t>(batch)]) Release(cid, work);
    work.log.push_back(absl::StrCat("rollout ", id, ": batch ", batch + 1, " of ", e.batches.size(), " released (",
                                    e.batches[static_cast<size_t>(batch)].size(), " nodes)"));
  }
  if (ok && !IsOpenJob(e.job.state())) jobs_.erase(it);
}

void JobTable::Counted(const std::string& job, const std::string& id, proto::State state) {
  auto it = jobs_.find(job);
  if (it == jobs_.end() || !IsTerminal(state)) return;
  it->second.looking_up.erase(id);
  it->second.counted.try_emplace(id, FateOf(state));
}

void JobTable::Stop(Entry& e, proto::JobState state, const std::string& reason, bool cancel, absl::Time now,
                    CommandTable& commands, Changes& changes, Work& work) {
  e.job.set_state(state);
  e.job.set_reason(reason);
  e.job.set_finished_unix_ms(absl::ToUnixMillis(now));
  e.release_pending = false;
  for (const proto::JobTarget& t : e.job.targets()) {
    const std::string& cid = t.command_id();
    Drop(cid);
    // Undelivered (held, or queued for a node that is away): never sent now. A command
    // in flight or running is left to end.
    if (cancel && commands.CanCancel(cid).ok()) {
      proto::Ack a = NewAck(cid, station_, proto::STAGE_RESULT, proto::OUTCOME_UNSPECIFIED);
      a.set_error(reason);
      a.set_finished_unix_ms(absl::ToUnixMillis(now));
      commands.Finish(cid, proto::STATE_CANCELED, std::move(a), now, changes);
    }
  }
  work.log.push_back(absl::StrCat("job ", e.job.id(), " ", JobStateName(state), reason.empty() ? "" : ": ", reason));
  Write(e, work);
}

void JobTable::RolloutTick(Entry& e, absl::Time now, CommandTable& commands, Changes& changes, Work& work) {
  proto::Job& job = e.job;
  const proto::RolloutSpec& spec = job.rollout();
  proto::RolloutProgress& p = *job.mutable_progress();
  const int released = p.released();
  const int total = job.targets_size();
  // Count what ended in the released batches (durably: its final state is stored).
  bool complete = true;
  std::vector<std::string> open;
  for (int b = 0; b < released; ++b) {
    for (const std::string& id : e.batches[static_cast<size_t>(b)]) {
      if (e.counted.contains(id)) continue;
      const proto::CommandState* s = commands.Find(id);
      if (s == nullptr) {
        if (e.looking_up.insert(id).second) work.lookups.emplace_back(job.id(), id);
      } else if (IsTerminal(s->state()) && commands.Durable(id)) {
        e.counted[id] = FateOf(s->state());
        continue;
      }
      complete = false;
      open.push_back(id);
    }
  }
  // Past the batch timeout, what has not ended is not answered; what was not delivered
  // is canceled (it would run out of turn later).
  bool changed = false;
  const int64_t started_ms =
      released > 0 && p.batch_released_unix_ms_size() >= released ? p.batch_released_unix_ms(released - 1) : 0;
  if (!complete && spec.batch_timeout_ms() > 0 && job.state() == proto::JOB_RUNNING &&
      now >= absl::FromUnixMillis(started_ms + spec.batch_timeout_ms())) {
    const std::string why =
        absl::StrCat("rollout: no result within ", absl::FormatDuration(absl::Milliseconds(spec.batch_timeout_ms())),
                     " of the batch's release");
    for (const std::string& id : open) {
      e.counted[id] = Fate::kNotAnswered;
      e.looking_up.erase(id);
      p.add_not_answered(id);
      if (commands.CanCancel(id).ok()) {
        proto::Ack a = NewAck(id, station_, proto::STAGE_RESULT, proto::OUTCOME_UNSPECIFIED);
        a.set_error(why);
        a.set_finished_unix_ms(absl::ToUnixMillis(now));
        commands.Finish(id, proto::STATE_CANCELED, std::move(a), now, changes);
      }
    }
    complete = true;
    changed = true;
  }
  proto::JobCounts counts;
  for (const auto& [id, fate] : e.counted) CountFate(fate, counts);
  const int failures = Failures(spec, counts);
  if (ShouldAbort(spec, failures, total)) {
    return Stop(e, proto::JOB_ABORTED, absl::StrCat("rollout aborted: ", failures, " of ", total, " failed"),
                /*cancel=*/true, now, commands, changes, work);
  }
  if (!complete) {
    if (changed) Write(e, work);
    return;
  }
  if (released >= static_cast<int>(e.batches.size())) {
    return Stop(e, proto::JOB_DONE, "", /*cancel=*/false, now, commands, changes, work);
  }
  if (job.state() == proto::JOB_RUNNING && spec.batch_wait_ms() > 0) {
    job.set_state(proto::JOB_WAITING);
    p.set_next_release_unix_ms(absl::ToUnixMillis(now) + spec.batch_wait_ms());
    return Write(e, work);
  }
  if (job.state() == proto::JOB_WAITING && now < absl::FromUnixMillis(p.next_release_unix_ms())) {
    if (changed) Write(e, work);
    return;
  }
  // Release the next batch: written first, sent once the write committed.
  job.set_state(proto::JOB_RUNNING);
  p.set_released(released + 1);
  p.add_batch_released_unix_ms(absl::ToUnixMillis(now));
  p.set_next_release_unix_ms(0);
  e.release_pending = true;
  Write(e, work);
}

void JobTable::Tick(absl::Time now, CommandTable& commands, Changes& changes, Work& work) {
  // Held commands whose time came go out (a splayed run's; nothing to write).
  while (!timed_.empty() && timed_.begin()->first <= now) {
    const std::string id = timed_.begin()->second;
    timed_.erase(timed_.begin());
    if (auto h = holds_.find(id); h != holds_.end()) {
      work.release.push_back(id);
      holds_.erase(h);
    }
  }
  std::vector<std::string> ids;
  for (const auto& [id, e] : jobs_) {
    if (e.stored && !e.writing) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());  // in order of creation
  for (const std::string& id : ids) {
    Entry& e = jobs_.at(id);
    if (e.rewrite) {
      Write(e, work);
      continue;
    }
    if (e.job.has_rollout()) {
      if (e.job.state() == proto::JOB_RUNNING || e.job.state() == proto::JOB_WAITING) {
        RolloutTick(e, now, commands, changes, work);
      }
      continue;
    }
    if (e.job.continuous()) {
      if (e.job.expires_unix_ms() > 0 && now >= absl::FromUnixMillis(e.job.expires_unix_ms())) {
        Stop(e, proto::JOB_EXPIRED, "expired", /*cancel=*/false, now, commands, changes, work);
      }
      continue;
    }
    // A splayed run is done once it released everything.
    bool holding = false;
    for (const proto::JobTarget& t : e.job.targets()) holding = holding || holds_.contains(t.command_id());
    if (!holding) Stop(e, proto::JOB_DONE, "", /*cancel=*/false, now, commands, changes, work);
  }
}

absl::Status JobTable::Close(const std::string& id, const std::string& by, absl::Time now, CommandTable& commands,
                             Changes& changes, Work& work) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job ", id, " is not open"));
  Entry& e = it->second;
  if (!e.stored || e.writing) {
    return absl::UnavailableError(absl::StrCat("job ", id, " is being written; try again"));
  }
  const bool continuous = e.job.continuous();
  Stop(e, proto::JOB_CLOSED,
       absl::StrCat(continuous            ? "closed by "
                    : e.job.has_rollout() ? "rollout stopped by "
                                          : "stopped by ",
                    by),
       /*cancel=*/!continuous, now, commands, changes, work);
  return absl::OkStatus();
}

}  // namespace steward::station
