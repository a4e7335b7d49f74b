// CommandTable: the life of every command the station holds in memory.
//
//   queued --dispatch--> sent --"received"--> running --result--> succeeded | failed |
//                                                                 timed_out | rejected
//   queued/sent --past its expiry--> expired        queued/sent --cancel--> canceled
//   awaiting_approval --approve--> queued   --deny--> rejected   --no decision--> expired
//
// Around that: retry with backoff when a node does not answer, park when it has no
// responders (or a gate says so) until Unpark, ask again about a running command whose
// result is late, a schedule of when each command must be looked at next (the dispatcher
// never scans the table), and forgetting finished commands after keep_finished.
//
// Exclusive commands (issue 13) hold their node's job slot from admission (when first
// due) until terminal; one that finds the slot taken ends "busy", waits in the slot's
// queue (priority, then age) or preempts the holder (a higher priority only): the
// holder is stopped (here when undelivered, else through a "cancel" to its node) and
// ends "preempted". Stop cancels anything not finished the same way. The queue is not
// written anywhere: it is rebuilt from the unfinished commands at start (the ones that
// may have been delivered hold the slot again; the others are admitted again in order).
//
// Pure: no NATS, no SQLite and no clock of its own (every call is given `now`). Each
// change the ledger must hold comes back as a CommandWrite in `Changes` for the caller
// to queue; Committed() then tells the table which writes are durable. A late truth
// from a node (a result after "expired" or "canceled") overrides those two states.
//
//   CommandTable table(options);
//   table.Add(state, now);
//   Changes changes;
//   for (Dispatch& d : table.TakeDue(now, gate, changes)) send(d);
//   table.OnReply(id, gen, ack, now, changes);   // the node's "received"
//
// Not thread-safe: the station calls it under its model mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/steward.pb.h"

namespace steward::station {

struct CommandTableOptions {
  absl::Duration initial_backoff = absl::Milliseconds(500);  // doubles per attempt
  absl::Duration max_backoff = absl::Seconds(30);
  // After a command's execution timeout, how long to wait for its result before asking
  // the node again (it answers with what it recorded).
  absl::Duration result_grace = absl::Seconds(10);
  // Terminal commands stay in memory this long (for waiters), then only in the ledger.
  absl::Duration keep_finished = absl::Seconds(30);
  // A finished command keeps its output in memory up to this size once committed;
  // larger ones are read back from the ledger when asked for.
  size_t keep_output_bytes = 4096;
};

// A ledger write the table asks for: the command's whole record as of one change,
// with its envelope only when the ledger does not hold that envelope as it is now.
struct CommandWrite {
  proto::CommandState record;
  uint64_t seq = 0;  // the command's write number, for Committed()
  // Runs once the write committed (or failed); set by the caller, never by the table.
  std::function<void(absl::Status)> then;
};

// A change of a command's state, whether the ledger gets it now or later.
struct StateChange {
  std::string node;
  std::string id;
  proto::State state;
};

// A command its node may be running that must stop (an operator's cancel, a
// preemption): the caller sends that node a "cancel" command naming it. Asking twice is
// harmless (the agent answers a repeat), so a station restarted meanwhile asks again.
struct KillRequest {
  std::string node;
  std::string id;
  std::string domain;
  std::string by;  // operator, or "preemption by ID"
};

// Not delivered yet: the node has not said it received the command (queued, or sent
// without an answer).
inline bool Undelivered(proto::State s) { return s == proto::STATE_QUEUED || s == proto::STATE_SENT; }
inline bool AwaitsApproval(const proto::CommandState& s) { return s.state() == proto::STATE_AWAITING_APPROVAL; }

struct Changes {
  std::vector<CommandWrite> writes;  // in order
  std::vector<StateChange> states;
  std::vector<KillRequest> kills;
};

// A command for the dispatcher to send now. `gen` numbers the command's dispatches:
// how a dispatch ended is reported with it, and a report about an older dispatch than
// the command's latest changes nothing but what its answer says.
struct Dispatch {
  std::string id;
  uint64_t gen = 0;
  proto::Envelope command;  // without its payload: that is in `wire`
  std::string wire;         // the command serialized, payload and all: what is sent
  bool first = false;       // its first send (a batch carries only first sends)
};

// What a gate says of a command whose time has come.
enum class Gate {
  kSend,
  kPark,  // hold it until Unpark (its node is offline, or not accepted yet)
};

class CommandTable {
 public:
  explicit CommandTable(CommandTableOptions options = {});

