#include "station/job_runner.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "station/approvals.h"
#include "station/ledger/targeting_store.h"
#include "station/operations.h"
#include "station/rpc.h"

namespace steward::station {
namespace {

constexpr absl::Duration kTick = absl::Milliseconds(100);
// Continuous jobs look for nodes that match now this often (and at once on a tag change).
constexpr absl::Duration kOfferEvery = absl::Seconds(1);

}  // namespace

absl::Status JobRunner::Load() {
  ledger::Store& store = core_.store();
  STEWARD_ASSIGN_OR_RETURN(auto tags, ledger::Tags(store));
  STEWARD_ASSIGN_OR_RETURN(std::vector<proto::Job> jobs, ledger::OpenJobs(store));
  std::vector<std::vector<proto::CommandState>> states;
  for (const proto::Job& j : jobs) {
    STEWARD_ASSIGN_OR_RETURN(std::vector<proto::CommandState> s, store.ByRequest(j.id()));
    states.push_back(std::move(s));
  }
  STEWARD_ASSIGN_OR_RETURN(std::vector<proto::Schedule> schedules, ledger::Schedules(store));
  const absl::Time now = absl::Now();
  std::vector<proto::Schedule> changed;
  std::vector<std::string> problems;
  {
    absl::MutexLock lock(&core_.model.mu);
    core_.model.tags.Load(tags);
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (jobs[i].has_runbook()) {
        core_.model.runbooks.Load(std::move(jobs[i]), states[i], core_.model.commands);
      } else {
        core_.model.jobs.Load(std::move(jobs[i]), states[i], now);
      }
    }
    owed_ = core_.model.schedules.Load(std::move(schedules), now, &changed, &problems);
    tags_seen_ = core_.model.tags.version();
  }
  for (const std::string& p : problems) {
    STEWARD_LOG_ERROR("{} (it makes no runs: remove it and add it again)", p);
  }
  for (proto::Schedule& s : changed) {
    STEWARD_LOG_INFO("schedule {}: runs missed while the station was down: {}", s.name(),
                     s.missed() == proto::MISSED_RUN_ONCE ? "one run now stands for them" : "skipped");
    store.Write(ledger::PutSchedule(std::move(s)));
  }
  if (!jobs.empty()) STEWARD_LOG_INFO("ledger: {} open jobs", jobs.size());
  return absl::OkStatus();
}

void JobRunner::Run(const absl::Notification& stop) {
  while (!stop.HasBeenNotified()) {
    const absl::Time now = absl::Now();
    Tick(now);
    TickRunbooks(now);
    bool tags_changed = false;
    {
      absl::MutexLock lock(&core_.model.mu);
      tags_changed = core_.model.tags.version() != tags_seen_;
      tags_seen_ = core_.model.tags.version();
    }
    if (tags_changed || now >= next_offer_) {
      OfferContinuous(now);
      next_offer_ = now + kOfferEvery;
    }
    RunSchedules(now);
    stop.WaitForNotificationWithTimeout(kTick);
  }
}

void JobRunner::ReleaseLocked(const JobTable::Work& work, absl::Time now) {
  for (const std::string& id : work.release) core_.model.commands.Release(id, now);
  if (core_.model.commands.TakeSooner()) core_.model.wake = true;
}

void JobRunner::Finish(JobTable::Work work) {
  for (const std::string& line : work.log) STEWARD_LOG_INFO("{}", line);
  for (proto::Job& job : work.writes) {
    const std::string id = job.id();
    core_.store().Write(ledger::PutJob(std::move(job)), [this, id](absl::Status st) {
      if (!st.ok()) STEWARD_LOG_ERROR("ledger write of job {}: {}", id, st.ToString());
      Written(id, st.ok());
    });
  }
  for (const auto& [job, id] : work.lookups) {
    absl::StatusOr<std::optional<proto::CommandState>> s = core_.store().GetCommand(id);
    if (!s.ok() || !s->has_value()) continue;
    absl::MutexLock lock(&core_.model.mu);
    core_.model.jobs.Counted(job, id, (*s)->state());
  }
}

void JobRunner::Written(const std::string& id, bool ok) {
  JobTable::Work work;
  {
    absl::MutexLock lock(&core_.model.mu);
    core_.model.jobs.Written(id, ok, work);
    ReleaseLocked(work, absl::Now());
    if (core_.model.jobs.Find(id) == nullptr) {
      compiled_.erase(id);
      refused_targets_.erase(id);  // (a closed job is said no more)
    }
  }
  Finish(std::move(work));
}

