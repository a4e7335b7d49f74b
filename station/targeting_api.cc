#include "station/targeting_api.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/ids.h"
#include "common/protocol.h"
#include "common/status_macros.h"
#include "common/runbook.h"
#include "station/command_api.h"
#include "station/ledger/surfaces.h"
#include "station/ledger/targeting_store.h"
#include "station/operations.h"
#include "station/queries.h"
#include "station/targeting.h"
#include "subjects/subject.h"

namespace steward::station {
namespace {

constexpr int kHistoryLimit = 50;
constexpr int kRunsShown = 10;
// Left for the envelope and the rest of a reply when rows are fitted to a message.
constexpr size_t kReplyMargin = 4096;

// A command template an operator sent: a valid subject, and no station-only method.
absl::Status CheckTemplate(const proto::Envelope& tmpl) {
  STEWARD_RETURN_IF_ERROR(CheckNotStationOnly(tmpl.method()));
  for (const std::string* token : {&tmpl.method(), &tmpl.domain()}) {
    if (absl::Status st = subjects::ValidateToken(*token); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status CheckRollout(const proto::RolloutSpec& r) {
  if (r.batch_size() < 0 || r.canary() < 0 || r.abort_after() < 0) {
    return absl::InvalidArgumentError("--batch, --canary and --abort-after take numbers of nodes, 0 or more");
  }
  if (r.batch_percent() < 0 || r.batch_percent() > 100 || r.abort_percent() < 0 || r.abort_percent() > 100) {
    return absl::InvalidArgumentError("--batch and --abort-on take a share of the targets from 0% to 100%");
  }
  if (r.batch_wait_ms() < 0 || r.batch_timeout_ms() < 0) {
    return absl::InvalidArgumentError("--batch-wait and --batch-timeout take a duration, 0 or more");
  }
  return absl::OkStatus();
}

std::string TagText(const TagTable::Change& c) {
  if (c.removed) return absl::StrCat(c.key, " removed (was ", c.before, ")");
  return absl::StrCat(c.key, "=", c.after, c.before.empty() ? "" : absl::StrCat(" (was ", c.before, ")"));
}

}  // namespace

TargetingApi::TargetingApi(Core& core, Rpc& rpc, JobRunner& runner)
    : core_(core), rpc_(rpc), runner_(runner), repeats_(core) {
  rpc.Handle<proto::TargetsRequest>(kStationTargets,
                                    [this](const Call& c, proto::TargetsRequest r) { Targets(c, std::move(r)); });
  rpc.Handle<proto::TagRequest>(kStationTag, [this](const Call& c, proto::TagRequest r) { Tag(c, std::move(r)); });
  rpc.Handle<proto::LaunchRequest>(kStationLaunch, [this](const Call& c, proto::LaunchRequest r) {
    absl::StatusOr<Repeats::Begun> b = repeats_.Begin(c, Repeats::Digest(r));
    if (!b.ok()) return rpc_.Error(c, absl::StrCat("ledger read failed: ", b.status().message()));
    if (b->what == Repeats::Begun::kJoined) return;
    if (b->what == Repeats::Begun::kOther) return rpc_.Reject(c, b->why);
    if (b->what == Repeats::Begun::kNew) return Launch(b->first, std::move(r));
    AnswerLaunched(b->first, b->request_id);
  });
  rpc.Handle<proto::JobRequest>(kStationJob, [this](const Call& c, proto::JobRequest r) { Job(c, std::move(r)); });
  rpc.Handle<proto::CloseRequest>(kStationClose,
                                  [this](const Call& c, proto::CloseRequest r) { Close(c, std::move(r)); });
  rpc.Handle<proto::ScheduleRequest>(kStationSchedule,
                                     [this](const Call& c, proto::ScheduleRequest r) { Schedule(c, std::move(r)); });
}

void TargetingApi::Targets(const Call& call, proto::TargetsRequest req) {
  absl::StatusOr<Target> target = CompileTarget(req.target());
  if (!target.ok()) return rpc_.Fail(call, target.status());
  proto::TargetsReply out;
  {
    absl::MutexLock lock(&core_.model.mu);
    for (const std::string& name : ResolveLocked(core_.model, *target)) {
      proto::TargetRow* row = out.add_nodes();
      *row = RowLocked(core_.model, name);
      out.set_online(out.online() + (row->online() ? 1 : 0));
    }
  }
  out.set_matched(out.nodes_size());
  const size_t limit = core_.ReplyLimit() - std::min(core_.ReplyLimit(), kReplyMargin);
  while (out.nodes_size() > 0 && out.ByteSizeLong() > limit) {
    out.mutable_nodes()->RemoveLast();
    out.set_incomplete(true);
  }
  rpc_.Ok(call, out);
}

void TargetingApi::Tag(const Call& call, proto::TagRequest req) {
  const bool change = !req.set().empty() || !req.unset().empty();
  const proto::TargetSpec& spec = req.target();
  if (change && spec.selectors().empty() && !spec.all_nodes() && spec.where().empty()) {
    return rpc_.Reject(call, "name the nodes to tag (names, globs, @groups, --where, or --all)");
  }
  if (absl::Status st = CheckChosenTarget(spec); change && !st.ok()) return rpc_.Fail(call, st);
  for (const auto& [key, value] : req.set()) {
    absl::Status st = targets::ValidateKey(key);
    if (st.ok()) st = targets::ValidateValue(value);
    if (!st.ok()) return rpc_.Reject(call, absl::StrCat("tag ", key, ": ", st.message()));
  }
  for (const std::string& key : req.unset()) {
    if (absl::Status st = targets::ValidateKey(key); !st.ok()) return rpc_.Reject(call, st.message());
  }
  absl::StatusOr<Target> target = CompileTarget(spec);
  if (!target.ok()) return rpc_.Fail(call, target.status());
  const TagTable::Tags set(req.set().begin(), req.set().end());
  const std::vector<std::string> unset(req.unset().begin(), req.unset().end());
  proto::TagReply out;
  std::vector<std::string> names;
  {
    absl::MutexLock lock(&core_.model.mu);
    names = ResolveLocked(core_.model, *target);
    for (const std::string& name : change ? names : std::vector<std::string>()) {
      std::vector<TagTable::Change> changes = core_.model.tags.Set(name, set, unset);
      std::vector<std::string> texts;
      for (const TagTable::Change& c : changes) {
        texts.push_back(TagText(c));
        RecordAction(core_, call, c.removed ? "tag remove" : "tag set", name, TagText(c), "ok");
      }
      if (!changes.empty()) {
        const TagTable::Tags* now = core_.model.tags.Of(name);
        core_.store().Write(ledger::PutTags(name, now != nullptr ? *now : TagTable::Tags()));
      }
      out.add_lines(absl::StrCat(name, ": ", texts.empty() ? "unchanged" : absl::StrJoin(texts, ", ")));
    }
    for (const std::string& name : names) *out.add_nodes() = RowLocked(core_.model, name);
  }
  if (names.empty() && change) {
    return rpc_.Reject(call, absl::StrCat("no node matches ", Describe(spec), "; no tag changed"));
  }
  if (req.history()) {
    absl::StatusOr<std::vector<proto::OperatorAction>> history =
        ledger::ActionsOf(core_.store(), "tag", names, kHistoryLimit);
    if (!history.ok()) return rpc_.Error(call, history.status().message());
    for (proto::OperatorAction& e : *history) *out.add_history() = std::move(e);
  }
  if (change) STEWARD_LOG_INFO("tags of {} nodes changed by {}", names.size(), call.op());
  rpc_.OkWhenStored(call, out);
}

void TargetingApi::Launch(const Call& call, proto::LaunchRequest req) {
  if (absl::Status st = CheckControl(req.control()); !st.ok()) return rpc_.Reject(call, st.message());
  if (req.has_runbook() && req.has_control()) {
    return rpc_.Reject(call, "a runbook says its own priority and on_busy (--priority, --on-busy of stewardctl run)");
  }
  if (req.has_runbook()) {
    if (absl::Status st = runbook::Validate(req.runbook()); !st.ok()) return rpc_.Reject(call, st.message());
    if (req.has_rollout() || req.continuous()) {
      return rpc_.Reject(call, "a runbook runs on each target as one job: no rollout options, no --continuous");
    }
    for (const proto::RunbookStep& step : req.runbook().steps()) {
      for (const proto::RunbookAction* a : {&step.action(), &step.check().action()}) {
        if (a->argv().empty()) continue;  // no check
        const proto::Envelope tmpl = runbook::ActionTemplate(*a);
        if (absl::Status st = CheckTemplate(tmpl); !st.ok()) return rpc_.Reject(call, st.message());
        if (absl::Status st = core_.CheckFits(tmpl); !st.ok()) return rpc_.Reject(call, st.message());
      }
    }
  } else if (absl::Status st = CheckTemplate(req.command()); !st.ok()) {
    return rpc_.Reject(call, st.message());
  } else if (absl::Status fits = core_.CheckFits(req.command()); !fits.ok()) {
    return rpc_.Reject(call, fits.message());
  }
  if (absl::Status st = CheckChosenTarget(req.target()); !st.ok()) return rpc_.Fail(call, st);
  absl::StatusOr<Target> target = CompileTarget(req.target());
  if (!target.ok()) return rpc_.Fail(call, target.status());
  JobRunner::LaunchSpec spec;
  spec.target = *std::move(target);
  spec.command = req.command();
  spec.command_ttl_ms = std::max<int64_t>(0, req.command_ttl_ms());
  spec.continuous = req.continuous();
  spec.expires_unix_ms = req.expires_unix_ms();
  spec.allow_empty = req.allow_empty();
  spec.op = call.op();
  spec.identity = call.identity();
  if (req.has_runbook()) spec.runbook = req.runbook();
  spec.control = req.control();
  if (req.has_rollout()) {
    if (req.continuous())
      return rpc_.Reject(call, "a continuous job is not staged: drop --continuous or the rollout options");
    if (absl::Status st = CheckRollout(req.rollout()); !st.ok()) return rpc_.Reject(call, st.message());
    spec.rollout = req.rollout();
    if (spec.rollout->batch_timeout_ms() == 0) {
      // A node that has not answered by its command's own timeout, and a minute more,
      // is away or stuck: the rollout does not wait for it forever.
      const int64_t run_ms = req.command().timeout_ms() > 0
                                 ? req.command().timeout_ms()
                                 : absl::ToInt64Milliseconds(core_.options().default_timeout);
      spec.rollout->set_batch_timeout_ms(run_ms + 60'000);
    }
  }
  // The job's id now, to record with this request in the job's transaction.
  spec.id = NewId();
  std::vector<ledger::Store::Op> record = {Repeats::Record(call, spec.id, "")};
  runner_.Launch(
      std::move(spec),
      [this, call](absl::StatusOr<proto::LaunchReply> reply) {
        if (!reply.ok()) return rpc_.Fail(call, reply.status());
        rpc_.Ok(call, *reply);
      },
      std::move(record));
}

void TargetingApi::AnswerLaunched(const Call& call, const std::string& id) {
  std::optional<proto::Job> job;
  {
    absl::MutexLock lock(&core_.model.mu);
    if (const proto::Job* j = core_.model.jobs.Find(id)) job = *j;
    if (const proto::Job* j = core_.model.runbooks.Find(id)) job = *j;
  }
  if (!job.has_value()) {
    absl::StatusOr<std::optional<proto::Job>> stored = ledger::GetJob(core_.store(), id);
    if (!stored.ok()) return rpc_.Error(call, stored.status().message());
    if (!stored->has_value()) return rpc_.Error(call, absl::StrCat("job ", id, " of this request is gone"));
    job = **stored;
  }
  proto::LaunchReply out;
  out.mutable_submitted()->set_request_id(id);
  for (const proto::JobTarget& t : job->targets()) {
    if (t.command_id().empty()) continue;  // a runbook's: its commands are made step by step
    proto::CommandRef* ref = out.mutable_submitted()->add_commands();
    ref->set_node(t.node());
    ref->set_id(t.command_id());
  }
  *out.mutable_job() = *std::move(job);
  rpc_.Ok(call, out);
}

absl::StatusOr<proto::JobReply> TargetingApi::JobReplyOf(Core& core, proto::Job job) {
  absl::StatusOr<std::vector<proto::CommandState>> rows = core.store().ByRequest(job.id());
  if (!rows.ok()) return rows.status();
  Queries::Overlay(core, *rows);
  absl::flat_hash_map<std::string, proto::State> state_of;
  for (const proto::CommandState& s : *rows) state_of[s.id()] = s.state();
  const absl::flat_hash_set<std::string> not_answered(job.progress().not_answered().begin(),
                                                      job.progress().not_answered().end());
  proto::JobReply out;
  out.mutable_totals();  // present (all zero) for a job that matched no node
  if (job.has_rollout()) {
    int batches = 0;
    for (const proto::JobTarget& t : job.targets()) batches = std::max(batches, t.batch() + 1);
    for (int b = 0; b < batches; ++b) {
      proto::BatchSummary* s = out.add_batches();
      s->set_index(b);
      if (b < job.progress().batch_released_unix_ms_size()) {
        s->set_released_unix_ms(job.progress().batch_released_unix_ms(b));
      }
    }
  }
  if (job.has_runbook()) {  // a runbook: each target's run
    for (const proto::RunbookRun& r : job.runs()) {
      CountFate(r.state() == proto::RUN_RUNNING     ? Fate::kPending
                : r.state() == proto::RUN_SUCCEEDED ? Fate::kSucceeded
                : r.state() == proto::RUN_CANCELED  ? Fate::kCanceled
                                                    : Fate::kFailed,
                *out.mutable_totals());
    }
    *out.mutable_job() = std::move(job);
    return out;
  }
  for (const proto::JobTarget& t : job.targets()) {
    auto it = state_of.find(t.command_id());
    const Fate fate = not_answered.contains(t.command_id()) ? Fate::kNotAnswered
                      : it == state_of.end()                ? Fate::kPending
                                                            : FateOf(it->second);
    CountFate(fate, *out.mutable_totals());
    if (job.has_rollout()) CountFate(fate, *out.mutable_batches(t.batch())->mutable_counts());
  }
  *out.mutable_job() = std::move(job);
  return out;
}

void TargetingApi::Job(const Call& call, proto::JobRequest req) {
  std::optional<proto::Job> job;
  {
    absl::MutexLock lock(&core_.model.mu);
    if (const proto::Job* j = core_.model.jobs.Find(req.id())) job = *j;
    if (const proto::Job* j = core_.model.runbooks.Find(req.id())) job = *j;
  }
  if (!job.has_value()) {
    absl::StatusOr<std::optional<proto::Job>> stored = ledger::GetJob(core_.store(), req.id());
    if (!stored.ok()) return rpc_.Error(call, stored.status().message());
    if (!stored->has_value()) return rpc_.Reject(call, absl::StrCat("unknown job ", req.id()));
    job = **stored;
  }
  absl::StatusOr<proto::JobReply> out = JobReplyOf(core_, *std::move(job));
  if (!out.ok()) return rpc_.Error(call, out.status().message());
  // A very large job: the counts fit, its list of targets may not (show REQUEST_ID has it).
  if (out->ByteSizeLong() + kReplyMargin > core_.ReplyLimit()) out->mutable_job()->clear_targets();
  rpc_.Ok(call, *out);
}

void TargetingApi::Close(const Call& call, proto::CloseRequest req) {
  runner_.Close(req.id(), call, [this, call, id = req.id()](absl::Status st) {
    if (!st.ok()) return rpc_.Fail(call, st);
    proto::AclReply out;
    out.add_lines(absl::StrCat("closed ", id));
    rpc_.Ok(call, out);
  });
}

void TargetingApi::Schedule(const Call& call, proto::ScheduleRequest req) {
  const std::string& action = req.action();
  if (action == "add") return AddSchedule(call, std::move(*req.mutable_schedule()));
  if (action == "list") {
    proto::ScheduleReply out;
    absl::MutexLock lock(&core_.model.mu);
    for (proto::Schedule& s : core_.model.schedules.List()) *out.add_schedules() = std::move(s);
    return rpc_.Ok(call, out);
  }
  if (action == "show") return ShowSchedule(call, req.name());
  if (action != "pause" && action != "resume" && action != "remove") {
    return rpc_.Reject(call, absl::StrCat("unknown schedule action \"", action, "\""));
  }
  proto::ScheduleReply out;
  absl::Status st;
  {
    absl::MutexLock lock(&core_.model.mu);
    ScheduleTable& table = core_.model.schedules;
    if (action == "remove") {
      st = table.Remove(req.name());
      if (st.ok()) core_.store().Write(ledger::DeleteSchedule(req.name()));
    } else {
      absl::StatusOr<proto::Schedule> s = table.SetPaused(req.name(), action == "pause", absl::Now());
      st = s.status();
      if (st.ok()) core_.store().Write(ledger::PutSchedule(*s));
    }
    if (st.ok()) {
      RecordAction(core_, call, "schedule " + action, req.name(), "", "ok");
    }
  }
  if (!st.ok()) return rpc_.Fail(call, st);
  out.add_lines(absl::StrCat("schedule ", req.name(),
                             action == "remove"  ? " removed"
                             : action == "pause" ? " paused"
                                                 : " resumed"));
  STEWARD_LOG_INFO("schedule {}: {} by {}", req.name(), action, call.op());
  rpc_.OkWhenStored(call, out);
}

void TargetingApi::AddSchedule(const Call& call, proto::Schedule s) {
  if (absl::Status st = subjects::ValidateToken(s.name()); !st.ok()) {
    return rpc_.Reject(call, absl::StrCat("schedule name: ", st.message()));
  }
  if (absl::Status st = CheckTemplate(s.command()); !st.ok()) return rpc_.Reject(call, st.message());
  if (absl::Status st = core_.CheckFits(s.command()); !st.ok()) return rpc_.Reject(call, st.message());
  if (absl::Status st = CheckChosenTarget(s.target()); !st.ok()) return rpc_.Fail(call, st);
  absl::StatusOr<Target> target = CompileTarget(s.target());
  if (!target.ok()) return rpc_.Fail(call, target.status());
  if (s.splay_ms() < 0 || s.command_ttl_ms() < 0) return rpc_.Reject(call, "--splay and --ttl take a duration");
  if (s.missed() == proto::MISSED_RUNS_UNSPECIFIED) s.set_missed(proto::MISSED_SKIP);
  const absl::Time now = absl::Now();
  s.set_operator_(call.op());
  s.set_created_unix_ms(absl::ToUnixMillis(now));
  s.set_paused(false);
  s.clear_last_run_unix_ms();
  s.clear_last_run_id();
  s.clear_missed_runs();
  s.clear_resumed_unix_ms();
  s.clear_problem();  // the station's word, in replies only
  s.clear_next_run_unix_ms();
  s.mutable_command()->clear_expires_unix_ms();
  absl::StatusOr<ScheduleTable::Entry> entry = ScheduleTable::Compile(s, now);
  if (!entry.ok()) return rpc_.Fail(call, entry.status());
  proto::ScheduleReply out;
  {
    absl::MutexLock lock(&core_.model.mu);
    if (absl::Status st = core_.model.schedules.Add(*std::move(entry), now); !st.ok()) return rpc_.Fail(call, st);
    core_.store().Write(ledger::PutSchedule(s));
    RecordAction(core_, call, "schedule add", s.name(),
                 absl::StrCat("cron \"", s.cron(), "\" ", s.time_zone().empty() ? "UTC" : s.time_zone(), ", ",
                              Describe(s.target()), ": ", absl::StrJoin(s.command().argv(), " ")),
                 "ok");
    for (proto::Schedule& listed : core_.model.schedules.List()) {
      if (listed.name() == s.name()) *out.add_schedules() = std::move(listed);
    }
  }
  STEWARD_LOG_INFO("schedule {} added by {}: {}", s.name(), call.op(), s.cron());
  rpc_.OkWhenStored(call, out);
}

void TargetingApi::ShowSchedule(const Call& call, const std::string& name) {
  proto::ScheduleReply out;
  {
    absl::MutexLock lock(&core_.model.mu);
    for (proto::Schedule& s : core_.model.schedules.List()) {
      if (s.name() == name) *out.add_schedules() = std::move(s);
    }
  }
  if (out.schedules_size() == 0) return rpc_.Reject(call, absl::StrCat("unknown schedule ", name));
  absl::StatusOr<std::vector<proto::Job>> runs = ledger::Runs(core_.store(), name, kRunsShown);
  if (!runs.ok()) return rpc_.Error(call, runs.status().message());
  for (proto::Job& run : *runs) {
    absl::StatusOr<proto::JobReply> r = JobReplyOf(core_, std::move(run));
    if (!r.ok()) return rpc_.Error(call, r.status().message());
    r->mutable_job()->clear_targets();  // the counts say it; show RUN_ID has the rest
    *out.add_runs() = *std::move(r);
  }
  absl::StatusOr<std::vector<proto::OperatorAction>> history =
      ledger::ActionsOf(core_.store(), "schedule", {name}, kHistoryLimit);
  if (!history.ok()) return rpc_.Error(call, history.status().message());
  for (proto::OperatorAction& e : *history) *out.add_history() = std::move(e);
  rpc_.Ok(call, out);
}

}  // namespace steward::station
