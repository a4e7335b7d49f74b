#include "station/runbooks.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/protocol.h"
#include "common/runbook.h"

namespace steward::station {
namespace {

// How a command that ended stops the whole run whatever the step's on_failure says: an
// operator or a preemption stopped it. RUN_RUNNING when it does not.
proto::RunState Stopping(proto::State s, bool first) {
  switch (s) {
    case proto::STATE_CANCELED:
      return proto::RUN_CANCELED;
    case proto::STATE_PREEMPTED:
      return proto::RUN_PREEMPTED;
    case proto::STATE_BUSY:  // the slot was taken: at the start, or by a preemption since
      return first ? proto::RUN_BUSY : proto::RUN_PREEMPTED;
    default:
      return proto::RUN_RUNNING;
  }
}

std::string Ended(const RunbookCommand& c) {
  std::string out = StateName(c.state);
  if (!c.error.empty()) absl::StrAppend(&out, ": ", c.error);
  return out;
}

RunbookNext EndWith(RunbookNext n, proto::RunState state, std::string reason) {
  n.kind = RunbookNext::kEnd;
  n.state = state;
  n.reason = std::move(reason);
  return n;
}

}  // namespace

RunbookNext Decide(const proto::Runbook& rb, const std::vector<RunbookCommand>& made, absl::Time now) {
  RunbookNext n;
  std::vector<std::string> continued;  // steps that failed with on_failure = continue
  for (int i = 0; i < rb.steps_size(); ++i) {
    const proto::RunbookStep& step = rb.steps(i);
    const std::string name = runbook::StepName(rb, i);
    n.step = i;
    const RunbookCommand* action = nullptr;
    std::vector<const RunbookCommand*> tries;
    for (const RunbookCommand& c : made) {
      if (c.ref.step() != i) continue;
      if (!c.ref.check()) {
        if (action == nullptr) action = &c;
      } else {
        tries.push_back(&c);
      }
    }
    std::stable_sort(tries.begin(), tries.end(),
                     [](const RunbookCommand* a, const RunbookCommand* b) { return a->ref.attempt() < b->ref.attempt(); });
    if (action == nullptr) {
      n.kind = RunbookNext::kMake;
      n.ref.set_step(i);
      n.at = now;
      n.reason = absl::StrCat(name, ": starting");
      return n;
    }
    if (!IsTerminal(action->state)) {
      n.reason = absl::StrCat(name, ": ", StateName(action->state));
      return n;
    }
    if (proto::RunState s = Stopping(action->state, &made.front() == action); s != proto::RUN_RUNNING) {
      return EndWith(n, s, absl::StrCat(name, ": ", Ended(*action)));
    }
    std::string why;
    if (action->state != proto::STATE_SUCCEEDED) {
      why = Ended(*action);
    } else if (step.has_check()) {
      const proto::RunbookCheck& check = step.check();
      const absl::Duration interval = absl::Milliseconds(check.interval_ms());
      const absl::Duration observe = absl::Milliseconds(check.observe_ms());
      int failures = 0;
      absl::Time first_ok = absl::InfiniteFuture();
      const RunbookCommand* last = nullptr;
      for (const RunbookCommand* t : tries) {
        const int number = t->ref.attempt() + 1;
        if (!IsTerminal(t->state)) {
          n.reason = absl::StrCat(name, ": check, try ", number, ": ", StateName(t->state));
          return n;
        }
        if (proto::RunState s = Stopping(t->state, false); s != proto::RUN_RUNNING) {
          return EndWith(n, s, absl::StrCat(name, ": check, try ", number, ": ", Ended(*t)));
        }
        last = t;
        if (t->state == proto::STATE_SUCCEEDED) {
          first_ok = std::min(first_ok, t->finished);
        } else if (first_ok != absl::InfiniteFuture()) {
          why = absl::StrCat("its check failed while observed (try ", number, ": ", Ended(*t), ")");
          break;
        } else if (++failures > check.retries()) {
          why = absl::StrCat("its check failed ", failures, failures == 1 ? " time" : " times", " (last: ", Ended(*t),
                             ")");
          break;
        }
      }
      if (why.empty()) {
        const bool observed = first_ok != absl::InfiniteFuture() && last->finished - first_ok >= observe;
        if (!observed) {
          n.kind = RunbookNext::kMake;
          n.ref.set_step(i);
          n.ref.set_check(true);
          n.ref.set_attempt(tries.empty() ? 0 : tries.back()->ref.attempt() + 1);
          n.at = last == nullptr ? action->finished : last->finished + interval;
          n.reason = first_ok != absl::InfiniteFuture()
                         ? absl::StrCat(name, ": check passed, observing until ",
                                        absl::FormatTime("%H:%M:%S", first_ok + observe, absl::LocalTimeZone()))
                         : absl::StrCat(name, ": check, try ", n.ref.attempt() + 1, " of ", check.retries() + 1);
          return n;
        }
      }
    }
    if (!why.empty()) {
      if (step.on_failure() == proto::ON_FAILURE_CONTINUE) {
        continued.push_back(absl::StrCat(name, ": ", why));
        continue;
      }
      return EndWith(n, proto::RUN_FAILED, absl::StrCat(name, " failed: ", why));
    }
  }
  n.step = rb.steps_size() - 1;
  if (continued.empty()) {
    return EndWith(n, proto::RUN_SUCCEEDED,
                   absl::StrCat(rb.steps_size(), rb.steps_size() == 1 ? " step" : " steps", " passed"));
  }
  return EndWith(n, proto::RUN_SUCCEEDED,
                 absl::StrCat(rb.steps_size() - static_cast<int>(continued.size()), " of ", rb.steps_size(),
                              " steps passed; failed and continued: ", absl::StrJoin(continued, "; ")));
}

void RunbookTable::Add(proto::Job job) {
  Entry e;
  job.clear_runs();
  for (const proto::JobTarget& t : job.targets()) {
    Run r;
    r.node = t.node();
    e.runs.push_back(std::move(r));
    proto::RunbookRun* run = job.add_runs();
    run->set_node(t.node());
    run->set_state(proto::RUN_RUNNING);
    run->set_reason("starting");
  }
  e.job = std::move(job);
  const std::string id = e.job.id();
  jobs_[id] = std::move(e);
}

void RunbookTable::Load(proto::Job job, const std::vector<proto::CommandState>& states, CommandTable& commands) {
  std::vector<proto::CommandState> sorted = states;
  std::stable_sort(sorted.begin(), sorted.end(), [](const proto::CommandState& a, const proto::CommandState& b) {
    return a.created_unix_ms() < b.created_unix_ms();
  });
  const bool had_runs = job.runs_size() == job.targets_size();
  std::vector<proto::RunbookRun> runs(job.runs().begin(), job.runs().end());
  Add(job);
  Entry& e = jobs_[job.id()];
  for (size_t i = 0; i < e.runs.size(); ++i) {
    Run& r = e.runs[i];
    if (had_runs && runs[i].state() != proto::RUN_RUNNING) *e.job.mutable_runs(static_cast<int>(i)) = runs[i];
    for (const proto::CommandState& s : sorted) {
      if (s.node() != r.node || !s.has_runbook()) continue;
      RunbookCommand c;
      c.id = s.id();
      c.ref = s.runbook();
      c.state = s.state();
      if (IsTerminal(s.state())) c.finished = absl::FromUnixMillis(s.updated_unix_ms());
      c.error = s.result().error();
      r.made.push_back(std::move(c));
    }
    // A run that has begun keeps its node's slot (a step running holds it already).
    if (!r.made.empty() && e.job.runs(static_cast<int>(i)).state() == proto::RUN_RUNNING) {
      commands.Reserve(r.node, e.job.id(), e.job.runbook().priority());
    }
  }
}

const proto::Job* RunbookTable::Find(const std::string& id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second.job;
}

void RunbookTable::End(Entry& e, size_t i, proto::RunState state, const std::string& reason, int step, absl::Time now,
                       CommandTable& commands, Work& work) {
  proto::RunbookRun& run = *e.job.mutable_runs(static_cast<int>(i));
  run.set_state(state);
  run.set_reason(reason);
  run.set_step(step);
  run.set_finished_unix_ms(absl::ToUnixMillis(now));
  commands.ReleaseJob(e.runs[i].node, e.job.id(), now);
  // Written by MaybeFinish: a run that ended stays ended across a restart (its end may
  // be known to no command, as a preemption between steps).
  e.ended_unwritten = true;
  work.log.push_back(absl::StrCat("runbook job ", e.job.id(), " on ", e.runs[i].node, ": ",
                                  runbook::RunStateName(state), ": ", reason));
}

void RunbookTable::MaybeFinish(Entry& e, absl::Time now, Work& work) {
  if (e.writing) return;
  int counts[7] = {};
  for (const proto::RunbookRun& r : e.job.runs()) {
    if (r.state() == proto::RUN_RUNNING) {
      // The job goes on: the runs that ended meanwhile are written, once for them all.
      if (e.ended_unwritten) work.progress.push_back(e.job);
      e.ended_unwritten = false;
      return;
    }
    ++counts[std::clamp<int>(r.state(), 0, 6)];
  }
  e.ended_unwritten = false;  // the final record holds them
  std::vector<std::string> parts;
  for (proto::RunState s : {proto::RUN_SUCCEEDED, proto::RUN_FAILED, proto::RUN_BUSY, proto::RUN_PREEMPTED,
                            proto::RUN_CANCELED}) {
    if (counts[s] > 0) parts.push_back(absl::StrCat(counts[s], " ", runbook::RunStateName(s)));
  }
  if (e.job.state() != proto::JOB_CLOSED) {
    e.job.set_state(proto::JOB_DONE);
    e.job.set_reason(parts.empty() ? "no target" : absl::StrJoin(parts, ", "));
  }
  e.job.set_finished_unix_ms(absl::ToUnixMillis(now));
  e.writing = true;
  work.writes.push_back(e.job);
}

void RunbookTable::Tick(absl::Time now, CommandTable& commands, Work& work) {
  for (auto& [id, e] : jobs_) {
    if (e.writing) continue;
    const proto::Runbook& rb = e.job.runbook();
    for (size_t i = 0; i < e.runs.size(); ++i) {
      Run& r = e.runs[i];
      proto::RunbookRun& run = *e.job.mutable_runs(static_cast<int>(i));
      if (run.state() != proto::RUN_RUNNING || r.making) continue;
      for (RunbookCommand& c : r.made) {
        if (IsTerminal(c.state)) continue;
        const proto::CommandState* s = commands.Find(c.id);
        if (s == nullptr) continue;
        c.state = s->state();
        if (IsTerminal(c.state)) {
          c.finished = absl::FromUnixMillis(s->updated_unix_ms());
          c.error = s->result().error();
        }
      }
      RunbookNext next = Decide(rb, r.made, now);
      run.set_step(next.step);
      if (next.kind == RunbookNext::kEnd) {
        End(e, i, next.state, next.reason, next.step, now, commands, work);
        continue;
      }
      // Between steps (or between tries of a check), the run must still be allowed the
      // slot: a preemption may have taken it.
      if (next.kind == RunbookNext::kMake && !r.made.empty()) {
        const std::string by = commands.TakeJobPreemption(id, r.node);
        if (!by.empty() || !commands.JobLive(r.node, id)) {
          End(e, i, proto::RUN_PREEMPTED,
              absl::StrCat("preempted", by.empty() ? "" : " by ", by, " before ", runbook::StepName(rb, next.step)),
              next.step, now, commands, work);
          continue;
        }
      }
      run.set_reason(next.reason);
      if (next.kind != RunbookNext::kMake || next.at > now) continue;
      const proto::RunbookStep& step = rb.steps(next.ref.step());
      Make m;
      m.job = id;
      m.node = r.node;
      m.ref = next.ref;
      m.command = runbook::ActionTemplate(next.ref.check() ? step.check().action() : step.action());
      m.control.set_exclusive(true);
      m.control.set_slot_job(id);
      m.control.set_priority(rb.priority());
      // The first step meets the slot as the runbook says; a later one finds it kept
      // (unless no step of the run was admitted yet: then as the first).
      m.control.set_on_busy(commands.SlotJob(r.node) == id ? proto::ON_BUSY_REJECT : rb.on_busy());
      commands.AllowJob(r.node, id);
      m.op = e.job.operator_();
      r.making = true;
      work.make.push_back(std::move(m));
    }
    MaybeFinish(e, now, work);
  }
}

void RunbookTable::Made(const std::string& job, const std::string& node, const std::string& id,
                        const proto::RunbookStepRef& ref, bool ok, absl::Time now, CommandTable& commands,
                        Changes& changes) {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) {
    if (ok) (void)commands.Stop(id, "runbook job ended", now, changes);
    return;
  }
  Entry& e = it->second;
  for (size_t i = 0; i < e.runs.size(); ++i) {
    Run& r = e.runs[i];
    if (r.node != node) continue;
    r.making = false;
    if (!ok) return;  // the next Tick makes it again
    RunbookCommand c;
    c.id = id;
    c.ref = ref;
    r.made.push_back(std::move(c));
    // The run ended meanwhile (closed): what was made never runs.
    if (e.job.runs(static_cast<int>(i)).state() != proto::RUN_RUNNING) {
      (void)commands.Stop(id, "runbook job ended", now, changes);
    }
    return;
  }
}

