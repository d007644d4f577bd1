// Fd: the one owner of a file descriptor. Move-only; closes exactly once.
//
// The number is an atomic: a Socket's fd is read by one thread (fileno(), a call that is about
// to start) while another closes it. Reads are relaxed loads (a plain load on every target we
// build for), so the hot paths pay nothing; giving the fd up is an exchange, so of two threads
// racing to close it exactly one gets the number.
#pragma once

#include <atomic>
#include <utility>

namespace socketeer {

class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const noexcept { return fd_.load(std::memory_order_relaxed); }
  bool valid() const noexcept { return get() >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // Gives up ownership without closing (socket.detach()).
  int release() noexcept { return fd_.exchange(-1, std::memory_order_acq_rel); }
  // Closes the current fd (errors from close are ignored: the fd is gone either way on Linux).
  void reset(int fd = -1) noexcept;
  // Closes and reports close()'s error, for callers that want it (socket.close()).
  void close();

 private:
  std::atomic<int> fd_{-1};
};

// A new fd referring to the same open file, CLOEXEC (F_DUPFD_CLOEXEC).
Fd dup_cloexec(int fd);

}  // namespace socketeer
