// stewardctl status, process and config: operations on an agent itself. Each is a
// command to the node's `status`, `process` or `config` method (domain "agent") that goes through the
// station like `send`: signed, ACL-checked, recorded in the ledger and the audit, run
// once. `status --cached` asks the station instead: the compact status from the node's
// last hello, with its age, for a node that is offline.
#include <cstdio>
#include <deque>
#include <fstream>
#include <thread>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/signing.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/owner.h"
#include "common/protocol.h"
#include "ctl/agentops.h"
#include "ctl/ctl.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"

namespace steward::ctl {

absl::StatusOr<proto::SubmitReply> SubmitToNode(Client& client, const Globals& g, const std::string& node,
                                                const std::string& method, const std::vector<std::string>& argv,
                                                const std::string& payload, absl::Duration wait) {
  proto::SubmitRequest req;
  req.add_nodes(node);
  proto::Envelope* cmd = req.mutable_command();
  cmd->set_method(method);
  cmd->set_domain(kAgentDomain);
  for (const std::string& a : argv) cmd->add_argv(a);
  cmd->set_payload(payload);
  // An operation that cannot reach the node now is of no use later: it expires with
  // the wait instead of running whenever the node comes back.
  cmd->set_expires_unix_ms(absl::ToUnixMillis(absl::Now() + g.timeout + absl::Seconds(30)));
  req.set_wait_ms(absl::ToInt64Milliseconds(wait));
  auto submitted = client.Submit(req, wait + absl::Seconds(5));
  if (!submitted.ok()) return submitted.status();
  if (submitted->commands_size() != 1) return absl::InternalError("the station did not take the command");
  return submitted;
}

absl::StatusOr<proto::CommandState> RunOnNode(Client& client, const Globals& g, const std::string& node,
                                              const std::string& method, const std::vector<std::string>& argv,
                                              const std::string& payload) {
  const absl::Time deadline = absl::Now() + g.timeout;
  auto submitted = SubmitToNode(client, g, node, method, argv, payload, g.timeout);
  if (!submitted.ok()) return submitted.status();
  const std::string id = submitted->commands(0).id();
  for (const proto::CommandState& s : submitted->states()) {
    if (IsTerminal(s.state())) return s;
  }
  while (absl::Now() < deadline) {
    auto states = client.Wait({id}, deadline - absl::Now(), /*any=*/true);
    if (!states.ok()) return states.status();
    for (const proto::CommandState& s : states->commands()) return s;
  }
  return absl::DeadlineExceededError(fmt::format(
      "{} did not answer within {}; command {} expires unrun if it is not delivered soon (stewardctl show {})", node,
      absl::FormatDuration(g.timeout), id, id));
}

std::string Failure(const proto::CommandState& s) {
  const proto::Ack& r = s.result();
  if (s.state() == proto::STATE_SUCCEEDED) return "";
  if (!r.error().empty()) return fmt::format("{} {}: {}", s.node(), StateName(s.state()), r.error());
  return fmt::format("{}: command {} {}", s.node(), s.id(), StateName(s.state()));
}

namespace {

std::string Bytes(uint64_t n) {
  if (n >= (uint64_t{1} << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(n) / (1 << 30));
  if (n >= (uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1 << 20));
  if (n >= 1024) return fmt::format("{:.1f} KiB", static_cast<double>(n) / 1024);
  return fmt::format("{} B", n);
}

std::string StatsLines(const proto::AgentStats& s) {
  std::string out;
  absl::StrAppend(&out, fmt::format("outbox: {} entries, {}, oldest {}\n", s.outbox_entries(), Bytes(s.outbox_bytes()),
                                    s.outbox_oldest_age_ms() > 0
                                        ? absl::FormatDuration(absl::Milliseconds(s.outbox_oldest_age_ms()))
                                        : "-"));
  absl::StrAppend(&out, fmt::format("log spool: {} batches, {}; {} lines dropped\n", s.log_spool_entries(),
                                    Bytes(s.log_spool_bytes()), s.log_dropped()));
  absl::StrAppend(&out, fmt::format("queues: {} of {} slots used; intake dropped {}; restarts {}\n", s.queue_depth(),
                                    s.queue_capacity(), s.intake_dropped(), s.restarts()));
  absl::StrAppend(&out, fmt::format("resources: RSS {}, CPU {:.2f} s, {} open fds, {} free under the data dir\n",
                                    Bytes(s.rss_bytes()), s.cpu_seconds(), s.open_fds(),
                                    Bytes(s.data_disk_free_bytes())));
  return out;
}

std::string LiveStatus(const proto::AgentStatus& st) {
  std::string out = fmt::format("{}: version {}, up {}, installation {}\n", Escape(st.node()), Escape(st.version()),
                                absl::FormatDuration(absl::Trunc(
                                    absl::Now() - absl::FromUnixMillis(st.started_unix_ms()), absl::Seconds(1))),
                                Escape(st.instance_id()));
  Table t({"PROCESS", "STATE", "QUEUE", "HANDLED", "FAILED", "RESTARTS", "RUNNING"});
  t.AlignRight(2);
  t.AlignRight(3);
  t.AlignRight(4);
  t.AlignRight(5);
  for (const proto::ProcessStatus& p : st.processes()) {
    std::string running = "-";
    if (!p.current_command().empty()) {
      running = absl::StrCat(Escape(p.current_command()), " for ",
                             absl::FormatDuration(absl::Trunc(
                                 absl::Now() - absl::FromUnixMillis(p.current_since_unix_ms()), absl::Seconds(1))));
    }
    t.AddRow({Escape(p.name()), Escape(p.state()),
              p.handler() ? fmt::format("{}/{}", p.queue_depth(), p.queue_capacity()) : "-",
              p.handler() ? absl::StrCat(p.handled()) : "-", p.handler() ? absl::StrCat(p.failed()) : "-",
              absl::StrCat(p.restarts()), running});
  }
  out += t.Render();
  for (const proto::ProcessStatus& p : st.processes()) {
    if (p.last_restart_reason().empty()) continue;
    absl::StrAppend(&out, fmt::format("  {}: last restart/stop {}: {}\n", Escape(p.name()),
                                      Ago(p.last_restart_unix_ms()), Escape(p.last_restart_reason())));
  }
  for (const proto::InputStatus& in : st.inputs()) {
    absl::StrAppend(&out, fmt::format("input {}: {}{}, {} dropped\n", Escape(in.name()),
                                      in.listening() ? "listening" : "NOT listening",
                                      in.port() != 0 ? absl::StrCat(" on port ", in.port()) : "", in.dropped()));
  }
  out += StatsLines(st.stats());
  if (!st.stats().config_hash().empty()) absl::StrAppend(&out, "configuration: ", Escape(st.stats().config_hash()), "\n");
  return out;
}

std::string CachedStatus(const proto::NodeInfo& n) {
  const proto::AgentStats& s = n.agent_stats();
  std::string out = fmt::format("{}: {} (last known status, from its hello of {}); version {}\n", Escape(n.name()),
                                NodeStatus(n), Ago(s.at_unix_ms() != 0 ? s.at_unix_ms() : n.last_heard_unix_ms()),
                                Escape(n.version()));
  Table t({"PROCESS", "STATE", "QUEUE", "RESTARTS", "RUNNING"});
  t.AlignRight(2);
  t.AlignRight(3);
  for (const proto::ProcessBrief& p : s.handlers()) {
    t.AddRow({Escape(p.name()), Escape(p.state()), absl::StrCat(p.queue_depth()), absl::StrCat(p.restarts()),
              p.current_command().empty() ? "-" : Escape(p.current_command())});
  }
  if (s.handlers_size() > 0) out += t.Render();
  out += StatsLines(s);
  if (!s.config_hash().empty()) absl::StrAppend(&out, "configuration: ", Escape(s.config_hash()), "\n");
  return out;
}

int Status(const Globals& g, const std::string& node, bool cached) {
  return WithClient(g, [&](Client& client) {
    if (cached) {
      auto nodes = client.Nodes(node, g.timeout);
      if (!nodes.ok()) return Fail(nodes.status());
      for (const proto::NodeInfo& n : nodes->nodes()) {
        if (n.name() != node) continue;
        if (!n.has_agent_stats()) return Fail(fmt::format("{} has sent no status yet", node));
        if (g.json) {
          PrintJson(n);
        } else {
          fmt::print("{}", CachedStatus(n));
        }
        return 0;
      }
      return Fail(fmt::format("no node {} is known to the station", node));
    }
    auto s = RunOnNode(client, g, node, kMethodStatus, {});
    if (!s.ok()) {
      return Fail(absl::StrCat(s.status().message(), " (the last known status: stewardctl status --cached ", node, ")"));
    }
    if (const std::string why = Failure(*s); !why.empty()) return Fail(why);
    proto::AgentStatus st;
    if (!st.ParseFromString(s->result().payload())) return Fail(fmt::format("{} sent a malformed status", node));
    if (g.json) {
      PrintJson(st);
    } else {
      fmt::print("{}", LiveStatus(st));
    }
    return 0;
  });
}


// ---- copy ----------------------------------------------------------------------------

// "NODE:/path" -> {NODE, /path}; nullopt for a local path.
std::optional<std::pair<std::string, std::string>> Remote(const std::string& spec) {
  const size_t colon = spec.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= spec.size() || spec[colon + 1] != '/') {
    return std::nullopt;
  }
  if (spec.substr(0, colon).find('/') != std::string::npos) return std::nullopt;
  return std::make_pair(spec.substr(0, colon), spec.substr(colon + 1));
}

// A chunk with its command fits the broker's max payload (and the station's replies).
size_t ChunkBytes(const Client& client) {
  const size_t max = client.MaxPayload();
  return max > (size_t{256} << 10) ? max - (size_t{128} << 10) : size_t{64} << 10;
}

std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }

// Progress on stderr for large files: at most once a second, and at the end.
class Progress {
 public:
  Progress(uint64_t total, bool json) : total_(total), show_(!json && total >= (uint64_t{8} << 20)) {}
  void At(uint64_t done, bool last = false) {
    if (!show_ || (!last && absl::Now() - shown_ < absl::Seconds(1))) return;
    shown_ = absl::Now();
    const double secs = std::max(absl::ToDoubleSeconds(absl::Now() - start_), 1e-3);
    fmt::print(stderr, "stewardctl: {} of {} ({:.0f}%), {:.1f} MiB/s\n", Bytes(done), Bytes(total_),
               total_ > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0,
               static_cast<double>(done) / (1 << 20) / secs);
  }