void JobRunner::Tick(absl::Time now) {
  JobTable::Work work;
  {
    absl::MutexLock lock(&core_.model.mu);
    Changes changes;
    core_.model.jobs.Tick(now, core_.model.commands, changes, work);
    core_.ApplyLocked(changes);  // cancellations are queued before the job records
    ReleaseLocked(work, now);
  }
  Finish(std::move(work));
}

void JobRunner::TickRunbooks(absl::Time now) {
  RunbookTable::Work work;
  {
    absl::MutexLock lock(&core_.model.mu);
    if (core_.model.runbooks.empty()) return;
    core_.model.runbooks.Tick(now, core_.model.commands, work);
    if (core_.model.commands.TakeSooner()) core_.model.wake = true;  // a slot that came free
  }
  FinishRunbooks(std::move(work));
}

void JobRunner::FinishRunbooks(RunbookTable::Work work) {
  for (const std::string& line : work.log) STEWARD_LOG_INFO("{}", line);
  const absl::Time now = absl::Now();
  for (RunbookTable::Make& m : work.make) {
    absl::StatusOr<proto::CommandState> s = core_.NewCommand(m.node, m.command, m.job, m.op);
    if (s.ok()) {
      *s->mutable_control() = m.control;
      *s->mutable_runbook() = m.ref;
      absl::MutexLock lock(&core_.model.mu);
      // An approval rule holds a step like any command; its submitter is who launched the
      // runbook (four eyes: not the approver).
      ApplyControlRulesLocked(core_.model, *s, now, IdentityOfRecorded(m.op, Keyed()));
    }
    if (!s.ok()) {
      STEWARD_LOG_ERROR("runbook job {} on {}: {}", m.job, m.node, s.status().message());
      absl::MutexLock lock(&core_.model.mu);
      Changes changes;
      core_.model.runbooks.Made(m.job, m.node, "", m.ref, false, now, core_.model.commands, changes);
      continue;
    }
    const std::string id = s->id();
    std::vector<proto::CommandState> one;
    one.push_back(*std::move(s));
    core_.Submit(std::move(one), [this, m, id](absl::Status st) {
      if (!st.ok()) STEWARD_LOG_ERROR("runbook job {} on {}: storing its next command: {}", m.job, m.node, st.ToString());
      absl::MutexLock lock(&core_.model.mu);
      Changes changes;
      core_.model.runbooks.Made(m.job, m.node, id, m.ref, st.ok(), absl::Now(), core_.model.commands, changes);
      core_.ApplyLocked(changes);
    });
  }
  for (proto::Job& job : work.progress) {
    const std::string id = job.id();
    core_.store().Write(ledger::PutJob(std::move(job)), [id](absl::Status st) {
      if (!st.ok()) STEWARD_LOG_ERROR("ledger write of runbook job {}: {}", id, st.ToString());
    });
  }
  for (proto::Job& job : work.writes) {
    const std::string id = job.id();
    core_.store().Write(ledger::PutJob(std::move(job)), [this, id](absl::Status st) {
      if (!st.ok()) STEWARD_LOG_ERROR("ledger write of runbook job {}: {}", id, st.ToString());
      absl::MutexLock lock(&core_.model.mu);
      core_.model.runbooks.Written(id, st.ok());
    });
  }
}

const Target* JobRunner::TargetOf(const proto::Job& job) {
  auto it = compiled_.find(job.id());
  if (it == compiled_.end()) {
    // (A continuous job stored before targets were checked at launch may have none, or
    // --all with names: it gives no node a command, and says so once.)
    absl::StatusOr<Target> t = CompileChosenTarget(job.target());
    if (absl::Status st = CheckNotStationOnly(job.command().method()); t.ok() && !st.ok()) t = st;
    if (!t.ok()) {
      if (refused_targets_.insert(job.id()).second) {
        STEWARD_LOG_ERROR("job {}: {}: it gives no new node a command (close it and launch it again)", job.id(),
                          t.status().message());
      }
      return nullptr;
    }
    it = compiled_.emplace(job.id(), *std::move(t)).first;
  }
  return &it->second;
}

