// SigpipeGuard: no SIGPIPE from the calls made in its scope, for the syscalls that have no
// MSG_NOSIGNAL: splice(2) and sendfile(2) into a socket.
//
// A write to a socket whose peer is gone fails with EPIPE and raises SIGPIPE, whose default
// action ends the process. send(2) and sendmsg(2) take MSG_NOSIGNAL; splice and sendfile have no
// such flag, and ignoring SIGPIPE process-wide is not a library's decision to make. But the
// kernel sends that SIGPIPE synchronously, to the calling thread, before the call returns. So a
// thread can block SIGPIPE around the call (the signal then waits, pending, instead of being
// delivered) and, after an EPIPE, take it back with sigtimedwait() and a zero timeout before
// unblocking: nobody ever sees it. (curl's sigpipe.h, libgit2 and nginx do the same.) A SIGPIPE
// that was already pending for the thread when the outermost guard began is not ours: a
// consume() then leaves it alone (the kernel merges ours into it).
//
//   SigpipeGuard guard;
//   ssize_t n = ::sendfile(...);
//   if (n < 0 && errno == EPIPE) guard.consume();  // errno is kept
//
// Cost: the outermost guard of a thread blocks and restores the mask: two rt_sigprocmask
// syscalls, about 1 µs the pair on our CI VMs. Guards inside it cost nothing. Per splice that
// would be ~20,000 pairs per GiB through the FaultProxy (~1 % at 1 GB/s), so its thread (ours)
// holds one guard for its whole life, and the guard around each splice makes no syscall at all.
// consume() adds one sigtimedwait, on the EPIPE path only.
#pragma once

namespace socketeer {

class SigpipeGuard {
 public:
  SigpipeGuard() noexcept;
  ~SigpipeGuard();
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

  // After a call in this scope failed with EPIPE: takes the SIGPIPE it raised for this thread.
  // errno is unchanged.
  void consume() noexcept;
};

}  // namespace socketeer