 private:
  const uint64_t total_;
  const bool show_;
  const absl::Time start_ = absl::Now();
  absl::Time shown_ = absl::InfinitePast();
};

// The number after "have " in a copy answer; nullopt when there is none.
std::optional<uint64_t> Have(const proto::CommandState& s) {
  const std::string& out = s.result().stdout();
  uint64_t n = 0;
  if (!absl::StartsWith(out, "have ") ||
      !absl::SimpleAtoi(absl::StripTrailingAsciiWhitespace(absl::string_view(out).substr(5)), &n)) {
    return std::nullopt;
  }
  return n;
}

// A copy command that did not run to its end (the agent stopped while it ran, it
// expired undelivered): asking again is safe, a chunk is written at its offset.
bool Retryable(const proto::CommandState& s) {
  if (s.result().outcome() == proto::OUTCOME_ERROR) return true;
  return s.state() != proto::STATE_FAILED && s.state() != proto::STATE_REJECTED;
}

// Chunks in flight at once, each sent by its own thread. Each chunk is a command the
// station commits to its ledger before it answers; one at a time, every chunk waited
// for its own commit. Several at once share the station's group commits and keep the
// agent busy; the agent takes chunks in any order ("have N" counts from 0, no gap).
constexpr int kWindow = 8;

// Local file -> node. Resumes where the node's part file ends (after a broken link, an
// agent restart, or a new run of the same copy); a chunk that did not get through is
// sent again until --wait passes.
int Push(Client& client, const Globals& g, const std::string& local, const std::string& node,
         const std::string& path, const std::string& mode, const std::string& owner, absl::Duration wait) {
  struct stat st {};
  if (::stat(local.c_str(), &st) != 0) return Fail(fmt::format("{}: {}", local, std::strerror(errno)));
  if (S_ISDIR(st.st_mode)) return Fail(fmt::format("{} is a directory (copy takes files)", local));
  if (!S_ISREG(st.st_mode)) return Fail(fmt::format("{} is not a regular file", local));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  absl::StatusOr<std::string> sha = signing::Sha256File(local);
  if (!sha.ok()) return Fail(sha.status());
  const std::string sha_hex = Hex(*sha);
  const int fd = ::open(local.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(fmt::format("{}: {}", local, std::strerror(errno)));
  const absl::Cleanup close_fd = [fd] { ::close(fd); };
  const size_t chunk_bytes = ChunkBytes(client);
  const absl::Time deadline = absl::Now() + wait;
  Progress progress(size, g.json);

  // What the senders share.
  absl::Mutex mu;
  std::deque<uint64_t> todo;   // chunk offsets not sent yet
  int busy = 0;                // senders with a chunk in flight
  bool done = false;           // the node said "done"
  bool restat = false;         // the node holds less than thought: ask it, start there
  std::optional<std::string> fatal;
  std::string last_error;
  uint64_t have = 0;

  // Sends one chunk and waits for its end; what happened goes into the shared state.
  auto send = [&](uint64_t offset) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_bytes, size - offset));
    std::string buf(n, '\0');
    if (::pread(fd, buf.data(), n, static_cast<off_t>(offset)) != static_cast<ssize_t>(n)) {
      absl::MutexLock lock(&mu);
      fatal = fmt::format("read {} failed", local);
      return;
    }
    std::vector<std::string> argv = {"put", path, absl::StrCat(offset), absl::StrCat(size), mode, sha_hex,
                                     Hex(signing::Sha256(buf))};
    if (!owner.empty()) argv.push_back(owner);
    auto s = RunOnNode(client, g, node, kMethodCopy, argv, buf);
    absl::MutexLock lock(&mu);
    if (!s.ok()) {  // not delivered in time: sent again
      last_error = std::string(s.status().message());
      todo.push_back(offset);
      return;
    }
    if (const std::string why = Failure(*s); !why.empty()) {
      last_error = why;
      if (Have(*s).has_value()) {
        restat = true;  // the part file is not what this copy thought
      } else if (Retryable(*s)) {
        todo.push_back(offset);
      } else {
        fatal = why;
      }
      return;
    }
    if (absl::StartsWith(s->result().stdout(), "done")) done = true;
    have = std::max(have, Have(*s).value_or(0));
  };
  auto sender = [&] {
    while (true) {
      uint64_t offset = 0;
      {
        absl::MutexLock lock(&mu);
        auto ready = [&] {
          mu.AssertHeld();
          return done || restat || fatal.has_value() || !todo.empty() || busy == 0;
        };
        mu.Await(absl::Condition(&ready));
        if (done || restat || fatal.has_value() || todo.empty()) return;
        offset = todo.front();
        todo.pop_front();
        ++busy;
      }
      send(offset);
      absl::MutexLock lock(&mu);
      --busy;
    }
  };

  while (true) {
    if (absl::Now() > deadline) {
      absl::MutexLock lock(&mu);
      return Fail(fmt::format("copy to {}:{} not finished within {}: {} (run it again to resume)", node, path,
                              absl::FormatDuration(wait), last_error));
    }
    auto s = RunOnNode(client, g, node, kMethodCopy, {"stat", path, absl::StrCat(size), sha_hex});
    if (!s.ok()) {
      last_error = std::string(s.status().message());
      absl::SleepFor(absl::Milliseconds(500));
      continue;
    }
    if (const std::string why = Failure(*s); !why.empty()) {
      if (!Retryable(*s)) return Fail(why);
      last_error = why;
      absl::SleepFor(absl::Milliseconds(200));
      continue;
    }
    uint64_t from = Have(*s).value_or(0);
    if (from > size) from = 0;
    {
      absl::MutexLock lock(&mu);
      restat = false;
      have = from;
    }
    // The first chunk makes the part file: it goes alone, the rest then all at once.
    if (from == 0) {
      send(0);
      from = std::min<uint64_t>(chunk_bytes, size);
    }
    {
      absl::MutexLock lock(&mu);
      if (fatal.has_value()) return Fail(*fatal);
      if (done) break;
      if (restat || have < from) continue;
      todo.clear();
      for (uint64_t off = from; off < size; off += chunk_bytes) todo.push_back(off);
    }
    std::vector<std::thread> senders;
    for (int i = 0; i < kWindow; ++i) senders.emplace_back(sender);
    while (true) {  // progress on this thread, while the senders work
      absl::MutexLock lock(&mu);
      auto finished = [&] {
        mu.AssertHeld();
        return done || restat || fatal.has_value() || (todo.empty() && busy == 0);
      };
      if (mu.AwaitWithTimeout(absl::Condition(&finished), absl::Seconds(1))) break;
      progress.At(have);
      if (absl::Now() > deadline) {  // the senders stop after the chunk they send
        restat = true;
        break;
      }
    }
    for (std::thread& t : senders) t.join();
    absl::MutexLock lock(&mu);
    if (fatal.has_value()) return Fail(*fatal);
    if (done) break;
    // Every chunk went and the node is not done (it restarted and forgot chunks that
    // came out of order, or the part file changed): ask it where it is, go on there.
  }
  progress.At(size, true);
  if (!g.json) fmt::print("{}:{}: {} bytes, sha256 {}\n", Escape(node), Escape(path), size, sha_hex);
  return 0;
}

