// The broker's CA and server certificate, made by running the openssl command line in a
// private directory (ctl/broker_tls.h).
#include "ctl/broker_tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/atomic_write.h"
#include "common/creds.h"
#include "common/spawn.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace steward::ctl {
namespace {

// How long one openssl step may take before it is killed.
constexpr absl::Duration kOpensslDeadline = absl::Seconds(30);
// How much of openssl's output is kept for an error message.
constexpr size_t kMaxOpensslOutput = 16 * 1024;

using Fd = ::steward::UniqueFd;

void InitSodium() {
  if (sodium_init() < 0) abort();  // Broken invariant: no entropy source.
}

// Random hex digits for names and serial numbers.
std::string RandomHex(size_t bytes) {
  InitSodium();
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  raw[0] = static_cast<char>(raw[0] & 0x7f);  // Serial numbers must be positive.
  std::string hex(bytes * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                 raw.size());
  hex.pop_back();
  return hex;
}
// "IP:<addr>" or "DNS:<name>" for a subjectAltName; InvalidArgument for anything else.
absl::StatusOr<std::string> AltName(const std::string& host) {
  unsigned char addr[sizeof(in6_addr)];
  if (::inet_pton(AF_INET, host.c_str(), addr) == 1 ||
      ::inet_pton(AF_INET6, host.c_str(), addr) == 1) {
    return absl::StrCat("IP:", host);
  }
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("host \"", absl::CEscape(host), "\" ", why,
                     " (want an IP address or a DNS name)"));
  };
  if (host.empty()) return bad("is empty");
  if (host.size() > 253) return bad("is longer than 253 bytes");
  const std::vector<absl::string_view> labels = absl::StrSplit(host, '.');
  for (size_t i = 0; i < labels.size(); ++i) {
    const absl::string_view label = labels[i];
    if (i == 0 && label == "*" && labels.size() > 2) continue;  // *.example.com
    if (label.empty() || label.size() > 63) return bad("has an empty or too long label");
    if (label.front() == '-' || label.back() == '-') return bad("has a label at '-'");
    for (const char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
        return bad("has a character other than letters, digits, '-' and '.'");
      }
    }
  }
  return absl::StrCat("DNS:", host);
}

// Runs `openssl <args...>` with stdin from /dev/null and stdout+stderr captured; OK
// when it exits 0.
absl::Status RunOpenssl(const std::vector<std::string>& args) {
  STEWARD_ASSIGN_OR_RETURN(SpawnPipe out_pipe, MakeSpawnPipe());
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string what = absl::StrCat("openssl ", args.empty() ? "" : args[0]);
  absl::StatusOr<pid_t> spawned =
      SpawnProcess({.argv = std::move(argv),
                    .stdout_fd = out_pipe.write.get(),
                    .stderr_fd = out_pipe.write.get()},
                   absl::StrCat("cannot run ", what));
  if (absl::IsNotFound(spawned.status())) {
    return absl::NotFoundError("openssl is not installed (not found on PATH)");
  }
  STEWARD_RETURN_IF_ERROR(spawned.status());
  const pid_t pid = *spawned;
  const Fd read_end = std::move(out_pipe.read);
  out_pipe.write.Reset();  // EOF arrives when openssl exits.

  // Output until EOF (openssl exited) or the deadline; on any failure the child is
  // killed. It is always reaped.
  std::string output;
  absl::Status io = absl::OkStatus();
  const absl::Time deadline = absl::Now() + kOpensslDeadline;
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      io = absl::DeadlineExceededError(
          absl::StrCat(what, " did not finish within ", absl::FormatDuration(kOpensslDeadline)));
      break;
    }
    pollfd pfd{read_end.get(), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno != EINTR) {
      io = absl::ErrnoToStatus(errno, "poll");
      break;
    }
    if (ready <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      io = absl::ErrnoToStatus(errno, absl::StrCat("read output of ", what));
      break;
    }
    if (n == 0) break;
    if (output.size() < kMaxOpensslOutput) {
      output.append(buf, std::min(static_cast<size_t>(n), kMaxOpensslOutput - output.size()));
    }
  }
  if (!io.ok()) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return absl::ErrnoToStatus(errno, "waitpid openssl");
  }
  STEWARD_RETURN_IF_ERROR(io);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  const std::string how = WIFEXITED(status)
                              ? absl::StrCat("exit status ", WEXITSTATUS(status))
                              : absl::StrCat("signal ", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return absl::InternalError(
      absl::StrCat(what, " failed (", how, "): ", absl::StripAsciiWhitespace(output)));
}

