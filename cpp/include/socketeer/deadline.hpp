// A deadline fixed on first use, so the fast path (data ready at once) never reads the clock.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "socketeer/error.hpp"

namespace socketeer {

using Clock = std::chrono::steady_clock;
using Timeout = std::optional<std::chrono::nanoseconds>;  // nullopt: wait forever

class Deadline {
 public:
  explicit Deadline(Timeout timeout) : timeout_(timeout) {}
  // Time left (zero or less once passed), or nullopt when waiting is unbounded.
  Timeout left() {
    if (!timeout_) return std::nullopt;
    auto now = Clock::now();
    if (!started_) {
      end_ = now + *timeout_;
      started_ = true;
    }
    return std::chrono::duration_cast<std::chrono::nanoseconds>(end_ - now);
  }
  // Like left(), but throws the "timed out" Error once the deadline has passed.
  Timeout remaining(std::string_view operation, std::string_view target = {}) {
    Timeout time_left = left();
    if (time_left && *time_left <= std::chrono::nanoseconds::zero()) throw_timeout(operation, target);
    return time_left;
  }

 private:
  Timeout timeout_;
  bool started_ = false;
  Clock::time_point end_{};
};

}  // namespace socketeer