// Node -> local file: chunk by chunk into DEST.steward-part, each chunk's hash checked,
// then the whole file's, then renamed into place.
int Pull(Client& client, const Globals& g, const std::string& node, const std::string& path,
         const std::string& local, const std::string& mode, const std::string& owner_spec, absl::Duration wait) {
  std::optional<Owner> owner;
  if (!owner_spec.empty()) {
    absl::StatusOr<Owner> o = ResolveOwner(owner_spec);
    if (!o.ok()) return Fail(o.status());
    if (absl::Status can = CheckCanChown(*o); !can.ok()) return Fail(absl::StrCat("owner ", owner_spec, ": stewardctl ", can.message()));
    owner = *o;
  }
  if (struct stat st {}; ::stat(local.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return Fail(fmt::format("{} is a directory: name the file to write", local));
  }
  const std::string part = local + ".steward-part";
  std::ofstream out(part, std::ios::binary | std::ios::trunc);
  if (!out) return Fail(fmt::format("cannot write {}: {}", part, std::strerror(errno)));
  const size_t chunk_bytes = ChunkBytes(client);
  const absl::Time deadline = absl::Now() + wait;
  uint64_t offset = 0;
  uint64_t size = 0;
  std::string sha_hex;
  std::optional<Progress> progress;
  std::string last_error;
  while (sha_hex.empty() || offset < size) {
    if (absl::Now() > deadline) {
      ::unlink(part.c_str());
      return Fail(fmt::format("copy of {}:{} not finished within {}: {}", node, path, absl::FormatDuration(wait),
                              last_error));
    }
    auto s = RunOnNode(client, g, node, kMethodCopy, {"get", path, absl::StrCat(offset), absl::StrCat(chunk_bytes)});
    if (!s.ok()) {
      last_error = std::string(s.status().message());
      continue;
    }
    if (const std::string why = Failure(*s); !why.empty()) {
      last_error = why;
      if (Retryable(*s)) {
        absl::SleepFor(absl::Milliseconds(200));
        continue;
      }
      ::unlink(part.c_str());
      return Fail(why);
    }
    // "size S chunk H [sha256 W]"
    const std::vector<std::string> words = absl::StrSplit(absl::StripTrailingAsciiWhitespace(s->result().stdout()), ' ');
    const std::string& data = s->result().payload();
    if (words.size() < 4 || words[0] != "size" || !absl::SimpleAtoi(words[1], &size) ||
        words[3] != Hex(signing::Sha256(data))) {
      ::unlink(part.c_str());
      return Fail(fmt::format("chunk at {} of {}:{} arrived damaged", offset, node, path));
    }
    if (offset == 0) {
      if (words.size() < 6) return Fail("the node did not send the file's hash");
      sha_hex = words[5];
      progress.emplace(size, g.json);
    }
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    offset += data.size();
    progress->At(offset);
    if (data.empty() && offset < size) return Fail(fmt::format("{}:{} shrank while it was copied", node, path));
  }
  out.close();
  if (!out) return Fail(fmt::format("write {} failed (disk full?)", part));
  absl::StatusOr<std::string> got = signing::Sha256File(part);
  if (!got.ok() || Hex(*got) != sha_hex) {
    ::unlink(part.c_str());
    return Fail(fmt::format("{}:{} changed while it was copied (SHA-256 differs); nothing written", node, path));
  }
  uint32_t m = 0644;
  if (!mode.empty()) (void)absl::numbers_internal::safe_strtou32_base(mode, &m, 8);
  if (owner.has_value() && ::chown(part.c_str(), owner->uid, owner->gid) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(part.c_str());
    return Fail(fmt::format("chown {}: {}", part, why));
  }
  ::chmod(part.c_str(), static_cast<mode_t>(m));
  if (::rename(part.c_str(), local.c_str()) != 0) return Fail(fmt::format("rename to {}: {}", local, std::strerror(errno)));
  progress->At(size, true);
  if (!g.json) fmt::print("{}: {} bytes, sha256 {}\n", Escape(local), size, sha_hex);
  return 0;
}

}  // namespace

