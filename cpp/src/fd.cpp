#include "socketeer/fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "socketeer/error.hpp"

namespace socketeer {

void Fd::reset(int fd) noexcept {
  int old = fd_.exchange(fd, std::memory_order_acq_rel);
  // Never retry close() on EINTR: on Linux the fd is released even then, and a retry could
  // close an fd another thread has just been given.
  if (old >= 0) ::close(old);
}

void Fd::close() {
  int old = release();
  if (old >= 0) check(::close(old), "close");
}

Fd dup_cloexec(int fd) { return Fd(check(::fcntl(fd, F_DUPFD_CLOEXEC, 0), "dup")); }

}  // namespace socketeer
