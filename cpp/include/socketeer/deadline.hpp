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
  // Time left, or nullopt when waiting is unbounded; throws the "timed out" Error once passed.
  Timeout remaining(std::string_view operation) {
    if (!timeout_) return std::nullopt;
    auto now = Clock::now();
    if (!started_) {
      end_ = now + *timeout_;
      started_ = true;
    }
    auto left = end_ - now;
    if (left <= std::chrono::nanoseconds::zero()) throw_timeout(operation);
    return std::chrono::duration_cast<std::chrono::nanoseconds>(left);
  }

 private:
  Timeout timeout_;
  bool started_ = false;
  Clock::time_point end_{};
};

}  // namespace socketeer