  // Add takes a committed command to be looked at from `next_attempt` on: just
  // submitted (`fresh`: never delivered anywhere; the ledger holds it as given, its
  // envelope in a row of its own), or unfinished in the ledger at start
  // (it may have been delivered before the station stopped).
  void Add(proto::CommandState s, absl::Time next_attempt, bool fresh = true);
  // The command as held in memory; nullptr when it is not (finished long ago, or never).
  const proto::CommandState* Find(const std::string& id) const;
  // Whether `id` is finished and its output was dropped from memory (it is in the
  // ledger); `bytes` is that output's size.
  bool OutputInLedgerOnly(const std::string& id, size_t* bytes = nullptr) const;
  // Unfinished commands of `node`, in no order.
  std::vector<std::string> Unfinished(const std::string& node) const;
  size_t Pending(const std::string& node) const;
  // Unfinished commands by (state, method), for /metrics.
  std::map<std::pair<proto::State, std::string>, int64_t> CountUnfinished() const;
  size_t size() const { return commands_.size(); }
  // The number of `id`'s latest dispatch (0: never sent, or not in memory).
  uint64_t Generation(const std::string& id) const;

  // When the next command is due (InfiniteFuture when none).
  absl::Time NextDue() const;
  // Whether a command became due sooner than any before it since the last call (the
  // dispatcher, asleep until the old first one, must look again).
  bool TakeSooner() { return std::exchange(sooner_, false); }
  // TakeDue looks at each command whose time has come: expires it, parks it when
  // `gate` says so, or hands it out to be sent (marked in flight; "queued" becomes
  // "sent").
  // The gate may change the command it is shown (bind it to its node's installation,
  // sign it again) before it goes out.
  std::vector<Dispatch> TakeDue(absl::Time now, const std::function<Gate(proto::CommandState&)>& gate,
                                Changes& changes);

  // How dispatch `gen` of `id` ended. Each clears the in-flight mark (when it is the
  // latest dispatch).
  // The node answered with `ack` ("received", or the result it recorded): the truth,
  // whichever dispatch it answers.
  void OnReply(const std::string& id, uint64_t gen, const proto::Ack& ack, absl::Time now,
               Changes& changes);
  // No answer in time, or an answer that made no sense: try again with backoff.
  void OnTimeout(const std::string& id, uint64_t gen, absl::Time now);
  // Nobody listens on the node's subject: parked until Unpark.
  void OnNoResponders(const std::string& id, uint64_t gen);
  // The dispatch never left the station (the publish failed: the broker connection is
  // closed, its reconnect buffer full): no delivery, tried again with backoff.
  void OnNotSent(const std::string& id, uint64_t gen, absl::Time now);
  // The station is stopping: the command is left as it is.
  void OnShutdown(const std::string& id, uint64_t gen);
  // Unpark makes `node`'s undelivered commands due now: the parked ones, those waiting
  // out a retry backoff, and those in flight right now (sent again at once: the path
  // they went out on may be dead; a node answers a repeat from its record). The node
  // was heard from again, or accepted: whatever kept them back is gone.
  void Unpark(const std::string& node, absl::Time now);
  // Release makes command `id` due now when a gate parked it (a rollout's batch or a
  // splayed run's time came): nothing else of its node moves, and a dispatch in flight
  // is left alone (Unpark would send it again).
  void Release(const std::string& id, absl::Time now);

  // What became of a result a node sent.
  enum class ResultFate {
    kApplied,     // its state changed: the last write in `changes` records it
    kRepeat,      // it is terminal already: nothing changed
    kUnknown,     // no such command in memory (the caller looks in the ledger)
    kWrongNode,   // not a command of the node that sent it
    kNeverSent,   // not sent to any installation of its node (held for approval, say)
  };
  ResultFate OnResult(const std::string& id, const std::string& from, const proto::Ack& ack,
                      absl::Time now, Changes& changes);

