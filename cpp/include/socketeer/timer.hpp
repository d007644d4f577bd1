// Timer: a timerfd on CLOCK_MONOTONIC. It is an ordinary fd that becomes readable when it
// expires, so a Poller delivers timers as ordinary events: register it for readable.
#pragma once

#include <chrono>
#include <cstdint>

#include "socketeer/fd.hpp"

namespace socketeer {

class Timer {
 public:
  using Duration = std::chrono::nanoseconds;

  struct Setting {
    Duration remaining{0};  // until the next expiration; zero when disarmed
    Duration interval{0};   // zero for a one-shot timer
  };

  // timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK); disarmed.
  Timer();

  // Expires after delay, then every interval (zero: once). A delay <= 0 expires at once
  // (timerfd itself would read a zero delay as "disarm").
  void arm(Duration delay, Duration interval = Duration(0));
  void disarm();
  Setting setting() const;
  // Reads and resets the expiration count: 0 when the timer has not expired since.
  uint64_t expirations();

  int fd() const noexcept { return fd_.get(); }
  bool closed() const noexcept { return !fd_.valid(); }
  void close() { fd_.close(); }

 private:
  int checked_fd(const char* operation) const;
  Fd fd_;
};

}  // namespace socketeer