// The openssl configuration for the CA and the server certificate extensions.
std::string OpensslConfig(const std::string& ca_name, const std::vector<std::string>& alt_names) {
  return absl::StrCat(
      "[req]\n"
      "distinguished_name = dn\n"
      "prompt = no\n"
      "[dn]\n"
      "CN = ", ca_name, "\n"
      "[v3_ca]\n"
      "basicConstraints = critical, CA:TRUE, pathlen:0\n"
      "keyUsage = critical, keyCertSign, cRLSign\n"
      "subjectKeyIdentifier = hash\n"
      "[v3_server]\n"
      "basicConstraints = critical, CA:FALSE\n"
      "keyUsage = critical, digitalSignature\n"
      // clientAuth too: cluster routes are mutual TLS with the one certificate.
      "extendedKeyUsage = serverAuth, clientAuth\n"
      "subjectAltName = ", absl::StrJoin(alt_names, ", "), "\n"
      "subjectKeyIdentifier = hash\n"
      "authorityKeyIdentifier = keyid\n");
}

absl::Status CheckAbsent(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(absl::StrCat(path, " exists; refusing to overwrite it"));
  }
  if (errno != ENOENT) return absl::ErrnoToStatus(errno, absl::StrCat("stat ", path));
  return absl::OkStatus();
}

// The five openssl steps, writing ca.key, ca.pem, server.key, server.pem into `work`.
absl::Status MakeCertificates(const std::string& work, const std::vector<std::string>& alt_names) {
  const std::string cnf = work + "/openssl.cnf";
  STEWARD_RETURN_IF_ERROR(
      ::steward::WritePrivateFile(cnf, OpensslConfig(absl::StrCat("steward CA ", RandomHex(4)), alt_names)));
  const std::vector<std::string> keygen = {"genpkey", "-algorithm", "EC", "-pkeyopt",
                                           "ec_paramgen_curve:P-256", "-out"};
  std::vector<std::string> ca_key = keygen;
  ca_key.push_back(work + "/ca.key");
  STEWARD_RETURN_IF_ERROR(RunOpenssl(ca_key));
  STEWARD_RETURN_IF_ERROR(RunOpenssl(
      {"req", "-new", "-x509", "-config", cnf, "-extensions", "v3_ca", "-key", work + "/ca.key",
       "-sha256", "-days", "3650", "-set_serial", "0x" + RandomHex(16), "-out", work + "/ca.pem"}));
  std::vector<std::string> server_key = keygen;
  server_key.push_back(work + "/server.key");
  STEWARD_RETURN_IF_ERROR(RunOpenssl(server_key));
  STEWARD_RETURN_IF_ERROR(RunOpenssl({"req", "-new", "-config", cnf, "-key", work + "/server.key",
                                      "-subj", "/CN=steward nats-server", "-out",
                                      work + "/server.csr"}));
  return RunOpenssl({"x509", "-req", "-in", work + "/server.csr", "-CA", work + "/ca.pem",
                     "-CAkey", work + "/ca.key", "-set_serial", "0x" + RandomHex(16), "-days",
                     "825", "-sha256", "-extfile", cnf, "-extensions", "v3_server", "-out",
                     work + "/server.pem"});
}

}  // namespace

absl::Status GenerateTls(const std::string& dir, const std::vector<std::string>& hosts) {
  if (hosts.empty()) return absl::InvalidArgumentError("GenerateTls needs at least one host");
  std::vector<std::string> alt_names;
  for (const std::string& host : hosts) {
    STEWARD_ASSIGN_OR_RETURN(std::string alt, AltName(host));
    alt_names.push_back(std::move(alt));
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return absl::ErrnoToStatus(errno, "stat " + dir);
  if (!S_ISDIR(st.st_mode)) return absl::InvalidArgumentError(dir + " is not a directory");
  static constexpr const char* kFiles[] = {"ca.key", "ca.pem", "server.key", "server.pem"};
  for (const char* file : kFiles) STEWARD_RETURN_IF_ERROR(CheckAbsent(dir + "/" + file));

  // A private (0700) working directory: the keys are never visible to others, and
  // nothing appears in `dir` unless every step succeeded.
  std::string work_template = dir + "/.steward-tls-XXXXXX";
  if (::mkdtemp(work_template.data()) == nullptr) {
    return absl::ErrnoToStatus(errno, "mkdtemp in " + dir);
  }
  const std::string work = work_template;
  absl::Cleanup remove_work = [&work] {
    std::error_code ignored;
    std::filesystem::remove_all(work, ignored);
  };
  STEWARD_RETURN_IF_ERROR(MakeCertificates(work, alt_names));

  std::vector<std::string> installed;
  absl::Cleanup remove_on_failure = [&installed] {
    for (const std::string& path : installed) ::unlink(path.c_str());
  };
  for (const char* file : kFiles) {
    const std::string to = dir + "/" + file;
    const mode_t mode = absl::EndsWith(file, ".key") ? 0600 : 0644;
    STEWARD_RETURN_IF_ERROR(
        InstallFile(work + "/" + file, to, {.mode = mode, .if_exists = IfExists::kFail}));
    installed.push_back(to);
  }
  std::move(remove_on_failure).Cancel();
  return absl::OkStatus();
}

}  // namespace steward::ctl
