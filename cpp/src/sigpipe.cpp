#include "socketeer/sigpipe.hpp"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>

namespace socketeer {
namespace {

// Per thread: how many guards are open, and what the outermost one found.
thread_local int depth = 0;
thread_local bool unblock_at_end = false;  // SIGPIPE was not blocked before: unblock it again
thread_local bool pending_before = false;  // a SIGPIPE was already waiting: not ours to take

sigset_t just_sigpipe() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  return set;
}

}  // namespace

SigpipeGuard::SigpipeGuard() noexcept {
  if (depth++ > 0) return;
  int saved = errno;
  sigset_t pipe = just_sigpipe(), old;
  pthread_sigmask(SIG_BLOCK, &pipe, &old);
  unblock_at_end = !sigismember(&old, SIGPIPE);
  pending_before = false;
  // Only a thread that already blocked SIGPIPE can have one waiting: an unblocked one would
  // have been delivered.
  if (!unblock_at_end) {
    sigset_t pending;
    if (sigpending(&pending) == 0) pending_before = sigismember(&pending, SIGPIPE);
  }
  errno = saved;
}

SigpipeGuard::~SigpipeGuard() {
  if (--depth > 0 || !unblock_at_end) return;
  int saved = errno;
  sigset_t pipe = just_sigpipe();
  pthread_sigmask(SIG_UNBLOCK, &pipe, nullptr);
  errno = saved;
}

void SigpipeGuard::consume() noexcept {
  if (pending_before) return;
  int saved = errno;
  sigset_t pipe = just_sigpipe();
  timespec zero{0, 0};
  while (sigtimedwait(&pipe, nullptr, &zero) < 0 && errno == EINTR) {
  }
  errno = saved;
}

}  // namespace socketeer
