// stewardctl copy: a file to or from a node, in chunks that are each a `copy` command
// to the node's agent (through the station, like every agent operation: signed,
// ACL-checked, in the ledger and the audit), SHA-256 checked per chunk and whole,
// resumable, written to a part file and renamed into place.
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
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/atomic_write.h"
#include "common/owner.h"
#include "common/protocol.h"
#include "common/signing.h"
#include "ctl/agentops.h"
#include "ctl/ctl.h"
#include "ctl/render_json.h"
#include "ctl/render_text.h"


namespace steward::ctl {
namespace {

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

// The Globals for one step of a copy that must end by `deadline` (its --wait): a step
// waits --timeout, but not past the copy's end (at least a second, to be answered at
// all).
Globals Within(const Globals& g, absl::Time deadline) {
  Globals out = g;
  out.timeout = std::min(g.timeout, std::max(deadline - absl::Now(), absl::Seconds(1)));
  return out;
}

// The node refused the copy (a directory as the target, a path outside its ACL, a file
// it does not have): exit 1 with the reason, as docs/agent-operations.md says; 255 is
// for a copy whose commands did not run.
int Refused(const std::string& why) {
  (void)Fail(why);
  return 1;
}

// Whether the copy can start with `node`: "" when it can, else why not. A node the
// station has never heard of (a typo) ends it at once; an offline one is said once, and
// waited for up to --wait (a copy resumes when it comes back).
std::string CheckCopyNode(Client& client, const Globals& g, const std::string& node, absl::Duration wait) {
  auto nodes = client.Nodes(node, g.timeout);
  if (!nodes.ok()) {
    if (absl::StrContains(nodes.status().message(), "unknown node")) {
      return fmt::format("unknown node {}: the station has never heard of it (stewardctl nodes)", node);
    }
    return "";  // (the copy's own requests say what is wrong with the station)
  }
  for (const proto::NodeInfo& n : nodes->nodes()) {
    if (n.name() == node && n.status() != proto::NODE_ONLINE && !g.json) {
      fmt::print(stderr, "copy: {} is {}; waiting for it up to --wait ({})\n", node,
                 absl::AsciiStrToLower(proto::NodeStatus_Name(n.status()).substr(5)), absl::FormatDuration(wait));
    }
  }
  return "";
}

// Chunks in flight at once, each sent by its own thread. Each chunk is a command the
// station commits to its ledger before it answers; one at a time, every chunk waited
// for its own commit. Several at once share the station's group commits and keep the
// agent busy; the agent takes chunks in any order ("have N" counts from 0, no gap).
constexpr int kWindow = 16;

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
  // --wait bounds the whole copy, the wait for an offline node included.
  const absl::Time deadline = absl::Now() + wait;
  if (const std::string why = CheckCopyNode(client, g, node, wait); !why.empty()) return Fail(why);
  const size_t chunk_bytes = ChunkBytes(client);
  Progress progress(size, g.json);

