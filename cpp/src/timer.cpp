#include "socketeer/timer.hpp"

#include <sys/timerfd.h>
#include <unistd.h>

#include "socketeer/error.hpp"
#include "socketeer/interrupt.hpp"

namespace socketeer {
namespace {

using std::chrono::nanoseconds;

timespec to_timespec(nanoseconds duration) {
  auto count = duration.count();
  return {static_cast<time_t>(count / 1'000'000'000), static_cast<long>(count % 1'000'000'000)};
}

nanoseconds from_timespec(const timespec& spec) {
  return std::chrono::seconds(spec.tv_sec) + nanoseconds(spec.tv_nsec);
}

}  // namespace

Timer::Timer()
    : fd_(check(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK), "timerfd_create")) {}

int Timer::checked_fd(const char* operation) const {
  if (!fd_.valid()) throw InvalidArgument(std::string(operation) + ": I/O operation on closed timer");
  return fd_.get();
}

void Timer::arm(Duration delay, Duration interval) {
  if (interval < Duration(0)) throw InvalidArgument("timer interval must not be negative");
  // A zero it_value disarms a timerfd; the earliest real expiry is one nanosecond away.
  itimerspec spec{to_timespec(std::max(interval, Duration(0))), to_timespec(std::max(delay, Duration(1)))};
  check(::timerfd_settime(checked_fd("arm timer"), 0, &spec, nullptr), "timerfd_settime");
}

void Timer::disarm() {
  itimerspec spec{};
  check(::timerfd_settime(checked_fd("disarm timer"), 0, &spec, nullptr), "timerfd_settime");
}

Timer::Setting Timer::setting() const {
  itimerspec spec{};
  check(::timerfd_gettime(checked_fd("timer setting"), &spec), "timerfd_gettime");
  return {from_timespec(spec.it_value), from_timespec(spec.it_interval)};
}

uint64_t Timer::expirations() {
  uint64_t count = 0;
  int fd = checked_fd("read timer");
  ssize_t got = retry_eintr([&] { return ::read(fd, &count, sizeof count); });
  if (got < 0 && errno != EAGAIN) throw_error(errno, "read timer");
  return got < 0 ? 0 : count;
}

}  // namespace socketeer