  // Stop ends command `id` for operator `by`, whatever its state: one not delivered
  // (queued, parked, backing off) is canceled here (and, when it was dispatched before
  // without an answer, its node is told too: it may hold it in a queue); one its node
  // may have (running, or a dispatch in flight) is marked (ControlMarks.cancel_by,
  // written) and a KillRequest asks the caller to send its node a "cancel": its own
  // result then ends it ("canceled", or what it came to first). Returns whether the
  // node was asked.
  // FailedPrecondition "already finished: succeeded"; NotFound when not in memory.
  absl::StatusOr<bool> Stop(const std::string& id, const std::string& by, absl::Time now, Changes& changes);

  // Decide approves (queued, due now) or denies (rejected) a command awaiting approval,
  // for operator `by` (`identity`: as ApprovalMarks.submitter says who submitted it).
  // Refused (FailedPrecondition) when it was decided already ("already approved by alice
  // at ..."), or is not awaiting approval; PermissionDenied when `identity` submitted it
  // (four eyes); NotFound when not in memory.
  absl::Status Decide(const std::string& id, const std::string& by, const std::string& identity, bool approve,
                      const std::string& comment, absl::Time now, Changes& changes);
  // The commands awaiting approval, of `node` ("" for all).
  std::vector<const proto::CommandState*> AwaitingApproval(const std::string& node) const;

  // Exclusive commands (ControlPolicy.exclusive) and their node's job slot: the holder
  // of `node`'s slot ("" when free) and the ids waiting for it, first first.
  std::string SlotHolder(const std::string& node) const;
  std::vector<std::string> SlotQueue(const std::string& node) const;
  // A runbook (ControlPolicy.slot_job) keeps its node's slot from its first step's
  // admission until ReleaseJob, between steps too: its next step goes straight in, other
  // exclusive commands are busy, wait, or preempt the job (priority against the job's).
  // SlotJob says which job keeps `node`'s slot ("" none). Reserve gives it back to job
  // `job` at start (a run between steps when the station stopped) when nothing holds it.
  std::string SlotJob(const std::string& node) const;
  // A run's steps may take `node`'s slot only while AllowJob said so and neither
  // ReleaseJob nor a preemption ended it: a step made just before its run ended is
  // refused (busy) at admission instead of running. JobLive says whether it still may.
  void AllowJob(const std::string& node, const std::string& job);
  bool JobLive(const std::string& node, const std::string& job) const {
    return live_jobs_.contains(job + "/" + node);
  }
  void Reserve(const std::string& node, const std::string& job, int32_t priority);
  // ReleaseJob ends job `job`'s keep of `node`'s slot (its run ended); the queue moves.
  void ReleaseJob(const std::string& node, const std::string& job, absl::Time now);
  // Whether a preemption took `node`'s slot from job `job`, and by which command ("" none);
  // asked once, it is forgotten.
  std::string TakeJobPreemption(const std::string& job, const std::string& node);

  // Cancel ends a command that was not delivered: FailedPrecondition says why it cannot
  // ("already succeeded", "already delivered to ship1"); NotFound when not in memory.
  absl::Status Cancel(const std::string& id, absl::Time now, Changes& changes);
  // CanCancel says whether Cancel would succeed now, and why not.
  absl::Status CanCancel(const std::string& id) const;
  // Ends `id` with `state` and `result` (the station's own verdict: a subject it cannot
  // build, a reinstalled node).
  void Finish(const std::string& id, proto::State state, proto::Ack result, absl::Time now,
              Changes& changes);
  // BoundElsewhere: `id` is bound to an installation other than `instance` (the node's
  // current one, which refuses it for that: its hello came after the binding).
  bool BoundElsewhere(const std::string& id, const std::string& instance) const;
  // OnStaleBinding: the current installation refused dispatch `gen` of `id` for being
  // bound to an earlier one. It ran nowhere and reached no earlier installation: it goes
  // again at once, bound anew by the dispatcher's gate.
  void OnStaleBinding(const std::string& id, uint64_t gen, absl::Time now);
  // ReachedCurrent: the node's current installation answered the dispatch of `id` that
  // is out, without an answer for `id` itself (a batch that left it out): it reached no
  // earlier installation (see Reinstalled).
  void ReachedCurrent(const std::string& id);
  // Reinstalled: `node` is another installation now. Its unfinished commands that may
  // have reached the previous one end `lost` (their outcome cannot be known, and they
  // are not sent again by themselves); the ones never delivered stay, for the new one.
  // One whose only dispatch is still out waits for its answer when the previous
  // installation was offline (not heard from within its heartbeats); the wait is the
  // mark ControlMarks.lost_unless_answered, written to the ledger, so a station that
  // restarts before the answer comes ends it lost at Load. While the previous one was
  // online, both may be up at once (a replacement started beside it), the dispatch may
  // reach both, and no answer of the new one says the old one did not take it, so that
  // command ends `lost` too. Returns the ids that ended.
  std::vector<std::string> Reinstalled(const std::string& node, const std::string& previous, const std::string& current,
                                       bool previous_online, absl::Time now, Changes& changes);