  // What the senders share.
  absl::Mutex mu;
  std::deque<uint64_t> todo;   // chunk offsets not sent yet
  int busy = 0;                // senders with a chunk in flight
  bool done = false;           // the node said "done"
  bool restat = false;         // the node holds less than thought: ask it, start there
  std::optional<std::string> fatal;
  bool refused = false;        // `fatal` is the node's refusal
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
    auto s = RunOnNode(client, Within(g, deadline), node, kMethodCopy, argv, std::move(buf));
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
        refused = true;
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
    auto s = RunOnNode(client, Within(g, deadline), node, kMethodCopy, {"stat", path, absl::StrCat(size), sha_hex});
    if (!s.ok()) {
      last_error = std::string(s.status().message());
      absl::SleepFor(absl::Milliseconds(500));
      continue;
    }
    if (const std::string why = Failure(*s); !why.empty()) {
      if (!Retryable(*s)) return Refused(why);
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
      if (fatal.has_value()) return refused ? Refused(*fatal) : Fail(*fatal);
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
    if (fatal.has_value()) return refused ? Refused(*fatal) : Fail(*fatal);
    if (done) break;
    // Every chunk went and the node is not done (it restarted and forgot chunks that
    // came out of order, or the part file changed): ask it where it is, go on there.
  }
  progress.At(size, true);
  if (!g.json) fmt::print("{}:{}: {} bytes, sha256 {}\n", Escape(node), Escape(path), size, sha_hex);
  return 0;
}

// The source a pull's part file holds (see Pull), nullopt when unreadable.
struct PullSource {
  std::string node, path, sha256;
  uint64_t size = 0;
};
std::optional<PullSource> ReadPullSource(const std::string& file) {
  std::ifstream in(file);
  PullSource s;
  std::string size;
  if (!std::getline(in, s.node) || !std::getline(in, s.path) || !std::getline(in, size) ||
      !std::getline(in, s.sha256) || !absl::SimpleAtoi(size, &s.size)) {
    return std::nullopt;
  }
  return s;
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
  // --wait bounds the whole copy, the wait for an offline node included.
  const absl::Time deadline = absl::Now() + wait;
  if (const std::string why = CheckCopyNode(client, g, node, wait); !why.empty()) return Fail(why);
  const std::string part = local + ".steward-part";
  // What the part file holds: "NODE\nPATH\nSIZE\nSHA256\n" of the source, written
  // once its first chunk came. A later run for the same source resumes at the part's
  // end when the node's file still has that size and SHA-256; else it starts over.
  const std::string source = part + ".source";
  auto discard = [&] {
    ::unlink(part.c_str());
    ::unlink(source.c_str());
  };
  uint64_t offset = 0;
  uint64_t size = 0;
  std::string sha_hex;
  std::optional<Progress> progress;
  if (std::optional<PullSource> had = ReadPullSource(source);
      had.has_value() && had->node == node && had->path == path) {
    // The whole file's hash comes with offset 0: a zero-length read asks for it alone.
    auto s = RunOnNode(client, Within(g, deadline), node, kMethodCopy, {"get", path, "0", "0"});
    const std::vector<std::string> words =
        s.ok() && Failure(*s).empty()
            ? std::vector<std::string>(absl::StrSplit(absl::StripTrailingAsciiWhitespace(s->result().stdout()), ' '))
            : std::vector<std::string>();
    struct stat pst {};
    if (words.size() >= 6 && words[1] == absl::StrCat(had->size) && words[5] == had->sha256 &&
        ::stat(part.c_str(), &pst) == 0 && static_cast<uint64_t>(pst.st_size) <= had->size) {
      offset = static_cast<uint64_t>(pst.st_size);
      size = had->size;
      sha_hex = had->sha256;
      progress.emplace(size, g.json);
      if (!g.json) fmt::print(stderr, "resuming at {} of {} bytes ({} holds them)\n", offset, size, part);
    }
  }
  std::ofstream out(part, std::ios::binary | (offset > 0 ? std::ios::app : std::ios::trunc));
  if (!out) return Fail(fmt::format("cannot write {}: {}", part, std::strerror(errno)));
  if (offset == 0) ::unlink(source.c_str());
  const size_t chunk_bytes = ChunkBytes(client);
  std::string last_error;
  while (sha_hex.empty() || offset < size) {
    if (absl::Now() > deadline) {
      // The part file stays: the next run resumes there.
      return Fail(fmt::format("copy of {}:{} not finished within {}: {} (run it again to resume)", node, path,
                              absl::FormatDuration(wait), last_error));
    }
    auto s = RunOnNode(client, Within(g, deadline), node, kMethodCopy,
                       {"get", path, absl::StrCat(offset), absl::StrCat(chunk_bytes)});
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
      discard();
      return Refused(why);
    }
    // "size S chunk H [sha256 W]"
    const std::vector<std::string> words = absl::StrSplit(absl::StripTrailingAsciiWhitespace(s->result().stdout()), ' ');
    const std::string& data = s->result().payload();
    if (words.size() < 4 || words[0] != "size" || !absl::SimpleAtoi(words[1], &size) ||
        words[3] != Hex(signing::Sha256(data))) {
      discard();
      return Fail(fmt::format("chunk at {} of {}:{} arrived damaged", offset, node, path));
    }
    if (offset == 0) {
      if (words.size() < 6) return Fail("the node did not send the file's hash");
      sha_hex = words[5];
      progress.emplace(size, g.json);
      if (absl::Status st = WriteFileAtomically(source, absl::StrCat(node, "\n", path, "\n", size, "\n", sha_hex, "\n"));
          !st.ok()) {
        return Fail(st);
      }
    }
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();  // what a killed run leaves is whole chunks and a prefix of one
    offset += data.size();
    progress->At(offset);
    if (data.empty() && offset < size) return Fail(fmt::format("{}:{} shrank while it was copied", node, path));
  }
  out.close();
  if (!out) return Fail(fmt::format("write {} failed (disk full?)", part));
  absl::StatusOr<std::string> got = signing::Sha256File(part);
  if (!got.ok() || Hex(*got) != sha_hex) {
    discard();
    return Fail(fmt::format("{}:{} changed while it was copied (SHA-256 differs); nothing written", node, path));
  }
  uint32_t m = 0644;
  if (!mode.empty()) (void)absl::numbers_internal::safe_strtou32_base(mode, &m, 8);
  if (owner.has_value() && ::chown(part.c_str(), owner->uid, owner->gid) != 0) {
    const std::string why = std::strerror(errno);
    discard();
    return Fail(fmt::format("chown {}: {}", part, why));
  }
  ::chmod(part.c_str(), static_cast<mode_t>(m));
  if (::rename(part.c_str(), local.c_str()) != 0) return Fail(fmt::format("rename to {}: {}", local, std::strerror(errno)));
  ::unlink(source.c_str());
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

}  // namespace steward::ctl
