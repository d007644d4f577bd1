#include "socketeer/waker.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include "socketeer/error.hpp"
#include "socketeer/interrupt.hpp"

namespace socketeer {

Waker::Waker() : fd_(check(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd")) {}

void Waker::wake() {
  uint64_t one = 1;
  ssize_t written = retry_eintr([&] { return ::write(fd_.get(), &one, sizeof one); });
  if (written < 0 && errno != EAGAIN) throw_error(errno, "wake");
}

uint64_t Waker::drain() {
  uint64_t count = 0;
  ssize_t got = retry_eintr([&] { return ::read(fd_.get(), &count, sizeof count); });
  if (got < 0 && errno != EAGAIN) throw_error(errno, "drain waker");
  return got < 0 ? 0 : count;
}

}  // namespace socketeer