  // Committed reports that write `seq` of `id` committed (ok) or failed. True when `id`
  // is terminal and that write was its last: its waiters can be answered.
  bool Committed(const std::string& id, uint64_t seq, bool ok);
  // Whether every write of `id` queued so far has committed.
  bool Durable(const std::string& id) const;
  // Whether write `seq` of `id` (and every one before it) has committed; a command no
  // longer in memory was forgotten only once its writes had.
  bool Durable(const std::string& id, uint64_t seq) const;
  // Rewrite queues `id`'s record again (its last write failed, and a node offers the
  // result again).
  void Rewrite(const std::string& id, Changes& changes);

  // Housekeep queues the "running" states nobody waited for, writes again the records
  // whose last write failed, and forgets commands finished more than keep_finished ago
  // (once their final state is durable).
  void Housekeep(absl::Time now, Changes& changes);
  // Queues the "running" states not yet written, and the records whose reinstall wait
  // ended without a write (also at shutdown).
  void FlushRunning(Changes& changes);

 private:
  struct Command {
    proto::CommandState s;
    absl::Time next_attempt;
    bool in_flight = false;
    absl::Time finished = absl::InfiniteFuture();  // when it became terminal
    // Its key in schedule_; InfiniteFuture while in flight, parked, or terminal.
    absl::Time due = absl::InfiniteFuture();
    bool output_in_ledger_only = false;
    size_t ledger_output_bytes = 0;
    uint64_t gen = 0;  // its latest dispatch
    // It may have reached its node: dispatched at least once, or loaded from the ledger
    // (whose state may lag one dispatch behind). A dispatch answered "no responders"
    // reached nobody: it leaves this as it was before (see delivered_before).
    bool maybe_delivered = false;
    bool delivered_before = false;  // maybe_delivered before the latest dispatch
    // Exclusive: admitted to its node's slot (holding it, or in its queue).
    bool admitted = false;
    uint64_t writes = 0;     // ledger writes queued
    uint64_t committed = 0;  // the last write that committed
    // Added fresh: the ledger holds its envelope in a row of its own, bound (target
    // installation, signature) as below. While the envelope is still bound so, a state
    // change is written without it (the row stays as it is). See Write(). A command
    // loaded at start may come from a ledger that keeps envelopes inside the records
    // (before schema step 7): its writes always carry the envelope.
    bool envelope_row = false;
    std::string ledger_instance;
    std::string ledger_signature;
  };

  Command* Get(const std::string& id);
  // Dispatch `gen` of `id` ended having reached no installation (not sent, no
  // responders, refused for a stale binding): no longer in flight, delivered only as
  // before it. The command, or null when `gen` is not its latest dispatch.
  Command* ReachedNobody(const std::string& id, uint64_t gen);
  // Recomputes when the dispatcher must look at `c` next and files it in schedule_.
  void Reschedule(const std::string& id, Command& c);
  void SetState(Command& c, proto::State state, absl::Time now, Changes& changes);
  void MarkRunning(Command& c, absl::Time now, Changes& changes);
  void Write(Command& c, Changes& changes);
  void RetryLater(Command& c, absl::Time now);
  // An undelivered command past its expiry: ended with a result that says why and
  // whether it can have run.
  void ExpireUndelivered(Command& c, absl::Time now, Changes& changes);
  // Ends `c` lost: its outcome cannot be known, for the reason `why`.
  void Lose(Command& c, std::string why, absl::Time now, Changes& changes);
  // Whether `c` waits for the answer to the dispatch that was out at its node's
  // reinstall (Reinstalled), and ending that wait (an answer ruled the earlier
  // installation out); the ledger hears of it with the next Housekeep, if not sooner.
  static bool AwaitsAnswer(const Command& c) { return !c.s.marks().lost_unless_answered().empty(); }
  void EndWait(Command& c);
  void ApplyReceived(Command& c, absl::Time now, Changes& changes);
  void ApplyResult(Command& c, const proto::Ack& ack, absl::Time now, Changes& changes);