Runner SetupCopy(CLI::App& cmd) {
  struct Options {
    std::string from;
    std::string to;
    std::string mode;
    std::string owner;
    absl::Duration wait = absl::Minutes(10);
  };
  auto o = std::make_shared<Options>();
  cmd.add_option("FROM", o->from, "A local file, or NODE:/path")->required();
  cmd.add_option("TO", o->to, "NODE:/path, or a local file")->required();
  cmd.add_option("--mode", o->mode, "Mode of the written file, octal (default: the local file's to a node, 0644 here)")
      ->check(CLI::Validator(
          [](std::string& m) -> std::string {
            uint32_t v = 0;
            return absl::numbers_internal::safe_strtou32_base(m, &v, 8) && v <= 07777 ? "" : "not an octal mode";
          },
          "MODE"));
  cmd.add_option("--owner", o->owner,
                 "Owner of the written file: USER:GROUP, USER or :GROUP, names or numbers, resolved where it "
                 "is written (default: the writer's)");
  cli::AddDuration(cmd, "--wait", &o->wait, "Give up after this long (a copy resumes when run again)")
      ->default_str("10m");
  return [o, &cmd](const Globals& g) {
    const auto from = Remote(o->from);
    const auto to = Remote(o->to);
    if (from.has_value() == to.has_value()) {
      return cli::UsageError(cmd, "one of FROM and TO must be NODE:/path, the other a local file");
    }
    return WithClient(g, [&](Client& client) {
      if (to.has_value()) {
        std::string mode = o->mode;
        if (mode.empty()) {
          struct stat st {};
          mode = fmt::format("{:o}", ::stat(o->from.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644);
        }
        return Push(client, g, o->from, to->first, to->second, mode, o->owner, o->wait);
      }
      return Pull(client, g, from->first, from->second, o->to, o->mode, o->owner, o->wait);
    });
  };
}

Runner SetupStatus(CLI::App& cmd) {
  struct Options {
    std::string node;
    bool cached = false;
  };
  auto o = std::make_shared<Options>();
  cmd.add_option("NODE", o->node, "The node")->required();
  cmd.add_flag("--cached", o->cached,
               "The last known status, from the node's latest hello (works while it is offline)");
  return [o](const Globals& g) { return Status(g, o->node, o->cached); };
}

Runner SetupProcess(CLI::App& cmd) {
  struct Options {
    std::string node;
    std::string name;
    bool cancel_running = false;
  };
  auto o = std::make_shared<Options>();
  cmd.require_subcommand(1);
  CLI::App* stop = cmd.add_subcommand(
      "stop", "Stop a command handler: no thread, its commands are rejected \"stopped by operator\", across restarts");
  CLI::App* start = cmd.add_subcommand("start", "Start a stopped command handler again");
  for (CLI::App* sub : {stop, start}) {
    sub->add_option("NODE", o->node, "The node")->required();
    sub->add_option("PROCESS", o->name, "METHOD/DOMAIN, as `stewardctl status NODE` names it")->required();
  }
  stop->add_flag("--cancel-running", o->cancel_running,
                 "Kill the command it is running (without it, a busy handler is not stopped)");
  return [o, stop](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      std::vector<std::string> argv = {stop->parsed() ? "stop" : "start", o->name};
      if (o->cancel_running) argv.push_back("--cancel-running");
      auto s = RunOnNode(client, g, o->node, kMethodProcess, argv);
      if (!s.ok()) return Fail(s.status());
      if (g.json) PrintJson(*s);
      if (const std::string why = Failure(*s); !why.empty()) {
        if (!g.json) fmt::print(stderr, "stewardctl: {}\n", Escape(why));
        return 1;
      }
      if (!g.json) {
        fmt::print("{}: {}\n", Escape(o->node), Escape(absl::StripTrailingAsciiWhitespace(s->result().stdout())));
      }
      return 0;
    });
  };
}