void JobRunner::Launch(LaunchSpec spec, std::function<void(absl::StatusOr<proto::LaunchReply>)> done,
                       std::vector<ledger::Store::Op> also) {
  const absl::Time now = absl::Now();
  const int64_t now_ms = absl::ToUnixMillis(now);
  std::vector<std::pair<std::string, bool>> nodes;  // (name, online)
  {
    absl::MutexLock lock(&core_.model.mu);
    for (std::string& name : ResolveLocked(core_.model, spec.target)) {
      const NodeTable::Node* n = core_.model.nodes.Find(name);
      nodes.emplace_back(std::move(name), n != nullptr && n->info.status() == proto::NODE_ONLINE);
    }
  }
  if (nodes.empty() && !spec.allow_empty) {
    return done(absl::FailedPreconditionError(
        absl::StrCat("no node matches ", Describe(spec.target.spec),
                     " (stewardctl targets shows who matches); nothing sent (--allow-empty records the job anyway)")));
  }
  if (spec.rollout.has_value()) {
    // The first batches go to nodes that can answer now: a canary on a unit that is
    // away would hold the whole rollout back.
    std::stable_sort(nodes.begin(), nodes.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  }
  proto::Job job;
  job.set_id(spec.id.empty() ? NewId() : spec.id);
  job.set_operator_(spec.op);
  job.set_created_unix_ms(now_ms);
  *job.mutable_target() = spec.target.spec;
  *job.mutable_command() = spec.command;
  job.mutable_command()->clear_expires_unix_ms();
  *job.mutable_control() = spec.control;
  job.set_command_ttl_ms(spec.command_ttl_ms);
  job.set_continuous(spec.continuous);
  job.set_expires_unix_ms(spec.expires_unix_ms);
  job.set_schedule(spec.schedule);
  if (!spec.schedule.empty()) job.set_scheduled_unix_ms(absl::ToUnixMillis(spec.scheduled));
  job.set_catch_up(spec.catch_up);
  job.set_splay_ms(absl::ToInt64Milliseconds(spec.splay));
  if (spec.runbook.has_value()) {
    // Its commands are made one by one as the runs go (RunbookTable): the record first.
    *job.mutable_runbook() = *spec.runbook;
    job.clear_command();
    job.set_state(nodes.empty() ? proto::JOB_DONE : proto::JOB_RUNNING);
    if (nodes.empty()) {
      job.set_reason(absl::StrCat("no node matched ", Describe(spec.target.spec)));
      job.set_finished_unix_ms(now_ms);
    }
    for (const auto& [node, online] : nodes) {
      proto::JobTarget* t = job.add_targets();
      t->set_node(node);
      t->set_added_unix_ms(now_ms);
    }
    proto::LaunchReply reply;
    reply.mutable_submitted()->set_request_id(job.id());
    *reply.mutable_job() = job;
    also.push_back(ledger::PutJob(job));
    core_.Submit(
        {},
        [this, job = std::move(job), reply = std::move(reply), done = std::move(done)](absl::Status st) mutable {
          if (!st.ok()) return done(absl::UnavailableError(absl::StrCat("ledger write failed: ", st.message())));
          {
            absl::MutexLock lock(&core_.model.mu);
            if (IsOpenJob(job.state())) core_.model.runbooks.Add(job);
            if (const proto::Job* j = core_.model.runbooks.Find(reply.job().id())) *reply.mutable_job() = *j;
          }
          done(reply);
        },
        std::move(also));
    return;
  }
  std::vector<int> batch_of(nodes.size(), 0);
  if (spec.rollout.has_value()) {
    *job.mutable_rollout() = *spec.rollout;
    size_t i = 0;
    const std::vector<int> sizes = PlanBatches(*spec.rollout, static_cast<int>(nodes.size()));
    for (size_t b = 0; b < sizes.size(); ++b) {
      for (int k = 0; k < sizes[b]; ++k) batch_of[i++] = static_cast<int>(b);
    }
    job.mutable_progress()->set_released(1);
    job.mutable_progress()->add_batch_released_unix_ms(now_ms);
    job.set_state(nodes.empty() ? proto::JOB_DONE : proto::JOB_RUNNING);
  } else if (spec.continuous) {
    job.set_state(proto::JOB_OPEN);
  } else {
    job.set_state(spec.splay > absl::ZeroDuration() && !nodes.empty() ? proto::JOB_RUNNING : proto::JOB_DONE);
  }
  if (nodes.empty()) job.set_reason(absl::StrCat("no node matched ", Describe(spec.target.spec)));
  if (!IsOpenJob(job.state())) job.set_finished_unix_ms(now_ms);

  proto::Envelope tmpl = spec.command;
  tmpl.set_expires_unix_ms(spec.command_ttl_ms > 0 ? now_ms + spec.command_ttl_ms : 0);
  std::mt19937_64 rng{std::random_device{}()};
  const int64_t splay_ms = absl::ToInt64Milliseconds(spec.splay);
  proto::LaunchReply reply;
  reply.mutable_submitted()->set_request_id(job.id());
  std::vector<proto::CommandState> states;
  for (size_t i = 0; i < nodes.size(); ++i) {
    absl::StatusOr<proto::CommandState> s = core_.NewCommand(nodes[i].first, tmpl, job.id(), spec.op);
    if (!s.ok()) return done(s.status());
    *s->mutable_control() = spec.control;
    {
      absl::MutexLock lock(&core_.model.mu);
      // An approval rule holds each node's command.
      ApplyControlRulesLocked(core_.model, *s, now, spec.identity.empty() ? spec.op : spec.identity);
    }
    proto::JobTarget* t = job.add_targets();
    t->set_node(nodes[i].first);
    t->set_command_id(s->id());
    t->set_batch(batch_of[i]);
    t->set_added_unix_ms(now_ms);
    if (splay_ms > 0) t->set_release_unix_ms(now_ms + static_cast<int64_t>(rng() % static_cast<uint64_t>(splay_ms)));
    proto::CommandRef* ref = reply.mutable_submitted()->add_commands();
    ref->set_node(nodes[i].first);
    ref->set_id(s->id());
    states.push_back(*std::move(s));
  }
  *reply.mutable_job() = job;
  {
    // Held before its commands reach the command table (when the commit lands).
    absl::MutexLock lock(&core_.model.mu);
    core_.model.jobs.Add(job, now);
  }
  also.push_back(ledger::PutJob(job));
  const std::string id = job.id();
  core_.Submit(
      std::move(states),
      [this, id, reply = std::move(reply), done = std::move(done)](absl::Status st) {
        Written(id, st.ok());
        if (!st.ok()) return done(absl::UnavailableError(absl::StrCat("ledger write failed: ", st.message())));
        done(reply);
      },
      std::move(also));
}

void JobRunner::Close(const std::string& id, const Call& call, std::function<void(absl::Status)> done) {
  const std::string op = call.op();
  JobTable::Work work;
  RunbookTable::Work runbook_work;
  absl::Status st;
  {
    absl::MutexLock lock(&core_.model.mu);
    Changes changes;
    if (core_.model.runbooks.Find(id) != nullptr) {
      st = core_.model.runbooks.Close(id, op, absl::Now(), core_.model.commands, changes, runbook_work);
    } else {
      st = core_.model.jobs.Close(id, op, absl::Now(), core_.model.commands, changes, work);
    }
    core_.ApplyLocked(changes);
    ReleaseLocked(work, absl::Now());
    if (core_.model.commands.TakeSooner()) core_.model.wake = true;
  }
  if (!st.ok() && absl::IsNotFound(st)) {
    absl::StatusOr<std::optional<proto::Job>> job = ledger::GetJob(core_.store(), id);
    if (!job.ok()) return done(job.status());
    if (!job->has_value()) return done(absl::NotFoundError(absl::StrCat("unknown job ", id)));
    const proto::Job& j = **job;
    return done(absl::FailedPreconditionError(
        absl::StrCat("job ", id, " is ", JobStateName(j.state()), j.reason().empty() ? "" : ": ", j.reason())));
  }
  if (!st.ok()) return done(st);
  RecordAction(core_, call, "job close", id, "", "ok");
  Finish(std::move(work));
  FinishRunbooks(std::move(runbook_work));
  // Answered once the cancellations and the job's record are stored (writes land in order).
  core_.AfterWrites([done = std::move(done)](absl::Status w) { done(w); });
}

void JobRunner::OfferContinuous(absl::Time now) {
  struct Offer {
    proto::Job job;  // a copy: the template, the ttl, the operator
    std::vector<std::string> nodes;
  };
  std::vector<Offer> offers;
  {
    absl::MutexLock lock(&core_.model.mu);
    for (const std::string& id : core_.model.jobs.Continuous()) {
      const proto::Job* job = core_.model.jobs.Find(id);
      const Target* target = TargetOf(*job);
      if (target == nullptr) continue;
      Offer offer;
      for (const std::string& name : core_.model.nodes.Names(/*heard_only=*/true)) {
        if (!core_.model.jobs.Gave(id, name) && PicksLocked(core_.model, *target, name)) offer.nodes.push_back(name);
      }
      if (offer.nodes.empty()) continue;
      offer.job = *job;
      offer.job.clear_targets();
      offers.push_back(std::move(offer));
    }
  }
  const int64_t now_ms = absl::ToUnixMillis(now);
  for (Offer& offer : offers) {
    const proto::Job& job = offer.job;
    proto::Envelope tmpl = job.command();
    tmpl.set_expires_unix_ms(job.command_ttl_ms() > 0 ? now_ms + job.command_ttl_ms() : 0);
    std::vector<proto::CommandState> states;
    std::vector<proto::JobTarget> targets;
    for (const std::string& node : offer.nodes) {
      absl::StatusOr<proto::CommandState> s = core_.NewCommand(node, tmpl, job.id(), job.operator_());
      if (!s.ok()) {
        STEWARD_LOG_ERROR("job {}: {}", job.id(), s.status().message());
        break;
      }
      *s->mutable_control() = job.control();
      {
        absl::MutexLock lock(&core_.model.mu);
        ApplyControlRulesLocked(core_.model, *s, now, IdentityOfRecorded(job.operator_(), Keyed()));
      }
      proto::JobTarget t;
      t.set_node(node);
      t.set_command_id(s->id());
      t.set_added_unix_ms(now_ms);
      targets.push_back(std::move(t));
      states.push_back(*std::move(s));
    }
    if (states.empty()) continue;
    proto::Job record;
    {
      absl::MutexLock lock(&core_.model.mu);
      // Closed (or given meanwhile): nothing to add.
      const std::vector<std::string> open = core_.model.jobs.Continuous();
      if (std::find(open.begin(), open.end(), job.id()) == open.end()) continue;
      record = core_.model.jobs.AddTargets(job.id(), std::move(targets));
    }
    STEWARD_LOG_INFO("job {}: {} more nodes match: {}{}", job.id(), offer.nodes.size(), offer.nodes.front(),
                     offer.nodes.size() > 1 ? ", ..." : "");
    core_.Submit(std::move(states), [this, id = job.id()](absl::Status st) { Written(id, st.ok()); },
                 {ledger::PutJob(std::move(record))});
  }
}

void JobRunner::RunSchedules(absl::Time now) {
  std::vector<ScheduleTable::Run> runs;
  std::vector<proto::Schedule> records;
  {
    absl::MutexLock lock(&core_.model.mu);
    runs = std::move(owed_);
    owed_.clear();
    for (ScheduleTable::Run& r : core_.model.schedules.Due(now)) runs.push_back(std::move(r));
    for (const ScheduleTable::Run& r : runs) {
      const ScheduleTable::Entry* e = core_.model.schedules.Find(r.name);
      records.push_back(e != nullptr ? e->s : proto::Schedule());
    }
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    const ScheduleTable::Run& run = runs[i];
    const proto::Schedule& s = records[i];
    absl::StatusOr<Target> target = CompileChosenTarget(s.target());
    if (s.name().empty() || !target.ok()) {
      if (!target.ok()) STEWARD_LOG_ERROR("schedule {}: {}", run.name, target.status().message());
      absl::MutexLock lock(&core_.model.mu);
      core_.model.schedules.Ran(run.name, run.at, "", /*ok=*/true, now);  // nothing to run; on to the next
      continue;
    }
    LaunchSpec spec;
    spec.target = *std::move(target);
    spec.command = s.command();
    spec.command_ttl_ms = s.command_ttl_ms();
    spec.allow_empty = true;  // an empty run is recorded, with why
    spec.op = absl::StrCat("schedule ", s.name(), " (", s.operator_(), ")");
    spec.identity = IdentityOfRecorded(s.operator_(), Keyed());  // who added it (four eyes)
    spec.schedule = s.name();
    spec.scheduled = run.at;
    spec.catch_up = run.catch_up;
    spec.splay = absl::Milliseconds(s.splay_ms());
    spec.id = NewId();
    const int64_t at_ms = absl::ToUnixMillis(run.at);
    std::vector<ledger::Store::Op> also = {ledger::ScheduleRan(s.name(), at_ms, spec.id)};
    Launch(
        std::move(spec),
        [this, run](absl::StatusOr<proto::LaunchReply> reply) {
          const bool ok = reply.ok();
          if (!ok)
            STEWARD_LOG_ERROR("schedule {}: run at {}: {}", run.name,
                              absl::FormatTime(absl::RFC3339_sec, run.at, absl::UTCTimeZone()),
                              reply.status().message());
          absl::MutexLock lock(&core_.model.mu);
          core_.model.schedules.Ran(run.name, run.at, ok ? reply->job().id() : "", ok, absl::Now());
        },
        std::move(also));
  }
}

}  // namespace steward::station
