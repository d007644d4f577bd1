// Waker: an eventfd that any thread (or a signal handler) can signal to end a blocked poll.
#pragma once

#include <cstdint>

#include "socketeer/fd.hpp"

namespace socketeer {

class Waker {
 public:
  // eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK).
  Waker();

  // Adds one to the counter: the fd becomes readable. Safe from any thread and async-signal
  // safe (one write). A saturated counter (EAGAIN) already means "readable", so it is ignored.
  void wake();
  // Reads and resets the counter: how many wakes since the last drain (0 if none).
  uint64_t drain();

  int fd() const noexcept { return fd_.get(); }
  void close() noexcept { fd_.reset(); }

 private:
  Fd fd_;
};

}  // namespace socketeer
