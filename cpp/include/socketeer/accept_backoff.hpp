// AcceptBackoff: what a server does after accept() failed. One policy for the three accept
// loops (the reactor's Server, socketeer.Listener iteration and serve(), socketeer.aio.Listener's),
// so none of them stops serving when the process runs out of fds.
//
//   retry  the failure concerns one connection, not the listener: it was aborted before it was
//          taken (ECONNABORTED), or accept(2) passed on a network error pending on the new
//          socket, which its man page says to treat like EAGAIN (EPROTO, ENETDOWN, ENOPROTOOPT,
//          EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH, and ETIMEDOUT, which "various
//          Linux kernels" return too), or a signal came (EINTR). That connection is gone from
//          the backlog: accept again at once.
//   pause  out of resources (EMFILE, ENFILE: no fd for the new socket; ENOBUFS, ENOMEM). The
//          connection stays in the backlog, so accepting again at once fails the same way and
//          spins. Stop accepting for kPause, keep serving the open connections (which is what
//          frees fds), then try again: one failing accept4 per pause until one works.
//   fatal  anything else: EBADF, EINVAL (closed, or not listening), ENOTSOCK, EFAULT, EPERM (a
//          security module refusing accept refuses every one: retrying would spin). Raise.
//
// The pause stays kPause (100 ms) however long the shortage lasts, as the reactor always did: a
// failed accept4 every 100 ms costs nothing measurable, while a pause that grew (say to 1 s)
// would leave clients waiting in the backlog up to that long after fds come back, and a shorter
// first one would buy no faster recovery worth a busier shortage. So nothing grows or resets;
// the object only counts the pauses in a row, so a caller can say once that accepting paused,
// and once that it works again, instead of once per failure.
#pragma once

#include <chrono>

namespace socketeer {

class AcceptBackoff {
 public:
  enum class Action { retry, pause, fatal };
  static constexpr std::chrono::milliseconds kPause{100};

  static Action classify(int code) noexcept;

  // classify(code), counting pauses: pauses() == 1 after the first of a run.
  Action failed(int code) noexcept;
  // An accept worked: returns how many pauses in a row it ended (0: there was no shortage).
  unsigned succeeded() noexcept;
  unsigned pauses() const noexcept { return pauses_; }

 private:
  unsigned pauses_ = 0;
};

}  // namespace socketeer