Runner SetupConfig(CLI::App& cmd) {
  struct Options {
    std::string node;
    std::vector<std::string> assignments;
    std::string file;
  };
  auto o = std::make_shared<Options>();
  cmd.require_subcommand(1);
  CLI::App* show = cmd.add_subcommand("show", "The agent's effective configuration, where each value came from, its hash");
  CLI::App* set = cmd.add_subcommand("set", "Set keys in the agent's configuration file (validated, then reloaded)");
  CLI::App* push = cmd.add_subcommand("push", "Replace the agent's configuration file (validated, then reloaded)");
  for (CLI::App* sub : {show, set, push}) sub->add_option("NODE", o->node, "The node")->required();
  set->add_option("KEY=VALUE", o->assignments, "heartbeat=10s, syslog.tcp=0.0.0.0:6514 (a list: A,B)")->required();
  push->add_option("FILE", o->file, "A TOML file, as /etc/steward/agent.toml")->required()->check(CLI::ExistingFile);
  return [o, show, set](const Globals& g) {
    return WithClient(g, [&](Client& client) {
      std::vector<std::string> argv;
      std::string payload;
      if (show->parsed()) {
        argv = {"show"};
      } else if (set->parsed()) {
        argv = {"set"};
        argv.insert(argv.end(), o->assignments.begin(), o->assignments.end());
      } else {
        argv = {"push"};
        std::ifstream in(o->file, std::ios::binary);
        std::stringstream text;
        text << in.rdbuf();
        if (!in) return Fail(fmt::format("cannot read {}", o->file));
        payload = text.str();
      }
      auto s = RunOnNode(client, g, o->node, kMethodConfig, argv, payload);
      if (!s.ok()) return Fail(s.status());
      if (g.json) PrintJson(*s);
      if (const std::string why = Failure(*s); !why.empty()) {
        if (!g.json) fmt::print(stderr, "stewardctl: {}\n", Escape(why));
        return 1;
      }
      if (!g.json) std::fwrite(s->result().stdout().data(), 1, s->result().stdout().size(), stdout);
      return 0;
    });
  };
}

}  // namespace steward::ctl
