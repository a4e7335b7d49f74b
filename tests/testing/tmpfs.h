// Tmpfs: a small tmpfs mounted for a test (a disk that fills up), unmounted when the
// test ends. Needs the right to mount (root); Mount returns nullptr with the reason
// otherwise, and the test says it was skipped.
#pragma once

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace steward::testing {

class Tmpfs {
 public:
  static std::unique_ptr<Tmpfs> Mount(const std::filesystem::path& at, size_t bytes, std::string* why) {
    std::filesystem::create_directories(at);
    const std::string opts = "size=" + std::to_string(bytes) + ",mode=0755";
    if (::mount("tmpfs", at.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
      *why = "cannot mount a tmpfs at " + at.string() + ": " + std::strerror(errno);
      return nullptr;
    }
    return std::unique_ptr<Tmpfs>(new Tmpfs(at));
  }
  ~Tmpfs() { ::umount2(path_.c_str(), MNT_DETACH); }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;

  // Fill writes a file until the disk is full; Free removes it.
  void Fill() {
    std::ofstream out(path_ / "fill", std::ios::binary);
    const std::vector<char> chunk(64 * 1024, 'x');
    while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) out.flush();
  }
  void Free() { std::filesystem::remove(path_ / "fill"); }

 private:
  explicit Tmpfs(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

}  // namespace steward::testing