void RunbookTable::Written(const std::string& id, bool ok) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  it->second.writing = false;
  if (ok) jobs_.erase(it);
}

absl::Status RunbookTable::Close(const std::string& id, const std::string& by, absl::Time now,
                                 CommandTable& commands, Changes& changes, Work& work) {
  auto it = jobs_.find(id);
  if (it == jobs_.end() || it->second.writing) return absl::NotFoundError(absl::StrCat("no open runbook job ", id));
  Entry& e = it->second;
  for (size_t i = 0; i < e.runs.size(); ++i) {
    Run& r = e.runs[i];
    if (e.job.runs(static_cast<int>(i)).state() != proto::RUN_RUNNING) continue;
    // What became of the step's command: canceled here when it was never delivered;
    // else its node is asked to stop it, and its own result says how it ended (it may
    // have finished first).
    std::string what;
    for (const RunbookCommand& c : r.made) {
      const proto::CommandState* s = commands.Find(c.id);
      if (s == nullptr || IsTerminal(s->state())) continue;
      absl::StatusOr<bool> asked = commands.Stop(c.id, by, now, changes);
      if (!asked.ok()) continue;
      what = *asked ? absl::StrCat(" (its node was asked to stop ", c.id, "; that command's result says how it ended)")
                    : absl::StrCat(" (", c.id, " was never sent)");
    }
    const int step = e.job.runs(static_cast<int>(i)).step();
    End(e, i, proto::RUN_CANCELED,
        absl::StrCat("canceled by ", by, " at ", runbook::StepName(e.job.runbook(), step), what), step, now,
        commands, work);
  }
  e.job.set_state(proto::JOB_CLOSED);
  e.job.set_reason(absl::StrCat("canceled by ", by));
  MaybeFinish(e, now, work);
  return absl::OkStatus();
}

}  // namespace steward::station
