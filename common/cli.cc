// Implementation of the mains' shared helpers.
#include "common/cli.h"

#include <pthread.h>

#include <cstdlib>
#include <cstring>

namespace steward {

std::vector<char*> NormalizeFlags(int argc, char** argv, std::vector<std::string>& storage) {
  storage.assign(argv, argv + argc);
  bool after_dashes = false;
  for (size_t i = 1; i < storage.size(); ++i) {
    std::string& a = storage[i];
    if (after_dashes) continue;
    if (a == "--") {
      after_dashes = true;
      continue;
    }
    if (a.size() > 2 && a[0] == '-' && a[1] == '-') {
      const size_t end = a.find('=');
      for (size_t j = 2; j < a.size() && j < end; ++j) {
        if (a[j] == '-') a[j] = '_';
      }
    }
  }
  std::vector<char*> out;
  for (std::string& s : storage) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::string DefaultNatsUrl() {
  const char* env = std::getenv("STEWARD_NATS_URL");
  return env != nullptr && *env != '\0' ? env : "nats://127.0.0.1:4222";
}

sigset_t BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

}  // namespace steward
