// socket_owners(): which process holds which socket, from /proc/PID/fd/N -> "socket:[INODE]".
// Processes come and go during the scan: a directory or link that has vanished (ENOENT,
// ESRCH) or that we may not read (EACCES) is skipped, never an error.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <optional>
#include <string>
#include <cstring>
#include <string_view>
#include <unordered_set>

#include "socketeer/fd.hpp"
#include "socketeer/sock_diag.hpp"

namespace socketeer {
namespace {

std::optional<int> number(std::string_view text) {
  int value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

struct Directory {
  DIR* dir;
  explicit Directory(int fd) : dir(fd >= 0 ? ::fdopendir(fd) : nullptr) {
    if (!dir && fd >= 0) ::close(fd);
  }
  ~Directory() {
    if (dir) ::closedir(dir);
  }
  Directory(const Directory&) = delete;
  Directory& operator=(const Directory&) = delete;
};

std::string process_name(int proc_fd, int pid) {
  char path[32];
  std::snprintf(path, sizeof path, "%d/comm", pid);
  Fd file(::openat(proc_fd, path, O_RDONLY | O_CLOEXEC));
  if (!file) return {};
  char name[64];
  ssize_t n = ::read(file.get(), name, sizeof name);
  if (n <= 0) return {};
  std::string_view text(name, static_cast<size_t>(n));
  if (text.ends_with('\n')) text.remove_suffix(1);
  return std::string(text);
}

}  // namespace

std::unordered_multimap<uint64_t, SocketOwner> socket_owners(const std::vector<uint64_t>& inodes) {
  std::unordered_set<uint64_t> wanted(inodes.begin(), inodes.end());
  std::unordered_multimap<uint64_t, SocketOwner> owners;
  Directory proc(::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!proc.dir) throw_error(errno, "open", "/proc");
  constexpr std::string_view prefix = "socket:[";
  char link[64];
  char fd_path[32];
  while (dirent* process = ::readdir(proc.dir)) {
    auto pid = number(process->d_name);
    if (!pid) continue;
    std::snprintf(fd_path, sizeof fd_path, "%d/fd", *pid);
    Directory fds(::openat(::dirfd(proc.dir), fd_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fds.dir) continue;  // exited, or not ours to read
    std::optional<std::string> name;  // read once, for a process that holds a wanted socket
    while (dirent* entry = ::readdir(fds.dir)) {
      auto fd = number(entry->d_name);
      if (!fd) continue;
      ssize_t n = ::readlinkat(::dirfd(fds.dir), entry->d_name, link, sizeof link);
      if (n <= 0 || static_cast<size_t>(n) >= sizeof link) continue;
      std::string_view target(link, static_cast<size_t>(n));
      if (!target.starts_with(prefix) || !target.ends_with(']')) continue;
      uint64_t inode = 0;
      auto digits = target.substr(prefix.size(), target.size() - prefix.size() - 1);
      auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), inode);
      if (error != std::errc() || end != digits.data() + digits.size()) continue;
      if (!wanted.empty() && !wanted.count(inode)) continue;
      if (!name) name = process_name(::dirfd(proc.dir), *pid);
      owners.emplace(inode, SocketOwner{*pid, *fd, *name});
    }
  }
  return owners;
}

}  // namespace socketeer