  // The job slot (exclusive commands). Admit decides, when an exclusive command first
  // comes due, whether it holds its node's slot (kGo), waits in the queue (kWait: also
  // a queued one made due by Unpark), or ended (kEnded: busy).
  enum class Admission { kGo, kWait, kEnded };
  Admission Admit(Command& c, absl::Time now, Changes& changes);
  // Stops the slot's holder for `by` (a higher priority): canceled here when it was
  // not delivered, else a KillRequest; either way it ends "preempted".
  void Preempt(Command& holder, const Command& by, absl::Time now, Changes& changes);
  void RequestKill(Command& c, const std::string& by, absl::Time now, Changes& changes);
  // Stopping an undelivered command that was dispatched before: the node is told too
  // (the mark goes with the caller's next write). Whether it was.
  bool AlsoTellNode(Command& c, const std::string& by, absl::Time now, Changes& changes);
  // An admitted command ended: it leaves its slot, and the next one comes due.
  void LeaveSlot(Command& c, absl::Time now);
  // A free slot goes to the first of its queue, due now.
  void Advance(const std::string& node, absl::Time now);
  // "ship1 is busy with ID (argv, running 12s, priority 0)".
  std::string BusyText(const std::string& node, absl::Time now) const;

  struct Slot {
    std::string holder;
    std::set<std::pair<int64_t, std::string>> queue;  // (-priority, id): first first
    std::string job;           // a runbook keeping the slot between its steps
    int32_t job_priority = 0;  // that runbook's priority
  };
  // Takes the slot from its runbook job for command `by` (a preemption).
  void PreemptJob(Slot& slot, const std::string& node, const std::string& by);

  const CommandTableOptions options_;
  // Every unfinished command, and finished ones for keep_finished.
  // Node-based: a Command is large, and a table of tens of thousands moved whole at each
  // growth (or rehash after erasures) cost the station several percent of its CPU.
  absl::node_hash_map<std::string, Command> commands_;
  // (due, id) of the commands the dispatcher must look at, soonest first.
  std::set<std::pair<absl::Time, std::string>> schedule_;
  // (finished, id), oldest first: when to forget finished commands.
  std::deque<std::pair<absl::Time, std::string>> finished_;
  // node -> its unfinished commands.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> active_;
  // Awaiting an operator's decision.
  absl::flat_hash_set<std::string> awaiting_;
  // Running, and the ledger does not say so yet.
  absl::flat_hash_set<std::string> unsaved_running_;
  // Whose last write failed: Housekeep writes them again.
  absl::flat_hash_set<std::string> failed_writes_;
  // Commands whose reinstall wait (ControlMarks.lost_unless_answered) ended by an answer
  // that changed nothing else: their records in the ledger still carry the mark, and
  // get written again with the next Housekeep (FlushRunning), or at shutdown.
  absl::flat_hash_set<std::string> unwritten_marks_;
  // node -> its job slot, while an exclusive command holds it or waits for it.
  absl::flat_hash_map<std::string, Slot> slots_;
  // Kills of commands loaded with a cancel asked for: asked again by the next TakeDue.
  std::vector<KillRequest> reload_kills_;
  // "job/node" -> the command whose preemption took the slot from that runbook run.
  absl::flat_hash_map<std::string, std::string> job_preemptions_;
  // "job/node" of the runbook runs whose steps may take that node's slot.
  absl::flat_hash_set<std::string> live_jobs_;
  bool sooner_ = false;
};

// The terminal state a node's result means.
proto::State StateFromOutcome(proto::Outcome o);

}  // namespace steward::station
